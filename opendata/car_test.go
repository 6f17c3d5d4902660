package opendata_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/opendata"
	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// TestCARWriterRoundTrip: what CARWriter writes, CARReader reads back:
// version, roots, blocks in order; an empty root list is allowed.
func TestCARWriterRoundTrip(t *testing.T) {
	a, b := []byte{0xa1, 0x61, 0x61, 0x01}, []byte{0xa1, 0x61, 0x62, 0x02}
	ca, cb := protocol.RecordCID(a), protocol.RecordCID(b)
	for _, roots := range [][]cid.Cid{nil, {ca}, {ca, cb}} {
		var buf bytes.Buffer
		cw, err := opendata.NewCARWriter(&buf, roots)
		if err != nil {
			t.Fatal(err)
		}
		for _, blk := range []opendata.Block{{CID: ca, Data: a}, {CID: cb, Data: b}} {
			if err := cw.Put(blk.CID, blk.Data); err != nil {
				t.Fatal(err)
			}
		}
		if err := cw.Flush(); err != nil {
			t.Fatal(err)
		}
		if cw.Size() != int64(buf.Len()) || cw.Blocks() != 2 {
			t.Fatalf("size %d, wrote %d; blocks %d", cw.Size(), buf.Len(), cw.Blocks())
		}
		cr, err := opendata.NewCARReader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if cr.Version() != 1 || len(cr.Roots()) != len(roots) {
			t.Fatalf("version %d, roots %v", cr.Version(), cr.Roots())
		}
		for _, want := range []cid.Cid{ca, cb} {
			blk, err := cr.Next()
			if err != nil || !blk.CID.Equals(want) || !blk.HashOK() {
				t.Fatalf("block %v, %v", blk.CID, err)
			}
		}
		if _, err := cr.Next(); !errors.Is(err, io.EOF) {
			t.Fatalf("after the last block: %v", err)
		}
	}
	if _, err := opendata.NewCARReader(bytes.NewReader([]byte("not a car"))); !errors.Is(err, opendata.ErrNotCAR) {
		t.Fatalf("err %v", err)
	}
}

// TestCARv2Unfinished: a CARv2 file whose Finish never ran (a crash, a cut
// stream) is not readable as a CAR, so it cannot pass for a whole archive.
func TestCARv2Unfinished(t *testing.T) {
	data := []byte{0xa1, 0x61, 0x61, 0x01}
	c := protocol.RecordCID(data)
	f, err := os.Create(filepath.Join(t.TempDir(), "unfinished.car"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v2, err := opendata.NewCARv2File(f, []cid.Cid{c})
	if err != nil {
		t.Fatal(err)
	}
	if err := v2.Writer().Put(c, data); err != nil {
		t.Fatal(err)
	}
	if err := v2.Writer().Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if cr, err := opendata.NewCARReader(f); err == nil {
		_, err = cr.Next()
		t.Fatalf("an unfinished CARv2 reads as a CARv%d (next: %v)", cr.Version(), err)
	}
}

// FuzzCARReader: no input makes the reader panic or loop; every block it
// returns can be hashed. (The seeds run with every `go test`.)
func FuzzCARReader(f *testing.F) {
	data := []byte{0xa1, 0x61, 0x61, 0x01}
	c := protocol.RecordCID(data)
	var buf bytes.Buffer
	cw, _ := opendata.NewCARWriter(&buf, []cid.Cid{c})
	_ = cw.Put(c, data)
	_ = cw.Flush()
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:buf.Len()-3])
	f.Add([]byte("not a car"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		cr, err := opendata.NewCARReader(bytes.NewReader(in))
		if err != nil {
			return
		}
		for range len(in) + 1 {
			b, err := cr.Next()
			if err != nil {
				return
			}
			_ = b.HashOK()
		}
		t.Fatal("more blocks than bytes")
	})
}

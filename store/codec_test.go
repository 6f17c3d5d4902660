package store

import (
	"bytes"
	"math"
	"testing"

	"github.com/ipfs/go-cid"
)

func TestMetaCodecRoundTrip(t *testing.T) {
	c := cidOf(t, []byte("codec"))
	for _, m := range []Meta{
		{CID: c, Topic: "t", Kind: "k", Author: author(1), Seq: 1, Time: 1, Arrival: 1, FirstSeen: 1, Size: 1},
		{CID: c, Topic: "issue/privacy", Kind: "statement", Author: author(0xff), Seq: math.MaxUint64,
			Time: math.MinInt64, Arrival: math.MaxUint64, FirstSeen: -1, Size: math.MaxInt32},
		{CID: c},
	} {
		got, err := decodeMeta(encodeMeta(&m))
		wantNoErr(t, err)
		if !metaEqual(got, m) {
			t.Fatalf("round trip = %+v, want %+v", got, m)
		}
	}
}

func TestMetaCodecRejectsDamage(t *testing.T) {
	m := Meta{CID: cidOf(t, []byte("x")), Topic: "t", Kind: "k", Author: author(1), Seq: 3, Arrival: 9, Size: 10}
	enc := encodeMeta(&m)
	for n := range len(enc) {
		if _, err := decodeMeta(enc[:n]); err == nil {
			t.Fatalf("decoded a %d-byte prefix of a %d-byte value", n, len(enc))
		}
	}
	_, err := decodeMeta(append(bytes.Clone(enc), 0))
	wantErr(t, err, ErrCorrupt)
	bad := bytes.Clone(enc)
	bad[0] = 2
	_, err = decodeMeta(bad)
	wantErr(t, err, ErrCorrupt)
}

func TestCounterCodecs(t *testing.T) {
	ts := topicStat{records: 5, lastArrival: 77}
	got, err := decodeTopicStat(ts.encode())
	wantNoErr(t, err)
	if got != ts {
		t.Fatalf("topic counter round trip = %+v, want %+v", got, ts)
	}
	st := Stats{Records: 1, Bytes: 2, LastArrival: 3}
	gotSt, err := decodeStats(st.encode())
	wantNoErr(t, err)
	if gotSt != st {
		t.Fatalf("totals round trip = %+v, want %+v", gotSt, st)
	}
	_, err = decodeTopicStat([]byte{1})
	wantErr(t, err, ErrCorrupt)
	_, err = decodeStats(nil)
	wantErr(t, err, ErrCorrupt)
}

func TestKeyOrder(t *testing.T) {
	// A topic's keys never interleave with those of a topic it prefixes.
	p := namePrefix(pTopic, "a")
	lo, hi := p, upperBound(p)
	for _, k := range [][]byte{topicKey("ab", 0), topicKey("a\x01", 0), topicKey("", 5), headKey("a", cid.Undef)} {
		if bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0 {
			t.Fatalf("key %x falls inside topic a's range [%x, %x)", k, lo, hi)
		}
	}
	if bytes.Compare(topicKey("a", 255), topicKey("a", 256)) >= 0 {
		t.Fatal("arrival numbers do not sort numerically")
	}
}

func FuzzDecodeMeta(f *testing.F) {
	m := Meta{CID: cidOf(f, []byte("fuzz")), Topic: "t", Kind: "k", Author: author(1), Seq: 2, Arrival: 3, Size: 4}
	f.Add(encodeMeta(&m))
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		again, err := decodeMeta(encodeMeta(&m))
		if err != nil || !metaEqual(again, m) {
			t.Fatalf("re-encoding a decoded value changed it: %+v vs %+v (%v)", again, m, err)
		}
	})
}

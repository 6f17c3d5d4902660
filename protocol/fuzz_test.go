package protocol_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// seedRecords adds valid records and near-misses to a fuzz corpus.
func seedRecords(f *testing.F) cid.Cid {
	key := fixedKey(1)
	net := devNetwork(f, key)
	r1 := statement(f, key, net, 1, cid.Undef)
	r2 := statement(f, key, net, 2, r1.CID, r1.CID)
	f.Add(r1.Raw)
	f.Add(r2.Raw)
	f.Add(r2.Raw[:len(r2.Raw)-1])
	f.Add(bytes.Replace(r1.Raw, []byte("cseq\x01"), []byte("cseq\x18\x01"), 1))
	f.Add([]byte{0xa0})
	f.Add([]byte{0xbf, 0xff})
	f.Add([]byte{0xd8, 0x2a, 0x41, 0x00})
	f.Add([]byte("garbage"))
	return net
}

// FuzzDecode checks that Decode never panics and that whatever it accepts
// is canonical: it re-encodes to the same bytes and the same CID.
func FuzzDecode(f *testing.F) {
	seedRecords(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := protocol.Decode(raw)
		if err != nil {
			if protocol.ReasonOf(err) == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		again, err := protocol.Marshal(&r.Env)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, raw) {
			t.Fatalf("accepted a non-canonical encoding")
		}
		if !r.CID.Equals(protocol.RecordCID(raw)) {
			t.Fatalf("CID mismatch")
		}
		sliced, ok := protocol.SlicedSigningInput(raw, &r.Env)
		want, err := protocol.SigningInput(&r.Env)
		if err != nil || !ok || !bytes.Equal(sliced, want) {
			t.Fatalf("signing input cut from the record (ok %v) differs from the re-encoded one (err %v)", ok, err)
		}
	})
}

// FuzzValidate checks that Validate never panics, always gives a reason
// with an action, and accepts only records whose signature verifies.
func FuzzValidate(f *testing.F) {
	net := seedRecords(f)
	now := vectorTime.Add(time.Hour)
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := protocol.Validate(raw, net, now)
		if err != nil {
			if a := protocol.ActionOf(err); a != protocol.Reject && a != protocol.Ignore {
				t.Fatalf("error without an action: %v", err)
			}
			return
		}
		if r.Verify() != nil {
			t.Fatal("accepted a record whose signature does not verify")
		}
	})
}

// FuzzDecodeGenesis checks that genesis decoding never panics.
func FuzzDecodeGenesis(f *testing.F) {
	g, _ := protocol.DevGenesis(fixedKey(1), "x", vectorTime)
	raw, _ := g.Encode()
	f.Add(raw)
	f.Add(raw[:10])
	f.Fuzz(func(t *testing.T, raw []byte) {
		g, err := protocol.DecodeGenesis(raw)
		if err == nil {
			_ = g.Verify()
		}
	})
}

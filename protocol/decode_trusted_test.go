package protocol_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// FuzzDecodeTrusted checks DecodeTrusted against Decode on any bytes: it
// never panics; for bytes Decode accepts it returns the same record; for
// bytes Decode rejects for any reason but the canonical form (the one check
// it skips: the decoded value must re-encode to the same bytes), it
// rejects them with the same reason.
func FuzzDecodeTrusted(f *testing.F) {
	seedRecords(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkTrusted(t, raw)
	})
}

func checkTrusted(t *testing.T, raw []byte) {
	t.Helper()
	strict, serr := protocol.Decode(raw)
	trusted, terr := protocol.DecodeTrusted(raw, protocol.RecordCID(raw))
	switch {
	case serr == nil && terr != nil:
		t.Fatalf("Decode accepts, DecodeTrusted refuses: %v", terr)
	case serr == nil:
		if !reflect.DeepEqual(strict, trusted) {
			t.Fatalf("DecodeTrusted gives\n%+v\nDecode gives\n%+v", trusted, strict)
		}
	case protocol.ReasonOf(serr) == protocol.ReasonNonCanonical || strings.Contains(serr.Error(), "re-encode"):
		// The one check DecodeTrusted leaves out (decoded values that do
		// not encode at all fail it too); whatever it says, it must say
		// it without panicking, with a reason if it refuses.
		if terr != nil && protocol.ReasonOf(terr) == "" {
			t.Fatalf("error without a reason: %v", terr)
		}
	case terr == nil:
		t.Fatalf("Decode refuses (%v), DecodeTrusted accepts", serr)
	case protocol.ReasonOf(terr) != protocol.ReasonOf(serr):
		t.Fatalf("Decode refuses with %q (%v), DecodeTrusted with %q (%v)",
			protocol.ReasonOf(serr), serr, protocol.ReasonOf(terr), terr)
	}
}

// TestDecodeTrusted runs the fuzz check on the seed records and the kinds'
// example records, and shows what the trusted decode does not check: a
// non-canonical encoding, which only bytes that were never validated can
// be, and the CID, which the store checks when it reads the bytes.
func TestDecodeTrusted(t *testing.T) {
	key := fixedKey(1)
	net := devNetwork(t, key)
	r1 := statement(t, key, net, 1, cid.Undef)
	r2 := statement(t, key, net, 2, r1.CID, r1.CID)
	for _, raw := range [][]byte{r1.Raw, r2.Raw, r2.Raw[:len(r2.Raw)-1], []byte("garbage"), {0xa0}} {
		checkTrusted(t, raw)
	}

	nonCanonical := bytes.Replace(r1.Raw, []byte("cseq\x01"), []byte("cseq\x18\x01"), 1)
	if _, err := protocol.Decode(nonCanonical); protocol.ReasonOf(err) != protocol.ReasonNonCanonical {
		t.Fatalf("Decode of a non-canonical record: %v, want %s", err, protocol.ReasonNonCanonical)
	}
	r, err := protocol.DecodeTrusted(nonCanonical, protocol.RecordCID(nonCanonical))
	if err != nil || r.Env.Seq != 1 {
		t.Fatalf("DecodeTrusted of a non-canonical record: %v (seq %v); it does not re-encode", err, r)
	}

	// The CID is taken as given: the store, not the decoder, checks it.
	r, err = protocol.DecodeTrusted(r1.Raw, r2.CID)
	if err != nil || !r.CID.Equals(r2.CID) {
		t.Fatalf("DecodeTrusted(raw, c) = %v, %v; want the record with CID c", r, err)
	}
	// But it must be a record CID.
	raw := cid.NewCidV1(cid.Raw, mustHash(t, r1.Raw))
	if _, err := protocol.DecodeTrusted(r1.Raw, raw); err == nil {
		t.Fatal("DecodeTrusted took a raw-codec CID")
	}
	if _, err := protocol.DecodeTrusted(r1.Raw, cid.Undef); err == nil {
		t.Fatal("DecodeTrusted took an undefined CID")
	}
}

func mustHash(t *testing.T, b []byte) mh.Multihash {
	t.Helper()
	h, err := mh.Sum(b, mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestLinkForms checks that a link in its canonical form (read without the
// generic decoder) and in the forms only the generic decoder reads give the
// same CID, and that a link with bytes after it is refused.
func TestLinkForms(t *testing.T) {
	c := protocol.RecordCID([]byte("x"))
	canon, err := protocol.LinkTo(c).MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	if canon[0] != 0xd8 || canon[1] != 42 || canon[2] != 0x58 {
		t.Fatalf("canonical link % x, want d8 2a 58 ...", canon[:3])
	}
	content := canon[4:]
	forms := map[string][]byte{
		"canonical":           canon,
		"two-byte tag head":   append([]byte{0xd9, 0x00, 42, 0x58, byte(len(content))}, content...),
		"two-byte bstr head":  append([]byte{0xd8, 42, 0x59, 0x00, byte(len(content))}, content...),
		"short-form content":  append([]byte{0xd8, 42, 0x40 | 3}, 0x00, 0x01, 0x55),
		"one-byte long bstr":  append([]byte{0xd8, 42, 0x58, 3}, 0x00, 0x01, 0x55),
		"tag 43":              append([]byte{0xd8, 43}, canon[2:]...),
		"text content":        append([]byte{0xd8, 42, 0x78, byte(len(content))}, content...),
		"trailing byte":       append(append([]byte{}, canon...), 0x00),
		"length past the end": append([]byte{0xd8, 42, 0x58, byte(len(content) + 1)}, content...),
		"no multibase prefix": append([]byte{0xd8, 42, 0x58, byte(len(content) - 1)}, content[1:]...),
	}
	want := map[string]bool{"canonical": true, "two-byte tag head": true, "two-byte bstr head": true}
	for name, data := range forms {
		var l protocol.Link
		err := l.UnmarshalCBOR(data)
		switch {
		case want[name] && err != nil:
			t.Errorf("%s: %v", name, err)
		case want[name] && !l.Equals(c):
			t.Errorf("%s: got %s, want %s", name, l.Cid, c)
		case !want[name] && name != "short-form content" && name != "one-byte long bstr" && err == nil:
			t.Errorf("%s: accepted as %s", name, l.Cid)
		}
	}
	// A three-byte CID does not parse (cid.Cast), by either path.
	for _, name := range []string{"short-form content", "one-byte long bstr"} {
		var l protocol.Link
		if err := l.UnmarshalCBOR(forms[name]); err == nil {
			t.Errorf("%s: accepted %x as %s", name, forms[name], l.Cid)
		}
	}
}

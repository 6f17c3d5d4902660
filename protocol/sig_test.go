package protocol_test

import (
	"bytes"
	"crypto/ed25519"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// TestValidateBatchMatchesValidate: for a shuffled mix of valid records,
// forged signatures, other networks, future times, garbage and
// non-canonical encodings, more than two batches long, ValidateBatch gives
// every input exactly what Validate gives it.
func TestValidateBatchMatchesValidate(t *testing.T) {
	keys := []ed25519.PrivateKey{fixedKey(1), fixedKey(2), fixedKey(3)}
	net := devNetwork(t, keys[0])
	other := devNetwork(t, keys[1])
	now := vectorTime.Add(time.Hour)
	var raws [][]byte
	for i := range 150 {
		k := keys[i%len(keys)]
		r := statement(t, k, net, uint64(i+2), protocol.RecordCID([]byte{byte(i)}))
		switch i % 10 {
		case 3: // forged: a bit of the signature flipped
			raw := bytes.Clone(r.Raw)
			j := bytes.Index(raw, r.Env.Sig)
			raw[j+5] ^= 0x10
			raws = append(raws, raw)
		case 5:
			raws = append(raws, statement(t, k, other, 1, cid.Undef).Raw)
		case 7:
			raws = append(raws, []byte("garbage"))
		case 8:
			raws = append(raws, bytes.Replace(r.Raw, []byte("cseq\x18"), []byte("cseq\x19\x00"), 1))
		case 9:
			f, err := protocol.Build(k, protocol.Draft{
				Network: net, Kind: protocol.KindStatement, Topic: "issue/x", Seq: 1,
				Time: now.Add(time.Hour), Body: &protocol.Statement{Title: "t", Text: "future"},
			})
			if err != nil {
				t.Fatal(err)
			}
			raws = append(raws, f.Raw)
		default:
			raws = append(raws, r.Raw)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(raws), func(i, j int) { raws[i], raws[j] = raws[j], raws[i] })

	recs, errs := protocol.ValidateBatch(raws, net, now)
	reasons := map[protocol.Reason]int{}
	for i, raw := range raws {
		want, wantErr := protocol.Validate(raw, net, now)
		if protocol.ReasonOf(errs[i]) != protocol.ReasonOf(wantErr) || (errs[i] == nil) != (wantErr == nil) {
			t.Fatalf("input %d: ValidateBatch says %v, Validate says %v", i, errs[i], wantErr)
		}
		if wantErr == nil && !recs[i].CID.Equals(want.CID) {
			t.Fatalf("input %d: record %s, want %s", i, recs[i].CID, want.CID)
		}
		if wantErr != nil && recs[i] != nil {
			t.Fatalf("input %d: a record with error %v", i, errs[i])
		}
		reasons[protocol.ReasonOf(errs[i])]++
	}
	for _, r := range []protocol.Reason{"", protocol.ReasonBadSignature, protocol.ReasonWrongNetwork,
		protocol.ReasonBadEncoding, protocol.ReasonNonCanonical, protocol.ReasonFutureTime} {
		if reasons[r] == 0 {
			t.Errorf("no input ended with reason %q: %v", r, reasons)
		}
	}
}

// TestSignatureRuleZIP215 pins the verification rule (docs/protocol.md
// 3.1): a signature whose R is a non-canonical encoding of a valid point
// verifies by the cofactored ZIP-215 equation, where the Go standard
// library's cofactorless check rejects it. Here A and R are the identity
// point, R written as y = p+1 instead of y = 1, and S = 0.
func TestSignatureRuleZIP215(t *testing.T) {
	pub := make([]byte, 32)
	pub[0] = 0x01 // the identity, canonical
	sig := make([]byte, 64)
	sig[0] = 0xee // y = 2^255-18 = p+1: the identity, non-canonical
	for i := 1; i < 31; i++ {
		sig[i] = 0xff
	}
	sig[31] = 0x7f
	msg := []byte("any message")
	if !protocol.VerifySig(pub, msg, sig) {
		t.Fatal("ZIP-215 rule: the non-canonical R should verify")
	}
	if ed25519.Verify(pub, msg, sig) {
		t.Fatal("the standard library accepts it too: the test no longer shows the difference")
	}
	// And the other way: what the standard library accepts, the rule
	// accepts.
	k := fixedKey(9)
	good := ed25519.Sign(k, msg)
	if !protocol.VerifySig(k.Public().(ed25519.PublicKey), msg, good) {
		t.Fatal("a standard signature does not verify")
	}
	bad := bytes.Clone(good)
	bad[40] ^= 1
	if protocol.VerifySig(k.Public().(ed25519.PublicKey), msg, bad) {
		t.Fatal("a damaged signature verifies")
	}
	// S must be below L: with S = L, [S]B is the identity as with S = 0,
	// so only the rule S < L refuses it.
	high := bytes.Clone(sig)
	copy(high[32:], []byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10})
	if protocol.VerifySig(pub, msg, high) {
		t.Fatal("a signature with S = L verifies")
	}
}

package protocol_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/oasisprotocol/curve25519-voi/curve/scalar"

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
// 3.1). A signature whose R is a non-canonical encoding of a valid point
// (here the identity, written as y = p+1) verifies by the cofactored
// ZIP-215 equation, where the Go standard library's cofactorless check
// rejects it; S = k*a makes [8][S]B = [8][k]A hold for a real key. A key
// of small order (the identity) is refused even for a signature that the
// standard library accepts. S must be below L.
func TestSignatureRuleZIP215(t *testing.T) {
	key := fixedKey(9)
	pub := key.Public().(ed25519.PublicKey)
	msg := []byte("any message")
	nonCanonicalIdentity := make([]byte, 32)
	nonCanonicalIdentity[0] = 0xee // y = 2^255-18 = p+1
	for i := 1; i < 31; i++ {
		nonCanonicalIdentity[i] = 0xff
	}
	nonCanonicalIdentity[31] = 0x7f
	// a: the secret scalar of key (RFC 8032 5.1.5); k = H(R || A || M).
	h := sha512.Sum512(key.Seed())
	h[0] &= 248
	h[31] &= 127
	h[31] |= 64
	a, err := scalar.NewFromBytesModOrder(h[:32])
	if err != nil {
		t.Fatal(err)
	}
	kh := sha512.New()
	kh.Write(nonCanonicalIdentity)
	kh.Write(pub)
	kh.Write(msg)
	k, err := scalar.NewFromBytesModOrderWide(kh.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	copy(sig, nonCanonicalIdentity)
	if err := scalar.New().Mul(k, a).ToBytes(sig[32:]); err != nil {
		t.Fatal(err)
	}
	if !protocol.VerifySig(pub, msg, sig) {
		t.Fatal("ZIP-215 rule: a non-canonical R should verify")
	}
	if ed25519.Verify(pub, msg, sig) {
		t.Fatal("the standard library accepts it too: the test no longer shows the difference")
	}

	// What the standard library accepts, the rule accepts; damage fails.
	good := ed25519.Sign(key, msg)
	if !protocol.VerifySig(pub, msg, good) {
		t.Fatal("a standard signature does not verify")
	}
	bad := bytes.Clone(good)
	bad[40] ^= 1
	if protocol.VerifySig(pub, msg, bad) {
		t.Fatal("a damaged signature verifies")
	}

	// The identity as a key: R = identity, S = 0 is a valid signature of
	// any message under both equations, by anyone. Refused.
	identity := make([]byte, 32)
	identity[0] = 0x01
	forged := make([]byte, 64)
	forged[0] = 0x01
	if !ed25519.Verify(identity, msg, forged) {
		t.Fatal("the standard library refuses the forgery: the test no longer shows why small-order keys are refused")
	}
	if protocol.VerifySig(identity, msg, forged) {
		t.Fatal("a signature by a small-order key verifies")
	}

	// S must be below L: with S = L, [S]B is the identity as with S = 0.
	high := bytes.Clone(sig)
	copy(high[32:], []byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10})
	if protocol.VerifySig(pub, msg, high) {
		t.Fatal("a signature with S = L verifies")
	}
}

// TestSmallOrderAuthorRefused: a record by a key of small order is refused
// as bad-signature, saying why, alone and in a batch.
func TestSmallOrderAuthorRefused(t *testing.T) {
	key := fixedKey(1)
	net := devNetwork(t, key)
	r := statement(t, key, net, 1, cid.Undef)
	env := r.Env
	env.Author = make([]byte, 32)
	env.Author[0] = 0x01 // the identity
	env.Sig = make([]byte, 64)
	env.Sig[0] = 0x01 // R = identity, S = 0
	raw, err := protocol.Marshal(&env)
	if err != nil {
		t.Fatal(err)
	}
	now := vectorTime.Add(time.Hour)
	_, err = protocol.Validate(raw, net, now)
	if protocol.ReasonOf(err) != protocol.ReasonBadSignature || !strings.Contains(err.Error(), "small order") {
		t.Fatalf("Validate: %v", err)
	}
	_, errs := protocol.ValidateBatch([][]byte{raw, r.Raw, raw}, net, now)
	if protocol.ReasonOf(errs[0]) != protocol.ReasonBadSignature || errs[1] != nil || protocol.ReasonOf(errs[2]) != protocol.ReasonBadSignature {
		t.Fatalf("ValidateBatch: %v", errs)
	}
}

// TestSmallOrderFounderRefused: a genesis naming a key of small order as a
// founder is malformed.
func TestSmallOrderFounderRefused(t *testing.T) {
	identity := make([]byte, 32)
	identity[0] = 0x01
	g := protocol.NewGenesis("weak", []protocol.Member{
		{Key: fixedKey(1).Public().(ed25519.PublicKey), Org: "A", Group: protocol.DefaultGroups[0], Region: protocol.DefaultRegions[0]},
		{Key: identity, Org: "Anyone", Group: protocol.DefaultGroups[1], Region: protocol.DefaultRegions[1]},
	}, vectorTime)
	if err := g.CheckShape(); err == nil || !strings.Contains(err.Error(), "small order") {
		t.Fatalf("CheckShape: %v", err)
	}
}

// TestSmallOrderNewKeyRefused: a member cannot rotate to, or be replaced
// by, a key of small order.
func TestSmallOrderNewKeyRefused(t *testing.T) {
	identity := make([]byte, 32)
	identity[0] = 0x01
	if err := (&protocol.MemberRotate{NewKey: identity}).Check(); err == nil || !strings.Contains(err.Error(), "small order") {
		t.Fatalf("rotate to a small-order key: %v", err)
	}
	good := fixedKey(2).Public().(ed25519.PublicKey)
	if err := (&protocol.MemberRotate{NewKey: good}).Check(); err != nil {
		t.Fatalf("rotate to a good key: %v", err)
	}
}

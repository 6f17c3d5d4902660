package protocol

import (
	"crypto/ed25519"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/oasisprotocol/curve25519-voi/curve"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// Signatures are ed25519 (RFC 8032) made by any standard signer and
// verified by the rules of ZIP-215: the cofactored verification equation
// [8][S]B = [8]R + [8][k]A, S must be canonical (S < L), and the encodings
// of A and R are accepted as any implementation decodes them. These rules
// make verifying one signature and verifying a batch of them give the same
// answer for every input, which plain RFC 8032 verification does not
// guarantee; every node must reach the same verdict on every record, so
// every check of a record or genesis signature goes through verifySig or
// verifyBatch. Every signature the Go standard library accepts is accepted
// here too (its cofactorless equation implies the cofactored one), but
// for those of keys of small order.
//
// One exception to ZIP-215: a public key that is a point of small order is
// refused (ZIP-215 accepts it). For such a key, anyone can make a
// signature that verifies, of any message, under either equation; a
// founder or member key of that kind would let anyone act as that member.
var sigOptions = &voi.Options{Verify: &voi.VerifyOptions{
	AllowSmallOrderA:   false,
	AllowSmallOrderR:   true,
	AllowNonCanonicalA: true,
	AllowNonCanonicalR: true,
}}

// verifySig reports whether sig is a valid signature of msg by pub.
func verifySig(pub, msg, sig []byte) bool {
	if len(sig) != ed25519.SignatureSize {
		return false
	}
	k := expandedKey(pub)
	return k != nil && voi.VerifyExpandedWithOptions(k, msg, sig, sigOptions)
}

// expandedKeys caches the decompressed, precomputed form of recently used
// author keys: a federation's records come from few keys, and decompressing
// a key costs a field square root per signature otherwise.
var expandedKeys = struct {
	sync.Mutex
	m map[string]*voi.ExpandedPublicKey
}{m: map[string]*voi.ExpandedPublicKey{}}

// expandedKeysMax bounds the cache (an expanded key is about 700 bytes);
// beyond it an arbitrary key is forgotten.
const expandedKeysMax = 8192

// expandedKey returns pub expanded, nil if pub is not a valid ed25519
// public key (no signature verifies with it).
func expandedKey(pub []byte) *voi.ExpandedPublicKey {
	if len(pub) != ed25519.PublicKeySize {
		return nil
	}
	expandedKeys.Lock()
	k, ok := expandedKeys.m[string(pub)]
	expandedKeys.Unlock()
	if ok {
		return k
	}
	k, err := voi.NewExpandedPublicKey(voi.PublicKey(pub))
	if err != nil {
		return nil
	}
	expandedKeys.Lock()
	if len(expandedKeys.m) >= expandedKeysMax {
		for old := range expandedKeys.m {
			delete(expandedKeys.m, old)
			break
		}
	}
	expandedKeys.m[string(pub)] = k
	expandedKeys.Unlock()
	return k
}

// MaxSigBatch is the largest number of signatures ValidateBatch checks in
// one batch verification; larger inputs are split. Batch verification
// costs about half as much per signature as verifying them one by one at
// 64 signatures (docs/benchmarks.md), and the gain flattens beyond.
const MaxSigBatch = 64

// verifyBatch reports, for each i, whether sigs[i] is a valid signature of
// msgs[i] by pubs[i], exactly as verifySig would. If the batch fails as a
// whole, every signature is checked alone, so one bad signature costs the
// batch about one and a half times its cost.
func verifyBatch(pubs, msgs, sigs [][]byte) []bool {
	switch len(pubs) {
	case 0:
		return nil
	case 1:
		return []bool{verifySig(pubs[0], msgs[0], sigs[0])}
	}
	valid := make([]bool, len(pubs))
	v := voi.NewBatchVerifierWithCapacity(len(pubs))
	var in []int // the entries of v, by index into pubs
	for i := range pubs {
		k := expandedKey(pubs[i])
		if k == nil || len(sigs[i]) != ed25519.SignatureSize {
			continue // invalid whatever the rest
		}
		v.AddExpandedWithOptions(k, msgs[i], sigs[i], sigOptions)
		in = append(in, i)
	}
	if len(in) == 0 {
		return valid
	}
	_, ok := v.Verify(nil) // random coefficients from crypto/rand
	for k, i := range in {
		valid[i] = ok[k]
	}
	return valid
}

// ValidateBatch is Validate for many records: result i is what
// Validate(raws[i], network, now) returns, but the signatures of the
// records that pass every other check are verified together, in batches
// of up to MaxSigBatch, which costs about half as much CPU per record.
func ValidateBatch(raws [][]byte, network cid.Cid, now time.Time) ([]*Record, []error) {
	recs := make([]*Record, len(raws))
	errs := make([]error, len(raws))
	var (
		idx              []int
		pubs, msgs, sigs [][]byte
	)
	flush := func() {
		for k, ok := range verifyBatch(pubs, msgs, sigs) {
			if i := idx[k]; !ok {
				errs[i] = badSignature(recs[i])
				recs[i] = nil
			}
		}
		idx, pubs, msgs, sigs = idx[:0], pubs[:0], msgs[:0], sigs[:0]
	}
	for i, raw := range raws {
		r, err := validateUnsigned(raw, network, now)
		if err != nil {
			errs[i] = err
			continue
		}
		msg, err := r.signingInput()
		if err != nil {
			errs[i] = err
			continue
		}
		recs[i] = r
		idx = append(idx, i)
		pubs, msgs, sigs = append(pubs, r.Env.Author), append(msgs, msg), append(sigs, r.Env.Sig)
		if len(idx) == MaxSigBatch {
			flush()
		}
	}
	flush()
	return recs, errs
}

func badSignature(r *Record) error {
	if smallOrder(r.Env.Author) {
		return Errorf(ReasonBadSignature, "author key %x is a point of small order: anyone can sign for it, so no signature by it is valid", r.Env.Author[:8])
	}
	return Errorf(ReasonBadSignature, "signature does not verify for author %x", r.Env.Author[:8])
}

// smallOrder reports whether pub decodes to a point of small order.
func smallOrder(pub []byte) bool {
	var c curve.CompressedEdwardsY
	if _, err := c.SetBytes(pub); err != nil {
		return false
	}
	var p curve.EdwardsPoint
	if _, err := p.SetCompressedY(&c); err != nil {
		return false
	}
	return p.IsSmallOrder()
}

package protocol

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

// benchRecord builds a typical statement: a few hundred bytes, a prev and
// two deps.
func benchRecord(b *testing.B) *Record {
	b.Helper()
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	net := RecordCID([]byte("bench network"))
	r, err := Build(key, Draft{
		Network: net, Kind: KindStatement, Topic: "issue/bench", Seq: 2,
		Prev: RecordCID([]byte("prev")), Deps: []cid.Cid{RecordCID([]byte("a")), RecordCID([]byte("b"))},
		Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Body: &Statement{Title: "benchmark", Text: "A statement of about the size of a short comment on a proposal, with a few sentences of text in it, so that the record is a few hundred bytes long as real ones are."},
	})
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkValidate splits the receive path of one record into its parts,
// with raw ed25519.Verify of the same signing input as the baseline:
//
//	go test ./protocol -run '^$' -bench BenchmarkValidate -benchmem
func BenchmarkValidate(b *testing.B) {
	r := benchRecord(b)
	msg, err := SigningInput(&r.Env)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("ed25519-verify", func(b *testing.B) {
		for b.Loop() {
			if !ed25519.Verify(r.Env.Author, msg, r.Env.Sig) {
				b.Fatal("verify")
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			if _, err := Decode(r.Raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("signing-input-encoded", func(b *testing.B) {
		for b.Loop() {
			if _, err := SigningInput(&r.Env); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("signing-input-sliced", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.signingInput(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("zip215-verify", func(b *testing.B) {
		for b.Loop() {
			if !verifySig(r.Env.Author, msg, r.Env.Sig) {
				b.Fatal("verify")
			}
		}
	})
	b.Run("validate-batch-64", func(b *testing.B) {
		raws := make([][]byte, MaxSigBatch)
		for i := range raws {
			raws[i] = r.Raw
		}
		now := time.Now()
		for b.Loop() {
			if _, errs := ValidateBatch(raws, r.Env.Network.Cid, now); errs[0] != nil {
				b.Fatal(errs[0])
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*MaxSigBatch), "ns/record")
	})
	b.Run("validate", func(b *testing.B) {
		now := time.Now()
		for b.Loop() {
			if _, err := Validate(r.Raw, r.Env.Network.Cid, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}

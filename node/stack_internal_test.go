package node

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// BenchmarkValidateOnFreshGoroutine checks a record on a new goroutine,
// as gossipsub runs its validators, alternately without and with
// growStack first, and reports both and their ratio (same run):
//
//	go test ./node -run '^$' -bench BenchmarkValidateOnFreshGoroutine -count 5
//
// plain-ns/op over grown-ns/op is what growStack saves on a gossiped record.
func BenchmarkValidateOnFreshGoroutine(b *testing.B) {
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	network := protocol.RecordCID([]byte("bench network"))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rec, err := protocol.Build(key, protocol.Draft{
		Network: network, Kind: protocol.KindStatement, Topic: "issue/bench", Seq: 1, Time: now,
		Body: &protocol.Statement{Title: "bench", Text: strings.Repeat("a statement ", 85)},
	})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error)
	check := func(grow bool) time.Duration {
		t0 := time.Now()
		go func() {
			if grow {
				growStack()
			}
			_, err := protocol.Validate(rec.Raw, network, now)
			done <- err
		}()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	var plain, grown time.Duration
	n := 0
	for b.Loop() {
		plain += check(false)
		grown += check(true)
		n++
	}
	b.ReportMetric(float64(plain.Nanoseconds())/float64(n), "plain-ns/op")
	b.ReportMetric(float64(grown.Nanoseconds())/float64(n), "grown-ns/op")
	b.ReportMetric(float64(plain)/float64(grown), "x-saved")
}

package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/go-cid"
)

// benchRecordSize is the size of a benchmark record's Data, about that of a
// signed statement with a short body.
const benchRecordSize = 600

// benchData returns benchRecordSize bytes unique to (nonce, n).
func benchData(nonce []byte, n uint64) []byte {
	data := make([]byte, benchRecordSize)
	copy(data, nonce)
	binary.BigEndian.PutUint64(data[len(nonce):], n)
	return data
}

func newNonce(b *testing.B) []byte {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		b.Fatal(err)
	}
	return nonce
}

// BenchmarkPut measures durable writes on a real directory (b.TempDir):
// the raw pebble baselines write one block per op, with and without fsync;
// the store benchmarks write a full record with all its indexes. commits/op
// is the number of pebble commits per record: 1 for the baselines, below 1
// when group commit lets concurrent writers share an fsync.
//
//	go test -run '^$' -bench BenchmarkPut -benchtime 2000x ./store/
func BenchmarkPut(b *testing.B) {
	b.Run("raw-pebble-sync", func(b *testing.B) { benchRawPebble(b, pebble.Sync) })
	b.Run("raw-pebble-nosync", func(b *testing.B) { benchRawPebble(b, pebble.NoSync) })
	b.Run("store-put-sequential", func(b *testing.B) {
		s := openBench(b)
		nonce := newNonce(b)
		a := author(1)
		prev := cid.Undef
		b.ReportAllocs()
		b.SetBytes(benchRecordSize)
		b.ResetTimer()
		for i := range uint64(b.N) {
			data := benchData(nonce, i)
			e := Entry{CID: cidOf(b, data), Data: data, Topic: "issue/bench", Kind: "statement",
				Author: a, Seq: i + 1, Prev: prev, Time: int64(i)}
			if _, err := s.Put(context.Background(), e, int64(i)); err != nil {
				b.Fatal(err)
			}
			prev = e.CID
		}
		b.StopTimer()
		b.ReportMetric(float64(s.commits.Load())/float64(b.N), "commits/op")
	})
	b.Run("store-put-parallel", func(b *testing.B) {
		s := openBench(b)
		var writer atomic.Uint32
		b.ReportAllocs()
		b.SetBytes(benchRecordSize)
		b.SetParallelism(16)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			w := writer.Add(1)
			a := author(byte(w))
			binary.BigEndian.PutUint32(a, w) // distinct authors beyond 255 writers
			nonce := newNonce(b)
			prev := cid.Undef
			for seq := uint64(1); pb.Next(); seq++ {
				data := benchData(nonce, seq)
				e := Entry{CID: cidOf(b, data), Data: data, Topic: "issue/bench", Kind: "statement",
					Author: a, Seq: seq, Prev: prev, Time: int64(seq)}
				if _, err := s.Put(context.Background(), e, int64(seq)); err != nil {
					b.Error(err)
					return
				}
				prev = e.CID
			}
		})
		b.StopTimer()
		b.ReportMetric(float64(s.commits.Load())/float64(b.N), "commits/op")
	})
}

func openBench(b *testing.B) *Store {
	b.Helper()
	s, err := Open(b.TempDir(), WithLogger(testLogger(b)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// benchRawPebble writes one block per op with a plain pebble Set: the floor
// under what the store can do per record without sharing fsyncs.
func benchRawPebble(b *testing.B, wo *pebble.WriteOptions) {
	db, err := pebble.Open(b.TempDir(), &pebble.Options{Logger: pebbleLogger{log: testLogger(b)}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	nonce := newNonce(b)
	b.SetBytes(benchRecordSize)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range uint64(b.N) {
		data := benchData(nonce, i)
		if err := db.Set(blockKey(cidOf(b, data)), data, wo); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(1, "commits/op")
}

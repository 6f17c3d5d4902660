package opendata_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/opendata"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/store"
)

// benchRecords is the size of the benchmark store.
const benchRecords = 100_000

// benchStore is a store on disk holding benchRecords signed statements
// (100 authors, one chain each on issue/bench), built once per run.
type benchStore struct {
	st    *store.Store
	g     *protocol.Genesis
	bytes int64
}

// openBenchStore builds the benchmark store in dir.
func openBenchStore(b *testing.B, dir string) *benchStore {
	b.Helper()
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = 7
	founder := ed25519.NewKeyFromSeed(seed)
	g, err := protocol.DevGenesis(founder, "Bench Org", time.Unix(1_700_000_000, 0))
	if err != nil {
		b.Fatal(err)
	}
	net, _ := g.NetworkID()
	st, err := store.Open(filepath.Join(dir, "store"), store.WithMaxBatch(1024))
	if err != nil {
		b.Fatal(err)
	}
	bs := &benchStore{st: st, g: g}
	const authors = 100
	keys := make([]ed25519.PrivateKey, authors)
	prev := make([]cid.Cid, authors)
	for i := range keys {
		seed[1] = byte(i + 1)
		keys[i] = ed25519.NewKeyFromSeed(seed)
	}
	text := "A statement of about the length of a short comment on a proposal, with a reason and a reference to a clause."
	entries := make([]store.Entry, 0, 1000)
	t0 := time.Unix(1_700_000_000, 0)
	for n := range benchRecords {
		a := n % authors
		seq := uint64(n/authors + 1)
		r, err := protocol.Build(keys[a], protocol.Draft{Network: net, Kind: protocol.KindStatement, Topic: "issue/bench",
			Seq: seq, Prev: prev[a], Time: t0.Add(time.Duration(n) * time.Millisecond),
			Body: &protocol.Statement{Title: fmt.Sprintf("Statement %d", n), Text: text}})
		if err != nil {
			b.Fatal(err)
		}
		prev[a] = r.CID
		bs.bytes += int64(len(r.Raw))
		entries = append(entries, store.Entry{CID: r.CID, Data: r.Raw, Topic: r.Env.Topic, Kind: r.Env.Kind,
			Author: r.Env.Author, Seq: r.Env.Seq, Prev: r.PrevCID(), Deps: r.DepCIDs(), Time: r.Env.Time})
		if len(entries) == cap(entries) || n == benchRecords-1 {
			if _, err := st.PutBatch(context.Background(), entries, t0.UnixMilli()); err != nil {
				b.Fatal(err)
			}
			entries = entries[:0]
		}
	}
	return bs
}

// peakHeap samples the heap in use until stop is called and returns the
// peak, in bytes, above the heap in use at the start.
func peakHeap() (stop func() uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > base && ms.HeapInuse-base > peak.Load() {
				peak.Store(ms.HeapInuse - base)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// BenchmarkExport exports a store of 100,000 signed records (about 41 MB) and,
// in the same run, reads it raw (the store's arrival index and every
// block, what an export reads, written nowhere) as the baseline. Each op
// handles all 100,000 records; records/s and MB/s are of record bytes.
// peak-heap-MB is the peak growth of the heap during the op: it stays
// flat for the streamed CARv1 whatever the store size, and grows by the
// index for a CARv2 and by the selected CIDs for a topic.
//
//	go test -run '^$' -bench BenchmarkExport -benchtime 3x ./opendata/
func BenchmarkExport(b *testing.B) {
	dir := b.TempDir()
	bs := openBenchStore(b, dir)
	defer bs.st.Close()
	ctx := context.Background()
	run := func(b *testing.B, op func() error) {
		b.SetBytes(bs.bytes)
		b.ResetTimer()
		var peak uint64
		for range b.N {
			stop := peakHeap()
			if err := op(); err != nil {
				b.Fatal(err)
			}
			peak = max(peak, stop())
		}
		b.ReportMetric(float64(benchRecords)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	}
	b.Run("raw-read", func(b *testing.B) {
		run(b, func() error {
			var after uint64
			n := 0
			for {
				metas, err := bs.st.Since(after, 1000)
				if err != nil {
					return err
				}
				if len(metas) == 0 {
					break
				}
				for _, m := range metas {
					after = m.Arrival
					raw, err := bs.st.Get(m.CID)
					if err != nil {
						return err
					}
					if _, err := io.Discard.Write(raw); err != nil {
						return err
					}
					n++
				}
			}
			if n != benchRecords {
				return fmt.Errorf("read %d records", n)
			}
			return nil
		})
	})
	b.Run("car-v1-stream", func(b *testing.B) {
		run(b, func() error {
			p, err := opendata.WriteCAR(ctx, io.Discard, bs.st, bs.g, opendata.Selection{}, nil)
			if err == nil && p.Blocks != benchRecords+1 {
				err = fmt.Errorf("%d blocks", p.Blocks)
			}
			return err
		})
	})
	b.Run("car-v2-file", func(b *testing.B) {
		path := filepath.Join(dir, "export.car")
		roots, _ := opendata.Roots(bs.g, opendata.Selection{})
		run(b, func() error {
			f, err := os.Create(path)
			if err != nil {
				return err
			}
			defer f.Close()
			w, err := opendata.NewCARv2File(f, roots)
			if err != nil {
				return err
			}
			if err := opendata.ExportCAR(ctx, w.Writer(), bs.st, bs.g, opendata.Selection{}, nil); err != nil {
				return err
			}
			return w.Finish()
		})
	})
	b.Run("car-v1-topic", func(b *testing.B) {
		heads, err := bs.st.Heads("issue/bench")
		if err != nil {
			b.Fatal(err)
		}
		sel := opendata.Selection{Roots: heads, Seeds: heads}
		run(b, func() error {
			p, err := opendata.WriteCAR(ctx, io.Discard, bs.st, bs.g, sel, nil)
			if err == nil && p.Blocks != benchRecords+1 {
				err = fmt.Errorf("%d blocks", p.Blocks)
			}
			return err
		})
	})
}

// BenchmarkImport imports an archive of one author's chain (each record
// links its predecessor: the least parallel archive there is) into a fresh
// observer, and, as the baseline in the same run, hands the same records
// to node.Ingest one at a time in file order (one durable write each): in
// memory with 20,000 records, and on disk (b.TempDir, fsync per commit)
// with 2,000. Each op makes a new node and handles all the records.
//
//	go test -run '^$' -bench BenchmarkImport -benchtime 3x ./opendata/
func BenchmarkImport(b *testing.B) {
	const records = 20_000
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = 8
	key := ed25519.NewKeyFromSeed(seed)
	t0 := time.Now().Add(-time.Hour)
	g, err := protocol.DevGenesis(key, "Bench Org", t0)
	if err != nil {
		b.Fatal(err)
	}
	net, _ := g.NetworkID()
	gen, _ := g.Encode()
	raws := make([][]byte, 0, records)
	cids := make([]cid.Cid, 0, records)
	prev := cid.Undef
	for n := range records {
		r, err := protocol.Build(key, protocol.Draft{Network: net, Kind: protocol.KindStatement, Topic: "issue/bench",
			Seq: uint64(n + 1), Prev: prev, Time: t0.Add(time.Duration(n) * time.Millisecond),
			Body: &protocol.Statement{Title: fmt.Sprintf("Statement %d", n), Text: "A short statement."}})
		if err != nil {
			b.Fatal(err)
		}
		prev = r.CID
		raws = append(raws, r.Raw)
		cids = append(cids, r.CID)
	}
	archive := func(n int) []byte {
		var buf bytes.Buffer
		cw, err := opendata.NewCARWriter(&buf, []cid.Cid{net})
		if err != nil {
			b.Fatal(err)
		}
		if err := cw.Put(net, gen); err != nil {
			b.Fatal(err)
		}
		for i := range n {
			if err := cw.Put(cids[i], raws[i]); err != nil {
				b.Fatal(err)
			}
		}
		if err := cw.Flush(); err != nil {
			b.Fatal(err)
		}
		return buf.Bytes()
	}
	fresh := func(b *testing.B, disk bool) *node.Node {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		where := node.WithInMemory()
		if disk {
			where = node.WithDataDir(b.TempDir())
		}
		n, err := node.New(context.Background(), append(opendata.OfflineNodeOptions(), node.WithIdentity(k),
			where, node.WithGenesis(g), node.WithObserver(true),
			node.WithLogger(slog.New(slog.DiscardHandler)))...)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	for _, c := range []struct {
		name string
		disk bool
		n    int
	}{{"memory", false, records}, {"disk", true, 2_000}} {
		car := archive(c.n)
		run := func(b *testing.B, op func(n *node.Node) error) {
			for range b.N {
				b.StopTimer()
				n := fresh(b, c.disk)
				b.StartTimer()
				err := op(n)
				b.StopTimer()
				if cerr := n.Close(); err == nil {
					err = cerr
				}
				b.StartTimer()
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(c.n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		}
		b.Run(c.name+"/ingest-one-by-one", func(b *testing.B) {
			run(b, func(n *node.Node) error {
				for _, raw := range raws[:c.n] {
					if _, err := n.Ingest(context.Background(), raw, "", opendata.SourceImport); err != nil {
						return err
					}
				}
				return nil
			})
		})
		b.Run(c.name+"/import", func(b *testing.B) {
			run(b, func(n *node.Node) error {
				cr, err := opendata.NewCARReader(bytes.NewReader(car))
				if err != nil {
					return err
				}
				rep, err := opendata.Import(context.Background(), n, cr, nil)
				if err == nil && (rep.Stored != c.n || len(rep.Failures) > 0) {
					err = fmt.Errorf("stored %d, %d failures: %v", rep.Stored, len(rep.Failures), rep.Failures[:min(3, len(rep.Failures))])
				}
				return err
			})
		})
	}
}

package node_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// benchKeys returns n deterministic author keys.
func benchKeys(n int) []ed25519.PrivateKey {
	keys := make([]ed25519.PrivateKey, n)
	for i := range keys {
		seed := make([]byte, ed25519.SeedSize)
		seed[0], seed[1], seed[2] = 0xbe, byte(i), byte(i>>8)
		keys[i] = ed25519.NewKeyFromSeed(seed)
	}
	return keys
}

// benchGenesis founds a federation whose founders are keys, so their
// records pass the membership check.
func benchGenesis(b *testing.B, keys []ed25519.PrivateKey) *protocol.Genesis {
	b.Helper()
	var founders []protocol.Member
	for i, k := range keys {
		founders = append(founders, protocol.Member{
			Key: k.Public().(ed25519.PublicKey), Org: fmt.Sprintf("bench org %d", i), // one organisation is one member
			Group: protocol.DefaultGroups[i%5], Region: protocol.DefaultRegions[i/5%5],
		})
	}
	g := protocol.NewGenesis("bench", founders, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, k := range keys {
		if err := g.Sign(k); err != nil {
			b.Fatal(err)
		}
	}
	return g
}

// benchRecords builds n signed statements from the authors' keys,
// ordered seq-major (every author's seq 1, then every author's seq 2, ...),
// as records from many members arrive.
func benchRecords(b *testing.B, network cid.Cid, n int, keys []ed25519.PrivateKey) [][]byte {
	b.Helper()
	authors := len(keys)
	prev := make([]cid.Cid, authors)
	out := make([][]byte, 0, n)
	start := time.Now().Add(-time.Hour)
	for i := range n {
		a := i % authors
		seq := uint64(i/authors + 1)
		r, err := protocol.Build(keys[a], protocol.Draft{
			Network: network, Kind: protocol.KindStatement, Topic: topic,
			Seq: seq, Prev: prev[a], Time: start.Add(time.Duration(i) * time.Millisecond),
			Body: &protocol.Statement{Title: "benchmark", Text: "A statement of about the size of a short comment on a proposal, with a few sentences of text in it, so that the record is a few hundred bytes long as real ones are."},
		})
		if err != nil {
			b.Fatal(err)
		}
		prev[a] = r.CID
		out = append(out, r.Raw)
	}
	return out
}

// BenchmarkIngest measures single-node ingest (decode, verify, durable
// store on disk with group commit) against all-core signature verification
// of the same records, measured in the same run just before and just after
// the ingest (the mean of the two, as the machine's speed drifts).
// Reported metrics:
//
//	ingest-cpu-ns/op CPU time (user+system, all threads) per record ingested
//	verify-ns/op     the bound of the issue: wall ns per record of raw
//	                 crypto/ed25519.Verify with every core busy
//	x-verify-bound   ingest throughput as a fraction of that bound (target >= 0.66)
//	zip215-ns/op     the same with the verifier the node uses (curve25519-voi,
//	                 ZIP-215 rules, author keys expanded once), one signature
//	                 at a time
//	x-zip215-bound   ingest throughput as a fraction of that: above 1 only
//	                 because the node verifies in batches
//
// Run: go test ./node -run '^$' -bench BenchmarkIngest -benchtime 20000x
func BenchmarkIngest(b *testing.B) {
	keys := benchKeys(256)
	g := benchGenesis(b, keys)
	net := testnet.New(b, 1, testnet.WithDataDir(b.TempDir()), testnet.WithTopology(testnet.None),
		testnet.WithNodeOptions(func(int) []node.Option { return []node.Option{node.WithGenesis(g)} }))
	nd := net.Nodes[0]
	recs := benchRecords(b, nd.NetworkID(), b.N, keys)
	jobs := sigJobs(recs)
	allCores(jobs[:min(len(jobs), 1024)], verifyZIP215) // expand every author's key
	stdBefore, voiBefore := allCores(jobs, ed25519.Verify), allCores(jobs, verifyZIP215)
	ctx := context.Background()
	var next atomic.Int64
	var failed atomic.Int64
	workers := runtime.GOMAXPROCS(0) * 1024 // concurrent deliveries, as from many peers and sync batches
	b.ResetTimer()
	stopProfile := profileTo(b, os.Getenv("INGEST_PROFILE"))
	cpu0 := cpuTime()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(recs) {
					return
				}
				if _, err := nd.Ingest(ctx, recs[i], topic, node.SourceSync); err != nil &&
					protocol.ReasonOf(err) != protocol.ReasonMissingDeps {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	stopProfile()
	ingestCPU := cpuTime() - cpu0
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d records failed to ingest", f)
	}
	st, err := nd.Store().Stats()
	if err != nil {
		b.Fatal(err)
	}
	if int(st.Records) != len(recs) {
		b.Fatalf("stored %d of %d records", st.Records, len(recs))
	}
	ingestNs := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	stdBound := (stdBefore + allCores(jobs, ed25519.Verify)) / 2
	voiBound := (voiBefore + allCores(jobs, verifyZIP215)) / 2
	b.ReportMetric(float64(ingestCPU.Nanoseconds())/float64(b.N), "ingest-cpu-ns/op")
	b.ReportMetric(stdBound, "verify-ns/op")
	b.ReportMetric(stdBound/ingestNs, "x-verify-bound")
	b.ReportMetric(voiBound, "zip215-ns/op")
	b.ReportMetric(voiBound/ingestNs, "x-zip215-bound")
}

// sigJob is one signature check: a record's author, signing input and
// signature.
type sigJob struct{ pub, msg, sig []byte }

func sigJobs(raws [][]byte) []sigJob {
	jobs := make([]sigJob, len(raws))
	for i, raw := range raws {
		r, err := protocol.Decode(raw)
		if err != nil {
			panic(err)
		}
		msg, _ := protocol.SigningInput(&r.Env)
		jobs[i] = sigJob{r.Env.Author, msg, r.Env.Sig}
	}
	return jobs
}

var zip215 = &voi.Options{Verify: voi.VerifyOptionsZIP_215}

// expandedKeys holds the bench authors' keys expanded, as the node caches
// them, so the ZIP-215 bound is the fastest one-at-a-time check there is.
var expandedKeys sync.Map // string(pub) -> *voi.ExpandedPublicKey

func verifyZIP215(pub ed25519.PublicKey, msg, sig []byte) bool {
	k, ok := expandedKeys.Load(string(pub))
	if !ok {
		e, err := voi.NewExpandedPublicKey(voi.PublicKey(pub))
		if err != nil {
			return false
		}
		k, _ = expandedKeys.LoadOrStore(string(pub), e)
	}
	return voi.VerifyExpandedWithOptions(k.(*voi.ExpandedPublicKey), msg, sig, zip215)
}

// allCores returns the wall time per job of checking every job with
// verify on GOMAXPROCS goroutines: the all-core verify bound.
func allCores(jobs []sigJob, verify func(ed25519.PublicKey, []byte, []byte) bool) float64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(jobs) {
					return
				}
				if !verify(jobs[i].pub, jobs[i].msg, jobs[i].sig) {
					panic("verify failed")
				}
			}
		})
	}
	wg.Wait()
	return float64(time.Since(start).Nanoseconds()) / float64(len(jobs))
}

// benchVerifyAllCores is the baseline: raw ed25519 verification of a
// record-sized message on every core.
func benchVerifyAllCores(b *testing.B) {
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	msg := make([]byte, 400)
	sig := ed25519.Sign(key, msg)
	pub := key.Public().(ed25519.PublicKey)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !ed25519.Verify(pub, msg, sig) {
				panic("verify failed")
			}
		}
	})
}

// BenchmarkVerifyAllCores reports the baseline alone.
func BenchmarkVerifyAllCores(b *testing.B) { benchVerifyAllCores(b) }

// cpuTime returns the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// profileTo starts a CPU profile written to file, if file is not empty,
// and returns the function that stops it: benchmarks profile their
// measured phase alone (INGEST_PROFILE, SYNC_PROFILE).
func profileTo(b *testing.B, file string) (stop func()) {
	b.Helper()
	if file == "" {
		return func() {}
	}
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	}
}

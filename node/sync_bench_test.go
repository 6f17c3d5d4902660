package node_test

import (
	"bufio"
	"context"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// BenchmarkSyncCatchUp measures a fresh observer catching up n records of
// one topic from one peer over the sync protocol (connection,
// reconciliation, pipelined fetch, parallel verify, in-memory store),
// against two bounds measured in the same run: validating the same records
// on every core, and streaming their bytes over one raw libp2p stream
// between two hosts on loopback. Metrics:
//
//	catchup-ms    the catch-up, from connect to every record stored
//	verify-ms     protocol.Validate of every record on GOMAXPROCS workers
//	transfer-ms   the records' bytes over one raw stream
//	x-bound       (verify-ms + transfer-ms) / catchup-ms; 1 is the bound
//	records/s     catch-up throughput
//
// Run: go test ./node -run '^$' -bench BenchmarkSyncCatchUp -benchtime 5x
// (5,000 records; SYNC_BENCH_RECORDS=100000 for a larger history;
// SYNC_PROFILE=FILE writes a CPU profile of the first catch-up alone).
func BenchmarkSyncCatchUp(b *testing.B) {
	n := 5000
	if v := os.Getenv("SYNC_BENCH_RECORDS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("SYNC_BENCH_RECORDS=%q: want a positive number of records", v)
		}
	}
	ctx := context.Background()
	net := testnet.New(b, 2, testnet.WithObservers(1), testnet.WithTopology(testnet.None),
		testnet.WithFollow(slug), testnet.WithNodeOptions(noPeriodicSync))
	cids := publishRoundRobin(b, ctx, net.Nodes[0], []string{topic}, n)
	raws := make([][]byte, len(cids))
	for i, c := range cids {
		raw, err := net.Nodes[0].Store().Get(c)
		if err != nil {
			b.Fatal(err)
		}
		raws[i] = raw
	}
	verify := verifyAll(raws, net.Nodes[0].NetworkID())
	transfer := transferRaw(b, raws)

	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := net.Restart(ctx, 1); err != nil { // a fresh in-memory store
			b.Fatal(err)
		}
		b.StartTimer()
		stopProfile := func() {}
		if i == 0 {
			stopProfile = profileTo(b, os.Getenv("SYNC_PROFILE"))
		}
		start := time.Now()
		if err := net.Connect(ctx, 1, 0); err != nil {
			b.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		if err := net.Nodes[1].WaitRecords(wctx, cids...); err != nil {
			b.Fatal(err)
		}
		cancel()
		total += time.Since(start)
		stopProfile()
	}
	per := total / time.Duration(b.N)
	b.ReportMetric(float64(per.Microseconds())/1000, "catchup-ms")
	b.ReportMetric(float64(verify.Microseconds())/1000, "verify-ms")
	b.ReportMetric(float64(transfer.Microseconds())/1000, "transfer-ms")
	b.ReportMetric(float64(verify+transfer)/float64(per), "x-bound")
	b.ReportMetric(float64(n)/per.Seconds(), "records/s")
}

// verifyAll returns the time to validate every record on GOMAXPROCS
// workers.
func verifyAll(raws [][]byte, netID cid.Cid) time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan []byte)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for raw := range next {
				if _, err := protocol.Validate(raw, netID, time.Now()); err != nil {
					panic(err)
				}
			}
		})
	}
	for _, raw := range raws {
		next <- raw
	}
	close(next)
	wg.Wait()
	return time.Since(start)
}

// transferRaw returns the time to send raws, framed, over one libp2p
// stream between two fresh hosts on loopback and read them all.
func transferRaw(b *testing.B, raws [][]byte) time.Duration {
	b.Helper()
	hosts := make([]interface {
		Close() error
	}, 0, 2)
	a, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		b.Fatal(err)
	}
	z, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		b.Fatal(err)
	}
	hosts = append(hosts, a, z)
	defer func() {
		for _, h := range hosts {
			h.Close()
		}
	}()
	const proto = "/bench/transfer"
	done := make(chan int, 1)
	z.SetStreamHandler(proto, func(s network.Stream) {
		defer s.Close()
		got := 0
		r := bufio.NewReader(s)
		for {
			var resp protocol.SyncResponse
			if err := protocol.ReadFrame(r, &resp); err != nil {
				if err != io.EOF {
					b.Error(err)
				}
				break
			}
			got += len(resp.Records)
		}
		done <- got
	})
	ctx := context.Background()
	if err := a.Connect(ctx, z.Peerstore().PeerInfo(z.ID())); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	s, err := a.NewStream(ctx, z.ID(), proto)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(s)
	for i := 0; i < len(raws); i += protocol.SyncMaxFetchRecords {
		batch := raws[i:min(i+protocol.SyncMaxFetchRecords, len(raws))]
		if err := protocol.WriteFrame(w, protocol.SyncResponse{Type: protocol.SyncFetch, Records: batch, Served: len(batch)}); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := s.CloseWrite(); err != nil {
		b.Fatal(err)
	}
	if got := <-done; got != len(raws) {
		b.Fatalf("transferred %d of %d records", got, len(raws))
	}
	return time.Since(start)
}

package testnet_test

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// TestRunBench runs a tiny benchmark: every record reaches every node on
// both sides, the figures are filled in and printed, and the raw side
// spends the extra CPU per delivery it was given.
func TestRunBench(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 8 hosts and 4 nodes")
	}
	cfg := testnet.BenchConfig{
		Nodes: 4, Degree: 2, Size: 200, Rate: 20, Duration: time.Second,
		Idle: 300 * time.Millisecond, Settle: 30 * time.Second, InMemory: true,
		Traffic: true, RawCPU: 5 * time.Millisecond,
	}
	raw, ch, err := testnet.RunBench(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []testnet.BenchResult{raw, ch} {
		if r.Records != 20 || r.Expected != 80 || r.Deliveries != 80 {
			t.Errorf("%s: %d records, %d of %d deliveries; want 20 records, 80 of 80", r.Name, r.Records, r.Deliveries, r.Expected)
		}
		if r.P50 <= 0 || r.P50 > r.P99 || r.P99 > r.Max {
			t.Errorf("%s: p50 %v, p99 %v, max %v: want 0 < p50 <= p99 <= max", r.Name, r.P50, r.P99, r.Max)
		}
		if r.IdleCores < 0 || r.CPUPerDelivery <= 0 {
			t.Errorf("%s: idle %v cores, CPU per delivery %v: want both measured", r.Name, r.IdleCores, r.CPUPerDelivery)
		}
		if runtime.GOOS == "linux" && (r.Steal < 0 || r.Steal > 1 || r.OtherCores < 0) {
			t.Errorf("%s: steal %v, other processes %v cores: want both measured", r.Name, r.Steal, r.OtherCores)
		}
		// The timeline covers every record once, in windows that
		// follow each other, each within the run's percentiles.
		n := 0
		for i, w := range r.Timeline {
			n += w.Records
			if i > 0 && w.Start <= r.Timeline[i-1].Start {
				t.Errorf("%s: window %d starts at %v, after %v", r.Name, i, w.Start, r.Timeline[i-1].Start)
			}
			if w.Incomplete != 0 || w.Max > r.Max || (w.Records > 0 && w.P50 <= 0) {
				t.Errorf("%s: window %d: %+v against max %v", r.Name, i, w, r.Max)
			}
		}
		if len(r.Timeline) != 10 || n != r.Records {
			t.Errorf("%s: %d windows holding %d records, want 10 holding %d", r.Name, len(r.Timeline), n, r.Records)
		}
	}
	// The nodes' gossiped deliveries passed their validators, which
	// timed them; gossipsub has none.
	if ch.Hop <= 0 || raw.Hop != 0 || ch.Stored <= 0 || raw.Stored != 0 {
		t.Errorf("hop in node: gossipsub %v, clearinghouse %v; receipt -> stored: %v, %v; want 0 and measured",
			raw.Hop, ch.Hop, raw.Stored, ch.Stored)
	}
	if ch.StoredP50 <= 0 || ch.StoredP50 > ch.StoredP99 || raw.StoredP99 != 0 {
		t.Errorf("receipt -> stored p50 / p99: clearinghouse %v / %v, gossipsub p99 %v; want 0 < p50 <= p99, and none for gossipsub",
			ch.StoredP50, ch.StoredP99, raw.StoredP99)
	}
	// The raw side hashed each message for about RawCPU on each host,
	// publisher included (calibrated; half of it is a wide margin).
	if raw.CPUPerDelivery < cfg.RawCPU/2 {
		t.Errorf("raw gossipsub with %v of extra CPU per delivery spent %v per delivery", cfg.RawCPU, raw.CPUPerDelivery)
	}
	if raw.Name != "gossipsub" || ch.Name != "clearinghouse" {
		t.Errorf("sides %q and %q", raw.Name, ch.Name)
	}
	// Every record was sent as a gossipsub message at least once per
	// node that did not publish it (each of the 4 nodes received each of
	// the 20 records), on the side's record topic, and gossipsub's frames
	// went over its own stream protocol.
	for _, c := range []struct {
		r     testnet.BenchResult
		topic string
	}{{raw, "raw"}, {ch, "issue"}} {
		tr := c.r.Traffic
		if tr == nil {
			t.Fatalf("%s: traffic not counted", c.r.Name)
		}
		pub := tr.Gossip[testnet.TrafficKey{Topic: c.topic, Kind: "publish"}]
		if pub.Count < 60 || pub.Bytes < pub.Count*200 {
			t.Errorf("%s: %d publish messages of %d bytes; want at least 60 of 200 bytes or more", c.r.Name, pub.Count, pub.Bytes)
		}
		if tr.RPCs < 1 || tr.RPCBytes < pub.Bytes {
			t.Errorf("%s: %d RPCs of %d bytes, for %d bytes of messages", c.r.Name, tr.RPCs, tr.RPCBytes, pub.Bytes)
		}
		if tr.Streams[pubsub.GossipSubID_v13] < tr.RPCBytes {
			t.Errorf("%s: %d bytes on gossipsub streams, less than the %d bytes of RPCs", c.r.Name, tr.Streams[pubsub.GossipSubID_v13], tr.RPCBytes)
		}
	}
	var out bytes.Buffer
	testnet.FormatBench(&out, raw, ch)
	testnet.FormatTraffic(&out, raw, ch)
	for _, want := range []string{"publish -> on all, p99", "delivery", "100.00%", "idle CPU, all nodes", "gossip issue publish", "gossip raw publish", "stream /meshsub/1.3.0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestBenchConfigInvalid: sizes out of range are refused before anything
// starts.
func TestBenchConfigInvalid(t *testing.T) {
	for _, cfg := range []testnet.BenchConfig{
		{Nodes: 1},
		{Degree: -1},
		{Size: 1 << 20},
		{Rate: -3},
		{Settle: -time.Second},
	} {
		if _, _, err := testnet.RunBench(t.Context(), cfg, nil); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}

// TestRunDiskBench: the raw pebble side writes every record to every
// database and reports ordered latencies.
func TestRunDiskBench(t *testing.T) {
	cfg := testnet.BenchConfig{Nodes: 3, Size: 200, Rate: 50, Duration: 200 * time.Millisecond, Dir: t.TempDir()}
	d, err := testnet.RunDiskBench(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.DBs != 3 || d.Records != 10 {
		t.Fatalf("%d DBs, %d records; want 3, 10", d.DBs, d.Records)
	}
	if d.CommitP50 <= 0 || d.CommitP50 > d.CommitP99 || d.CommitP99 > d.CommitMax || d.CommitMax > d.Max ||
		d.P50 <= 0 || d.P50 > d.P99 || d.P99 > d.Max {
		t.Errorf("commit %v/%v/%v, on all %v/%v/%v: want 0 < p50 <= p99 <= max, commits within on-all", d.CommitP50, d.CommitP99, d.CommitMax, d.P50, d.P99, d.Max)
	}
	// Every synced write costs the process some CPU, and a signature
	// check takes tens of microseconds, not nothing and not a second.
	if d.CPUPerWrite <= 0 || d.VerifyCPU < time.Microsecond || d.VerifyCPU > 10*time.Millisecond {
		t.Errorf("CPU per synced write %v, per signature check %v", d.CPUPerWrite, d.VerifyCPU)
	}
	gs := testnet.BenchResult{CPUPerDelivery: 400 * time.Microsecond}
	floor := gs.CPUPerDelivery + d.VerifyCPU + d.CPUPerWrite
	if d.Floor(gs) != floor {
		t.Errorf("floor %v, want %v", d.Floor(gs), floor)
	}
	ch := testnet.BenchResult{P99: d.P99, CPUPerDelivery: 2 * floor}
	var out bytes.Buffer
	testnet.FormatDisk(&out, d, gs, ch)
	for _, want := range []string{"durable on all", "is 1.00x it", "CPU floor per delivery", "is 2.00x the floor"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

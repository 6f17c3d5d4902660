package simulation_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// syncStamps returns, per node, the end of the last sync session with each
// peer on each topic.
func syncStamps(nodes []*node.Node) []map[string]time.Time {
	out := make([]map[string]time.Time, len(nodes))
	for i, nd := range nodes {
		out[i] = map[string]time.Time{}
		for _, s := range nd.SyncStatus() {
			out[i][s.Topic+"|"+s.Peer.String()] = s.Last
		}
	}
	return out
}

// TestSimIdleNoSync: nodes that store nothing new run no periodic sync
// session at all without fallback rounds; with them, each node runs one
// round every DefaultSyncFallbackRounds intervals, at its own phase, so
// the nodes of a network started at once do not run them together.
func TestSimIdleNoSync(t *testing.T) {
	const interval = time.Second
	// idleRounds returns, per node, the intervals (counted from the
	// first sample) in which the node opened a sync session, sampling
	// every interval for rounds intervals once the syncs on connection
	// and the first rounds are over.
	idleRounds := func(t *testing.T, ctx context.Context, rounds int, opts ...node.Option) [][]int {
		start := time.Now()
		net := startSimNodes(t, ctx, 6, interval, opts...)
		connectSimNodes(t, ctx, net)
		if d := time.Since(start); d > 10*interval {
			t.Fatalf("setup took %v of virtual time; the idle window would be too short", d)
		}
		time.Sleep(3 * interval)
		synctest.Wait()
		prev := syncStamps(net.Nodes)
		if len(prev[0]) == 0 {
			t.Fatal("no sync session recorded at all: the test cannot tell idle from broken")
		}
		out := make([][]int, len(net.Nodes))
		for r := range rounds {
			// Sleeping advances the bubble's virtual clock; every
			// goroutine is blocked when it returns (synctest.Wait).
			time.Sleep(interval)
			synctest.Wait()
			cur := syncStamps(net.Nodes)
			for i := range cur {
				for k, t0 := range cur[i] {
					if !prev[i][k].Equal(t0) {
						out[i] = append(out[i], r)
						break
					}
				}
			}
			prev = cur
		}
		return out
	}
	t.Run("no fallback", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			for i, rs := range idleRounds(t, ctx, 2*node.DefaultSyncFallbackRounds, node.WithSyncFallback(0)) {
				if len(rs) > 0 {
					t.Errorf("node %d synced while idle, in intervals %v", i, rs)
				}
			}
		})
	})
	t.Run("fallback", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			const every = node.DefaultSyncFallbackRounds
			first, last := 2*every, -1
			for i, rs := range idleRounds(t, ctx, 2*every) {
				// A round's sessions end within one sample, or two
				// adjacent ones: count runs of adjacent intervals.
				var starts []int
				for j, r := range rs {
					if j == 0 || r != rs[j-1]+1 {
						starts = append(starts, r)
					}
				}
				if len(starts) != 2 || starts[1]-starts[0] < every-1 || starts[1]-starts[0] > every+1 {
					t.Errorf("node %d synced in intervals %v of %d; want one fallback round every %d intervals", i, rs, 2*every, every)
					continue
				}
				first, last = min(first, starts[0]), max(last, starts[0])
			}
			// Nodes in step sync within about three intervals (their
			// starts and tick offsets differ by up to an interval
			// each); the six nodes' phases, drawn from their IDs, lie
			// 10 intervals apart.
			t.Logf("first fallback rounds from interval %d to %d", first, last)
			if last-first < every/4 {
				t.Errorf("every node ran its fallback round in intervals %d to %d: want them spread over the %d intervals", first, last, every)
			}
		})
	})
}

// TestSimSyncRepairsMissedRecord: a record that reaches one node without
// gossip (as if every gossip delivery of it were lost) reaches every other
// node by the periodic sync: the holder's topic changed, so it syncs with
// its peers, and those that lack the record pull it in return.
func TestSimSyncRepairsMissedRecord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		const interval = time.Second
		start := time.Now()
		// No fallback round, which would also repair.
		net := startSimNodes(t, ctx, 6, interval, node.WithSyncFallback(0))
		connectSimNodes(t, ctx, net)
		// Well after the syncs on connection.
		if d := time.Since(start); d > 9*interval {
			t.Fatalf("setup took %v of virtual time", d)
		}
		time.Sleep(time.Until(start.Add(10 * interval)))
		topic := protocol.IssueTopic(topicSlug)
		rec, err := protocol.Build(net.SigningKey(0), protocol.Draft{
			Network: net.Nodes[0].NetworkID(), Kind: protocol.KindStatement, Topic: topic, Seq: 1,
			Time: time.Date(2026, 6, 1, 0, 0, 1, 0, time.UTC), Body: statement(1),
		})
		if err != nil {
			t.Fatal(err)
		}
		// Ingest by sync: stored, not gossiped.
		if _, err := net.Nodes[0].Ingest(ctx, rec.Raw, topic, node.SourceSync); err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 6*interval)
		defer wcancel()
		for i, nd := range net.Nodes {
			if err := nd.WaitRecords(wctx, rec.CID); err != nil {
				t.Fatalf("node %d: %v", i, err)
			}
		}
	})
}

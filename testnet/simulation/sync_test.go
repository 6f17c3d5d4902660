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
// session for many intervals, until the fallback round.
func TestSimIdleNoSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		const interval = time.Second
		start := time.Now()
		net := startSimNodes(t, ctx, 6, interval)
		connectSimNodes(t, ctx, net)
		if d := time.Since(start); d > 10*interval {
			t.Fatalf("setup took %v of virtual time; the idle window would be too short", d)
		}
		// The syncs on connection, and the first rounds, end.
		time.Sleep(3 * interval)
		synctest.Wait()
		before := syncStamps(net.Nodes)
		if len(before[0]) == 0 {
			t.Fatal("no sync session recorded at all: the test cannot tell idle from broken")
		}
		// Up to shortly before the fallback round (every 20 intervals
		// since the nodes started).
		time.Sleep(time.Until(start.Add(19 * interval)))
		synctest.Wait()
		idle := syncStamps(net.Nodes)
		for i := range before {
			for k, t0 := range idle[i] {
				if !before[i][k].Equal(t0) {
					t.Errorf("node %d synced %s while idle (last %v, before %v)", i, k, t0, before[i][k])
				}
			}
		}
		// The fallback round runs.
		time.Sleep(3 * interval)
		synctest.Wait()
		after := syncStamps(net.Nodes)
		changed := 0
		for k, t0 := range after[0] {
			if !idle[0][k].Equal(t0) {
				changed++
			}
		}
		if changed == 0 {
			t.Error("no fallback round after 20 intervals")
		}
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
		net := startSimNodes(t, ctx, 6, interval)
		connectSimNodes(t, ctx, net)
		// Well after the syncs on connection, well before the fallback
		// round (20 intervals after the start), which would also repair.
		if d := time.Since(start); d > 9*interval {
			t.Fatalf("setup took %v of virtual time; the fallback round would repair too", d)
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

package node_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// hostileLimits are sync budgets short enough for a test (a stalling peer
// answering just inside RequestTimeout overruns SessionBudget in
// seconds), yet long enough for honest peers under the race detector on a
// loaded machine.
func hostileLimits() node.SyncLimits {
	l := node.DefaultSyncLimits()
	l.RequestTimeout = 2 * time.Second
	l.SessionBudget = 4 * time.Second
	return l
}

// newHostile starts a hostile sync peer closed with the test.
func newHostile(t *testing.T, netID cid.Cid, kind testnet.HostileKind) *testnet.HostileSyncPeer {
	t.Helper()
	// 20,000 fake ids per answer: below MaxNeed, and quick to decode under
	// the race detector within the test's request timeout.
	hp, err := testnet.NewHostileSyncPeer(netID, kind, 1600*time.Millisecond, testnet.WithFakeIDs(20_000))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hp.Close() })
	return hp
}

// TestSyncHostilePartitionHeal is acceptance 2 of issue 17: a partition
// heals to identical sets within 10 s although every node is connected to
// a peer that stalls every sync session and to one that claims fake ids;
// both are penalised on every node, and what they claimed is no lag.
func TestSyncHostilePartitionHeal(t *testing.T) {
	ctx := testContext(t)
	part := testnet.NewPartition()
	net := testnet.New(t, 4, testnet.WithFollow(slug), testnet.WithPartition(part),
		testnet.WithNodeOptions(func(int) []node.Option {
			// Periodic sync as on a real node (30 s there): a session that
			// failed is tried again.
			return []node.Option{node.WithSyncInterval(time.Second), node.WithSyncLimits(hostileLimits())}
		}))
	netID := net.Nodes[0].NetworkID()
	stall := newHostile(t, netID, testnet.Stalling)
	fake := newHostile(t, netID, testnet.FakeIDs)
	for _, nd := range net.Nodes {
		for _, hp := range []*testnet.HostileSyncPeer{stall, fake} {
			if err := nd.Connect(ctx, hp.AddrInfo()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := part.Cut(net, []int{0, 1}, []int{2, 3}); err != nil {
		t.Fatal(err)
	}
	var cids []cid.Cid
	for _, p := range []int{0, 3} {
		cids = append(cids, publishRoundRobin(t, ctx, net.Nodes[p], []string{topic}, 25)...)
	}
	start := time.Now()
	if err := part.Heal(ctx, net); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for i, nd := range net.Nodes {
		if err := nd.WaitRecords(wctx, cids...); err != nil {
			for _, st := range nd.SyncStatus() {
				t.Logf("node %d: %s with %s: lag %d, fetched %d, err %q", i, st.Topic, st.Peer, st.Lag, st.Fetched, st.Err)
			}
			t.Fatalf("node %d not converged %v after the heal: %v", i, time.Since(start), err)
		}
	}
	t.Logf("converged %v after the heal", time.Since(start))
	sameState(t, net, []string{topic})

	// An explicit sync with every peer ends, within the session budget,
	// with both hostile peers refused or penalised.
	for i, nd := range net.Nodes {
		began := time.Now()
		rep, err := nd.Sync(ctx)
		if !errors.Is(err, node.ErrBadPeer) && !errors.Is(err, node.ErrSyncPenalised) {
			t.Fatalf("node %d: sync error %v, want the hostile peers refused", i, err)
		}
		if took := time.Since(began); took > 2*hostileLimits().SessionBudget {
			t.Fatalf("node %d: sync took %v, beyond its budget", i, took)
		}
		if rep.Peers != 3 {
			t.Fatalf("node %d: synced with %d peers, want the 3 honest ones: %v", i, rep.Peers, err)
		}
		for _, hp := range []*testnet.HostileSyncPeer{stall, fake} {
			info := nd.Host().ConnManager().GetTagInfo(hp.ID())
			if info == nil || info.Tags["clearinghouse-sync-bad"] >= 0 {
				t.Fatalf("node %d: hostile peer %s not penalised: %+v", i, hp.ID(), info)
			}
		}
		if got := counter(t, nd, "clearinghouse_sync_bad_records_total", "fake-ids"); got < 1 {
			t.Fatalf("node %d: sync_bad_records_total{fake-ids} = %v", i, got)
		}
		stalls := counter(t, nd, "clearinghouse_sync_bad_records_total", "session-budget") +
			counter(t, nd, "clearinghouse_sync_bad_records_total", "stall")
		if stalls < 1 {
			t.Fatalf("node %d: the stalling peer was not penalised for stalling", i)
		}
		if lag, ok := gauge(t, nd, "clearinghouse_sync_lag_records", topic); ok && lag != 0 {
			t.Fatalf("node %d: sync lag %v: fake ids counted as lag", i, lag)
		}
	}
	// A session with the fake-id peer reads one reconcile answer and is
	// cut at the first fetch window: at most one reconcile request and
	// syncFetchWindow (4) fetch requests per stream.
	if req, streams := fake.Requests(), fake.Streams(); streams == 0 || req > 5*streams {
		t.Fatalf("fake-id peer read %d requests on %d streams", req, streams)
	}
}

package node_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/store"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// catchUpRecords is how many records the offline node of TestSyncCatchUp
// misses, spread over three topics. The issue asks for 2,000; the test
// takes a few seconds with it, under -race too.
const catchUpRecords = 2000

var syncSlugs = []string{"alpha", "beta", "gamma"}

// noPeriodicSync leaves sync to connections and explicit Sync calls, so
// that tests see what those do.
func noPeriodicSync(int) []node.Option {
	return []node.Option{node.WithSyncInterval(0)}
}

// publishRoundRobin publishes count statements on nd, cycling over topics.
func publishRoundRobin(t testing.TB, ctx context.Context, nd *node.Node, topics []string, count int) []cid.Cid {
	t.Helper()
	cids := make([]cid.Cid, 0, count)
	for i := range count {
		r, err := nd.Publish(ctx, protocol.KindStatement, topics[i%len(topics)], statement(i))
		if err != nil {
			t.Fatal(err)
		}
		cids = append(cids, r.CID)
	}
	return cids
}

// ingestChain stores on node 0 the statements of node 0's key with seq
// from+1 to to on topic, chained after prev (cid.Undef for seq 1), each
// claimed at at(i) for its index i, by Ingest, which does not gossip them:
// only sync moves them to other nodes. It returns their CIDs.
func ingestChain(t *testing.T, ctx context.Context, net *testnet.Network, topic string, prev cid.Cid, from, to int, at func(i int) time.Time) []cid.Cid {
	t.Helper()
	key := net.SigningKey(0)
	var out []cid.Cid
	for i := from; i < to; i++ {
		r, err := protocol.Build(key, protocol.Draft{Network: net.Nodes[0].NetworkID(), Kind: protocol.KindStatement,
			Topic: topic, Seq: uint64(i + 1), Prev: prev, Time: at(i), Body: statement(i)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := net.Nodes[0].Ingest(ctx, r.Raw, "", node.SourceLocal); err != nil {
			t.Fatal(err)
		}
		prev = r.CID
		out = append(out, r.CID)
	}
	return out
}

// claimedNow is the claimed time of ingestChain's records that need none other.
func claimedNow(int) time.Time { return time.Now() }

func issueTopics(slugs []string) []string {
	out := make([]string, len(slugs))
	for i, s := range slugs {
		out[i] = protocol.IssueTopic(s)
	}
	return out
}

// topicState is what must be identical across nodes holding the same
// records of a topic: the sorted CIDs, the heads and every chain head.
func topicState(t *testing.T, nd *node.Node, net *testnet.Network, topic string) string {
	t.Helper()
	st := nd.Store()
	var all []string
	var after uint64
	for {
		metas, err := st.TopicRecords(topic, after, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		if len(metas) == 0 {
			break
		}
		for _, m := range metas {
			all = append(all, m.CID.String())
		}
		after = metas[len(metas)-1].Arrival
	}
	slices.Sort(all)
	heads, err := st.Heads(topic)
	if err != nil {
		t.Fatal(err)
	}
	var chains []string
	for _, k := range net.Keys {
		pub, _ := k.GetPublic().Raw()
		seq, head, err := st.ChainHead(pub, topic)
		if err != nil {
			t.Fatal(err)
		}
		chains = append(chains, fmt.Sprintf("%x:%d:%s", pub[:4], seq, head))
	}
	return fmt.Sprintf("records=%d hash=%v heads=%v chains=%v", len(all), all, heads, chains)
}

func sameState(t *testing.T, net *testnet.Network, topics []string) {
	t.Helper()
	for _, tp := range topics {
		want := topicState(t, net.Nodes[0], net, tp)
		for i, nd := range net.Nodes[1:] {
			if got := topicState(t, nd, net, tp); got != want {
				t.Fatalf("%s: node %d differs from node 0:\n%.300s\nvs\n%.300s", tp, i+1, got, want)
			}
		}
	}
}

// TestSyncCatchUp: a node offline while records are published on three
// topics connects and, by the sync that connection triggers, holds all of
// them, verified, with the same heads and chains as its peer.
func TestSyncCatchUp(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 2, testnet.WithTopology(testnet.None), testnet.WithFollow(syncSlugs...),
		testnet.WithNodeOptions(noPeriodicSync))
	topics := issueTopics(syncSlugs)
	cids := publishRoundRobin(t, ctx, net.Nodes[0], topics, catchUpRecords)
	if err := net.Connect(ctx, 1, 0); err != nil {
		t.Fatal(err)
	}
	late := net.Nodes[1]
	if err := late.WaitRecords(ctx, cids...); err != nil {
		t.Fatal(err)
	}
	sameState(t, net, topics)
	for _, c := range cids {
		r, err := late.Record(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Verify(); err != nil {
			t.Fatal(err)
		}
	}
	if got := counter(t, late, "clearinghouse_records_accepted_total", string(node.SourceSync)); got != catchUpRecords {
		t.Fatalf("%v records accepted from sync, want %d", got, catchUpRecords)
	}
	// Parents first: a record whose parent comes in a later response is
	// held back, so none waits in the pending set.
	if got := counter(t, late, "clearinghouse_records_rejected_total", string(protocol.ReasonMissingDeps)); got != 0 {
		t.Fatalf("%v records waited for their parents during the catch-up, want 0", got)
	}
	// Nothing is left to fetch, and the progress says so.
	rep, err := late.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Missing != 0 || rep.Fetched != 0 || rep.Peers != 1 {
		t.Fatalf("second sync: %+v, want one peer and nothing missing", rep)
	}
	status := late.SyncStatus()
	if len(status) == 0 {
		t.Fatal("no sync status")
	}
	for _, s := range status {
		if s.Lag != 0 || s.Err != "" {
			t.Fatalf("status %+v, want lag 0 and no error", s)
		}
	}
	for _, tp := range topics {
		if lag, ok := gauge(t, late, "clearinghouse_sync_lag_records", tp); !ok || lag != 0 {
			t.Fatalf("sync_lag_records{topic=%q} = %v (present %v), want 0", tp, lag, ok)
		}
	}
}

// gauge returns the value of a gauge sample whose labels contain value.
func gauge(t *testing.T, nd *node.Node, name, value string) (float64, bool) {
	t.Helper()
	mfs, err := nd.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == value {
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// TestSyncPartition: eight nodes are cut into two halves that both
// publish; once healed, every node holds the same records and heads.
func TestSyncPartition(t *testing.T) {
	ctx := testContext(t)
	part := testnet.NewPartition()
	net := testnet.New(t, 8, testnet.WithFollow(slug), testnet.WithPartition(part),
		testnet.WithNodeOptions(noPeriodicSync))
	left, right := []int{0, 1, 2, 3}, []int{4, 5, 6, 7}
	if err := part.Cut(net, left, right); err != nil {
		t.Fatal(err)
	}
	var cids []cid.Cid
	for _, p := range []int{0, 2, 5, 7} {
		cids = append(cids, publishRoundRobin(t, ctx, net.Nodes[p], []string{topic}, 25)...)
	}
	for _, i := range right {
		if n := len(net.Nodes[i].Host().Network().ConnsToPeer(net.Nodes[0].ID())); n != 0 {
			t.Fatalf("node %d still has %d connections across the cut", i, n)
		}
	}
	if err := part.Heal(ctx, net); err != nil {
		t.Fatal(err)
	}
	for i, nd := range net.Nodes {
		if err := nd.WaitRecords(ctx, cids...); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	sameState(t, net, []string{topic})
}

// TestSyncResumeAfterKill: a node killed in the middle of a catch-up and
// restarted on its data fetches only what it had not stored.
func TestSyncResumeAfterKill(t *testing.T) {
	const total = 1000
	ctx := testContext(t)
	net := testnet.New(t, 2, testnet.WithTopology(testnet.None), testnet.WithFollow(slug),
		testnet.WithDataDir(t.TempDir()), testnet.WithNodeOptions(noPeriodicSync))
	cids := publishRoundRobin(t, ctx, net.Nodes[0], []string{topic}, total)

	sub := net.Nodes[1].Subscribe(func(e node.Event) bool { return e.Source == node.SourceSync })
	if err := net.Connect(ctx, 1, 0); err != nil {
		t.Fatal(err)
	}
	for range 200 {
		select {
		case <-sub.C:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	sub.Close()
	if err := net.Restart(ctx, 1); err != nil { // kill: no peers on the way back
		t.Fatal(err)
	}
	stored := topicCount(t, net.Nodes[1], topic)
	if stored < 200 || stored >= total {
		t.Fatalf("%d records stored before the kill, want between 200 and %d", stored, total-1)
	}
	if err := net.Connect(ctx, 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := net.Nodes[1].WaitRecords(ctx, cids...); err != nil {
		t.Fatal(err)
	}
	if got := counter(t, net.Nodes[1], "clearinghouse_sync_fetched_records_total", topic); got != float64(total-stored) {
		t.Fatalf("fetched %v records after the restart, want exactly the %d missing", got, total-stored)
	}
	sameState(t, net, []string{topic})
}

func topicCount(t *testing.T, nd *node.Node, topic string) int {
	t.Helper()
	stats, err := nd.Store().Topics()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stats {
		if s.Topic == topic {
			return int(s.Records)
		}
	}
	return 0
}

// TestSyncNewcomers: an observer and then two members join after
// everything was published, while nobody publishes anything new; each gets
// the full history from a peer that is not its author, the members from
// the observer alone (observers serve sync like members).
func TestSyncNewcomers(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 5, testnet.WithObservers(1), testnet.WithTopology(testnet.None),
		testnet.WithFollow(slug), testnet.WithNodeOptions(noPeriodicSync))
	const observer = 4
	cids := publishRoundRobin(t, ctx, net.Nodes[0], []string{topic}, 300)
	steps := []struct{ from, to int }{{1, 0}, {observer, 1}, {2, observer}, {3, observer}}
	for _, st := range steps {
		if err := net.Connect(ctx, st.from, st.to); err != nil {
			t.Fatal(err)
		}
		if err := net.Nodes[st.from].WaitRecords(ctx, cids...); err != nil {
			t.Fatalf("node %d: %v", st.from, err)
		}
	}
	if !net.Nodes[observer].IsObserver() {
		t.Fatal("node 4 is not an observer")
	}
	sameState(t, net, []string{topic})
}

// TestSyncRecoverChain: a member restarted on an empty store with its old
// key refuses to publish until a peer tells it its chain head, then
// fetches its chain and continues it without equivocating.
func TestSyncRecoverChain(t *testing.T) {
	ctx := testContext(t)
	dir := t.TempDir()
	net := testnet.New(t, 2, testnet.WithFollow(slug), testnet.WithDataDir(dir),
		testnet.WithNodeOptions(func(i int) []node.Option {
			return []node.Option{node.WithSyncInterval(0), node.WithRecoverChain(i == 0)}
		}))
	cids := publishRoundRobin(t, ctx, net.Nodes[0], []string{topic}, 5)
	if err := net.Nodes[1].WaitRecords(ctx, cids...); err != nil {
		t.Fatal(err)
	}
	// The disk is lost.
	if err := net.Nodes[0].Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "node-0", "store")); err != nil {
		t.Fatal(err)
	}
	if err := net.Restart(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Nodes[0].Publish(ctx, protocol.KindStatement, topic, statement(5)); !errors.Is(err, node.ErrChainUnconfirmed) {
		t.Fatalf("publish without peers: %v, want ErrChainUnconfirmed", err)
	}
	if err := net.Connect(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	r, err := net.Nodes[0].Publish(ctx, protocol.KindStatement, topic, statement(5))
	if err != nil {
		t.Fatal(err)
	}
	if r.Env.Seq != 6 || !r.PrevCID().Equals(cids[4]) {
		t.Fatalf("next record has seq %d prev %s, want 6 and %s", r.Env.Seq, r.PrevCID(), cids[4])
	}
	// Gossip may have left before node 1 was on node 0's topic view; a
	// sync brings the record either way.
	if _, err := net.Nodes[1].Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := net.Nodes[1].WaitRecords(ctx, r.CID); err != nil {
		t.Fatal(err)
	}
	if got := counter(t, net.Nodes[1], "clearinghouse_equivocations_total", r.Env.Topic); got != 0 {
		t.Fatalf("%v equivocations", got)
	}
}

// maliciousPeer is a raw libp2p host that speaks the sync protocol: it
// claims to hold the records of serve (by CID) and answers a fetch of CID c
// with serve[c], whatever those bytes are.
func maliciousPeer(t *testing.T, netID cid.Cid, serve map[cid.Cid][]byte) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	serveSync(t, h, netID, serve, true)
	return h
}

// serveSync installs a sync handler on h that answers a fetch of CID c
// with serve[c]. If advertise, reconciliation reports every CID of serve
// (at time 0); otherwise h claims to hold nothing.
func serveSync(t *testing.T, h host.Host, netID cid.Cid, serve map[cid.Cid][]byte, advertise bool) {
	t.Helper()
	var ids [][]byte
	for c := range serve {
		it, err := protocol.ItemOf(c, 0)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, it.ID[:])
	}
	if !advertise {
		ids = nil
	}
	h.SetStreamHandler(protocol.SyncProtocol(netID), func(s network.Stream) {
		defer s.Close()
		r := bufio.NewReader(s)
		for {
			var req protocol.SyncRequest
			if err := protocol.ReadFrame(r, &req); err != nil {
				return
			}
			resp := protocol.SyncResponse{Type: req.Type}
			switch req.Type {
			case protocol.SyncReconcile:
				mode := protocol.ModeIDList
				if ids == nil {
					mode = protocol.ModeSkip
				}
				resp.Ranges = []protocol.Range{{Upper: protocol.Infinity, Mode: mode, IDs: ids}}
			case protocol.SyncFetch:
				for _, b := range req.CIDs {
					c, _ := cid.Cast(b)
					if raw, ok := serve[c]; ok {
						resp.Records = append(resp.Records, raw)
					}
					resp.Served++
				}
			}
			if err := protocol.WriteFrame(s, resp); err != nil {
				return
			}
		}
	})
}

// TestSyncGossipGap: a gossiped record whose parent the node lacks makes
// the node fetch the parent from the peer that forwarded it.
func TestSyncGossipGap(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 2, testnet.WithTopology(testnet.None), testnet.WithFollow(slug),
		testnet.WithNodeOptions(noPeriodicSync))
	nd := net.Nodes[1]
	key := net.SigningKey(0)
	now := time.Now()
	parent, err := protocol.Build(key, protocol.Draft{Network: nd.NetworkID(), Kind: protocol.KindStatement,
		Topic: topic, Seq: 1, Time: now, Body: statement(1)})
	if err != nil {
		t.Fatal(err)
	}
	child, err := protocol.Build(key, protocol.Draft{Network: nd.NetworkID(), Kind: protocol.KindStatement,
		Topic: topic, Seq: 2, Prev: parent.CID, Time: now, Body: statement(2)})
	if err != nil {
		t.Fatal(err)
	}
	raw := newRawPeer(t, ctx, nd.NetworkID())
	// The raw peer holds the parent but does not advertise it: only the
	// gap behind the gossiped child can make the node ask for it.
	serveSync(t, raw.host, nd.NetworkID(), map[cid.Cid][]byte{parent.CID: parent.Raw}, false)
	if err := raw.host.Connect(ctx, nd.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	if err := nd.WaitTopicPeers(ctx, topic, 1); err != nil {
		t.Fatal(err)
	}
	// And the raw peer must see the node on the topic before it publishes.
	events, err := raw.topic.EventHandler()
	if err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := events.NextPeerEvent(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == pubsub.PeerJoin && ev.Peer == nd.ID() {
			break
		}
	}
	events.Cancel()
	if err := raw.topic.Publish(ctx, child.Raw); err != nil {
		t.Fatal(err)
	}
	if err := nd.WaitRecords(ctx, parent.CID, child.CID); err != nil {
		t.Fatal(err)
	}
}

// TestSyncMaliciousPeer: one peer serves a record with a forged signature,
// another serves bytes that are not the record requested. Both are
// refused, counted and tagged down, and sync completes from an honest peer.
func TestSyncMaliciousPeer(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 2, testnet.WithTopology(testnet.None), testnet.WithFollow(slug),
		testnet.WithNodeOptions(noPeriodicSync))
	honest, victim := net.Nodes[0], net.Nodes[1]
	cids := publishRoundRobin(t, ctx, honest, []string{topic}, 20)

	// A forged record: a valid one by node 0, never published, with one
	// signature byte flipped.
	key := net.SigningKey(0)
	build := func(i int) *protocol.Record {
		r, err := protocol.Build(key, protocol.Draft{Network: honest.NetworkID(), Kind: protocol.KindStatement,
			Topic: topic, Seq: 1000 + uint64(i), Prev: cids[len(cids)-1], Time: r0Time(t, honest, cids), Body: statement(i)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	forged := build(1)
	var env protocol.Envelope = forged.Env
	env.Sig = append([]byte(nil), env.Sig...)
	env.Sig[0] ^= 0xff
	badSig, err := protocol.Marshal(&env)
	if err != nil {
		t.Fatal(err)
	}
	sigPeer := maliciousPeer(t, honest.NetworkID(), map[cid.Cid][]byte{protocol.RecordCID(badSig): badSig})
	// Bytes that are not the requested record.
	wanted, other := build(2), build(3)
	cidPeer := maliciousPeer(t, honest.NetworkID(), map[cid.Cid][]byte{wanted.CID: other.Raw})

	for _, h := range []host.Host{sigPeer, cidPeer} {
		if err := victim.Connect(ctx, h.Peerstore().PeerInfo(h.ID())); err != nil {
			t.Fatal(err)
		}
	}
	if err := net.Connect(ctx, 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := victim.WaitRecords(ctx, cids...); err != nil {
		t.Fatal(err)
	}
	// An explicit sync: the bad peers are (or by now were) refused.
	_, err = victim.Sync(ctx)
	if !errors.Is(err, node.ErrBadPeer) && !errors.Is(err, node.ErrSyncPenalised) {
		t.Fatalf("sync error %v, want the bad peers refused", err)
	}
	for _, reason := range []string{string(protocol.ReasonBadSignature), "cid-mismatch"} {
		if got := counter(t, victim, "clearinghouse_sync_bad_records_total", reason); got < 1 {
			t.Fatalf("sync_bad_records_total{reason=%q} = %v, want >= 1", reason, got)
		}
	}
	for _, h := range []host.Host{sigPeer, cidPeer} {
		info := victim.Host().ConnManager().GetTagInfo(h.ID())
		if info == nil || info.Tags["clearinghouse-sync-bad"] >= 0 {
			t.Fatalf("peer %s not tagged down: %+v", h.ID(), info)
		}
	}
	for _, c := range []cid.Cid{protocol.RecordCID(badSig), wanted.CID, other.CID} {
		if ok, _ := victim.Store().Has(c); ok {
			t.Fatalf("victim stored %s served by a bad peer", c)
		}
	}
	// Penalised peers are not asked again; the honest one still is.
	rep, err := victim.Sync(ctx)
	if !errors.Is(err, node.ErrSyncPenalised) || rep.Peers != 1 {
		t.Fatalf("sync after penalty: %+v, %v; want one peer and the bad ones refused", rep, err)
	}
	sameState(t, net, []string{topic})
}

// r0Time returns a claimed time not before any of cids.
func r0Time(t *testing.T, nd *node.Node, cids []cid.Cid) time.Time {
	t.Helper()
	m, err := nd.Store().Meta(cids[len(cids)-1])
	if err != nil {
		t.Fatal(err)
	}
	return time.UnixMilli(m.Time)
}

// TestSyncOnFollow: a node that starts following an issue gets the
// topic's history from its peers.
func TestSyncOnFollow(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 2, testnet.WithNodeOptions(func(i int) []node.Option {
		opts := noPeriodicSync(i)
		if i == 0 {
			opts = append(opts, node.WithFollow([]string{slug}))
		}
		return opts
	}))
	cids := publishRoundRobin(t, ctx, net.Nodes[0], []string{topic}, 50)
	if err := net.Nodes[1].Follow(slug); err != nil {
		t.Fatal(err)
	}
	if err := net.Nodes[1].WaitRecords(ctx, cids...); err != nil {
		t.Fatal(err)
	}
}

// TestSyncPeriodic: records that gossip never carried (ingested directly
// on a peer, after the sync of the connection) arrive by periodic sync.
func TestSyncPeriodic(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 2, testnet.WithFollow(slug), testnet.WithNodeOptions(func(i int) []node.Option {
		if i == 1 {
			return []node.Option{node.WithSyncInterval(50 * time.Millisecond)}
		}
		return noPeriodicSync(i)
	}))
	if _, err := net.Nodes[1].Sync(ctx); err != nil {
		t.Fatal(err)
	}
	cids := ingestChain(t, ctx, net, topic, cid.Undef, 0, 20, claimedNow)
	if err := net.Nodes[1].WaitRecords(ctx, cids...); err != nil {
		t.Fatal(err)
	}
}

// TestSyncItemSetGrows: the reconciliation set a session uses, kept and
// grown as records arrive, is the set built afresh from the store.
func TestSyncItemSetGrows(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 1, testnet.WithFollow(slug), testnet.WithNodeOptions(noPeriodicSync))
	nd := net.Nodes[0]
	total := 0
	for _, n := range []int{0, 1, 7, 30} {
		publishRoundRobin(t, ctx, nd, []string{topic}, n)
		total += n
		a, b, size, err := node.ItemSetFingerprints(nd, topic)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(a, b) || size != total {
			t.Fatalf("after %d records: the session's set has %d items and fingerprint %x, the store's %x", total, size, a, b)
		}
	}
}

// TestSyncPullBackNotDropped: a difference shown within the throttle
// period of the last pull-back (which reconciled before the opener stored
// more) is pulled back once the period ends, not dropped.
func TestSyncPullBackNotDropped(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 2, testnet.WithFollow(slug), testnet.WithNodeOptions(noPeriodicSync))
	for _, nd := range net.Nodes {
		if _, err := nd.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	pull := func() {
		if _, err := node.SyncTopicWith(ctx, net.Nodes[0], net.Nodes[1].ID(), topic); err != nil {
			t.Fatal(err)
		}
	}
	first := ingestChain(t, ctx, net, topic, cid.Undef, 0, 1, claimedNow)
	pull() // node 1 answers and pulls back
	if err := net.Nodes[1].WaitRecords(ctx, first...); err != nil {
		t.Fatal(err)
	}
	rest := ingestChain(t, ctx, net, topic, first[0], 1, 5, claimedNow)
	pull() // within the throttle period of the first pull-back
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := net.Nodes[1].WaitRecords(wctx, rest...); err != nil {
		t.Fatalf("the second pull-back was dropped: %v", err)
	}
}

// TestSyncSettledLeavesRecent: the periodic round of a changing topic
// reconciles only the records claimed before its recent horizon, which
// gossip may still be carrying: it fetches the older ones, and the recent
// ones once they are older than the horizon.
func TestSyncSettledLeavesRecent(t *testing.T) {
	ctx := testContext(t)
	t0 := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	clock := testnet.NewClock(t0.Add(time.Hour))
	net := testnet.New(t, 2, testnet.WithFollow(slug),
		testnet.WithNodeOptions(func(i int) []node.Option {
			return append(noPeriodicSync(i), node.WithClock(clock.Now))
		}))
	late := net.Nodes[1]
	// The syncs on connection, both ways, are over (a session waits for
	// the one of the same peer and topic): the records below reach node 1
	// only by the sessions of this test (Ingest does not gossip them, and
	// no pull-back of node 1 can follow a reconciliation node 0 opened
	// after they were stored).
	for _, nd := range net.Nodes {
		if _, err := nd.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Five an hour old, then three just now.
	old := ingestChain(t, ctx, net, topic, cid.Undef, 0, 5, func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) })
	recent := ingestChain(t, ctx, net, topic, old[len(old)-1], 5, 8, func(int) time.Time { return t0.Add(time.Hour) })
	held := func(cids []cid.Cid) int {
		n := 0
		for _, c := range cids {
			switch _, err := late.Record(c); {
			case err == nil:
				n++
			case !errors.Is(err, store.ErrNotFound):
				t.Fatal(err)
			}
		}
		return n
	}
	rep, horizon, err := node.SyncSettledWith(ctx, late, net.Nodes[0].ID(), topic)
	if err != nil {
		t.Fatal(err)
	}
	if horizon <= 0 || horizon >= time.Hour {
		t.Fatalf("horizon %v: this test needs one under an hour", horizon)
	}
	if rep.Fetched != len(old) || held(old) != len(old) || held(recent) != 0 {
		t.Fatalf("settled session fetched %d, holds %d of %d old and %d of %d recent records; want the old ones only",
			rep.Fetched, held(old), len(old), held(recent), len(recent))
	}
	clock.Set(t0.Add(time.Hour + horizon + time.Second))
	if rep, _, err = node.SyncSettledWith(ctx, late, net.Nodes[0].ID(), topic); err != nil {
		t.Fatal(err)
	}
	if rep.Fetched != len(recent) || held(recent) != len(recent) {
		t.Fatalf("once past the horizon the session fetched %d, holds %d of %d; want them all", rep.Fetched, held(recent), len(recent))
	}
}

// TestSyncPullBackFollowedOnly: a node that serves a reconciliation which
// shows the two sets differ pulls the topic back from the opener if it
// follows the topic, and never if it does not: any peer may ask about any
// topic, and the answer must not make the node fetch what it does not
// follow. (A pull-back of a topic not yet followed also used to run in
// place of the sync of a Follow that came while it ran, leaving the node
// without the records published after it reconciled.)
func TestSyncPullBackFollowedOnly(t *testing.T) {
	ctx := testContext(t)
	const other = "beta"
	net := testnet.New(t, 2, testnet.WithNodeOptions(func(i int) []node.Option {
		follow := []string{other}
		if i == 0 {
			follow = append(follow, slug)
		}
		return append(noPeriodicSync(i), node.WithFollow(follow))
	}))
	// The syncs on connection, both ways, are over (a session waits for
	// the one of the same peer and topic): had node 1's sync on connection
	// of beta run after the records below were stored, it would have
	// fetched them itself, and node 0's reconciliation would then find no
	// difference to pull back.
	for _, nd := range net.Nodes {
		if _, err := nd.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Records that gossip never carries: only sync can move them.
	unfollowed := ingestChain(t, ctx, net, topic, cid.Undef, 0, 5, claimedNow)
	followed := ingestChain(t, ctx, net, protocol.IssueTopic(other), cid.Undef, 0, 5, claimedNow)
	// Node 0 reconciles every topic it follows with node 1; node 1 has
	// answered, and so decided on its pull-backs, when Sync returns.
	if _, err := net.Nodes[0].Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := node.PullBackTopics(net.Nodes[1]), []string{protocol.IssueTopic(other)}; !slices.Equal(got, want) {
		t.Fatalf("node 1 pulled back %q, want %q", got, want)
	}
	if err := net.Nodes[1].WaitRecords(ctx, followed...); err != nil {
		t.Fatal(err)
	}
	for _, c := range unfollowed {
		if ok, err := net.Nodes[1].Store().Has(c); err != nil || ok {
			t.Fatalf("node 1 holds %s of a topic it does not follow (err %v)", c, err)
		}
	}
}

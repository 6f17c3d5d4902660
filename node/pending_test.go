package node_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/store"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// fakeCID returns a record CID nobody has.
func fakeCID(t *testing.T, i int) cid.Cid {
	t.Helper()
	sum := sha256.Sum256(fmt.Appendf(nil, "nobody has record %d", i))
	m, err := mh.Encode(sum[:], mh.SHA2_256)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.DagCBOR, m)
}

// waiting builds a record of kind on topic by key with a dep nobody has.
func waiting(t *testing.T, netID cid.Cid, key ed25519.PrivateKey, kind, topic string, i int) *protocol.Record {
	t.Helper()
	d := protocol.Draft{Network: netID, Kind: kind, Topic: topic, Seq: 1, Deps: []cid.Cid{fakeCID(t, i)},
		Time: time.Now().Add(-time.Minute)}
	switch kind {
	case protocol.KindMemberApply:
		d.Body = &protocol.MemberApply{Org: fmt.Sprintf("Applicant %d", i), Group: "civil-society", Region: "africa",
			Statement: "We apply."}
	default:
		d.Body = statement(i)
	}
	r, err := protocol.Build(key, d)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// pendingArea returns the CIDs of the records in nd's pending area, with
// their kinds.
func pendingArea(t *testing.T, nd *node.Node) map[cid.Cid]string {
	t.Helper()
	out := map[cid.Cid]string{}
	if err := nd.Store().Pending(func(e store.PendingEntry) error {
		r, err := protocol.Decode(e.Raw)
		if err != nil {
			return err
		}
		out[e.CID] = r.Env.Kind
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPendingOnlyWhatCanComplete: of records whose past is missing, one
// signed by a key that is no member, in a kind only members may sign, is
// refused (unknown-author, a reject) and not kept; a member's waits; a
// non-member's member.apply waits (a kind a non-member may sign), only in
// memory (a stranger's record is not kept across a restart), and so does
// a member-only record by that applicant, whose admission may be in its
// missing past (that one in the pending area: the applicant is known).
func TestPendingOnlyWhatCanComplete(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 2, testnet.WithTopology(testnet.None), testnet.WithFollow(slug))
	nd := net.Nodes[0]
	id := nd.NetworkID()
	stranger, applicant := newKey(t), newKey(t)
	from := peer.ID("a gossip peer")
	tests := []struct {
		name    string
		rec     *protocol.Record
		want    protocol.Reason
		persist bool // kept in the store's pending area too
	}{
		{"stranger's statement", waiting(t, id, stranger, protocol.KindStatement, topic, 1), protocol.ReasonUnknownAuthor, false},
		{"member's statement", waiting(t, id, net.SigningKey(1), protocol.KindStatement, topic, 2), protocol.ReasonMissingDeps, true},
		{"application", waiting(t, id, applicant, protocol.KindMemberApply, protocol.TopicMembers, 3), protocol.ReasonMissingDeps, false},
		{"applicant's statement", waiting(t, id, applicant, protocol.KindStatement, topic, 4), protocol.ReasonMissingDeps, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, err := node.PendingByPeer(ctx, nd)
			if err != nil {
				t.Fatal(err)
			}
			_, err = node.IngestFrom(ctx, nd, tt.rec.Raw, "", from)
			if got := protocol.ReasonOf(err); got != tt.want {
				t.Fatalf("%v, want %s", err, tt.want)
			}
			after, err := node.PendingByPeer(ctx, nd)
			if err != nil {
				t.Fatal(err)
			}
			if waits := after[from] - before[from]; waits != map[bool]int{true: 1}[tt.want == protocol.ReasonMissingDeps] {
				t.Fatalf("%d more records wait", waits)
			}
			if _, kept := pendingArea(t, nd)[tt.rec.CID]; kept != tt.persist {
				t.Fatalf("in the pending area: %v, want %v", kept, tt.persist)
			}
		})
	}
	if protocol.ReasonUnknownAuthor.Action() != protocol.Reject {
		t.Fatal("unknown-author does not penalise its sender")
	}
	if got := counter(t, nd, "clearinghouse_records_rejected_total", string(protocol.ReasonUnknownAuthor)); got != 1 {
		t.Fatalf("records_rejected_total{unknown-author} = %v, want 1", got)
	}
}

// TestPendingQuotas: one peer's records fill at most its quota; at the
// global cap a newcomer evicts the oldest record of the peer with the
// most waiting, never a record of a smaller holder; the newcomer is
// stored once its parent comes; records that wait beyond the TTL are
// dropped and their senders penalised; a peer may have only a few
// records of unknown keys waiting.
func TestPendingQuotas(t *testing.T) {
	ctx := testContext(t)
	const ttl = time.Hour
	net := testnet.New(t, 4, testnet.WithTopology(testnet.None), testnet.WithFollow(slug),
		testnet.WithNodeOptions(func(int) []node.Option {
			return []node.Option{node.WithPending(node.PendingLimits{Records: 10, Bytes: 1 << 20, PerPeer: 6, PerPeerStrangers: 2, PerAuthor: 4, TTL: ttl})}
		}))
	nd := net.Nodes[0]
	id := nd.NetworkID()
	a, b, c := peer.ID("peer a"), peer.ID("peer b"), peer.ID("peer c")
	i := 0
	send := func(from peer.ID, key int, want protocol.Reason) *protocol.Record {
		t.Helper()
		i++
		r := waiting(t, id, net.SigningKey(key), protocol.KindStatement, topic, i)
		if _, err := node.IngestFrom(ctx, nd, r.Raw, "", from); protocol.ReasonOf(err) != want {
			t.Fatalf("record %d from %s: %v, want %s", i, from, err, want)
		}
		return r
	}
	byPeer := func() map[peer.ID]int {
		t.Helper()
		m, err := node.PendingByPeer(ctx, nd)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// Peer a: 6 records (two authors, 3 each), then its quota is used up.
	for k := range 6 {
		send(a, 1+k%2, protocol.ReasonMissingDeps)
	}
	send(a, 3, protocol.ReasonPendingFull)
	// An author's quota: key 1 has 3 waiting; one more fits, the next not.
	send(b, 1, protocol.ReasonMissingDeps)
	send(b, 1, protocol.ReasonPendingFull)
	for range 3 {
		send(b, 3, protocol.ReasonMissingDeps)
	}
	if m := byPeer(); m[a] != 6 || m[b] != 4 {
		t.Fatalf("pending by peer %v, want a 6, b 4", m)
	}
	// The set is full (10). Peer c's out-of-order child evicts a's oldest.
	parent, err := protocol.Build(net.SigningKey(2), protocol.Draft{Network: id, Kind: protocol.KindStatement, Topic: topic,
		Seq: 1, Time: time.Now().Add(-time.Minute), Body: statement(100)})
	if err != nil {
		t.Fatal(err)
	}
	child, err := protocol.Build(net.SigningKey(2), protocol.Draft{Network: id, Kind: protocol.KindStatement, Topic: topic,
		Seq: 2, Prev: parent.CID, Time: time.Now().Add(-time.Minute), Body: statement(101)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.IngestFrom(ctx, nd, child.Raw, "", c); protocol.ReasonOf(err) != protocol.ReasonMissingDeps {
		t.Fatalf("child: %v, want missing-deps", err)
	}
	if m := byPeer(); m[a] != 5 || m[b] != 4 || m[c] != 1 {
		t.Fatalf("pending by peer %v, want a 5, b 4, c 1", m)
	}
	if got := counter(t, nd, "clearinghouse_pending_dropped_total", "evicted"); got != 1 {
		t.Fatalf("pending_dropped_total{evicted} = %v, want 1", got)
	}
	// Peer b (4) cannot evict a (5): that would trade one for one.
	send(b, 2, protocol.ReasonPendingFull)
	if _, err := node.IngestFrom(ctx, nd, parent.Raw, "", c); err != nil {
		t.Fatal(err)
	}
	if err := nd.WaitRecords(ctx, parent.CID, child.CID); err != nil {
		t.Fatal(err)
	}
	// Past the TTL, the rest expires; a and b are penalised.
	if err := node.ExpirePending(ctx, nd, time.Now().Add(ttl+time.Minute)); err != nil {
		t.Fatal(err)
	}
	if m := byPeer(); len(m) != 0 {
		t.Fatalf("pending by peer after the TTL: %v", m)
	}
	if n := len(pendingArea(t, nd)); n != 0 {
		t.Fatalf("%d records left in the pending area after the TTL", n)
	}
	if got := counter(t, nd, "clearinghouse_pending_dropped_total", "expired"); got != 9 {
		t.Fatalf("pending_dropped_total{expired} = %v, want 9", got)
	}
	for _, p := range []peer.ID{a, b} {
		if s := node.GossipPenalty(nd, p); s >= 0 {
			t.Fatalf("peer %s: application score %v after its records expired", p, s)
		}
	}
	if s := node.GossipPenalty(nd, c); s != 0 {
		t.Fatalf("honest peer c: application score %v", s)
	}
	if got := counter(t, nd, "clearinghouse_sync_bad_records_total", "pending-expired"); got != 2 {
		t.Fatalf("sync_bad_records_total{pending-expired} = %v, want 2 (a and b)", got)
	}
	// Applications of keys nobody knows: two from peer d may wait; the
	// third is refused and costs d a strike.
	d := peer.ID("peer d")
	for k := range 3 {
		r := waiting(t, id, newKey(t), protocol.KindMemberApply, protocol.TopicMembers, 200+k)
		want := protocol.ReasonMissingDeps
		if k == 2 {
			want = protocol.ReasonPendingFull
		}
		if _, err := node.IngestFrom(ctx, nd, r.Raw, "", d); protocol.ReasonOf(err) != want {
			t.Fatalf("application %d from d: %v, want %s", k, err, want)
		}
	}
	if s := node.GossipPenalty(nd, d); s >= 0 {
		t.Fatalf("peer d: application score %v above its quota of strangers' records", s)
	}
	if got := counter(t, nd, "clearinghouse_gossip_penalties_total", "stranger-quota"); got != 1 {
		t.Fatalf("gossip_penalties_total{stranger-quota} = %v, want 1", got)
	}
}

// floodSize is the flood of TestPendingFlood; clearinghouse testnet fault
// pending runs the full 100,000.
const floodSize = 3000

// TestPendingFlood is acceptance 3 of issue 17, reduced: a raw gossip peer
// floods a node with records of non-members that name dependencies nobody
// has (half of them member.apply, which may wait), while an honest peer
// gossips a child before its parent. Records waiting stay within the
// hostile peer's quota; the child is stored; the hostile peer ends below
// the graylist threshold; after a restart the pending area holds only
// what may still complete (at most the peer's quota of applications), and
// after a restart past the TTL nothing.
func TestPendingFlood(t *testing.T) {
	ctx := testContext(t)
	var skew atomic.Int64 // added to node 0's clock
	net := testnet.New(t, 2, testnet.WithTopology(testnet.None), testnet.WithFollow(slug), testnet.WithDataDir(t.TempDir()),
		testnet.WithNodeOptions(func(int) []node.Option {
			return []node.Option{node.WithClock(func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })}
		}))
	nd := net.Nodes[0]
	id := nd.NetworkID()
	flood, err := testnet.FakeDepsFlood(id, topic, floodSize, 2, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	hostile := gossipPeerOn(t, ctx, nd, floodSize, 1, topic, protocol.TopicMembers)
	honest := gossipPeerOn(t, ctx, nd, 64, 2, topic)

	parent, err := protocol.Build(net.SigningKey(1), protocol.Draft{Network: id, Kind: protocol.KindStatement, Topic: topic,
		Seq: 1, Time: time.Now().Add(-time.Minute), Body: statement(1)})
	if err != nil {
		t.Fatal(err)
	}
	child, err := protocol.Build(net.SigningKey(1), protocol.Draft{Network: id, Kind: protocol.KindStatement, Topic: topic,
		Seq: 2, Prev: parent.CID, Time: time.Now().Add(-time.Minute), Body: statement(2)})
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range flood {
		r, err := protocol.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := hostile.Publish(ctx, r.Env.Topic, raw); err != nil {
			t.Fatal(err)
		}
	}
	// The honest child, before its parent.
	rej, stop := nd.SubscribeRejections()
	defer stop()
	if err := honest.Publish(ctx, topic, child.Raw); err != nil {
		t.Fatal(err)
	}
	for r := range rej {
		if r.CID.Equals(child.CID) {
			if r.Reason != protocol.ReasonMissingDeps {
				t.Fatalf("honest child: %s, want missing-deps", r.Reason)
			}
			break
		}
	}
	if err := honest.Publish(ctx, topic, parent.Raw); err != nil {
		t.Fatal(err)
	}
	if err := nd.WaitRecords(ctx, parent.CID, child.CID); err != nil {
		t.Fatalf("honest out-of-order record: %v", err)
	}
	score, err := nd.WaitGossipScore(ctx, hostile.ID(), node.GossipGraylistThreshold)
	if err != nil {
		t.Logf("unknown-author %v, missing-deps %v", counter(t, nd, "clearinghouse_records_rejected_total", string(protocol.ReasonUnknownAuthor)),
			counter(t, nd, "clearinghouse_records_rejected_total", string(protocol.ReasonMissingDeps)))
		t.Fatal(err)
	}
	m, err := node.PendingByPeer(ctx, nd)
	if err != nil {
		t.Fatal(err)
	}
	refused := counter(t, nd, "clearinghouse_records_rejected_total", string(protocol.ReasonUnknownAuthor))
	full := counter(t, nd, "clearinghouse_records_rejected_total", string(protocol.ReasonPendingFull))
	t.Logf("flood of %d: %d wait (from the hostile peer %d), %v unknown-author, %v pending-full; hostile score %.0f",
		len(flood), sum(m), m[hostile.ID()], refused, full, score)
	if m[hostile.ID()] > node.DefaultPendingPerPeerStrangers {
		t.Fatalf("%d records of the hostile peer wait, above its quota %d", m[hostile.ID()], node.DefaultPendingPerPeerStrangers)
	}
	if refused < 1 {
		t.Fatal("no flood record refused as unknown-author")
	}
	if s, ok := nd.GossipScore(honest.ID()); ok && s < 0 {
		t.Fatalf("honest peer's score %v", s)
	}

	// A member's record whose parent is never published: it may still
	// complete, so it waits across a restart (until the TTL).
	lost, err := protocol.Build(net.SigningKey(1), protocol.Draft{Network: id, Kind: protocol.KindStatement, Topic: topic,
		Seq: 3, Prev: child.CID, Time: time.Now().Add(-time.Minute), Body: statement(3)})
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := protocol.Build(net.SigningKey(1), protocol.Draft{Network: id, Kind: protocol.KindStatement, Topic: topic,
		Seq: 4, Prev: lost.CID, Time: time.Now().Add(-time.Minute), Body: statement(4)})
	if err != nil {
		t.Fatal(err)
	}
	rej2, stop2 := nd.SubscribeRejections()
	defer stop2()
	if err := honest.Publish(ctx, topic, orphan.Raw); err != nil {
		t.Fatal(err)
	}
	for waiting := true; waiting; {
		select {
		case r := <-rej2:
			if r.CID.Equals(orphan.CID) {
				if r.Reason != protocol.ReasonMissingDeps {
					t.Fatalf("member's orphan: %s, want missing-deps", r.Reason)
				}
				waiting = false
			}
		case <-ctx.Done():
			t.Fatal("the member's orphan was never answered")
		}
	}

	// After a restart: only the member's record. The flood's applications
	// that waited are strangers' (no key the node knows): not kept.
	if err := net.Restart(ctx, 0); err != nil {
		t.Fatal(err)
	}
	nd = net.Nodes[0]
	area := pendingArea(t, nd)
	if _, ok := area[orphan.CID]; !ok || len(area) != 1 {
		t.Fatalf("after a restart the pending area holds %v, want only the member's record %s", area, orphan.CID)
	}
	// After a restart past the TTL: nothing, before the node serves.
	skew.Store(int64(node.DefaultPendingTTL + time.Minute))
	if err := net.Restart(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if n := len(pendingArea(t, net.Nodes[0])); n != 0 {
		t.Fatalf("%d records in the pending area after a restart past the TTL", n)
	}
}

func sum(m map[peer.ID]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// gossipPeerOn starts a raw gossip peer on nd's topics, connected to nd,
// and waits until it sees nd on every topic and nd sees want peers there.
func gossipPeerOn(t *testing.T, ctx context.Context, nd *node.Node, queue, want int, topics ...string) *testnet.GossipPeer {
	t.Helper()
	g, err := testnet.NewGossipPeer(nd.NetworkID(), queue)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	for _, tp := range topics {
		if err := g.Join(tp); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Connect(ctx, nd.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	for _, tp := range topics {
		if err := g.WaitTopicPeer(ctx, tp, nd.ID()); err != nil {
			t.Fatal(err)
		}
		if err := nd.WaitTopicPeers(ctx, tp, want); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

// TestUnknownAuthorFetchedBySync: a record by a key the node does not
// know yet (a rotation to it is in the record's past, on the members
// topic) is refused, not kept; a sync of the issue topic alone with a
// peer that holds both fetches the rotation as the record's parent and
// then stores the record, without penalising the peer.
func TestUnknownAuthorFetchedBySync(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 3, testnet.WithTopology(testnet.None), testnet.WithFollow(slug))
	a, b := net.Nodes[0], net.Nodes[2]
	newKey := seededKey(3)
	at := time.Now().Add(-time.Hour)
	rot, err := protocol.Build(net.SigningKey(1), protocol.Draft{Network: a.NetworkID(), Kind: protocol.KindMemberRotate,
		Topic: protocol.TopicMembers, Seq: 1, Time: at, Body: &protocol.MemberRotate{NewKey: newKey.Public().(ed25519.PublicKey)}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := protocol.Build(newKey, protocol.Draft{Network: a.NetworkID(), Kind: protocol.KindStatement, Topic: topic,
		Seq: 1, Deps: []cid.Cid{rot.CID}, Time: at.Add(time.Minute), Body: statement(1)})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*protocol.Record{rot, s} {
		if _, err := a.Ingest(ctx, r.Raw, "", node.SourceSync); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Ingest(ctx, s.Raw, "", node.SourceSync); protocol.ReasonOf(err) != protocol.ReasonUnknownAuthor {
		t.Fatalf("the new key's record on a node without the rotation: %v, want unknown-author", err)
	}
	if n := len(pendingArea(t, b)); n != 0 {
		t.Fatalf("%d records kept waiting", n)
	}
	if err := b.Connect(ctx, a.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	if _, err := node.SyncTopicWith(ctx, b, a.ID(), topic); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*protocol.Record{rot, s} {
		if ok, err := b.Store().Has(r.CID); err != nil || !ok {
			t.Fatalf("%s not stored after the sync (%v)", r.Env.Kind, err)
		}
	}
	if got := counter(t, b, "clearinghouse_sync_bad_records_total", "unserved-past"); got != 0 {
		t.Fatalf("the honest peer was penalised: unserved-past %v", got)
	}
}

// TestUnservedPastPenalised: a sync peer that claims and serves records
// and then does not serve their parents is penalised (unserved-past): its
// store, were it honest, would be causally closed.
func TestUnservedPastPenalised(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 2, testnet.WithTopology(testnet.None), testnet.WithFollow(slug))
	nd := net.Nodes[0]
	var raws [][]byte
	for i := range 3 {
		raws = append(raws, waiting(t, nd.NetworkID(), net.SigningKey(1), protocol.KindStatement, topic, 300+i).Raw)
	}
	hp, err := testnet.NewHostileSyncPeer(nd.NetworkID(), testnet.Orphans, 0, testnet.WithRecords(raws))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hp.Close() })
	if err := nd.Connect(ctx, hp.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	// The node's own sync of the topic on connection may come first (one
	// session per peer and topic at a time): then it penalises the peer
	// and this one is refused.
	_, err = node.SyncTopicWith(ctx, nd, hp.ID(), topic)
	if !errors.Is(err, node.ErrBadPeer) && !errors.Is(err, node.ErrSyncPenalised) {
		t.Fatalf("sync with a peer that serves orphans: %v, want ErrBadPeer or ErrSyncPenalised", err)
	}
	if got := counter(t, nd, "clearinghouse_sync_bad_records_total", "unserved-past"); got != 1 {
		t.Fatalf("sync_bad_records_total{unserved-past} = %v, want 1", got)
	}
	if info := nd.Host().ConnManager().GetTagInfo(hp.ID()); info == nil || info.Tags["clearinghouse-sync-bad"] >= 0 {
		t.Fatalf("the peer is not tagged as penalised: %+v", info)
	}
}

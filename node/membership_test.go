package node_test

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

func seededKey(b byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	seed[0], seed[31] = b, 0x5e
	return ed25519.NewKeyFromSeed(seed)
}

// TestNonMemberRejected: a key that is not a member publishing on an issue
// topic through a raw gossipsub peer is rejected by every member node and
// the observer, and its record never appears in any read.
func TestNonMemberRejected(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 4, testnet.WithObservers(1), testnet.WithFollow(slug))
	raw := newRawPeer(t, ctx, net.Nodes[0].NetworkID())
	var subs []<-chan node.Rejection
	for _, nd := range net.Nodes {
		if err := raw.host.Connect(ctx, nd.AddrInfo()); err != nil {
			t.Fatal(err)
		}
		c, cancel := nd.SubscribeRejections()
		t.Cleanup(cancel)
		subs = append(subs, c)
	}
	raw.waitPeers(t, ctx, len(net.Nodes))
	// A refused record is not forwarded, so a delivery from the raw peer
	// that a busy machine loses is repaired by nothing: a node that has not
	// refused the outsider's record after a while gets another one.
	sent := map[cid.Cid]bool{}
	publish := func(i int) {
		t.Helper()
		r, err := protocol.Build(seededKey(1), protocol.Draft{
			Network: net.Nodes[0].NetworkID(), Kind: protocol.KindStatement, Topic: topic,
			Seq: 1, Time: time.Now(), Body: statement(i),
		})
		if err != nil {
			t.Fatal(err)
		}
		sent[r.CID] = true
		if err := raw.topic.Publish(ctx, r.Raw); err != nil {
			t.Fatal(err)
		}
	}
	publish(0)
	for i, nd := range net.Nodes {
		for attempt := 1; ; attempt++ {
			if waitRejectionOf(t, subs[i], sent, protocol.ReasonNotMember, 5*time.Second) {
				break
			}
			if attempt == 4 {
				t.Fatalf("node %d refused none of %d records of a non-member", i, len(sent))
			}
			publish(attempt)
		}
		for c := range sent {
			if ok, _ := nd.Store().Has(c); ok {
				t.Fatalf("node %d stored the outsider's record", i)
			}
			if _, err := nd.Record(c); err == nil {
				t.Fatalf("node %d serves the outsider's record", i)
			}
		}
	}
}

// waitRejectionOf waits up to d for a refusal of one of the records in
// set and reports whether one came; a refusal with another reason fails
// the test.
func waitRejectionOf(t *testing.T, c <-chan node.Rejection, set map[cid.Cid]bool, reason protocol.Reason, d time.Duration) bool {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case r := <-c:
			if set[r.CID] {
				if r.Reason != reason {
					t.Fatalf("record %s refused with %q, want %q (%v)", r.CID, r.Reason, reason, r.Err)
				}
				return true
			}
		case <-timeout:
			return false
		}
	}
}

// TestFederationsIsolated: two federations side by side on one machine,
// connected, never accept each other's records.
func TestFederationsIsolated(t *testing.T) {
	ctx := testContext(t)
	a := testnet.New(t, 2, testnet.WithFollow(slug))
	b := testnet.New(t, 2, testnet.WithKeySeed(7), testnet.WithFollow(slug))
	if a.Nodes[0].NetworkID().Equals(b.Nodes[0].NetworkID()) {
		t.Fatal("two federations share a network id")
	}
	for _, x := range a.Nodes {
		for _, y := range b.Nodes {
			if err := x.Connect(ctx, y.AddrInfo()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := a.WaitTopicMesh(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitTopicMesh(ctx, topic); err != nil {
		t.Fatal(err)
	}
	ra, err := a.Nodes[0].Publish(ctx, protocol.KindStatement, topic, statement(1))
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.Nodes[0].Publish(ctx, protocol.KindStatement, topic, statement(2))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Nodes[1].WaitRecords(ctx, ra.CID); err != nil {
		t.Fatal(err)
	}
	if err := b.Nodes[1].WaitRecords(ctx, rb.CID); err != nil {
		t.Fatal(err)
	}
	// Handed over directly, each is refused as another network's record.
	if _, err := a.Nodes[1].Ingest(ctx, rb.Raw, "", node.SourceSync); protocol.ReasonOf(err) != protocol.ReasonWrongNetwork {
		t.Fatalf("federation A took B's record: %v", err)
	}
	if _, err := b.Nodes[1].Ingest(ctx, ra.Raw, "", node.SourceSync); protocol.ReasonOf(err) != protocol.ReasonWrongNetwork {
		t.Fatalf("federation B took A's record: %v", err)
	}
	if _, err := b.Nodes[0].Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, x := range a.Nodes {
		if ok, _ := x.Store().Has(rb.CID); ok {
			t.Fatal("a node of A holds B's record")
		}
	}
	for _, y := range b.Nodes {
		if ok, _ := y.Store().Has(ra.CID); ok {
			t.Fatal("a node of B holds A's record")
		}
	}
}

// TestObserverHoldsEverything: five members and one observer; the
// observer holds and verifies every record; a write through it fails.
func TestObserverHoldsEverything(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 6, testnet.WithObservers(1), testnet.WithTopology(testnet.Ring), testnet.WithFollow(slug))
	if err := net.WaitTopicMesh(ctx, topic); err != nil {
		t.Fatal(err)
	}
	var cids []cid.Cid
	for i := range 5 {
		for j := range 4 {
			r, err := net.Nodes[i].Publish(ctx, protocol.KindStatement, topic, statement(i*10+j))
			if err != nil {
				t.Fatal(err)
			}
			cids = append(cids, r.CID)
		}
	}
	obs := net.Nodes[5]
	if err := obs.WaitRecords(ctx, cids...); err != nil {
		t.Fatal(err)
	}
	for _, c := range cids {
		r, err := obs.Record(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Verify(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := obs.Publish(ctx, protocol.KindStatement, topic, statement(99)); protocol.ReasonOf(err) != protocol.ReasonObserver {
		t.Fatalf("observer write: %v, want a refusal with reason observer", err)
	}
}

// TestKeyRotation: records signed before and after a rotation all verify
// after a restart; a record signed by the old key after the rotation is
// rejected.
func TestKeyRotation(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 3, testnet.WithDataDir(t.TempDir()), testnet.WithTopology(testnet.None), testnet.WithFollow(slug))
	nd := net.Nodes[0]
	old := net.SigningKey(1)
	newKey := seededKey(2)
	build := func(key ed25519.PrivateKey, kind, topic string, seq uint64, prev cid.Cid, body protocol.Body, at time.Duration, deps ...cid.Cid) *protocol.Record {
		t.Helper()
		r, err := protocol.Build(key, protocol.Draft{
			Network: nd.NetworkID(), Kind: kind, Topic: topic, Seq: seq, Prev: prev, Deps: deps,
			Time: time.Now().Add(-time.Hour + at), Body: body,
		})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	s1 := build(old, protocol.KindStatement, topic, 1, cid.Undef, statement(1), 0)
	rot := build(old, protocol.KindMemberRotate, protocol.TopicMembers, 1, cid.Undef,
		&protocol.MemberRotate{NewKey: newKey.Public().(ed25519.PublicKey)}, time.Minute)
	s2 := build(newKey, protocol.KindStatement, topic, 1, cid.Undef, statement(2), 2*time.Minute, rot.CID)
	s3 := build(old, protocol.KindStatement, topic, 2, s1.CID, statement(3), 3*time.Minute, rot.CID)
	for _, r := range []*protocol.Record{s1, rot, s2} {
		if _, err := nd.Ingest(ctx, r.Raw, "", node.SourceSync); err != nil {
			t.Fatalf("%s: %v", r.Env.Kind, err)
		}
	}
	if _, err := nd.Ingest(ctx, s3.Raw, "", node.SourceSync); protocol.ReasonOf(err) != protocol.ReasonNotMember {
		t.Fatalf("old key after rotation: %v, want not-member", err)
	}
	if err := net.Restart(ctx, 0); err != nil {
		t.Fatal(err)
	}
	nd = net.Nodes[0]
	for _, r := range []*protocol.Record{s1, rot, s2} {
		got, err := nd.Record(r.CID)
		if err != nil {
			t.Fatalf("%s lost in restart: %v", r.Env.Kind, err)
		}
		if err := got.Verify(); err != nil {
			t.Fatal(err)
		}
	}
	info, ok := nd.MemberSet().Lookup(newKey.Public().(ed25519.PublicKey))
	if !ok || len(info.Keys) != 2 {
		t.Fatalf("after restart the member's keys are %+v (found %v), want the old and the new key", info.Keys, ok)
	}
	if nd.MemberSet().IsMember(old.Public().(ed25519.PublicKey)) {
		t.Fatal("the rotated-out key is still a current member key")
	}
	if ok, _ := nd.Store().Has(s3.CID); ok {
		t.Fatal("the old key's late record was stored")
	}
}

// TestEquivocationEvidence: an author signs two records with the same
// seq; the node keeps both, every node flags and suspends the author, and
// the evidence record verifies on a node that saw only the evidence.
func TestEquivocationEvidence(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 3, testnet.WithFollow(slug))
	if err := net.WaitTopicMesh(ctx, protocol.TopicMembers); err != nil {
		t.Fatal(err)
	}
	cheat := net.SigningKey(2)
	pub := cheat.Public().(ed25519.PublicKey)
	mk := func(i int) *protocol.Record {
		r, err := protocol.Build(cheat, protocol.Draft{
			Network: net.Nodes[0].NetworkID(), Kind: protocol.KindStatement, Topic: topic,
			Seq: 1, Time: time.Now(), Body: statement(i),
		})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := mk(1), mk(2)
	if _, err := net.Nodes[0].Ingest(ctx, a.Raw, "", node.SourceSync); err != nil {
		t.Fatal(err)
	}
	// The second record at the same seq is kept too (both sides of an
	// equivocation are stored, forwarded and synced).
	if _, err := net.Nodes[0].Ingest(ctx, b.Raw, "", node.SourceSync); err != nil {
		t.Fatalf("second record at the same seq: %v, want it kept", err)
	}
	if got := counter(t, net.Nodes[0], "clearinghouse_equivocations_total", topic); got != 1 {
		t.Fatalf("equivocations counted: %v, want 1", got)
	}
	// Node 0 publishes the evidence; every node applies it and flags the author.
	sub := make([]*node.Subscription, len(net.Nodes))
	for i, nd := range net.Nodes {
		sub[i] = nd.Subscribe(func(e node.Event) bool { return e.Record.Env.Kind == protocol.KindMemberEquivocation })
		t.Cleanup(sub[i].Close)
	}
	var evidence *protocol.Record
	for i, nd := range net.Nodes {
		if len(nd.MemberSet().Flagged(pub)) > 0 {
			continue
		}
		select {
		case e := <-sub[i].C:
			evidence = e.Record
		case <-ctx.Done():
			t.Fatalf("node %d never received equivocation evidence", i)
		}
		if len(nd.MemberSet().Flagged(pub)) == 0 {
			t.Fatalf("node %d applied the evidence but did not flag the author", i)
		}
	}
	// The evidence suspends the author on every node.
	for i, nd := range net.Nodes {
		if nd.MemberSet().IsMember(pub) {
			t.Fatalf("node %d: the equivocator is still a member after the evidence", i)
		}
	}
	if evidence == nil {
		// Every node had applied the evidence before the subscriptions
		// began: read it from the store.
		ms, err := net.Nodes[0].Store().ByKind(protocol.KindMemberEquivocation, 0, 10)
		if err != nil || len(ms) == 0 {
			t.Fatalf("no evidence record stored on node 0 (%v)", err)
		}
		if evidence, err = net.Nodes[0].Record(ms[0].CID); err != nil {
			t.Fatal(err)
		}
	}
	// A node that saw nothing else verifies the evidence alone.
	fresh := testnet.New(t, 3, testnet.WithTopology(testnet.None))
	if _, err := fresh.Nodes[1].Ingest(ctx, evidence.Raw, "", node.SourceSync); err != nil {
		t.Fatalf("evidence alone: %v", err)
	}
	if len(fresh.Nodes[1].MemberSet().Flagged(pub)) == 0 {
		t.Fatal("a node that saw only the evidence does not flag the author")
	}
}

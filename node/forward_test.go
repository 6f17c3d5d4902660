package node_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// gossipPeer is a bare go-libp2p-pubsub peer on a node's record topic, with
// the node's message id and no message signing, as an implementation of
// another language would be.
type gossipPeer struct {
	ps    *pubsub.PubSub
	topic *pubsub.Topic
	sub   *pubsub.Subscription
	id    peer.ID
}

func newGossipPeer(t *testing.T, ctx context.Context, nd *node.Node, topic string) *gossipPeer {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	ps, err := pubsub.NewGossipSub(ctx, h,
		pubsub.WithMessageIdFn(func(m *pb.Message) string { return protocol.RecordCID(m.Data).KeyString() }),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign), pubsub.WithNoAuthor(),
		pubsub.WithFloodPublish(true), pubsub.WithMaxMessageSize(2<<20))
	if err != nil {
		t.Fatal(err)
	}
	tp, err := ps.Join(protocol.PubsubTopic(nd.NetworkID(), topic))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := tp.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Cancel)
	if err := h.Connect(ctx, nd.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	return &gossipPeer{ps: ps, topic: tp, sub: sub, id: h.ID()}
}

// waitPeer waits until the gossip peer sees p on its topic.
func (r *gossipPeer) waitPeer(ctx context.Context, t *testing.T, p peer.ID) {
	t.Helper()
	h, err := r.topic.EventHandler()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Cancel()
	for {
		ev, err := h.NextPeerEvent(ctx)
		if err != nil {
			t.Fatalf("peer %s never joined the topic: %v", p, err)
		}
		if ev.Type == pubsub.PeerJoin && ev.Peer == p {
			return
		}
	}
}

// next returns the data of the next message the gossip peer receives from
// others.
func (r *gossipPeer) next(ctx context.Context, t *testing.T) []byte {
	t.Helper()
	for {
		m, err := r.sub.Next(ctx)
		if err != nil {
			t.Fatalf("gossip peer: %v", err)
		}
		if m.ReceivedFrom != r.id {
			return m.Data
		}
	}
}

// TestIncompletePastNotForwarded: a record whose parent the node lacks is
// not forwarded to the node's other peers; once the parent arrives, the
// node stores both and forwards both. Two raw gossipsub peers: one sends,
// the other watches what the node sends it.
func TestIncompletePastNotForwarded(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 2, testnet.WithTopology(testnet.None), testnet.WithFollow(slug))
	nd := net.Nodes[0]
	sender := newGossipPeer(t, ctx, nd, topic)
	watcher := newGossipPeer(t, ctx, nd, topic)
	sender.waitPeer(ctx, t, nd.ID())
	if err := nd.WaitMeshPeers(ctx, topic, 2); err != nil {
		t.Fatal(err)
	}
	key := net.SigningKey(1) // a member's key; node 1 itself stays offline
	t0 := time.Now().Add(-time.Minute)
	parent, err := protocol.Build(key, protocol.Draft{Network: nd.NetworkID(), Kind: protocol.KindStatement, Topic: topic,
		Seq: 1, Time: t0, Body: &protocol.Statement{Title: "parent", Text: "p"}})
	if err != nil {
		t.Fatal(err)
	}
	child, err := protocol.Build(key, protocol.Draft{Network: nd.NetworkID(), Kind: protocol.KindStatement, Topic: topic,
		Seq: 2, Prev: parent.CID, Time: t0.Add(time.Second), Body: &protocol.Statement{Title: "child", Text: "c"}})
	if err != nil {
		t.Fatal(err)
	}
	rej, stop := nd.SubscribeRejections()
	defer stop()
	if err := sender.topic.Publish(ctx, child.Raw); err != nil {
		t.Fatal(err)
	}
	// The node holds the child as pending (a missing-deps refusal).
	for r := range rej {
		if r.CID.Equals(child.CID) && r.Reason == protocol.ReasonMissingDeps {
			break
		}
	}
	if err := sender.topic.Publish(ctx, parent.Raw); err != nil {
		t.Fatal(err)
	}
	// The watcher gets both; the child only once the node holds the
	// parent. (Had the node forwarded the child when it arrived, the
	// watcher would have it before the parent was even sent.)
	got := map[string]bool{}
	for len(got) < 2 {
		data := watcher.next(ctx, t)
		if bytes.Equal(data, child.Raw) {
			if ok, err := nd.Store().Has(parent.CID); err != nil || !ok {
				t.Fatalf("the node forwarded the child before it held its parent (%v)", err)
			}
		} else if !bytes.Equal(data, parent.Raw) {
			t.Fatalf("the watcher got %s", protocol.RecordCID(data))
		}
		got[string(data)] = true
	}
	if err := nd.WaitRecords(ctx, parent.CID, child.CID); err != nil {
		t.Fatal(err)
	}
}

// TestOversizeFrameCounted: a 70 KB gossip message (above the record
// limit, below the frame limit) is refused and counted with its reason,
// and the same peer's next valid record is still delivered: the stream
// from the peer is not dropped.
func TestOversizeFrameCounted(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 2, testnet.WithTopology(testnet.None), testnet.WithFollow(slug))
	nd := net.Nodes[0]
	sender := newGossipPeer(t, ctx, nd, topic)
	sender.waitPeer(ctx, t, nd.ID())
	rej, stop := nd.SubscribeRejections()
	defer stop()
	big := bytes.Repeat([]byte{0xa5}, 70<<10)
	if err := sender.topic.Publish(ctx, big); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-rej:
		if r.Reason != protocol.ReasonOversize || r.Source != node.SourceGossip {
			t.Fatalf("rejection %+v, want oversize from gossip", r)
		}
	case <-ctx.Done():
		t.Fatal("the 70 KB message was never counted")
	}
	rec, err := protocol.Build(net.SigningKey(1), protocol.Draft{Network: nd.NetworkID(), Kind: protocol.KindStatement, Topic: topic,
		Seq: 1, Time: time.Now().Add(-time.Second), Body: &protocol.Statement{Title: "after", Text: "still delivered"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sender.topic.Publish(ctx, rec.Raw); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := nd.WaitRecords(wctx, rec.CID); err != nil {
		t.Fatalf("the peer's next record after the oversize one: %v", err)
	}
}

package node_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/ipfs/go-cid"

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

// newSenderWatcher connects two raw gossipsub peers to nd on the record
// topic, one to send and one to watch what nd forwards, and waits until
// both are in nd's mesh.
func newSenderWatcher(t *testing.T, ctx context.Context, nd *node.Node) (sender, watcher *gossipPeer) {
	t.Helper()
	sender = newGossipPeer(t, ctx, nd, topic)
	watcher = newGossipPeer(t, ctx, nd, topic)
	sender.waitPeer(ctx, t, nd.ID())
	if err := nd.WaitMeshPeers(ctx, topic, 2); err != nil {
		t.Fatal(err)
	}
	return sender, watcher
}

// TestIncompletePastNotForwarded: a record whose parent the node lacks is
// not forwarded to the node's other peers; once the parent arrives, the
// node stores both and forwards both. Two raw gossipsub peers: one sends,
// the other watches what the node sends it.
func TestIncompletePastNotForwarded(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 2, testnet.WithTopology(testnet.None), testnet.WithFollow(slug))
	nd := net.Nodes[0]
	sender, watcher := newSenderWatcher(t, ctx, nd)
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

// TestForwardedBeforeDurable: a gossiped record is forwarded once checked,
// while its durable write (and every one queued before it) still waits for
// the disk, up to and including the batch that finds the queue of durable
// writes full (maxCommitsInFlight batches behind the one being synced); no
// event announces a record before it is durable; once the disk answers,
// every record is stored and the one held back is forwarded too.
func TestForwardedBeforeDurable(t *testing.T) {
	ctx := testContext(t)
	// The write-ahead log's syncs wait while hold is set.
	var hold atomic.Bool
	release := make(chan struct{})
	disk := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			if hold.Load() && strings.HasSuffix(op.Path, ".log") {
				<-release
			}
		}
		return nil
	}))
	net := testnet.New(t, 2, testnet.WithTopology(testnet.None), testnet.WithFollow(slug),
		testnet.WithNodeOptions(func(i int) []node.Option {
			if i == 0 {
				return []node.Option{node.WithStoreFS(disk)}
			}
			return nil
		}))
	var once sync.Once
	unhold := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unhold) // before the network closes
	nd := net.Nodes[0]
	sender, watcher := newSenderWatcher(t, ctx, nd)
	events := nd.SubscribeBuffered(64, func(e node.Event) bool { return e.Record.Env.Topic == topic })
	defer events.Close()

	key := net.SigningKey(1) // a member's key; node 1 itself stays offline
	t0 := time.Now().Add(-time.Minute)
	var recs []*protocol.Record
	prev := cid.Undef
	// The first batch is being synced, maxCommitsInFlight wait behind it,
	// and the next one finds them all queued: each is forwarded.
	forwarded := node.MaxCommitsInFlight + 2
	for i := range forwarded + 1 {
		r, err := protocol.Build(key, protocol.Draft{Network: nd.NetworkID(), Kind: protocol.KindStatement, Topic: topic,
			Seq: uint64(i + 1), Prev: prev, Time: t0.Add(time.Duration(i) * time.Second), Body: statement(i)})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
		prev = r.CID
	}
	hold.Store(true)
	// One at a time, so that each is a batch of its own.
	for i, r := range recs[:forwarded] {
		if err := sender.topic.Publish(ctx, r.Raw); err != nil {
			t.Fatal(err)
		}
		if data := watcher.next(ctx, t); !bytes.Equal(data, r.Raw) {
			t.Fatalf("record %d: the watcher got %s, want %s", i+1, protocol.RecordCID(data), r.CID)
		}
	}
	select {
	case e := <-events.C:
		t.Fatalf("an event announced %s while no write was durable", e.Record.CID)
	default:
	}
	// The last one waits for the queue: it is forwarded once the disk
	// answers, as the others are stored.
	if err := sender.topic.Publish(ctx, recs[forwarded].Raw); err != nil {
		t.Fatal(err)
	}
	unhold()
	if data := watcher.next(ctx, t); !bytes.Equal(data, recs[forwarded].Raw) {
		t.Fatalf("the watcher got %s, want the last record", protocol.RecordCID(data))
	}
	for i, r := range recs {
		select {
		case e := <-events.C:
			if !e.Record.CID.Equals(r.CID) {
				t.Fatalf("event %d is %s, want %s (in order)", i+1, e.Record.CID, r.CID)
			}
		case <-ctx.Done():
			t.Fatalf("record %d never announced as stored", i+1)
		}
	}
	if got := histogramCount(t, nd, "clearinghouse_gossip_forward_seconds"); got != uint64(len(recs)) {
		t.Errorf("gossip_forward_seconds counted %d records, want %d", got, len(recs))
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
	// Both directions: the sender may learn the node's subscription before
	// its own stream to the node is open, and gossipsub drops what it
	// publishes until then; the node sees the sender's subscription only
	// once that stream is open.
	if err := nd.WaitTopicPeers(ctx, topic, 1); err != nil {
		t.Fatal(err)
	}
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

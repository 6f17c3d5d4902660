package node_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// syncOpener is a raw libp2p host connected to nd that opens sync streams
// to it.
func syncOpener(t *testing.T, ctx context.Context, nd *node.Node) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if err := h.Connect(ctx, nd.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	return h
}

func openSync(t *testing.T, ctx context.Context, h host.Host, nd *node.Node) network.Stream {
	t.Helper()
	s, err := h.NewStream(ctx, nd.ID(), protocol.SyncProtocol(nd.NetworkID()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Reset() })
	return s
}

// TestSyncItemSetCache: a peer asking about hundreds of topic names the
// node does not follow leaves no cached item set behind, and one stream
// may ask about at most MaxStreamTopics topics.
func TestSyncItemSetCache(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 1, testnet.WithFollow(slug), testnet.WithNodeOptions(noPeriodicSync))
	nd := net.Nodes[0]
	publishRoundRobin(t, ctx, nd, []string{topic}, 3)
	h := syncOpener(t, ctx, nd)
	limit := node.DefaultSyncLimits().MaxStreamTopics
	asked := 0
	for stream := 0; asked < 200; stream++ {
		s := openSync(t, ctx, h, nd)
		r := bufio.NewReader(s)
		for i := 0; ; i++ {
			name := topic
			if i > 0 {
				name = protocol.IssueTopic(fmt.Sprintf("made-up-%d-%d", stream, i))
			}
			set := protocol.NewItemSet(nil)
			if err := protocol.WriteFrame(s, &protocol.SyncRequest{Type: protocol.SyncReconcile, Topic: name, Ranges: set.Initiate()}); err != nil {
				t.Fatal(err)
			}
			var resp protocol.SyncResponse
			if err := protocol.ReadFrame(r, &resp); err != nil {
				t.Fatal(err)
			}
			if i == limit {
				if resp.Error == "" {
					t.Fatalf("stream %d answered topic %d of one stream, limit %d", stream, i+1, limit)
				}
				break
			}
			if resp.Error != "" {
				t.Fatalf("stream %d topic %d: %s", stream, i, resp.Error)
			}
			if i == 0 && len(resp.Ranges) == 0 {
				t.Fatal("no answer about the followed topic")
			}
			asked++
		}
	}
	cached := node.CachedItemSets(nd)
	for _, c := range cached {
		if !slices.Contains(nd.Topics(), c) {
			t.Fatalf("item set of %q cached: the node does not follow it", c)
		}
	}
	if len(cached) > len(nd.Topics()) {
		t.Fatalf("%d item sets cached for %d topics followed", len(cached), len(nd.Topics()))
	}
}

// TestSyncFrameMemory: peers announcing maximal request frames and then
// stalling get at most FrameMemory of frames read at once across all of
// them; frames beyond it are refused ("busy"), stalled ones are reset after
// RequestTimeout and the memory is returned. A stall is a strike: the third
// within the penalty period penalises the peer.
func TestSyncFrameMemory(t *testing.T) {
	ctx := testContext(t)
	limits := node.DefaultSyncLimits()
	limits.RequestTimeout = time.Second
	limits.FrameMemory = 2 * protocol.SyncMaxFrame
	net := testnet.New(t, 1, testnet.WithFollow(slug), testnet.WithNodeOptions(func(int) []node.Option {
		return []node.Option{node.WithSyncInterval(0), node.WithSyncLimits(limits)}
	}))
	nd := net.Nodes[0]
	const peers, perPeer = 3, 2 // within the per-peer inbound slots
	var streams []network.Stream
	for range peers {
		h := syncOpener(t, ctx, nd)
		for range perPeer {
			s := openSync(t, ctx, h, nd)
			var hdr [binary.MaxVarintLen64]byte
			k := binary.PutUvarint(hdr[:], protocol.SyncMaxFrame)
			// A maximal frame announced, 100 bytes of it sent.
			if _, err := s.Write(append(hdr[:k], make([]byte, 100)...)); err != nil {
				t.Fatal(err)
			}
			streams = append(streams, s)
		}
	}
	// Every stream ends: reset at once (busy) or after the stall.
	for i, s := range streams {
		if !reset(s, 10*limits.RequestTimeout) {
			t.Fatalf("stream %d ended cleanly, want a reset", i)
		}
	}
	busy := counter(t, nd, "clearinghouse_sync_refused_streams_total", "busy")
	stalled := counter(t, nd, "clearinghouse_sync_bad_records_total", "stall")
	if busy != peers*perPeer-2 || stalled != 0 {
		t.Fatalf("busy %v, stall penalties %v; want %d frames refused and no penalty for one stall", busy, stalled, peers*perPeer-2)
	}
	if g := plainGauge(t, nd, "clearinghouse_sync_frame_memory_bytes"); g != 0 {
		t.Fatalf("frame memory %v after every stream ended", g)
	}
	// One peer stalls twice more: the third stall penalises it.
	h := syncOpener(t, ctx, nd)
	for range 3 {
		s := openSync(t, ctx, h, nd)
		if _, err := s.Write([]byte{10, 0xa1}); err != nil { // 10 bytes announced, 1 sent
			t.Fatal(err)
		}
		if !reset(s, 10*limits.RequestTimeout) {
			t.Fatal("stalled stream ended cleanly, want a reset")
		}
	}
	if got := counter(t, nd, "clearinghouse_sync_bad_records_total", "stall"); got != 1 {
		t.Fatalf("stall penalties %v after three stalls of one peer, want 1", got)
	}
}

// reset reads s to its end and reports whether it ended in an error (a
// reset) rather than a clean close.
func reset(s network.Stream, within time.Duration) bool {
	_ = s.SetReadDeadline(time.Now().Add(within))
	_, err := io.ReadAll(s)
	return err != nil
}

// TestSyncBadRequestPenalised: an opener that sends a malformed request is
// penalised, and its further sync streams are refused.
func TestSyncBadRequestPenalised(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 1, testnet.WithFollow(slug), testnet.WithNodeOptions(noPeriodicSync))
	nd := net.Nodes[0]
	h := syncOpener(t, ctx, nd)
	s := openSync(t, ctx, h, nd)
	if _, err := s.Write([]byte{3, 0xff, 0xff, 0xff}); err != nil { // a frame of 3 bytes of bad CBOR
		t.Fatal(err)
	}
	if _, err := io.ReadAll(s); err == nil {
		t.Fatal("stream with a malformed request ended cleanly")
	}
	if got := counter(t, nd, "clearinghouse_sync_bad_records_total", "bad-request"); got != 1 {
		t.Fatalf("bad-request penalties %v, want 1", got)
	}
	s = openSync(t, ctx, h, nd)
	if err := protocol.WriteFrame(s, &protocol.SyncRequest{Type: protocol.SyncReconcile, Topic: topic, Ranges: protocol.NewItemSet(nil).Initiate()}); err != nil {
		t.Fatal(err)
	}
	var resp protocol.SyncResponse
	if err := protocol.ReadFrame(bufio.NewReader(s), &resp); err == nil {
		t.Fatalf("penalised peer served: %+v", resp)
	}
	if got := counter(t, nd, "clearinghouse_sync_refused_streams_total", "penalised"); got != 1 {
		t.Fatalf("refused{penalised} = %v, want 1", got)
	}
}

// plainGauge returns the value of a gauge without labels.
func plainGauge(t *testing.T, nd *node.Node, name string) float64 {
	t.Helper()
	return onlyMetric(t, nd, name).GetGauge().GetValue()
}

// TestSyncMaxNeedContinues: a catch-up larger than MaxNeed completes in
// several sessions, each stopping at the budget, both in the background
// and through an explicit Sync.
func TestSyncMaxNeedContinues(t *testing.T) {
	ctx := testContext(t)
	limits := node.DefaultSyncLimits()
	limits.MaxNeed = 100
	net := testnet.New(t, 3, testnet.WithTopology(testnet.None), testnet.WithFollow(slug),
		testnet.WithNodeOptions(func(int) []node.Option {
			return []node.Option{node.WithSyncInterval(0), node.WithSyncLimits(limits)}
		}))
	cids := publishRoundRobin(t, ctx, net.Nodes[0], []string{topic}, 450)
	// In the background, on connection.
	if err := net.Connect(ctx, 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := net.Nodes[1].WaitRecords(ctx, cids...); err != nil {
		t.Fatal(err)
	}
	// Explicitly: node 2 connects to node 0 only through an explicit sync
	// (its identify-triggered session may run too; the sync must not end
	// before everything is stored).
	if err := net.Connect(ctx, 2, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Nodes[2].Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := topicCount(t, net.Nodes[2], topic); got < len(cids) {
		t.Fatalf("explicit sync stored %d of %d records", got, len(cids))
	}
	sameState(t, net, []string{topic})
}

// TestSyncOutboundWithinPeerSlots: a node that syncs many topics with one
// peer at once (on connect, a full round, POST /sync) keeps to the streams
// that peer serves at once, so none of its sessions is reset for want of
// a slot (the peer would count it as refused, and the session would fail).
func TestSyncOutboundWithinPeerSlots(t *testing.T) {
	ctx := testContext(t)
	slugs := []string{"slots-a", "slots-b", "slots-c", "slots-d", "slots-e"}
	net := testnet.New(t, 2, testnet.WithFollow(slugs...), testnet.WithNodeOptions(noPeriodicSync))
	var topics []string
	for _, s := range slugs {
		topics = append(topics, protocol.IssueTopic(s))
	}
	publishRoundRobin(t, ctx, net.Nodes[0], topics, 40)
	for _, s := range slugs {
		topics = append(topics, protocol.PublicTopic(s))
	}
	topics = append(topics, protocol.TopicMembers, protocol.TopicIndex)
	// Twelve topics at once: twice the streams a peer serves or queues.
	errs := make(chan error, len(topics))
	for _, tp := range topics {
		go func() {
			_, err := node.SyncTopicWith(ctx, net.Nodes[1], net.Nodes[0].ID(), tp)
			errs <- err
		}()
	}
	for range topics {
		if err := <-errs; err != nil {
			t.Errorf("session: %v", err)
		}
	}
	if got := counter(t, net.Nodes[0], "clearinghouse_sync_refused_streams_total", "slots"); got != 0 {
		t.Fatalf("the peer refused %v of this node's streams for want of a slot", got)
	}
}

package node_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// TestAbandonedPublishesDoNotFork: API clients that go away mid-publish
// (contexts cancelled after 0.3-6 ms) while others publish normally never
// make the node sign two records at one seq, every record the node stored
// reaches its peer by gossip, and the peer stores every one (what its
// gossipsub drops before checking is counted, and sync fetches it). Before the apply loop owned the chain
// position, Publish released it when its caller left while the record was
// still queued, and the next publish signed the same seq again.
func TestAbandonedPublishesDoNotFork(t *testing.T) {
	ctx := testContext(t)
	// No periodic sync. Node 1 can still fetch a record by sync before
	// its gossiped copy is validated (a gossip gap: validation runs
	// concurrently, so a child can be checked before its parent), so
	// what shows that node 0 gossiped a record is node 1's gossipsub
	// receiving it, whichever path stored it first; its tracer also
	// counts what gossipsub drops before node 1's checks.
	received := newGossipRecorder()
	net := testnet.New(t, 2, testnet.WithFollow(slug),
		testnet.WithNodeOptions(func(i int) []node.Option {
			o := []node.Option{node.WithSyncInterval(time.Hour)}
			if i == 1 {
				o = append(o, node.WithGossipTracer(received))
			}
			return o
		}))
	if err := net.WaitTopicMesh(ctx, topic); err != nil {
		t.Fatal(err)
	}
	a, b := net.Nodes[0], net.Nodes[1]
	// A fork of node 0's chain would be kept and counted (equivocations).
	equivocations := func() float64 {
		return counter(t, a, "clearinghouse_equivocations_total", topic) + counter(t, b, "clearinghouse_equivocations_total", topic)
	}

	body := &protocol.Statement{Title: "t", Text: "abandoned or not"}
	deadline := time.Now().Add(2 * time.Second)
	if testing.Short() {
		deadline = time.Now().Add(500 * time.Millisecond)
	}
	var wg sync.WaitGroup
	var abandoned, normal atomic.Int64
	// At most maxPublishes in all: gossipsub's queues toward a peer are
	// bounded (DefaultPubsubQueue) and drop what does not fit, which sync
	// repairs in a real node (disabled here); the test is about the
	// chain position, not about overflowing gossipsub.
	const maxPublishes = 3000
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for time.Now().Before(deadline) && abandoned.Load()+normal.Load() < maxPublishes {
				if w%2 == 0 {
					// 0.3 to 6 ms, as a client that gives up.
					d := time.Duration(300+rng.IntN(5700)) * time.Microsecond
					cctx, cancel := context.WithTimeout(ctx, d)
					_, _ = a.Publish(cctx, protocol.KindStatement, topic, body)
					cancel()
					abandoned.Add(1)
					continue
				}
				if _, err := a.Publish(ctx, protocol.KindStatement, topic, body); err != nil {
					t.Errorf("publish: %v", err)
					return
				}
				normal.Add(1)
			}
		})
	}
	wg.Wait()
	// A last publish: the apply loop takes requests in order, so once it
	// returns every abandoned request the loop took is stored.
	last, err := a.Publish(ctx, protocol.KindStatement, topic, body)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d abandoned and %d normal publishes; last seq %d", abandoned.Load(), normal.Load(), last.Env.Seq)

	// The chain is whole: seq 1..last, one record each.
	pub := net.PublicKey(0)
	var cids []cid.Cid
	for seq := uint64(1); seq <= last.Env.Seq; seq++ {
		c, err := a.Store().ChainAt(pub, topic, seq)
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		cids = append(cids, c)
	}
	if n := equivocations(); n != 0 {
		t.Fatalf("%v equivocations", n)
	}
	// Node 0 gossiped every record it stored: node 1's gossipsub received
	// each.
	if err := received.wait(ctx, cids); err != nil {
		t.Fatal(err)
	}
	// Node 1 checks what it receives, but at this rate (thousands of
	// records a second from one peer) gossipsub may drop some before its
	// validator sees them: more validations of the topic in flight than
	// the validator may run. Those are counted, never silent, and sync
	// fetches them again (periodic sync is off here, so the test runs
	// sessions itself).
	for {
		rep, err := node.SyncTopicWith(ctx, b, a.ID(), topic)
		if err != nil {
			t.Fatalf("sync: %v", err)
		}
		if rep.Missing == 0 {
			break
		}
	}
	if err := b.WaitRecords(ctx, cids...); err != nil {
		t.Fatalf("node 1: %v", err)
	}
	dropped := received.droppedCount()
	if counted := counter(t, b, "clearinghouse_gossip_unchecked_total", "validation-throttled") +
		counter(t, b, "clearinghouse_gossip_unchecked_total", "validation-queue-full"); counted < float64(dropped) {
		t.Fatalf("gossipsub dropped %d records before node 1's checks, node 1 counted %v", dropped, counted)
	}
	t.Logf("gossipsub dropped %d records before node 1's checks (counted); sync fetched them", dropped)
	if n := equivocations(); n != 0 {
		t.Fatalf("%v equivocations", n)
	}
}

// gossipRecorder is a gossipsub tracer that records the CID of every
// message the node receives: each record gossip brought, whether or not
// the node already held it or got to validate it.
type gossipRecorder struct {
	testnet.NopGossipTracer
	mu      sync.Mutex
	seen    map[cid.Cid]bool
	dropped int           // messages gossipsub dropped before the validator saw them
	changed chan struct{} // closed and replaced on every new CID
}

func newGossipRecorder() *gossipRecorder {
	return &gossipRecorder{seen: map[cid.Cid]bool{}, changed: make(chan struct{})}
}

func (g *gossipRecorder) RejectMessage(_ *pubsub.Message, reason string) {
	if reason != pubsub.RejectValidationThrottled && reason != pubsub.RejectValidationQueueFull {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dropped++
}

func (g *gossipRecorder) droppedCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.dropped
}

func (g *gossipRecorder) RecvRPC(rpc *pubsub.RPC) {
	if len(rpc.Publish) == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, m := range rpc.Publish {
		g.seen[protocol.RecordCID(m.Data)] = true
	}
	close(g.changed)
	g.changed = make(chan struct{})
}

// wait returns once every one of cids was received, or an error naming
// how many were not when ctx ends.
func (g *gossipRecorder) wait(ctx context.Context, cids []cid.Cid) error {
	for {
		g.mu.Lock()
		missing := 0
		for _, c := range cids {
			if !g.seen[c] {
				missing++
			}
		}
		changed := g.changed
		g.mu.Unlock()
		if missing == 0 {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%d stored records never gossiped to node 1", missing)
		}
	}
}

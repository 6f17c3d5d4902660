package node_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// TestAbandonedPublishesDoNotFork: API clients that go away mid-publish
// (contexts cancelled after 0.3-6 ms) while others publish normally never
// make the node sign two records at one seq, and every record the node
// stored reaches its peer by gossip. Before the apply loop owned the chain
// position, Publish released it when its caller left while the record was
// still queued, and the next publish signed the same seq again.
func TestAbandonedPublishesDoNotFork(t *testing.T) {
	ctx := testContext(t)
	// No periodic sync: what node 1 gets, it gets by gossip.
	net := testnet.New(t, 2, testnet.WithFollow(slug),
		testnet.WithNodeOptions(func(int) []node.Option { return []node.Option{node.WithSyncInterval(time.Hour)} }))
	if err := net.WaitTopicMesh(ctx, topic); err != nil {
		t.Fatal(err)
	}
	a, b := net.Nodes[0], net.Nodes[1]
	// A fork of node 0's chain would be kept and counted (equivocations).
	equivocations := func() float64 {
		return counter(t, a, "clearinghouse_equivocations_total", topic) + counter(t, b, "clearinghouse_equivocations_total", topic)
	}
	gossiped := make(chan cid.Cid, 1<<14)
	// A buffer for every record the test can publish: events beyond a
	// subscriber's buffer are dropped, and a drop here is not a record
	// that was never gossiped.
	sub := b.SubscribeBuffered(1<<14, func(e node.Event) bool { return e.Source == node.SourceGossip && e.Record.Env.Topic == topic })
	defer sub.Close()
	go func() {
		for e := range sub.C {
			gossiped <- e.Record.CID
		}
	}()

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
	seen := map[cid.Cid]bool{}
	for seq := uint64(1); seq <= last.Env.Seq; seq++ {
		c, err := a.Store().ChainAt(pub, topic, seq)
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		seen[c] = true
	}
	if n := equivocations(); n != 0 {
		t.Fatalf("%v equivocations", n)
	}
	// Every stored record reaches node 1 by gossip.
	for len(seen) > 0 {
		select {
		case c := <-gossiped:
			delete(seen, c)
		case <-ctx.Done():
			t.Fatalf("%d stored records never gossiped", len(seen))
		}
	}
	if n := equivocations(); n != 0 {
		t.Fatalf("%v equivocations", n)
	}
}

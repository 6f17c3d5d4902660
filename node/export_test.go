package node

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// IngestFrom ingests raw as if peer from had served it by sync.
func IngestFrom(ctx context.Context, n *Node, raw []byte, topic string, from peer.ID) (*protocol.Record, error) {
	wait, _ := n.ingestMany(ctx, [][]byte{raw}, topic, origin{src: SourceSync, peer: from}, nil)
	r := wait()[0]
	return r.rec, r.err
}

// ExpirePending runs the pending set's expiry as of now in the apply loop.
func ExpirePending(ctx context.Context, n *Node, now time.Time) error {
	return n.ing.read(ctx, func(*fedState) error {
		n.ing.pend.expire(now)
		n.ing.pendingN.Store(int64(len(n.ing.pend.recs)))
		return nil
	})
}

// PendingByPeer returns how many records wait for their past, by the peer
// they came from ("" for local), as the apply loop holds them.
func PendingByPeer(ctx context.Context, n *Node) (map[peer.ID]int, error) {
	out := map[peer.ID]int{}
	err := n.ing.read(ctx, func(*fedState) error {
		for id, pp := range n.ing.pend.peers {
			out[id] = pp.n
		}
		return nil
	})
	return out, err
}

// GossipPenalty returns the application-specific part of p's gossip score.
func GossipPenalty(n *Node, p peer.ID) float64 { return n.penalties.score(p) }

// ItemSetFingerprints returns the fingerprint of the whole reconciliation
// set of topic as a sync session gets it (cached, grown as records
// arrive) and as built afresh from the store.
func ItemSetFingerprints(n *Node, topic string) (session, fresh []byte, size int, err error) {
	a, err := n.sync.itemSet(topic)
	if err != nil {
		return nil, nil, 0, err
	}
	b, err := buildItemSet(n.store, topic)
	if err != nil {
		return nil, nil, 0, err
	}
	return a.Initiate()[0].FP, b.Initiate()[0].FP, a.Len(), nil
}

// CachedItemSets returns the topics whose reconciliation sets the node
// keeps cached, for tests of the cache's bounds.
func CachedItemSets(n *Node) []string {
	s := n.sync
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.sets))
	for t := range s.sets {
		out = append(out, t)
	}
	return out
}

// SyncTopicWith runs one sync session of topic with p.
func SyncTopicWith(ctx context.Context, n *Node, p peer.ID, topic string) (SyncReport, error) {
	return n.sync.syncTopic(ctx, p, topic, 0)
}

// SyncSettledWith runs one sync session of topic with p that leaves out
// the records claimed within the node's recent horizon, as the periodic
// round of a changing topic does; it returns the horizon too.
func SyncSettledWith(ctx context.Context, n *Node, p peer.ID, topic string) (SyncReport, time.Duration, error) {
	h := n.sync.recentHorizon()
	rep, err := n.sync.syncTopic(ctx, p, topic, n.opts.clock().Add(-h).UnixMilli())
	return rep, h, err
}

// PullBackTopics returns the topics this node pulled back from a peer
// after serving its reconciliation (reverseSync), sorted.
func PullBackTopics(n *Node) []string {
	sc := &n.sync.sched
	sc.mu.Lock()
	defer sc.mu.Unlock()
	var out []string
	for k := range sc.reverse {
		_, t, _ := strings.Cut(k, "|")
		out = append(out, t)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// MaxCommitsInFlight is how many batches the apply loop queues for their
// durable write before it waits.
const MaxCommitsInFlight = maxCommitsInFlight

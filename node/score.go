package node

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Peer scoring. The one behaviour gossipsub can judge for us is the
// delivery of invalid messages (records our validator rejects): each one
// costs the forwarding peer heavily, and a peer below the graylist threshold
// is ignored. The other score components are left neutral because record
// rates on governance topics are low and bursty, which makes delivery-rate
// expectations misfire. app is the application-specific score (P5, weight
// 1): nil for none; a node passes its pending-set penalties.
func peerScoreParams(app func(peer.ID) float64) *pubsub.PeerScoreParams {
	if app == nil {
		app = func(peer.ID) float64 { return 0 }
	}
	return &pubsub.PeerScoreParams{
		Topics:                      map[string]*pubsub.TopicScoreParams{},
		AppSpecificScore:            app,
		AppSpecificWeight:           1,
		IPColocationFactorWeight:    0,
		IPColocationFactorThreshold: 1,
		BehaviourPenaltyWeight:      -10,
		BehaviourPenaltyThreshold:   6,
		BehaviourPenaltyDecay:       pubsub.ScoreParameterDecay(10 * time.Minute),
		DecayInterval:               time.Second,
		DecayToZero:                 0.01,
		RetainScore:                 10 * time.Minute,
	}
}

func peerScoreThresholds() *pubsub.PeerScoreThresholds {
	return &pubsub.PeerScoreThresholds{
		GossipThreshold:             -100,
		PublishThreshold:            -500,
		GraylistThreshold:           GossipGraylistThreshold,
		AcceptPXThreshold:           10,
		OpportunisticGraftThreshold: 1,
	}
}

// topicScoreParams penalises invalid deliveries on a topic (P4): ten
// rejected records from one peer put it below the gossip threshold.
func topicScoreParams() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		TopicWeight:                     1,
		TimeInMeshQuantum:               time.Second,
		TimeInMeshCap:                   1,
		FirstMessageDeliveriesDecay:     pubsub.ScoreParameterDecay(time.Hour),
		FirstMessageDeliveriesCap:       1,
		MeshMessageDeliveriesDecay:      pubsub.ScoreParameterDecay(time.Hour),
		MeshMessageDeliveriesCap:        1,
		MeshMessageDeliveriesThreshold:  1,
		MeshMessageDeliveriesWindow:     10 * time.Millisecond,
		MeshMessageDeliveriesActivation: time.Hour,
		MeshFailurePenaltyDecay:         pubsub.ScoreParameterDecay(time.Hour),
		InvalidMessageDeliveriesWeight:  -2,
		InvalidMessageDeliveriesDecay:   pubsub.ScoreParameterDecay(time.Hour),
	}
}

// penalties is the application-specific part of a peer's gossip score:
// what gossipsub cannot see, because the record was valid on its own and
// the verdict came later. Each strike (a record from the peer that waited
// for a past the peer never served until it expired; a non-member's record
// above the peer's PerPeerStrangers quota, pending.go) costs penaltyStrike, decaying with a half-life of penaltyHalfLife; so
// about 1000/penaltyStrike strikes in a short time graylist the peer.
// Safe for concurrent use: gossipsub reads scores on its own goroutine.
type penalties struct {
	clock func() time.Time
	mu    sync.Mutex
	peers map[peer.ID]penalty
	// any is set once a peer has been struck. gossipsub asks for a score
	// on every RPC and every message it receives; until a peer misbehaves
	// (on most nodes, never) the answer is 0 without the clock or the
	// lock, which cost about 7 µs of CPU per delivered record, 100 nodes
	// at 10 records/s (docs/benchmarks.md, section 9).
	any   atomic.Bool
	count func(reason string) // counts a strike, by reason
}

type penalty struct {
	v  float64 // score points, as of at
	at time.Time
}

const (
	// penaltyStrike is the score one strike costs.
	penaltyStrike = 20
	// penaltyHalfLife is how fast a penalty decays.
	penaltyHalfLife = 10 * time.Minute
	// maxPenalised bounds the peers with a penalty kept; beyond it the
	// smallest penalties are forgotten.
	maxPenalised = 4096
)

func newPenalties(clock func() time.Time, count func(string)) *penalties {
	return &penalties{clock: clock, peers: map[peer.ID]penalty{}, count: count}
}

func (p penalty) now(t time.Time) float64 {
	return p.v * math.Exp2(-float64(t.Sub(p.at))/float64(penaltyHalfLife))
}

// strike penalises peer p once, for reason (a metrics label).
func (ps *penalties) strike(p peer.ID, reason string) {
	now := ps.clock()
	ps.mu.Lock()
	if _, ok := ps.peers[p]; !ok && len(ps.peers) >= maxPenalised {
		for q, x := range ps.peers {
			if x.now(now) < penaltyStrike {
				delete(ps.peers, q)
			}
		}
	}
	ps.peers[p] = penalty{v: ps.peers[p].now(now) + penaltyStrike, at: now}
	ps.any.Store(true)
	ps.mu.Unlock()
	if ps.count != nil {
		ps.count(reason)
	}
}

// score returns p's application-specific score: 0 or negative.
func (ps *penalties) score(p peer.ID) float64 {
	if !ps.any.Load() {
		return 0
	}
	now := ps.clock()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	x, ok := ps.peers[p]
	if !ok {
		return 0
	}
	return -x.now(now)
}

// scoreReport is gossipsub's last report of peer scores; next is closed
// when a newer one replaces it.
type scoreReport struct {
	scores map[peer.ID]float64
	next   chan struct{}
}

// inspectScores keeps gossipsub's periodic report of peer scores. It is
// called by gossipsub's goroutine and does not block.
func (n *Node) inspectScores(m map[peer.ID]float64) {
	old := n.scores.Swap(&scoreReport{scores: m, next: make(chan struct{})})
	if old != nil {
		close(old.next)
	}
}

// GossipScore returns p's gossipsub peer score as of gossipsub's last
// report (once a second), and whether p was in it. A peer below
// GossipGraylistThreshold is ignored: nothing it sends is read.
func (n *Node) GossipScore(p peer.ID) (float64, bool) {
	r := n.scores.Load()
	v, ok := r.scores[p]
	return v, ok
}

// WaitGossipScore waits until gossipsub reports a score of p below below,
// and returns it; or ctx's error.
func (n *Node) WaitGossipScore(ctx context.Context, p peer.ID, below float64) (float64, error) {
	for {
		r := n.scores.Load()
		if v, ok := r.scores[p]; ok && v < below {
			return v, nil
		}
		select {
		case <-r.next:
		case <-ctx.Done():
			v := r.scores[p]
			return v, fmt.Errorf("node: gossip score of %s still %.1f: %w", p, v, ctx.Err())
		}
	}
}

// GossipGraylistThreshold is the gossip score below which a node ignores
// a peer's messages.
const GossipGraylistThreshold = -1000

package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// Periodic sync, scheduled by change. A node used to reconcile every
// joined topic with every connected peer each sync interval: with the
// testnet's 2 s interval, 100 idle nodes of degree 8 opened about 1,200
// sync streams a second between them and used a quarter to a whole core
// doing nothing (docs/benchmarks.md, "Idle cost"). Now each interval, per
// topic:
//
//   - if the topic changed (a record was stored) during the last interval,
//     the node reconciles it with one connected peer chosen at random:
//     random pull anti-entropy, which repairs a lost gossip delivery within
//     a few intervals while records flow, at 1/degree of the cost. This
//     round leaves out the records claimed within the last recentHorizon
//     (protocol.ItemSet.InitiateBelow): while records flow, the newest are
//     still crossing the network by gossip, and reconciling them found a
//     difference in almost every session, fetched records gossip was
//     about to deliver and set off pull-backs, which fetched more. Under
//     load, when gossip slowed, this fed itself: with 100 nodes at 10
//     records/s the nodes' p50 went from 50 ms to 3 s within 20 s and
//     stayed there (docs/benchmarks.md, "Collapses within a run");
//   - once the topic is quiet again, having changed since the last full
//     round, it reconciles it with every connected peer, once;
//   - otherwise it does nothing, except a fallback round every
//     DefaultSyncFallbackRounds intervals as a safety net: each topic with
//     one connected peer, the peers in turn (fallbackPeer), so that every
//     peer is asked within as many fallback rounds as the node has peers.
//     (A fallback round with every peer cost 100 idle nodes about 0.08
//     cores on its own, once the rounds were spread: 3,200 sessions every
//     20 intervals; docs/benchmarks.md.)
//
// Each node runs its intervals and its fallback rounds at its own phase,
// drawn from its peer ID (syncPhase): nodes started together (a testnet,
// a restart of many nodes after an outage) would otherwise run their full
// rounds in the same instant, every node with every peer on every topic.
// With 100 nodes that was 3,200 sessions at once every 20 intervals, which
// held a 2-core machine for about two seconds and delayed every record
// published meanwhile by as much (docs/benchmarks.md, "Collapses within a
// run").
//
// A node that missed a record and stores nothing itself would then never
// ask before its fallback rounds; so the side that serves a reconciliation
// which finds the two sets different asks the opener in return
// (reverseSync), for a topic it follows, at most once per half interval
// per peer and topic. Between them, a record stored on one node reaches a
// connected node that missed it: the holder changed, so it syncs with all
// its peers when the topic settles, and the peer that lacks the record
// answers that reconciliation by pulling from the holder; failing that,
// the node that lacks it pulls it at a fallback round: the next one if the
// peer it asks holds the record, at the latest once it has asked every
// peer in turn (WithSyncFallback). A trigger that comes while a session of
// the same peer and topic runs is run again after it (dispatch), so the
// pull-back and a Follow never stand in for each other.
// Syncs on connection and on gossip gaps are unchanged.

// DefaultSyncFallbackRounds is how many sync intervals pass between
// fallback rounds (WithSyncFallback).
const DefaultSyncFallbackRounds = 20

// syncSchedule is the periodic sync's memory; its zero value is ready.
type syncSchedule struct {
	mu        sync.Mutex
	rounds    int
	phase     int               // this node's fallback phase, in rounds (syncPhase)
	fallbacks int               // fallback rounds run
	tickSeen  map[string]uint64 // topic -> last arrival at the previous interval
	fullSeen  map[string]uint64 // topic -> last arrival at the last full round
	reverse   throttle          // peer|topic -> last reverse sync
	deferred  map[string]bool   // peer|topic with a throttled reverse sync waiting
	rng       *rand.Rand
}

// periodic runs one interval's syncs.
func (s *syncer) periodic() {
	peers := s.syncPeers()
	if len(peers) == 0 {
		return
	}
	last := map[string]uint64{}
	stats, err := s.n.store.Topics()
	if err != nil {
		s.n.log.Warn("sync: topic stats unavailable; syncing every topic", "err", err)
	}
	for _, ts := range stats {
		last[ts.Topic] = ts.LastArrival
	}
	topics := s.n.Topics()
	slices.Sort(topics)
	// Membership first: the validity of other records depends on it.
	if i := slices.Index(topics, protocol.TopicMembers); i > 0 {
		topics = append(append([]string{protocol.TopicMembers}, topics[:i]...), topics[i+1:]...)
	}
	settled := s.n.opts.clock().Add(-s.recentHorizon()).UnixMilli()
	plan := s.sched.plan(topics, last, err != nil, peers, s.n.opts.syncFallback, settled)
	for _, t := range plan {
		s.dispatch(t)
	}
}

// plan decides one interval's sessions: topics in the order to sync them,
// last their last arrivals (blind: unknown, sync every topic with every
// peer), peers the connected ones, every the fallback period in intervals
// (<= 0: none), settled the limit for the rounds of changing topics.
func (sc *syncSchedule) plan(topics []string, last map[string]uint64, blind bool, peers []peer.ID, every int, settled int64) []syncTrigger {
	var plan []syncTrigger
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.tickSeen == nil {
		sc.tickSeen, sc.fullSeen = map[string]uint64{}, map[string]uint64{}
		sc.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	sc.rounds++
	fallback := every > 0 && (sc.rounds+sc.phase)%every == 0
	if fallback {
		sc.fallbacks++
	}
	for _, t := range topics {
		cur := last[t]
		prev, seen := sc.tickSeen[t]
		sc.tickSeen[t] = cur
		changing := seen && cur != prev
		switch {
		case blind:
			sc.fullSeen[t] = cur
			plan = appendAll(plan, peers, t, 0)
		case changing && fallback:
			// Records flow: the fallback too leaves the newest to
			// gossip; the round once the topic settles covers them.
			plan = append(plan, syncTrigger{peer: fallbackPeer(peers, t, sc.fallbacks), topic: t, below: settled})
		case changing:
			plan = append(plan, syncTrigger{peer: peers[sc.rng.IntN(len(peers))], topic: t, below: settled})
		case !seen:
			plan = append(plan, syncTrigger{peer: peers[sc.rng.IntN(len(peers))], topic: t})
		case cur != sc.fullSeen[t]:
			// Settled since it changed: every peer, every record.
			// This also stands for a fallback round due now.
			sc.fullSeen[t] = cur
			plan = appendAll(plan, peers, t, 0)
		case fallback:
			plan = append(plan, syncTrigger{peer: fallbackPeer(peers, t, sc.fallbacks), topic: t})
		}
	}
	return plan
}

// recentHorizon is how old a record's claimed time must be for the
// periodic round of a changing topic to reconcile it: two sync intervals,
// at least 10 s. A record gossip lost is then repaired that much later
// while records flow; the round once the topic settles, the fallback
// round of a topic that does not change, and the syncs on connection,
// follow and gaps reconcile everything (a pull-back, up to where the
// opener's reconciliation found a difference).
func (s *syncer) recentHorizon() time.Duration {
	return max(2*s.n.opts.syncInterval, 10*time.Second)
}

// syncPhase returns a node's phase: the round of its first fallback (1 to
// every) and the offset of its interval ticks within an interval, both
// drawn from its peer ID, so that nodes started at once spread their
// rounds evenly and a node keeps its phase across restarts.
func syncPhase(id peer.ID, interval time.Duration, every int) (first int, offset time.Duration) {
	h := sha256.Sum256([]byte(id))
	first = 1 + int(binary.BigEndian.Uint32(h[:4])%uint32(max(every, 1)))
	if interval > 0 {
		offset = time.Duration(binary.BigEndian.Uint64(h[4:12]) % uint64(interval))
	}
	return first, offset
}

func appendAll(plan []syncTrigger, peers []peer.ID, topic string, below int64) []syncTrigger {
	for _, p := range peers {
		plan = append(plan, syncTrigger{peer: p, topic: topic, below: below})
	}
	return plan
}

// fallbackPeer returns the peer a fallback round reconciles topic with:
// the connected peers in turn, by ID, from an offset drawn from the topic,
// so that round k of a node with n peers asks about each topic a
// different peer, and n rounds ask every peer.
func fallbackPeer(peers []peer.ID, topic string, round int) peer.ID {
	sorted := slices.Clone(peers)
	slices.Sort(sorted)
	h := sha256.Sum256([]byte(topic))
	off := int(binary.BigEndian.Uint32(h[:4]) % uint32(len(sorted)))
	return sorted[(off+round)%len(sorted)]
}

// throttle lets a key through at most once per period: it holds when each
// key last went through, and forgets those older than the period once it
// holds more than throttleKeys. Its owner's lock guards it.
type throttle map[string]time.Time

// throttleKeys bounds a throttle before it forgets old keys.
const throttleKeys = 4096

// allow reports whether key may go through at now, and if so notes it.
func (t throttle) allow(key string, now time.Time, every time.Duration) bool {
	if last, ok := t[key]; ok && now.Sub(last) < every {
		return false
	}
	if len(t) > throttleKeys {
		for k, at := range t {
			if now.Sub(at) >= every {
				delete(t, k)
			}
		}
	}
	t[key] = now
	return true
}

// widerBelow returns the wider of two limits of a topic sync (0: none).
func widerBelow(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	return max(a, b)
}

// differsBelow returns the limit (syncTrigger.below) that covers every
// range of a reconciliation answer that is not a skip: where the answering
// node found the two sets differ, or was asked for ids. 0 if one reaches
// the top of the order.
func differsBelow(answer []protocol.Range) int64 {
	var below int64 = 1
	for _, a := range answer {
		if a.Mode == protocol.ModeSkip {
			continue
		}
		if a.Upper.Time == math.MaxInt64 {
			return 0
		}
		// Items at the bound's time with ids below its id are in the
		// range: take the whole millisecond.
		t := a.Upper.Time
		if len(a.Upper.ID) > 0 {
			t++
		}
		below = max(below, t)
	}
	return below
}

// reverseSync is called after serving p a reconciliation step of topic
// (req, and this node's answer): if the step leaves open that p holds
// records this node lacks (openerMayHoldMore) and this node follows topic,
// it reconciles the topic with p itself, up to the highest range of the
// answer that is not a skip (differsBelow), at most once per
// reverseInterval per peer and topic; one that comes sooner runs when the
// period ends. A topic the node does not follow is never pulled:
// any peer may ask about any topic name, and the answer must not make this
// node fetch and store what it does not follow.
func (s *syncer) reverseSync(p peer.ID, topic string, req, answer []protocol.Range) {
	if !openerMayHoldMore(req, answer) {
		return
	}
	if !s.n.hasTopic(topic) {
		return
	}
	key := p.String() + "|" + topic
	now := s.n.opts.clock()
	every := s.reverseInterval()
	sc := &s.sched
	sc.mu.Lock()
	if sc.reverse == nil {
		sc.reverse, sc.deferred = throttle{}, map[string]bool{}
	}
	ok := sc.reverse.allow(key, now, every)
	later := !ok && !sc.deferred[key]
	if later {
		sc.deferred[key] = true
	}
	wait := every - now.Sub(sc.reverse[key])
	sc.mu.Unlock()
	if ok {
		// Only as far as the difference: the answer to a round that
		// left out the newest records must not make this node
		// reconcile them.
		s.trigger(syncTrigger{peer: p, topic: topic, below: differsBelow(answer)})
		return
	}
	if !later {
		return // one waits already
	}
	// Throttled, but not dropped: the last pull-back may have reconciled
	// before the opener stored what this step shows (it pulled while the
	// opener was still being filled), and dropping this one left those
	// records missing until a fallback round. It runs once the period
	// ends, for every record; one per peer and topic waits at a time.
	time.AfterFunc(max(wait, 0), func() {
		sc.mu.Lock()
		delete(sc.deferred, key)
		sc.reverse[key] = s.n.opts.clock()
		sc.mu.Unlock()
		if s.n.ctx.Err() == nil {
			s.trigger(syncTrigger{peer: p, topic: topic})
		}
	})
}

// reverseInterval is the least time between two pull-backs from one peer
// on one topic: half the sync interval, so that the reconciliation of a
// holder's settled round (one interval after its previous one) is always
// answered, and at least syncGapInterval, also with periodic sync off.
func (s *syncer) reverseInterval() time.Duration {
	return max(s.n.opts.syncInterval/2, syncGapInterval)
}

// emptyFP is the fingerprint of a range that holds nothing.
var emptyFP = protocol.NewItemSet(nil).Initiate()[0].FP

// openerMayHoldMore reports whether a reconciliation step (the opener's
// request and this node's answer) leaves open that the opener holds
// records this node lacks: some range of the answer is not a skip, and the
// request's range it answers is not the fingerprint of nothing. An opener
// that catches up from nothing, or has nothing in part of the range,
// sends that fingerprint; answering it with this node's ids is the opener's
// gain only, and pulling back would reconcile against a set still being
// filled.
func openerMayHoldMore(req, answer []protocol.Range) bool {
	i := 0
	for _, a := range answer {
		// The request's range that a belongs to: the first whose upper
		// bound is not below a's (answers split ranges, never cross them).
		for i < len(req) && protocol.CompareBounds(req[i].Upper, a.Upper) < 0 {
			i++
		}
		if a.Mode == protocol.ModeSkip {
			continue
		}
		if i == len(req) || req[i].Mode != protocol.ModeFingerprint || !bytes.Equal(req[i].FP, emptyFP) {
			return true
		}
	}
	return false
}

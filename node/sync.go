package node

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	p2pprotocol "github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/store"
)

// Sync: gossip announces, sync guarantees (DESIGN.md section 7). Each
// side pulls: it reconciles a topic's record set with a peer
// (protocol.ItemSet, round trips growing with log(n/diff)), then fetches
// what it lacks by CID in pipelined batches and ingests them through the
// same validation as gossip (ingestMany). The wire format is in
// protocol/syncwire.go and docs/protocol.md, "Sync protocol".

// Sync tuning, not part of the wire protocol.
const (
	// syncFetchBatch is how many CIDs one fetch request names.
	syncFetchBatch = 256
	// syncFetchWindow is how many fetch requests are in flight on a stream.
	syncFetchWindow = 4
	// syncChunkRanges is how many non-skip ranges one reconcile request
	// carries; more are sent in further requests, which bounds both
	// messages whatever the difference.
	syncChunkRanges = 512
	// syncClosureDepth bounds the levels of parents outside a reconciled
	// topic fetched after it (cross-topic deps).
	syncClosureDepth = 16
	// syncGapDepth is how many levels of a gossip gap are fetched parent
	// by parent before a topic reconciliation is cheaper.
	syncGapDepth = 2
	// syncGapInterval is the least time between two gossip-gap fetches
	// from one peer on one topic.
	syncGapInterval = time.Second
	// syncMaxRounds bounds the reconcile round trips of one session (and
	// so, with protocol.ReconcileMaxRanges, the ranges a peer can make
	// this node compare in one session).
	syncMaxRounds = 256
	// syncStallStrikes is how many stalls within the penalty period
	// penalise a peer: one slow answer may be load, not abuse.
	syncStallStrikes = 3
	// syncStatusPeers bounds the per-topic progress entries kept for
	// peers that are no longer connected.
	syncStatusPeers = 64
	// syncService is the resource manager service every sync stream is
	// attached to, so the host's limits for it apply.
	syncService = "clearinghouse.sync"
	// syncInboundPerPeer bounds concurrent inbound sync streams per peer.
	syncInboundPerPeer = 2
	// syncInboundQueued bounds inbound sync streams per peer waiting for
	// a slot; more are reset.
	syncInboundQueued = 4
	// syncTagBad is the connection manager tag of a penalised peer.
	syncTagBad = "clearinghouse-sync-bad"
	// syncTriggerQueue is the capacity of the sync trigger queue; triggers
	// beyond it are dropped (the periodic sync repairs).
	syncTriggerQueue = 256
)

// Bad-record reasons of the sync_bad_records_total metric, besides the
// protocol rejection reasons.
const (
	badCIDMismatch = "cid-mismatch"   // bytes whose CID was not requested
	badProtocol    = "bad-message"    // a malformed or out-of-protocol message
	badStall       = "stall"          // requests or frames not completed within RequestTimeout, syncStallStrikes times
	badBudget      = "session-budget" // a session the peer kept beyond SessionBudget
	badFakeIDs     = "fake-ids"       // ids claimed in reconciliation and then not served
	badRequest     = "bad-request"    // an inbound request no honest opener sends
	// badPendingExpired: records the peer served waited for a past it
	// never served until they expired (pending.go).
	badPendingExpired = "pending-expired"
	// badUnservedPast: the peer served records and not their parents.
	badUnservedPast = "unserved-past"
)

// Reasons of the sync_refused_streams_total metric: inbound streams reset
// before they are served.
const (
	refusedPenalised = "penalised" // the peer is penalised
	refusedSlots     = "slots"     // the peer has too many streams open or waiting
	refusedBusy      = "busy"      // the global frame memory is exhausted
	refusedLifetime  = "lifetime"  // the stream outlived SessionBudget
)

// errSessionBudget is the cause of a session context that ran out of
// SessionBudget.
var errSessionBudget = errors.New("node: sync: session budget exhausted")

// errFrameMemory is returned when a frame does not fit the global frame
// memory budget.
var errFrameMemory = errors.New("node: sync: frame memory budget exhausted")

// Sentinel errors of sync.
var (
	// ErrChainUnconfirmed is returned by Publish on a node started with
	// WithRecoverChain(true) when no connected peer could tell it its own
	// chain head on the topic, so publishing might fork its chain.
	ErrChainUnconfirmed = errors.New("node: cannot confirm this node's chain head from any peer")
	// ErrSyncPenalised is returned when syncing from a peer that served a
	// bad record recently.
	ErrSyncPenalised = errors.New("node: sync: peer penalised for serving bad records")
	// ErrSyncRefused is returned when a peer answers a sync request with
	// an error.
	ErrSyncRefused = errors.New("node: sync: request refused by peer")
	// ErrBadPeer is returned when a peer served a bad record or message
	// during sync; the peer is penalised.
	ErrBadPeer = errors.New("node: sync: peer served bad data")
)

// SyncReport says what one sync did.
type SyncReport struct {
	// Peers is how many peers were synced with successfully.
	Peers int
	// Topics is how many topics were reconciled.
	Topics int
	// RoundTrips is the number of reconcile round trips.
	RoundTrips int
	// Missing is how many records peers had that this node lacked, summed
	// over sessions.
	Missing int
	// Fetched is how many records were received from peers.
	Fetched int
	// Stored is how many fetched records are now stored.
	Stored int
	// Truncated is how many sessions stopped at a budget (SyncLimits
	// MaxNeed or MaxSessionBytes) with more to fetch; another session
	// continues where they stopped.
	Truncated int
}

func (r *SyncReport) add(o SyncReport) {
	r.Peers += o.Peers
	r.Topics += o.Topics
	r.RoundTrips += o.RoundTrips
	r.Missing += o.Missing
	r.Fetched += o.Fetched
	r.Stored += o.Stored
	r.Truncated += o.Truncated
}

// TopicSync is the sync progress of one topic with one peer.
type TopicSync struct {
	// Topic is the record topic.
	Topic string
	// Peer is the peer synced with.
	Peer peer.ID
	// Lag is how many records the peer had, at the last reconciliation,
	// that this node has not stored yet.
	Lag int
	// Fetched is the total of records fetched from the peer on this topic.
	Fetched int
	// Last is when the last sync session with the peer on this topic
	// ended.
	Last time.Time
	// Err is the error of the last session, or "".
	Err string
}

// syncer runs the sync protocol of a node: the stream handler, the
// triggers (connection, timer, gossip gaps) and the client sessions.
type syncer struct {
	n      *Node
	proto  p2pprotocol.ID
	limits SyncLimits
	frames *memBudget // global cap on sync frame memory

	triggers chan syncTrigger

	lag      *prometheus.GaugeVec   // by topic: max lag over peers
	bad      *prometheus.CounterVec // by reason
	fetched  *prometheus.CounterVec // by topic
	refused  *prometheus.CounterVec // inbound streams reset, by reason
	frameMem prometheus.Gauge       // bytes of frames being read

	mu       sync.Mutex // guards the maps below
	status   map[string]map[peer.ID]*TopicSync
	banned   map[peer.ID]time.Time
	strikes  map[peer.ID]stallStrikes
	inbound  map[peer.ID]*inboundSlots
	inflight flights              // the sessions running, by trigger key
	chainOK  map[string]bool      // topics whose own chain head is confirmed
	lastGap  throttle             // peer|topic -> last gossip-gap fetch
	sets     map[string]cachedSet // followed topic -> its latest item set

	sched syncSchedule // the periodic rounds (sync_schedule.go)

	sessions map[string]*sessionLock // peer|topic -> the lock of its sessions
	// outbound holds, per peer, a token per sync stream this node has
	// open to it: at most syncInboundPerPeer, the streams a peer serves
	// at once (handle), so that this node never has its own sessions
	// reset for want of a slot at an honest peer.
	outbound map[string]*sessionLock // peer -> its outbound stream slots
}

// sessionLock serialises the sync sessions of one peer and topic
// (sessions), or bounds this node's open streams to one peer (outbound).
// Its lock is a channel with room for that many tokens, not a mutex: a
// goroutine waiting for a mutex would stop the virtual clock of the
// simulated network (testing/synctest counts it as running). users
// counts the sessions holding or waiting for it (guarded by syncer.mu),
// so the entry is removed once none does.
type sessionLock struct {
	ch    chan struct{}
	users int
}

// lockSession waits until no other session with p on topic runs, or ctx
// ends, and returns the function that ends this one.
func (s *syncer) lockSession(ctx context.Context, p peer.ID, topic string) (func(), error) {
	return s.acquire(ctx, &s.sessions, p.String()+"|"+topic, 1)
}

// outboundSlot waits until fewer than syncInboundPerPeer sync streams of
// this node to p are open, or ctx ends, and returns the function that
// frees the slot.
func (s *syncer) outboundSlot(ctx context.Context, p peer.ID) (func(), error) {
	return s.acquire(ctx, &s.outbound, p.String(), syncInboundPerPeer)
}

// acquire takes one of size tokens of the lock of key in locks (creating
// it), waiting until one is free or ctx ends, and returns the function
// that gives it back (once, however often it is called). The lock is
// removed from locks once no one holds or waits for it.
func (s *syncer) acquire(ctx context.Context, locks *map[string]*sessionLock, key string, size int) (func(), error) {
	s.mu.Lock()
	if *locks == nil {
		*locks = map[string]*sessionLock{}
	}
	l, ok := (*locks)[key]
	if !ok {
		l = &sessionLock{ch: make(chan struct{}, size)}
		(*locks)[key] = l
	}
	l.users++
	s.mu.Unlock()
	release := func() {
		s.mu.Lock()
		if l.users--; l.users == 0 {
			delete(*locks, key)
		}
		s.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-l.ch
			release()
		})
	}, nil
}

// inboundSlots limits the inbound sync streams of one peer.
type inboundSlots struct {
	sem     chan struct{} // a token per stream being served
	streams int           // streams served or waiting; guarded by syncer.mu
}

// syncTrigger asks the sync loop to sync with a peer: every topic if topic
// is empty, else one topic, or, with cids, to fetch those records.
type syncTrigger struct {
	peer  peer.ID
	topic string
	cids  []cid.Cid
	// below, for a topic sync, if not 0, limits it to the records
	// claimed before it (unix ms): the periodic rounds of a topic that
	// changes leave out those gossip may still be carrying, and a
	// pull-back covers the ranges where the opener's reconciliation
	// showed a difference (sync_schedule.go).
	below int64
}

func newSyncer(n *Node) *syncer {
	s := &syncer{
		n:        n,
		proto:    protocol.SyncProtocol(n.network),
		limits:   n.opts.syncLimits,
		triggers: make(chan syncTrigger, syncTriggerQueue),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "clearinghouse", Name: "sync_lag_records",
			Help: "Records a peer held at the last reconciliation that this node has not stored yet, by topic (the largest over peers).",
		}, []string{"topic"}),
		bad: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "clearinghouse", Name: "sync_bad_records_total",
			Help: "Bad records or messages served by sync peers, by reason (a protocol rejection reason, cid-mismatch or bad-message).",
		}, []string{"reason"}),
		fetched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "clearinghouse", Name: "sync_fetched_records_total",
			Help: "Records received from sync peers in fetch responses, valid or not, by topic.",
		}, []string{"topic"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "clearinghouse", Name: "sync_refused_streams_total",
			Help: "Inbound sync streams reset before or while being served, by reason (penalised, slots, busy, lifetime).",
		}, []string{"reason"}),
		frameMem: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "clearinghouse", Name: "sync_frame_memory_bytes",
			Help: "Bytes of sync frames being read, over all peers (bounded by the frame memory limit).",
		}),
		status:   map[string]map[peer.ID]*TopicSync{},
		banned:   map[peer.ID]time.Time{},
		strikes:  map[peer.ID]stallStrikes{},
		inbound:  map[peer.ID]*inboundSlots{},
		inflight: flights{},
		chainOK:  map[string]bool{},
		lastGap:  throttle{},
		sets:     map[string]cachedSet{},
	}
	s.frames = newMemBudget(s.limits.FrameMemory, func(n int64) { s.frameMem.Set(float64(n)) })
	return s
}

// start registers the metrics and the stream handler and starts the sync
// loop. It must be called after the host and the topics exist, before
// bootstrap peers are dialled, so that no connection is missed.
func (s *syncer) start() error {
	n := s.n
	for _, c := range []prometheus.Collector{s.lag, s.bad, s.fetched, s.refused, s.frameMem} {
		if err := n.metrics.reg.Register(c); err != nil {
			return fmt.Errorf("node: register sync metrics: %w", err)
		}
	}
	sub, err := n.host.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		return fmt.Errorf("node: subscribe to identify events: %w", err)
	}
	n.host.SetStreamHandler(s.proto, s.handle)
	n.wg.Go(func() {
		defer sub.Close()
		s.loop(sub.Out())
	})
	return nil
}

// loop owns the triggers: peer identification, the periodic timer and
// queued requests. Sessions run in goroutines of the node's WaitGroup
// started here, so none starts after Close.
func (s *syncer) loop(identified <-chan any) {
	n := s.n
	// The intervals start at the node's own offset (syncPhase): a timer
	// for the first tick, then the ticker.
	var first, tick <-chan time.Time
	if iv := n.opts.syncInterval; iv > 0 {
		every := max(n.opts.syncFallback, 1)
		round, offset := syncPhase(n.host.ID(), iv, every)
		s.sched.mu.Lock()
		s.sched.phase = every - round
		s.sched.mu.Unlock()
		t := time.NewTimer(offset)
		defer t.Stop()
		first = t.C
	}
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-first:
			first = nil
			t := time.NewTicker(n.opts.syncInterval)
			defer t.Stop()
			tick = t.C
			s.periodic()
		case ev, ok := <-identified:
			if !ok {
				return
			}
			e := ev.(event.EvtPeerIdentificationCompleted)
			if slices.Contains(e.Protocols, s.proto) {
				s.dispatch(syncTrigger{peer: e.Peer})
			}
		case <-tick:
			s.periodic()
		case t := <-s.triggers:
			s.dispatch(t)
		}
	}
}

// flights are the sessions of trigger keys while they run, each with the
// latest trigger of the same key that arrived meanwhile (nil if none), to
// run once it ends. Guarded by syncer.mu.
type flights map[string]*syncTrigger

// begin reports whether a session for t may start now under key; if one
// runs, t is kept for when it ends. Triggers of one key differ only in
// the CIDs of a fetch, which add up, and in below, of which the wider
// wins.
func (f flights) begin(key string, t syncTrigger) bool {
	if again, ok := f[key]; ok {
		if again != nil {
			t.below = widerBelow(t.below, again.below)
		}
		if again != nil && again.cids != nil {
			cids := slices.Clip(again.cids)
			for _, c := range t.cids {
				if !slices.Contains(cids, c) {
					cids = append(cids, c)
				}
			}
			t.cids = cids
		}
		f[key] = &t
		return false
	}
	f[key] = nil
	return true
}

// end ends the session of key and returns the trigger to run next, or nil.
func (f flights) end(key string) *syncTrigger {
	again := f[key]
	delete(f, key)
	return again
}

// dispatch starts a session for t, or, if a session of the same key (peer,
// topic, fetch or not) runs, has t run once that one ends. A trigger is
// never dropped for a running session: that session may have reconciled
// before the cause of t (a record stored, a topic followed, a peer's
// reconciliation that showed a difference), and would miss what t is for.
// Triggers that arrive during one session collapse into one rerun.
func (s *syncer) dispatch(t syncTrigger) {
	key := t.peer.String() + "|" + t.topic
	if t.cids != nil {
		key += "|fetch"
	}
	s.mu.Lock()
	start := s.inflight.begin(key, t)
	s.mu.Unlock()
	if !start {
		return
	}
	s.n.wg.Go(func() {
		// Sessions with different peers run concurrently and hold no lock
		// across peers: each is bounded by its own budgets (SyncLimits), so
		// a slow peer delays only its own sessions.
		ctx := s.n.ctx
		var rep SyncReport
		var err error
		switch {
		case t.cids != nil:
			rep, err = s.fetchFrom(ctx, t.peer, t.topic, t.cids)
		case t.topic != "":
			rep, err = s.syncTopic(ctx, t.peer, t.topic, t.below)
		default:
			rep, err = s.syncPeer(ctx, t.peer)
		}
		if err != nil && s.n.ctx.Err() == nil {
			s.n.log.Debug("sync failed", "peer", t.peer, "topic", t.topic, "err", err)
		}
		s.mu.Lock()
		again := s.inflight.end(key)
		s.mu.Unlock()
		if s.n.ctx.Err() != nil {
			return
		}
		if again != nil {
			s.dispatch(*again)
		}
		if err == nil && rep.Truncated > 0 && (again == nil || again.cids != nil) {
			// A budget stopped the session with everything claimed
			// served: continue where it stopped (unless the rerun above
			// is that same sync).
			s.dispatch(syncTrigger{peer: t.peer, topic: t.topic})
		}
	})
}

// trigger queues t without blocking; it is dropped if the queue is full.
func (s *syncer) trigger(t syncTrigger) {
	select {
	case s.triggers <- t:
	default:
	}
}

// syncTopicWithAll queues a sync of topic with every connected peer.
func (s *syncer) syncTopicWithAll(topic string) {
	for _, p := range s.syncPeers() {
		s.trigger(syncTrigger{peer: p, topic: topic})
	}
}

// missingParents is the gossip hook: rec arrived from a peer before its
// causal past. It asks that peer for the missing parents.
func (s *syncer) missingParents(from peer.ID, rec *protocol.Record) {
	if rec == nil || from == s.n.host.ID() {
		return
	}
	var missing []cid.Cid
	for _, c := range rec.Links() {
		if ok, err := s.n.store.Has(c); err == nil && !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return
	}
	// Out-of-order arrival is common in a burst, and the parents usually
	// follow by gossip: ask a peer about gaps on a topic at most once per
	// syncGapInterval.
	key := from.String() + "|" + rec.Env.Topic
	now := s.n.opts.clock()
	s.mu.Lock()
	ok := s.lastGap.allow(key, now, syncGapInterval)
	s.mu.Unlock()
	if !ok {
		return
	}
	s.trigger(syncTrigger{peer: from, topic: rec.Env.Topic, cids: missing})
}

// syncPeers returns the connected peers that speak the sync protocol or
// are not identified yet (opening a stream waits for identify).
func (s *syncer) syncPeers() []peer.ID {
	var out []peer.ID
	for _, p := range s.n.host.Network().Peers() {
		if known, ok := s.speaks(p); ok || !known {
			out = append(out, p)
		}
	}
	return out
}

// speaks reports whether p's protocols are known and whether they include
// the sync protocol.
func (s *syncer) speaks(p peer.ID) (known, ok bool) {
	ps := s.n.host.Peerstore()
	all, err := ps.GetProtocols(p)
	if err != nil || len(all) == 0 {
		return false, false
	}
	return true, slices.Contains(all, s.proto)
}

// Sync syncs every joined topic with every connected peer that speaks the
// sync protocol, the peers concurrently (each under its own budgets, so a
// slow peer delays only itself), and returns what was fetched. A session
// stopped by a budget with more to fetch is followed by another. The error
// joins the failures of individual peers; the report counts the peers that
// succeeded.
func (n *Node) Sync(ctx context.Context) (SyncReport, error) {
	var (
		mu   sync.Mutex
		rep  SyncReport
		errs []error
		wg   sync.WaitGroup
	)
	for _, p := range n.sync.syncPeers() {
		wg.Go(func() {
			var total SyncReport
			r, err := n.sync.syncPeer(ctx, p)
			total.add(r)
			for err == nil && r.Truncated > 0 && ctx.Err() == nil {
				r, err = n.sync.syncPeer(ctx, p)
				total.add(r)
				total.Peers = 1
			}
			total.Truncated = 0
			mu.Lock()
			defer mu.Unlock()
			rep.add(total)
			if known, ok := n.sync.speaks(p); err != nil && known && !ok {
				return // not a clearinghouse peer of this network
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("peer %s: %w", p, err))
			}
		})
	}
	wg.Wait()
	return rep, errors.Join(errs...)
}

// SyncStatus returns the sync progress of every topic with every peer
// synced with, sorted by topic and peer.
func (n *Node) SyncStatus() []TopicSync {
	s := n.sync
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []TopicSync
	for _, ps := range s.status {
		for _, st := range ps {
			out = append(out, *st)
		}
	}
	slices.SortFunc(out, func(a, b TopicSync) int {
		if c := cmp.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return cmp.Compare(a.Peer, b.Peer)
	})
	return out
}

// syncPeer syncs every joined topic with p.
func (s *syncer) syncPeer(ctx context.Context, p peer.ID) (SyncReport, error) {
	topics := s.n.Topics()
	slices.Sort(topics)
	// Membership first: the validity of other records depends on it.
	slices.SortStableFunc(topics, func(a, b string) int {
		switch {
		case a == protocol.TopicMembers && b != a:
			return -1
		case b == protocol.TopicMembers && a != b:
			return 1
		}
		return 0
	})
	var rep SyncReport
	for _, t := range topics {
		r, err := s.syncTopic(ctx, p, t, 0)
		rep.add(r)
		if err != nil {
			return rep, err
		}
	}
	rep.Peers = 1
	return rep, nil
}

// penalised reports whether p is barred from syncing with this node.
func (s *syncer) penalised(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.banned[p]
	if ok && s.n.opts.clock().After(until) {
		delete(s.banned, p)
		return false
	}
	return ok
}

// strike counts a stall of p (a request or frame not completed within
// RequestTimeout), which a loaded honest peer may cause too: the
// syncStallStrikes-th stall within the penalty period penalises p (reason
// "stall"). It reports whether p was penalised.
func (s *syncer) strike(p peer.ID, err error) bool {
	now := s.n.opts.clock()
	s.mu.Lock()
	if len(s.strikes) >= 4096 {
		for q, st := range s.strikes {
			if now.Sub(st.first) > s.n.opts.syncPenalty {
				delete(s.strikes, q)
			}
		}
	}
	st := s.strikes[p]
	if st.n == 0 || now.Sub(st.first) > s.n.opts.syncPenalty {
		st = stallStrikes{first: now}
	}
	st.n++
	out := st.n >= syncStallStrikes
	if out {
		delete(s.strikes, p)
	} else {
		s.strikes[p] = st
	}
	s.mu.Unlock()
	if out {
		s.penalise(p, badStall, err)
	} else {
		s.n.log.Debug("sync peer stalled", "peer", p, "strikes", st.n, "err", err)
	}
	return out
}

// stallStrikes counts the stalls of one peer since first.
type stallStrikes struct {
	n     int
	first time.Time
}

// penalise bars p from syncing with this node, in either direction, for
// the penalty period, counts the reason and tags p down in the connection
// manager.
func (s *syncer) penalise(p peer.ID, reason string, err error) {
	s.bad.WithLabelValues(reason).Inc()
	now := s.n.opts.clock()
	s.mu.Lock()
	if len(s.banned) >= 4096 {
		for q, until := range s.banned {
			if now.After(until) {
				delete(s.banned, q)
			}
		}
	}
	s.banned[p] = now.Add(s.n.opts.syncPenalty)
	s.mu.Unlock()
	s.n.host.ConnManager().TagPeer(p, syncTagBad, -100)
	s.n.log.Warn("sync peer served bad data; penalised", "peer", p, "reason", reason, "err", err)
}

// setStatus updates the progress of (topic, p) and the lag gauge.
func (s *syncer) setStatus(topic string, p peer.ID, lag, fetched int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.status[topic]
	if ps == nil {
		ps = map[peer.ID]*TopicSync{}
		s.status[topic] = ps
	}
	st := ps[p]
	if st == nil {
		st = &TopicSync{Topic: topic, Peer: p}
		ps[p] = st
	}
	st.Lag, st.Fetched, st.Last, st.Err = lag, st.Fetched+fetched, s.n.opts.clock(), ""
	if err != nil {
		st.Err = err.Error()
	}
	// The gauge follows connected peers: a peer gone with a lag is not
	// a lag this node can close. Entries of peers gone are dropped once a
	// topic has more than syncStatusPeers, so peer identities that come
	// and go cannot grow the map.
	worst := 0
	for q, o := range ps {
		connected := q == p || s.n.host.Network().Connectedness(q) == network.Connected
		if connected {
			worst = max(worst, o.Lag)
		} else if len(ps) > syncStatusPeers {
			delete(ps, q)
		}
	}
	s.lag.WithLabelValues(topic).Set(float64(worst))
}

// itemSet returns the reconciliation set of a topic: the cached one if the
// topic has not changed since it was built, else a fresh one. Sets are
// immutable, so sessions share them. Only the sets of topics the node
// follows are cached, and the cache drops topics it no longer follows: a
// name a peer asks about leaves nothing behind.
func (s *syncer) itemSet(topic string) (*protocol.ItemSet, error) {
	followed := s.n.Topics()
	if !slices.Contains(followed, topic) {
		return buildItemSet(s.n.store, topic)
	}
	ts, err := s.n.store.Topic(topic)
	if err != nil {
		return nil, err
	}
	last := ts.LastArrival
	s.mu.Lock()
	c, ok := s.sets[topic]
	s.mu.Unlock()
	if ok && c.last == last {
		return c.set, nil
	}
	var set *protocol.ItemSet
	if ok && c.last < last {
		// Add what arrived since: reading the whole topic again for
		// every session of a topic that changes cost more than the
		// session (docs/benchmarks.md, "Collapses within a run").
		// Records that arrived while the cached set was built are read
		// again; With keeps one of each.
		items, err := topicItems(s.n.store, topic, c.last)
		if err != nil {
			return nil, err
		}
		set = c.set.With(items)
	} else if set, err = buildItemSet(s.n.store, topic); err != nil {
		return nil, err
	}
	s.mu.Lock()
	for t := range s.sets {
		if !slices.Contains(followed, t) {
			delete(s.sets, t)
		}
	}
	s.sets[topic] = cachedSet{last: last, set: set}
	s.mu.Unlock()
	return set, nil
}

// cachedSet is a topic's item set as of the topic's last arrival.
type cachedSet struct {
	last uint64
	set  *protocol.ItemSet
}

// buildItemSet builds the reconciliation set of a topic from the store.
func buildItemSet(st *store.Store, topic string) (*protocol.ItemSet, error) {
	items, err := topicItems(st, topic, 0)
	if err != nil {
		return nil, err
	}
	return protocol.NewItemSet(items), nil
}

// topicItems returns the items of the records of topic that arrived after
// the arrival number after (0: all).
func topicItems(st *store.Store, topic string, after uint64) ([]protocol.Item, error) {
	var items []protocol.Item
	for {
		metas, err := st.TopicRecords(topic, after, 10_000)
		if err != nil {
			return nil, err
		}
		if len(metas) == 0 {
			break
		}
		for _, m := range metas {
			it, err := protocol.ItemOf(m.CID, m.Time)
			if err != nil {
				return nil, err
			}
			items = append(items, it)
		}
		after = metas[len(metas)-1].Arrival
	}
	return items, nil
}

// client is the opener's side of one sync stream: one session with one
// peer, under its own budgets.
type client struct {
	s      *syncer
	peer   peer.ID
	stream network.Stream
	r      *bufio.Reader
	ctx    context.Context // the session's; carries the SessionBudget deadline
	cancel context.CancelFunc
	stop   func() bool // detaches the stream reset from ctx
	free   func()      // frees the outbound slot (outboundSlot)
	// stored holds the records fetched that the node stored or already
	// held, so the report need not ask the store about them again.
	stored map[cid.Cid]bool
	// waited is the time spent waiting for the peer's responses, which
	// tells whose fault an overrun session is.
	waited time.Duration
	// bytes is the record bytes received in this session.
	bytes int64
	// truncated reports whether a budget stopped the session with more to
	// fetch.
	truncated bool
	// retry holds the records of the closure being fetched that were
	// refused as unknown-author, to hand in again at its end.
	retry [][]byte
}

// open opens a session with p: a sync stream attached to the sync
// resource manager service, cut when ctx ends or the SessionBudget runs
// out. The caller must call close, then judge with the session's result.
func (s *syncer) open(ctx context.Context, p peer.ID) (*client, error) {
	if s.penalised(p) {
		return nil, ErrSyncPenalised
	}
	// The wait for a slot is not part of the session's budget.
	free, err := s.outboundSlot(ctx, p)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, s.limits.SessionBudget, errSessionBudget)
	st, err := s.n.host.NewStream(ctx, p, s.proto)
	if err != nil {
		cancel()
		free()
		return nil, fmt.Errorf("node: sync: open stream: %w", err)
	}
	if err := st.Scope().SetService(syncService); err != nil {
		cancel()
		free()
		_ = st.Reset()
		return nil, fmt.Errorf("node: sync: resource manager: %w", err)
	}
	c := &client{s: s, peer: p, stream: st, r: getSyncReader(st), ctx: ctx, cancel: cancel, free: free}
	// A read or write blocked on the peer ends when the session does.
	c.stop = context.AfterFunc(ctx, func() { _ = st.Reset() })
	return c, nil
}

func (c *client) close() {
	c.stop()
	_ = c.stream.Close()
	c.cancel()
	c.free()
	if c.r != nil {
		putSyncReader(c.r)
		c.r = nil
	}
}

// judge returns the session's error, penalising the peer if the session
// ran out of SessionBudget mostly waiting for it (rather than for this
// node's own validation and writes).
func (c *client) judge(err error) error {
	if err == nil || !errors.Is(context.Cause(c.ctx), errSessionBudget) || c.s.n.ctx.Err() != nil {
		return err
	}
	if c.waited < c.s.limits.SessionBudget/2 {
		return fmt.Errorf("%w: %w", errSessionBudget, err)
	}
	c.s.penalise(c.peer, badBudget, err)
	return fmt.Errorf("%w: %w after %v waiting for the peer", ErrBadPeer, errSessionBudget, c.waited.Round(time.Millisecond))
}

func (c *client) send(req *protocol.SyncRequest) error {
	_ = c.stream.SetWriteDeadline(time.Now().Add(c.s.limits.RequestTimeout))
	return protocol.WriteFrame(c.stream, req)
}

func (c *client) recv(typ int) (*protocol.SyncResponse, error) {
	start := time.Now()
	_ = c.stream.SetReadDeadline(start.Add(c.s.limits.RequestTimeout))
	var resp protocol.SyncResponse
	ours, err := readFrame(c.r, &resp, c.s.frames, c.ctx.Done(), func() {
		_ = c.stream.SetReadDeadline(time.Now().Add(c.s.limits.RequestTimeout))
	})
	c.waited += time.Since(start) - ours
	if err != nil {
		if errors.Is(err, protocol.ErrFrameTooLarge) || errors.Is(err, protocol.ErrBadMessage) {
			c.s.penalise(c.peer, badProtocol, err)
			return nil, fmt.Errorf("%w: %w", ErrBadPeer, err)
		}
		if isTimeout(err) && c.ctx.Err() == nil {
			err = fmt.Errorf("no response within %v: %w", c.s.limits.RequestTimeout, err)
			if c.s.strike(c.peer, err) {
				return nil, fmt.Errorf("%w: %w", ErrBadPeer, err)
			}
			return nil, fmt.Errorf("node: sync: %w", err)
		}
		return nil, fmt.Errorf("node: sync: read: %w", err)
	}
	if resp.Error != "" {
		return nil, fmt.Errorf("%w: %s", ErrSyncRefused, resp.Error)
	}
	if resp.Type != typ {
		err := fmt.Errorf("response of type %d to a request of type %d", resp.Type, typ)
		c.s.penalise(c.peer, badProtocol, err)
		return nil, fmt.Errorf("%w: %w", ErrBadPeer, err)
	}
	return &resp, nil
}

// syncTopic reconciles topic with p and fetches what p has that this node
// lacks, in one session under the SyncLimits budgets. Sessions of a topic
// with different peers run concurrently; a record both serve is fetched
// from whichever is first (fetch skips what is stored by then). below, if
// not 0, limits it to the records claimed before it (unix ms).
func (s *syncer) syncTopic(ctx context.Context, p peer.ID, topic string, below int64) (rep SyncReport, err error) {
	// One session at a time per peer and topic: a session triggered while
	// another with the same peer runs (on connect, by the pull-back of
	// sync_schedule.go, by POST /sync) waits for it and then finds only
	// what is still missing, instead of fetching the same records twice.
	// Sessions with different peers stay independent.
	unlock, err := s.lockSession(ctx, p, topic)
	if err != nil {
		return rep, err
	}
	defer unlock()
	lag, fetched := 0, 0
	defer func() {
		if errors.Is(err, ErrBadPeer) {
			lag = 0 // what a bad peer claims is no lag
		}
		if ctx.Err() == nil {
			s.setStatus(topic, p, lag, fetched, err)
		}
	}()
	c, err := s.open(ctx, p)
	if err != nil {
		return rep, err
	}
	defer c.close()
	defer func() { err = c.judge(err) }()
	set, err := s.itemSet(topic)
	if err != nil {
		return rep, fmt.Errorf("node: sync: %w", err)
	}
	if below == 0 {
		below = math.MaxInt64
	}
	need, rounds, err := c.reconcile(set, topic, below)
	rep.RoundTrips, rep.Topics, rep.Missing = rounds, 1, len(need)
	if err != nil {
		return rep, err
	}
	if len(need) >= s.limits.MaxNeed {
		c.truncated = true
	}
	lag = len(need)
	if len(need) == 0 {
		return rep, nil
	}
	cids := make([]cid.Cid, len(need))
	for i, id := range need {
		cids[i] = protocol.Item{ID: id}.CID()
	}
	got, _, err := c.fetchClosure(c.ctx, topic, cids, true, syncClosureDepth)
	rep.Fetched = got
	fetched = got
	rep.Stored, lag = s.countStored(cids, c.stored)
	if c.truncated && err == nil && got > 0 {
		// Continue only after progress: ids the node holds, claimed
		// again, must not make sessions follow each other for ever.
		rep.Truncated = 1
	}
	return rep, err
}

// countStored returns how many of cids are stored and how many are not;
// those in known are stored, the others are looked up.
func (s *syncer) countStored(cids []cid.Cid, known map[cid.Cid]bool) (stored, missing int) {
	for _, c := range cids {
		if known[c] {
			stored++
			continue
		}
		if ok, _ := s.n.store.Has(c); ok {
			stored++
		} else {
			missing++
		}
	}
	return stored, missing
}

// fetchFrom fetches cids of topic from p, and follows up with a topic
// sync if their own parents are missing too: a gap deeper than one level
// is cheaper to reconcile than to walk.
func (s *syncer) fetchFrom(ctx context.Context, p peer.ID, topic string, cids []cid.Cid) (SyncReport, error) {
	c, err := s.open(ctx, p)
	if err != nil {
		return SyncReport{}, err
	}
	got, complete, err := c.fetchClosure(c.ctx, topic, cids, false, syncGapDepth)
	c.close()
	err = c.judge(err)
	rep := SyncReport{Fetched: got}
	rep.Stored, _ = s.countStored(cids, c.stored)
	if err != nil {
		return rep, err
	}
	if !complete && topic != "" {
		r, err := s.syncTopic(ctx, p, topic, 0)
		rep.add(r)
		return rep, err
	}
	return rep, nil
}

// reconcile runs the initiator's side of reconciliation of the records
// claimed before below (math.MaxInt64: all) and returns the ids p holds
// that set lacks, and the number of round trips. It stops early once
// MaxNeed ids are found.
func (c *client) reconcile(set *protocol.ItemSet, topic string, below int64) (need [][32]byte, rounds int, err error) {
	return reconcileWith(set, below, c.s.limits.MaxNeed, func(msg []protocol.Range) ([]protocol.Range, error) {
		if err := c.send(&protocol.SyncRequest{Type: protocol.SyncReconcile, Topic: topic, Ranges: msg}); err != nil {
			return nil, fmt.Errorf("node: sync: write: %w", err)
		}
		resp, err := c.recv(protocol.SyncReconcile)
		if err != nil {
			return nil, err
		}
		return resp.Ranges, nil
	}, func(err error) {
		c.s.penalise(c.peer, badProtocol, err)
	})
}

// reconcileWith drives a reconciliation of the items of set claimed before
// below (math.MaxInt64: all) through roundTrip, which
// sends one message and returns the answer, chunking messages to
// syncChunkRanges active ranges. bad is called with a malformed answer.
// It stops, without error, once need holds maxNeed ids or more.
func reconcileWith(set *protocol.ItemSet, below int64, maxNeed int, roundTrip func([]protocol.Range) ([]protocol.Range, error), bad func(error)) (need [][32]byte, rounds int, err error) {
	var uppers []protocol.Bound
	defer func() {
		// Oldest first, as the responder orders them: the fetch then
		// delivers parents before their children, whatever round found
		// them.
		idx := make([]int, len(need))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int { return protocol.CompareBounds(uppers[a], uppers[b]) })
		sorted := make([][32]byte, len(need))
		for i, j := range idx {
			sorted[i] = need[j]
		}
		need = sorted
	}()
	msg := set.InitiateBelow(below)
	for msg != nil {
		var next []protocol.Range
		for _, chunk := range chunkRanges(msg, syncChunkRanges) {
			if rounds++; rounds > syncMaxRounds {
				return need, rounds, fmt.Errorf("node: sync: reconciliation exceeds %d round trips", syncMaxRounds)
			}
			resp, err := roundTrip(chunk)
			if err != nil {
				return need, rounds, err
			}
			nd, up, nx, err := set.ContinueBounds(resp)
			if err != nil {
				bad(err)
				return need, rounds, fmt.Errorf("%w: %w", ErrBadPeer, err)
			}
			need = append(need, nd...)
			uppers = append(uppers, up...)
			if len(need) >= maxNeed {
				return need, rounds, nil
			}
			if nx == nil {
				nx = []protocol.Range{{Upper: chunk[len(chunk)-1].Upper, Mode: protocol.ModeSkip}}
			}
			next = joinRanges(next, nx)
		}
		if !slices.ContainsFunc(next, func(r protocol.Range) bool { return r.Mode != protocol.ModeSkip }) {
			next = nil
		}
		msg = next
	}
	return need, rounds, nil
}

func compareBound(a, b protocol.Bound) int {
	if a.Time != b.Time {
		if a.Time < b.Time {
			return -1
		}
		return 1
	}
	return bytes.Compare(a.ID, b.ID)
}

// chunkRanges splits a reconcile message into messages of at most max
// non-skip ranges each. Every message after the first starts with a skip
// range up to where the previous one ended, since a message's ranges start
// at the lowest item.
func chunkRanges(msg []protocol.Range, max int) [][]protocol.Range {
	var out [][]protocol.Range
	var cur []protocol.Range
	active := 0
	for _, r := range msg {
		if active == max && r.Mode != protocol.ModeSkip {
			out = append(out, cur)
			cur = []protocol.Range{{Upper: cur[len(cur)-1].Upper, Mode: protocol.ModeSkip}}
			active = 0
		}
		cur = append(cur, r)
		if r.Mode != protocol.ModeSkip {
			active++
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// joinRanges appends the ranges of a chunk's next message to out, merging
// skips and dropping a leading skip that ends where out ends already.
func joinRanges(out, more []protocol.Range) []protocol.Range {
	for _, r := range more {
		if len(out) > 0 && compareBound(r.Upper, out[len(out)-1].Upper) <= 0 {
			continue
		}
		if r.Mode == protocol.ModeSkip && len(out) > 0 && out[len(out)-1].Mode == protocol.ModeSkip {
			out[len(out)-1].Upper = r.Upper
			continue
		}
		out = append(out, r)
	}
	return out
}

// fetchClosure fetches cids from the peer, then, level by level up to
// depth levels, the parents of fetched records that are neither stored nor
// among those already asked for (parents on other topics, or a gap below a
// gossiped record). The peer's store is causally closed, so it holds them:
// a parent it does not serve penalises it (unserved-past). If strict, the
// records must be of topic. Records refused as unknown-author (their
// author's admission being in a past still to fetch) are handed in again
// once the closure is fetched. It returns how many records were received
// and whether no parent was left missing.
func (c *client) fetchClosure(ctx context.Context, topic string, cids []cid.Cid, strict bool, depth int) (int, bool, error) {
	total := 0
	asked := map[cid.Cid]bool{}
	defer func() { c.retry = nil }()
	for level := 0; len(cids) > 0; level++ {
		if level == depth {
			return total, false, nil
		}
		for _, x := range cids {
			asked[x] = true
		}
		got, outside, err := c.fetch(ctx, topic, cids, strict, level > 0, asked)
		total += got
		if err != nil {
			return total, false, err
		}
		cids, strict = outside, false
	}
	if len(c.retry) > 0 {
		wait, _ := c.s.n.ingestMany(ctx, c.retry, "", origin{src: SourceSync, peer: c.peer}, nil)
		for _, r := range wait() {
			if r.err == nil && r.rec != nil {
				if c.stored == nil {
					c.stored = map[cid.Cid]bool{}
				}
				c.stored[r.rec.CID] = true
			}
		}
	}
	return total, true, nil
}

// fetch asks the peer for cids in pipelined batches and ingests what it
// serves. It returns how many records were received and the parents of
// those records that are neither stored nor in asked. A record whose bytes
// do not hash to a requested CID, or that fails validation with a reject
// action, penalises the peer and ends the fetch; so does, if strict (cids
// are what the peer claimed to hold in reconciliation), a claimed CID it
// then does not serve. CIDs stored by the time their batch is sent (by a
// concurrent session with another peer) are not asked for. Once the
// session has received MaxSessionBytes, no further batch is sent and the
// session is marked truncated.
func (c *client) fetch(ctx context.Context, topic string, cids []cid.Cid, strict, parents bool, asked map[cid.Cid]bool) (int, []cid.Cid, error) {
	var outside []cid.Cid
	seen := map[cid.Cid]bool{}
	ingestTopic := ""
	if strict {
		ingestTopic = topic
	}
	// check looks at the results of one batch: it collects the parents
	// outside asked and fails on a record no honest peer serves.
	check := func(results []ingestResult) error {
		for _, r := range results {
			if r.rec != nil && (r.err == nil || protocol.ReasonOf(r.err) == protocol.ReasonDuplicate) {
				if c.stored == nil {
					c.stored = map[cid.Cid]bool{}
				}
				c.stored[r.rec.CID] = true
			}
			reason := protocol.ReasonOf(r.err)
			if reason == protocol.ReasonUnknownAuthor && r.rec != nil {
				c.retry = append(c.retry, r.rec.Raw)
			}
			if (reason == protocol.ReasonMissingDeps || reason == protocol.ReasonUnknownAuthor) && r.rec != nil {
				for _, l := range r.rec.Links() {
					if asked[l] || seen[l] {
						continue
					}
					if ok, err := c.s.n.store.Has(l); err == nil && !ok {
						seen[l] = true
						outside = append(outside, l)
					}
				}
			}
			if r.err == nil || protocol.ActionOf(r.err) != protocol.Reject {
				continue
			}
			if !validationReason(protocol.ReasonOf(r.err)) {
				// Judged against the record's causal past and this
				// node's state (not-member, not-allowed, ...): not the
				// server's fault alone.
				continue
			}
			c.s.penalise(c.peer, string(protocol.ReasonOf(r.err)), r.err)
			return fmt.Errorf("%w: %w", ErrBadPeer, r.err)
		}
		return nil
	}
	var prev func() []ingestResult
	// Records are applied parents first: one whose parent was asked for
	// and is yet to come is held back and handed in again with the next
	// response, rather than left to wait in the pending set. (The records
	// of one millisecond are fetched in CID order, which can put a child
	// in an earlier response than its parent.) The last response takes
	// whatever is held.
	queued := map[cid.Cid]bool{}
	var held [][]byte
	hold := func(r *protocol.Record) bool {
		for _, l := range r.Links() {
			if asked[l] && !queued[l] && !c.stored[l] {
				return true
			}
		}
		queued[r.CID] = true
		return false
	}
	queue := slices.Clone(cids)
	var inflight [][]cid.Cid
	received := 0
	for len(queue) > 0 || len(inflight) > 0 {
		if c.bytes >= c.s.limits.MaxSessionBytes && len(queue) > 0 {
			queue, c.truncated = nil, true
		}
		for len(inflight) < syncFetchWindow && len(queue) > 0 {
			k := min(syncFetchBatch, len(queue))
			batch := make([]cid.Cid, 0, k)
			for _, x := range queue[:k] {
				if ok, err := c.s.n.store.Has(x); err == nil && ok {
					if c.stored == nil {
						c.stored = map[cid.Cid]bool{}
					}
					c.stored[x] = true
					continue
				}
				batch = append(batch, x)
			}
			queue = queue[k:]
			if len(batch) == 0 {
				continue
			}
			req := &protocol.SyncRequest{Type: protocol.SyncFetch, Topic: topic, CIDs: make([][]byte, len(batch))}
			for i, x := range batch {
				req.CIDs[i] = x.Bytes()
			}
			if err := c.send(req); err != nil {
				return received, outside, fmt.Errorf("node: sync: write: %w", err)
			}
			inflight = append(inflight, batch)
		}
		if len(inflight) == 0 {
			continue // all stored meanwhile
		}
		batch := inflight[0]
		inflight = inflight[1:]
		resp, err := c.recv(protocol.SyncFetch)
		if err != nil {
			return received, outside, err
		}
		if resp.Served < 0 || resp.Served > len(batch) || len(resp.Records) > resp.Served ||
			(resp.Served == 0 && len(batch) > 0) {
			err := fmt.Errorf("fetch response serves %d of %d with %d records", resp.Served, len(batch), len(resp.Records))
			c.s.penalise(c.peer, badProtocol, err)
			return received, outside, fmt.Errorf("%w: %w", ErrBadPeer, err)
		}
		queue = append(queue, batch[resp.Served:]...)
		requested := make(map[cid.Cid]bool, resp.Served)
		for _, x := range batch[:resp.Served] {
			requested[x] = true
		}
		for _, raw := range resp.Records {
			got := protocol.RecordCID(raw)
			if !requested[got] {
				err := fmt.Errorf("served bytes with CID %s, which was not requested", got)
				c.s.penalise(c.peer, badCIDMismatch, err)
				return received, outside, fmt.Errorf("%w: %w", ErrBadPeer, err)
			}
			delete(requested, got)
			c.bytes += int64(len(raw))
		}
		if strict && len(requested) > 0 {
			// The peer's set is what it stores, and a store only grows: an
			// id it claimed and does not serve was never there.
			err := fmt.Errorf("%d of %d records claimed in reconciliation not served", len(requested), resp.Served)
			c.s.penalise(c.peer, badFakeIDs, err)
			return received, outside, fmt.Errorf("%w: %w", ErrBadPeer, err)
		}
		if parents && len(requested) > 0 {
			// Parents of records the peer served from its store, which is
			// causally closed: it holds them.
			err := fmt.Errorf("%d parents of records it served not served", len(requested))
			c.s.penalise(c.peer, badUnservedPast, err)
			return received, outside, fmt.Errorf("%w: %w", ErrBadPeer, err)
		}
		received += len(resp.Records)
		c.s.fetched.WithLabelValues(topic).Add(float64(len(resp.Records)))
		// Verify this batch while the apply loop writes the previous one.
		raws := resp.Records
		if len(held) > 0 {
			raws = append(held, raws...)
		}
		last := len(queue) == 0 && len(inflight) == 0
		h := hold
		if last {
			h = nil
		}
		wait, keep := c.s.n.ingestMany(ctx, raws, ingestTopic, origin{src: SourceSync, peer: c.peer}, h)
		held = keep
		if prev != nil {
			if err := check(prev()); err != nil {
				return received, outside, err
			}
		}
		prev = wait
		if err := ctx.Err(); err != nil {
			return received, outside, err
		}
	}
	if prev != nil {
		if err := check(prev()); err != nil {
			return received, outside, err
		}
	}
	return received, outside, nil
}

// validationReason reports whether a rejection reason is one any receiver
// finds from the record bytes alone, so an honest server never serves such
// a record.
func validationReason(r protocol.Reason) bool {
	switch r {
	case protocol.ReasonOversize, protocol.ReasonBadEncoding, protocol.ReasonNonCanonical,
		protocol.ReasonBadVersion, protocol.ReasonWrongNetwork, protocol.ReasonUnknownKind,
		protocol.ReasonWrongTopic, protocol.ReasonBadBody, protocol.ReasonBadLinks,
		protocol.ReasonBadSignature:
		return true
	}
	return false
}

// chainHead asks p for author's chain head on topic.
func (s *syncer) chainHead(ctx context.Context, p peer.ID, author []byte, topic string) (uint64, error) {
	c, err := s.open(ctx, p)
	if err != nil {
		return 0, err
	}
	defer c.close()
	if err := c.send(&protocol.SyncRequest{Type: protocol.SyncChainHead, Topic: topic, Author: author}); err != nil {
		return 0, fmt.Errorf("node: sync: write: %w", err)
	}
	resp, err := c.recv(protocol.SyncChainHead)
	if err != nil {
		return 0, err
	}
	return resp.Seq, nil
}

// confirmChain makes sure, on a node started with WithRecoverChain(true),
// that this node holds its own latest record on topic before it publishes
// there: it asks every connected peer for its chain head, syncs the topic
// with the peers that know a higher seq, and fails with ErrChainUnconfirmed
// if no peer answered or the chain could not be fetched. Once confirmed, a
// topic is not asked about again.
func (s *syncer) confirmChain(ctx context.Context, topic string) error {
	n := s.n
	if !n.opts.recoverChain {
		return nil
	}
	s.mu.Lock()
	ok := s.chainOK[topic]
	s.mu.Unlock()
	if ok {
		return nil
	}
	author := []byte(n.key.Public().(ed25519.PublicKey))
	answered := false
	var best uint64
	var errs []error
	for _, p := range s.syncPeers() {
		cctx, cancel := context.WithTimeout(ctx, s.limits.RequestTimeout)
		seq, err := s.chainHead(cctx, p, author, topic)
		cancel()
		if known, ok := s.speaks(p); err != nil && known && !ok {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		answered = true
		if seq > best {
			best = seq
			mine, _, err := n.store.ChainHead(author, topic)
			if err != nil {
				return err
			}
			if seq > mine {
				if _, err := s.syncTopic(ctx, p, topic, 0); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if !answered {
		return fmt.Errorf("%w on %s: %w", ErrChainUnconfirmed, topic, errors.Join(errs...))
	}
	mine, _, err := n.store.ChainHead(author, topic)
	if err != nil {
		return err
	}
	if mine < best {
		return fmt.Errorf("%w on %s: peers know seq %d, this node could fetch only up to %d: %w",
			ErrChainUnconfirmed, topic, best, mine, errors.Join(errs...))
	}
	s.mu.Lock()
	s.chainOK[topic] = true
	s.mu.Unlock()
	return nil
}

// handle serves one inbound sync stream: requests in order until the
// opener closes it, at most syncInboundPerPeer streams per peer at once,
// none from a penalised peer, each for at most SessionBudget. A request
// frame must arrive within RequestTimeout of its first byte and fit the
// global frame memory; a malformed or stalled one penalises the peer.
func (s *syncer) handle(st network.Stream) {
	p := st.Conn().RemotePeer()
	if err := st.Scope().SetService(syncService); err != nil {
		s.n.log.Debug("sync stream refused by the resource manager", "peer", p, "err", err)
		_ = st.Reset()
		return
	}
	if s.penalised(p) {
		s.refused.WithLabelValues(refusedPenalised).Inc()
		_ = st.Reset()
		return
	}
	// At most syncInboundPerPeer streams of a peer are served at once;
	// a few more wait for a slot, beyond that they are reset.
	s.mu.Lock()
	slot := s.inbound[p]
	if slot == nil {
		slot = &inboundSlots{sem: make(chan struct{}, syncInboundPerPeer)}
		s.inbound[p] = slot
	}
	if slot.streams >= syncInboundPerPeer+syncInboundQueued {
		s.mu.Unlock()
		s.refused.WithLabelValues(refusedSlots).Inc()
		_ = st.Reset()
		return
	}
	slot.streams++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if slot.streams--; slot.streams == 0 {
			delete(s.inbound, p)
		}
		s.mu.Unlock()
	}()
	timeout := s.limits.RequestTimeout
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case slot.sem <- struct{}{}:
		defer func() { <-slot.sem }()
	case <-timer.C:
		s.refused.WithLabelValues(refusedSlots).Inc()
		_ = st.Reset()
		return
	case <-s.n.ctx.Done():
		_ = st.Reset()
		return
	}
	end := time.Now().Add(s.limits.SessionBudget)
	defer st.Close()
	r, w := getSyncReader(st), getSyncWriter(st)
	defer putSyncWriter(w)
	defer putSyncReader(r)
	in := &inboundStream{} // what this stream has been served
	for {
		// Between requests the opener may be validating what it got.
		next := time.Now().Add(2 * timeout)
		if next.After(end) {
			next = end
		}
		if err := st.SetReadDeadline(next); err != nil {
			return
		}
		if _, err := r.Peek(1); err != nil {
			if isTimeout(err) && !time.Now().Before(end) {
				s.refused.WithLabelValues(refusedLifetime).Inc()
				_ = st.Reset()
			}
			return // EOF or deadline: the stream ends
		}
		// A request is read in full within RequestTimeout of its first byte.
		_ = st.SetReadDeadline(time.Now().Add(timeout))
		var req protocol.SyncRequest
		if _, err := readFrame(r, &req, s.frames, nil, nil); err != nil {
			switch {
			case errors.Is(err, errFrameMemory):
				s.refused.WithLabelValues(refusedBusy).Inc()
			case errors.Is(err, protocol.ErrFrameTooLarge) || errors.Is(err, protocol.ErrBadMessage):
				s.penalise(p, badRequest, err)
			case isTimeout(err):
				s.strike(p, fmt.Errorf("request frame not completed within %v: %w", timeout, err))
			}
			_ = st.Reset()
			return
		}
		resp := s.serve(&req, in)
		if req.Type == protocol.SyncReconcile && resp.Error == "" {
			s.reverseSync(p, req.Topic, req.Ranges, resp.Ranges)
		}
		_ = st.SetWriteDeadline(time.Now().Add(timeout))
		if err := protocol.WriteFrame(w, resp); err != nil {
			return
		}
		// Flush only when no further request is already buffered, so
		// pipelined requests are answered in one write.
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
		if resp.Error != "" {
			_ = w.Flush()
			return
		}
	}
}

// inboundStream is what one inbound stream has been served: its budgets
// mirror the opener's (SyncLimits), so an honest opener never meets them.
type inboundStream struct {
	sets   map[string]*protocol.ItemSet // built once per stream and topic
	ranges int                          // reconcile ranges answered
	bytes  int64                        // record bytes served
}

// serve answers one request.
func (s *syncer) serve(req *protocol.SyncRequest, in *inboundStream) *protocol.SyncResponse {
	st := s.n.store
	resp := &protocol.SyncResponse{Type: req.Type}
	fail := func(format string, args ...any) *protocol.SyncResponse {
		resp.Error = fmt.Sprintf(format, args...)
		return resp
	}
	if err := protocol.ValidTopic(req.Topic); err != nil {
		return fail("%v", err)
	}
	switch req.Type {
	case protocol.SyncReconcile:
		if len(req.Ranges) > protocol.ReconcileMaxRanges {
			return fail("%d ranges, at most %d", len(req.Ranges), protocol.ReconcileMaxRanges)
		}
		// An opener's session makes at most syncMaxRounds requests.
		if in.ranges += len(req.Ranges); in.ranges > syncMaxRounds*protocol.ReconcileMaxRanges {
			return fail("more than %d ranges on one stream", syncMaxRounds*protocol.ReconcileMaxRanges)
		}
		if in.sets == nil {
			in.sets = map[string]*protocol.ItemSet{}
		}
		set := in.sets[req.Topic]
		if set == nil && len(in.sets) >= s.limits.MaxStreamTopics {
			return fail("more than %d topics on one stream", s.limits.MaxStreamTopics)
		}
		if set == nil {
			var err error
			if set, err = s.itemSet(req.Topic); err != nil {
				return fail("internal error")
			}
			in.sets[req.Topic] = set
		}
		out, err := set.Respond(req.Ranges)
		if err != nil {
			return fail("%v", err)
		}
		resp.Ranges = out
	case protocol.SyncFetch:
		if len(req.CIDs) > protocol.SyncMaxFetch {
			return fail("%d CIDs, at most %d", len(req.CIDs), protocol.SyncMaxFetch)
		}
		// An opener stops asking at MaxSessionBytes, with at most a
		// fetch window of responses still coming.
		if in.bytes >= s.limits.MaxSessionBytes+syncFetchWindow*protocol.SyncMaxFrame {
			return fail("more than %d bytes served on one stream", in.bytes)
		}
		size := 0
		for _, b := range req.CIDs {
			if len(resp.Records) == protocol.SyncMaxFetchRecords {
				break
			}
			c, err := cid.Cast(b)
			if err != nil || !protocol.IsRecordCID(c) {
				return fail("malformed CID")
			}
			raw, err := st.Get(c)
			switch {
			case errors.Is(err, store.ErrNotFound):
			case err != nil:
				return fail("internal error")
			default:
				if size+len(raw) > protocol.SyncMaxFetchBytes {
					return resp
				}
				size += len(raw)
				in.bytes += int64(len(raw))
				resp.Records = append(resp.Records, raw)
			}
			resp.Served++
		}
	case protocol.SyncChainHead:
		seq, head, err := st.ChainHead(req.Author, req.Topic)
		if err != nil {
			return fail("%v", err)
		}
		resp.Seq = seq
		if head.Defined() {
			resp.Head = head.Bytes()
		}
	default:
		return fail("unknown request type %d", req.Type)
	}
	return resp
}

// Sync streams read and write through 64 KiB buffers. A session is short
// (often one round trip) and there are many while records flow: allocating
// three buffers for each was 44% of the bytes a node allocated in a
// benchmark run, most of its garbage collection. The buffers are reused.
const syncBufSize = 64 << 10

var (
	syncReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, syncBufSize) }}
	syncWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, syncBufSize) }}
)

func getSyncReader(r io.Reader) *bufio.Reader {
	br := syncReaders.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

// putSyncReader returns br to the pool; the caller no longer uses it.
func putSyncReader(br *bufio.Reader) {
	br.Reset(nil)
	syncReaders.Put(br)
}

func getSyncWriter(w io.Writer) *bufio.Writer {
	bw := syncWriters.Get().(*bufio.Writer)
	bw.Reset(w)
	return bw
}

// putSyncWriter returns bw to the pool, dropping anything not flushed;
// the caller no longer uses it.
func putSyncWriter(bw *bufio.Writer) {
	bw.Reset(nil)
	syncWriters.Put(bw)
}

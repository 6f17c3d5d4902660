package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/store"
)

// Source says where a record came from; it is a metrics label.
type Source string

// Sources of records.
const (
	SourceGossip Source = "gossip"
	SourceSync   Source = "sync"
	SourceLocal  Source = "local"
)

// maxApplyBatch bounds how many records one durable write carries.
const maxApplyBatch = 1024

// ingester owns the path from a verified record to the store. Callers
// verify records in parallel (signature checks are the expensive part) and
// hand them to one apply loop, the only writer of the store. The loop takes
// every request queued, checks each against the store and the records
// earlier in the same batch (duplicates, missing parents, the parents'
// links and times, chain conflicts) and against the derived state it owns
// (fedState), writes the accepted ones in one synced batch (group commit),
// and, once that is durable, publishes the state's snapshot and answers
// every caller. A record whose parents are missing waits in the pending
// set, owned by the loop, and joins the batch in which its last parent is
// written. Local publishes reach the loop as drafts that it builds and
// signs on its own chain head (publish.go).
//
// Invariant: the store is causally closed; a record is written in the same
// batch as, or after, every record of its causal past.
type ingester struct {
	n *Node
	w *store.Writer // the store's writer handle: only the loop holds it
	// self is the public key of the node's identity, the key it signs
	// its own records with (an observer signs only the public comments it
	// relays); signer is its private key.
	self   []byte
	signer ed25519.PrivateKey
	reqs   chan *applyReq
	reads  chan *readReq

	// Owned by the apply loop.
	pend *pendingSet // records waiting for their causal past (pending.go)
	// own is the head of the node's own chain on each topic, as far as
	// the loop has accepted records (stored or in flight): the chain
	// position Publish builds on belongs to the loop, not to callers.
	own map[string]protocol.Parent
	// last is the snapshot built after the last batch the loop applied;
	// it is published once that batch is durable.
	last *snapshot

	// pendingN and pendingB mirror the pending set's records and bytes
	// for metrics, read outside the loop.
	pendingN, pendingB atomic.Int64

	// inflight holds records queued for a durable write that has not
	// completed: the loop adds them, the completion goroutine removes them
	// once they are visible in the store. Later batches treat them as
	// stored, since the store commits in queue order.
	inflightMu    sync.Mutex
	inflight      map[cid.Cid]protocol.Parent
	inflightSlots map[string]cid.Cid
	// recent remembers the last recentSize records written (guarded by
	// inflightMu), so the checks of their children and of duplicates need
	// no store lookup.
	recent  map[cid.Cid]protocol.Parent
	recentQ []cid.Cid // ring of the keys of recent, oldest at recentI
	recentI int
}

// recentSize is how many recently written records the apply loop keeps in
// memory for parent and duplicate checks.
const recentSize = 1 << 16

// remember adds a written record to recent; the caller holds inflightMu.
func (in *ingester) remember(p protocol.Parent) {
	if len(in.recentQ) < recentSize {
		in.recentQ = append(in.recentQ, p.CID)
	} else {
		delete(in.recent, in.recentQ[in.recentI])
		in.recentQ[in.recentI] = p.CID
		in.recentI = (in.recentI + 1) % recentSize
	}
	in.recent[p.CID] = p
}

// commitBatch is a batch queued in the store, waiting to be durable, with
// the snapshot of the derived state that includes it. A batch with a
// barrier and nothing staged only marks a point in the queue: the
// completion goroutine closes barrier once every batch before it is done.
type commitBatch struct {
	staged  []*staged
	wait    func(context.Context) ([]store.Meta, error)
	snap    *snapshot
	barrier chan struct{}
}

type applyReq struct {
	rec      *protocol.Record
	draft    *ownDraft // a local publish: the loop builds and signs rec
	src      Source
	from     peer.ID // the peer it came from (gossip, sync); "" if local
	received time.Time
	missing  int        // parents it still waits for, while pending
	waitsOn  []cid.Cid  // the parents it waited for when it became pending
	stranger bool       // waits only as a kind open to non-members (pending.go)
	done     chan error // buffered; nil for a released pending record
	// forward reports whether the record is gossiped once stored: a
	// record that arrived by gossip with its past incomplete was not
	// forwarded then (its validation was ignored), so it is published
	// when its past is complete and it is stored.
	forward bool
	// staged, if not nil, is closed once the record has passed every
	// check and its durable write is queued (forward.go).
	staged chan struct{}
}

// ownDraft is what Publish asks the apply loop to build, sign, store and
// gossip.
type ownDraft struct {
	kind, topic string
	body        protocol.Body
	deps        []cid.Cid
}

// readReq is a read of the live derived state, run by the apply loop once
// every record it has accepted is durable.
type readReq struct {
	fn   func(*fedState) error
	done chan error // buffered
}

func newIngester(n *Node, w *store.Writer) *ingester {
	var signer ed25519.PrivateKey
	if raw, err := n.opts.identity.Raw(); err == nil && len(raw) == ed25519.PrivateKeySize {
		signer = ed25519.PrivateKey(raw)
	}
	var self []byte
	if signer != nil {
		self = signer.Public().(ed25519.PublicKey)
	}
	in := &ingester{
		self:          self,
		signer:        signer,
		n:             n,
		w:             w,
		reqs:          make(chan *applyReq, maxApplyBatch),
		reads:         make(chan *readReq),
		own:           map[string]protocol.Parent{},
		inflight:      map[cid.Cid]protocol.Parent{},
		inflightSlots: map[string]cid.Cid{},
		recent:        map[cid.Cid]protocol.Parent{},
	}
	in.pend = newPendingSet(in, n.opts.pending)
	return in
}

// pendingCount returns the number of records waiting for their past, as
// of the end of the last batch.
func (in *ingester) pendingCount() int { return int(in.pendingN.Load()) }

// Ingest validates raw as a record of this node's network and, once its
// causal past is stored, stores it durably. topic, if not empty, is the
// record topic it arrived on. It returns the record and nil once stored
// (and the node's readers see it); a protocol error otherwise (missing-deps
// means the record is held until its past arrives; duplicate that it was
// already held). Every refusal is counted in the node's metrics by reason.
// Ingest is ingestMany of one record: safe to call concurrently, with the
// signature checks on the node's verifier goroutines.
func (n *Node) Ingest(ctx context.Context, raw []byte, topic string, src Source) (*protocol.Record, error) {
	// One ingest path: a single record is a batch of one.
	wait, _ := n.ingestMany(ctx, [][]byte{raw}, topic, origin{src: src}, nil)
	r := wait()[0]
	return r.rec, r.err
}

var errClosed = errors.New("node: closed")

// maxCommitsInFlight bounds the batches queued in the store and not yet
// durable; the apply loop waits when it is reached.
const maxCommitsInFlight = 8

// run is the apply loop. It ends when ctx ends; requests still queued are
// answered with errClosed by their callers' select on the node context.
// Durable writes complete on a second goroutine, so the loop checks and
// queues the next batch while the previous one is being synced.
//
// The order for each batch is: verified records in; the loop checks them
// against the store and its private working state (fedState), applies the
// valid ones to it and queues them for one durable write, together with
// the snapshot of the state that includes them; once the write is durable
// the completion goroutine publishes that snapshot, answers the callers,
// sends the events and gossips the node's own records. So nobody outside
// the loop ever sees a record before it is durable. If a durable write
// fails the node stops (Node.Err says why): the working state is then
// ahead of the store, and the next start rebuilds it from the store.
func (in *ingester) run(ctx context.Context) {
	commits := make(chan *commitBatch, maxCommitsInFlight)
	var cwg sync.WaitGroup
	cwg.Go(func() { in.complete(ctx, commits) })
	defer func() {
		close(commits)
		cwg.Wait()
	}()
	batch := make([]*applyReq, 0, maxApplyBatch)
	// Records waiting longer than their TTL are dropped (pending.go).
	sweep := time.NewTicker(pendingSweep(in.pend.lim.TTL))
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sweep.C:
			in.pend.expire(in.n.opts.clock())
			in.pendingN.Store(int64(len(in.pend.recs)))
			in.pendingB.Store(int64(in.pend.bytes))
			continue
		case r := <-in.reads:
			in.serveReads(ctx, r, commits)
			continue
		case r := <-in.reqs:
			batch = append(batch[:0], r)
		}
	drain:
		for len(batch) < maxApplyBatch {
			select {
			case r := <-in.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		in.apply(ctx, batch, commits)
		in.pendingN.Store(int64(len(in.pend.recs)))
		in.pendingB.Store(int64(in.pend.bytes))
	}
}

// read runs fn on the live derived state in the apply loop, at a point
// where every record the loop accepted is durable, and returns its error;
// errClosed if the node stops first.
func (in *ingester) read(ctx context.Context, fn func(*fedState) error) error {
	req := &readReq{fn: fn, done: make(chan error, 1)}
	select {
	case in.reads <- req:
	case <-ctx.Done():
		return errClosed
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return errClosed
	}
}

// serveReads waits until every batch queued is durable, then answers r and
// every other read queued.
func (in *ingester) serveReads(ctx context.Context, r *readReq, commits chan<- *commitBatch) {
	barrier := make(chan struct{})
	select {
	case commits <- &commitBatch{barrier: barrier}:
	case <-ctx.Done():
		r.done <- errClosed
		return
	}
	select {
	case <-barrier:
	case <-ctx.Done():
		r.done <- errClosed
		return
	}
	for {
		if in.n.Err() != nil {
			r.done <- errClosed
		} else {
			err := r.fn(in.n.state)
			// A read may have loaded part of the state from the store
			// (lazy.go): readers see it before the caller goes on. Every
			// batch is durable, so the snapshot may be published here.
			if next := in.n.state.snapshot(in.last); next != in.last {
				in.last = next
				in.n.snap.Store(next)
			}
			r.done <- err
		}
		select {
		case r = <-in.reads:
		default:
			return
		}
	}
}

// staged is a record accepted into the current batch.
type staged struct {
	req  *applyReq
	meta protocol.Parent
	fork bool // another record holds the chain slot: an equivocation kept
}

// apply checks and writes one batch. Released pending records are appended
// to the work list, so a chain that arrived out of order is written whole.
func (in *ingester) apply(ctx context.Context, work []*applyReq, commits chan<- *commitBatch) {
	n := in.n
	inBatch := map[cid.Cid]*staged{}
	slots := map[string]cid.Cid{} // author|topic|seq -> CID, within the batch
	var accepted []*staged
	for i := 0; i < len(work); i++ {
		req := work[i]
		if req.draft != nil && req.rec == nil {
			rec, err := in.build(req.draft, inBatch)
			if err != nil {
				in.finish(req, err)
				continue
			}
			req.rec = rec
		}
		rec := req.rec
		fork, missing, err := in.check(rec, inBatch, slots)
		if err != nil {
			if len(missing) > 0 {
				err = in.addPending(req, missing)
			}
			in.finish(req, err)
			continue
		}
		s := &staged{req: req, meta: parentOf(rec), fork: fork}
		inBatch[rec.CID] = s
		if sk := slotKey(rec.Env.Author, rec.Env.Topic, rec.Env.Seq); !fork {
			slots[sk] = rec.CID
		}
		accepted = append(accepted, s)
		if in.self != nil && bytes.Equal(rec.Env.Author, in.self) {
			if err := in.raiseOwn(s.meta); err != nil {
				n.log.Warn("own chain head not read", "topic", rec.Env.Topic, "err", err)
			}
		}
		work = append(work, in.pend.release(rec.CID)...)
	}
	if len(accepted) == 0 {
		return
	}
	entries := make([]store.Entry, len(accepted))
	for i, s := range accepted {
		entries[i] = entryOf(s.req.rec)
		// The checks above kept any record at a held slot on purpose.
		entries[i].Fork = s.fork
	}
	wait, err := in.w.EnqueueBatch(ctx, entries, n.opts.clock().UnixMilli())
	if err != nil {
		err = fmt.Errorf("node: store: %w", err)
		for _, s := range accepted {
			in.finish(s.req, err)
		}
		if ctx.Err() == nil {
			n.fail(err)
		}
		return
	}
	in.inflightMu.Lock()
	for _, s := range accepted {
		r := s.req.rec
		in.inflight[r.CID] = s.meta
		if !s.fork {
			in.inflightSlots[slotKey(r.Env.Author, r.Env.Topic, r.Env.Seq)] = r.CID
		}
	}
	in.inflightMu.Unlock()
	in.last = n.state.snapshot(in.last)
	// The gossip validators waiting on this batch are woken last: the
	// goroutine woken last is the one the scheduler runs next on this
	// thread (runnext), and forwarding is what the next hop waits for,
	// while the completion goroutine only waits for the fsync. Woken
	// before the hand-off to it, they waited behind every runnable
	// goroutine of the process: 8.4 ms on average per hop against 0.3 ms
	// (100 nodes in one process, docs/benchmarks.md section 8). When
	// maxCommitsInFlight batches are already queued, they are woken
	// first: forwarding never waits for a durable write.
	b := &commitBatch{staged: accepted, wait: wait, snap: in.last}
	select {
	case commits <- b:
		forwardOnStaged(accepted)
	default:
		forwardOnStaged(accepted)
		select {
		case commits <- b:
		case <-ctx.Done():
		}
	}
}

// complete waits for each queued batch to be durable, in order, then
// publishes its snapshot, answers its callers, counts and announces its
// records, hands the node's own records to gossip, and removes them from
// the in-flight set. After a failed write it answers every later batch
// with the error and publishes nothing more.
func (in *ingester) complete(ctx context.Context, commits <-chan *commitBatch) {
	n := in.n
	for c := range commits {
		if c.barrier != nil {
			close(c.barrier)
			continue
		}
		metas, err := c.wait(ctx)
		if err == nil {
			err = n.Err()
		}
		if err != nil {
			err = fmt.Errorf("node: store: %w", err)
			if ctx.Err() == nil {
				n.fail(err)
			}
		} else {
			n.snap.Store(c.snap)
			var top uint64
			for _, m := range metas {
				top = max(top, m.Arrival)
			}
			n.shown.raise(top)
		}
		now := n.opts.clock()
		for i, s := range c.staged {
			rec := s.req.rec
			if err != nil {
				in.finish(s.req, err)
				continue
			}
			n.metrics.accepted.WithLabelValues(rec.Env.Topic, string(s.req.src)).Inc()
			n.metrics.ingest.Observe(now.Sub(s.req.received).Seconds())
			n.events.publish(Event{Record: rec, Meta: metas[i], Source: s.req.src})
			in.finish(s.req, nil)
			switch {
			case s.req.draft != nil:
				n.gossipStored(rec)
			case n.Withheld(rec):
				// Stored, never forwarded (blocks.go; the gossip
				// validator ignores it too).
				n.metrics.withheld.WithLabelValues(string(s.req.src)).Inc()
			case s.req.forward:
				n.gossipStored(rec)
			}
		}
		in.inflightMu.Lock()
		for _, s := range c.staged {
			r := s.req.rec
			delete(in.inflight, r.CID)
			if !s.fork {
				delete(in.inflightSlots, slotKey(r.Env.Author, r.Env.Topic, r.Env.Seq))
			}
			if err == nil {
				in.remember(s.meta)
			}
		}
		in.inflightMu.Unlock()
	}
}

// check decides whether rec can join the batch: not a duplicate, every
// parent stored or staged, links and times consistent with the parents,
// and valid given its causal past. fork reports that the author already
// has another record in rec's chain slot: rec is kept beside it (an
// equivocation).
func (in *ingester) check(rec *protocol.Record, inBatch map[cid.Cid]*staged, slots map[string]cid.Cid) (fork bool, missing []cid.Cid, err error) {
	fork, other, missing, err := in.checkLinks(rec, inBatch, slots)
	if missing != nil || err != nil {
		return false, missing, err
	}
	// Last, the rules of the causal past: membership, issues, processes.
	// admit applies the record to the derived state when it passes. It
	// runs outside inflightMu: it may first load part of the state from
	// the store (lazy.go).
	if err := in.n.state.admit(rec); err != nil {
		return false, nil, err
	}
	if fork {
		// An equivocation: both records are valid, so both are kept,
		// forwarded and synced, and every node ends with the same set;
		// the author's records count for nothing in any effect
		// (docs/protocol.md 8.10).
		in.n.metrics.equivocations.WithLabelValues(rec.Env.Topic).Inc()
		in.n.log.Warn("equivocation kept", "author", fmt.Sprintf("%x", rec.Env.Author[:8]), "topic", rec.Env.Topic,
			"seq", rec.Env.Seq, "held", other, "new", rec.CID)
		in.n.reportEquivocation(other, rec)
	}
	return fork, nil, nil
}

// checkLinks is check up to the rules of the causal past: held, chain
// slot, parents stored and consistent. fork reports that other, another
// record of the author, holds rec's chain slot.
func (in *ingester) checkLinks(rec *protocol.Record, inBatch map[cid.Cid]*staged, slots map[string]cid.Cid) (fork bool, other cid.Cid, missing []cid.Cid, err error) {
	st := in.n.store
	in.inflightMu.Lock()
	defer in.inflightMu.Unlock()
	_, staged := inBatch[rec.CID]
	_, flying := in.inflight[rec.CID]
	_, recent := in.recent[rec.CID]
	waiting := in.pend.has(rec.CID)
	if err := heldVerdict(rec, staged || flying || recent, waiting); err != nil {
		return false, cid.Undef, nil, err
	}
	// The record's chain slot says both whether it is stored (a stored
	// record holds its slot) and whether the author signed another record
	// there. Appending to a chain, the usual case, costs the store no
	// lookup (the writer's handle keeps the top of recently used chains
	// in memory, exact for the loop, which knows what is in flight).
	slot := slotKey(rec.Env.Author, rec.Env.Topic, rec.Env.Seq)
	var ok bool
	other, ok = slots[slot]
	if !ok {
		other, ok = in.inflightSlots[slot]
	}
	if !ok {
		c, err := in.w.ChainAt(rec.Env.Author, rec.Env.Topic, rec.Env.Seq)
		switch {
		case err == nil:
			other, ok = c, true
		case !errors.Is(err, store.ErrNotFound):
			return false, cid.Undef, nil, fmt.Errorf("node: store: %w", err)
		}
	}
	if ok && other.Equals(rec.CID) {
		return false, cid.Undef, nil, heldVerdict(rec, true, false)
	}
	if ok {
		// The slot holds another record: rec is either stored already,
		// as the other side of a fork, or a fork to keep.
		held, err := st.Has(rec.CID)
		if err != nil {
			return false, cid.Undef, nil, fmt.Errorf("node: store: %w", err)
		}
		if held {
			return false, cid.Undef, nil, heldVerdict(rec, true, false)
		}
	}
	links := rec.Links()
	parents := make([]protocol.Parent, 0, len(links))
	for _, c := range links {
		if s, ok := inBatch[c]; ok {
			parents = append(parents, s.meta)
			continue
		}
		if p, ok := in.inflight[c]; ok {
			parents = append(parents, p)
			continue
		}
		if p, ok := in.recent[c]; ok {
			parents = append(parents, p)
			continue
		}
		m, err := st.Meta(c)
		switch {
		case errors.Is(err, store.ErrNotFound):
			missing = append(missing, c)
			continue
		case err != nil:
			return false, cid.Undef, nil, fmt.Errorf("node: store: %w", err)
		}
		parents = append(parents, protocol.Parent{CID: c, Author: m.Author, Topic: m.Topic, Seq: m.Seq, Time: m.Time})
	}
	if len(missing) > 0 {
		return false, cid.Undef, missing, protocol.Errorf(protocol.ReasonMissingDeps, "record %s lacks %d of its parents", rec.CID, len(missing))
	}
	if err := protocol.CheckParents(rec, parents); err != nil {
		return false, cid.Undef, nil, err
	}
	return ok, other, nil, nil
}

// heldVerdict is the node's one answer to "already held?", in the
// protocol's reasons: a record the node holds (stored, in flight or staged
// in the batch) is a duplicate; one that waits for its causal past is
// missing-deps. It returns nil if neither applies. Only the apply loop,
// which alone knows what is in flight, decides these. (A record at a chain
// slot its author already used is no refusal: it is kept, check.)
func heldVerdict(rec *protocol.Record, held, waiting bool) error {
	switch {
	case held:
		return protocol.Errorf(protocol.ReasonDuplicate, "record %s already stored", rec.CID)
	case waiting:
		return protocol.Errorf(protocol.ReasonMissingDeps, "record %s already waits for its causal past", rec.CID)
	}
	return nil
}

// slotKey names an author's chain slot: author (32 bytes), seq (8 bytes,
// big-endian), topic. Only used as a map key.
func slotKey(author []byte, topic string, seq uint64) string {
	b := make([]byte, 0, len(author)+8+len(topic))
	b = append(b, author...)
	b = binary.BigEndian.AppendUint64(b, seq)
	return string(append(b, topic...))
}

func parentOf(r *protocol.Record) protocol.Parent {
	return protocol.Parent{CID: r.CID, Author: r.Env.Author, Topic: r.Env.Topic, Seq: r.Env.Seq, Time: r.Env.Time}
}

// addPending makes req wait for missing, the parents the check found
// neither stored, in flight nor staged in the current batch, if it can
// still become valid and fits the pending limits (pending.go), and returns
// the error to answer it with: missing-deps if it waits, unknown-author or
// pending-full if it does not.
func (in *ingester) addPending(req *applyReq, missing []cid.Cid) error {
	rec := req.rec
	if in.pend.has(rec.CID) {
		return heldVerdict(rec, false, true)
	}
	stranger, err := in.mayWait(rec)
	if err != nil {
		return err
	}
	return in.pend.add(req, missing, stranger)
}

// finish answers a request and counts a refusal.
func (in *ingester) finish(req *applyReq, err error) {
	if err != nil && protocol.ReasonOf(err) != "" {
		in.n.refused(err, "", req.rec, req.src)
	} else if err != nil && req.done == nil {
		in.n.log.Debug("pending record refused", "cid", req.rec.CID, "err", err)
	}
	if req.done != nil {
		req.done <- err
	}
}

func entryOf(r *protocol.Record) store.Entry {
	return store.Entry{
		CID: r.CID, Data: r.Raw, Topic: r.Env.Topic, Kind: r.Env.Kind, Author: r.Env.Author,
		Seq: r.Env.Seq, Prev: r.PrevCID(), Deps: r.DepCIDs(), Time: r.Env.Time,
	}
}

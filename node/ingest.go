package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

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
// links and times, chain conflicts), writes the accepted ones in one synced
// batch (group commit), and then answers every caller. A record whose parents
// are missing waits in the pending set, owned by the loop, and joins the
// batch in which its last parent is written.
//
// Invariant: the store is causally closed; a record is written in the same
// batch as, or after, every record of its causal past.
type ingester struct {
	n    *Node
	reqs chan *applyReq

	// Owned by the apply loop.
	pending      map[cid.Cid]*applyReq
	waiting      map[cid.Cid][]cid.Cid // missing parent -> records waiting for it
	pendingBytes int

	// pendingN mirrors len(pending) for metrics, read outside the loop.
	pendingN atomic.Int64

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

// commitBatch is a batch queued in the store, waiting to be durable.
type commitBatch struct {
	staged []*staged
	wait   func(context.Context) ([]store.Meta, error)
}

type applyReq struct {
	rec      *protocol.Record
	src      Source
	received time.Time
	missing  int
	done     chan error // buffered; nil for a released pending record
	// staged, if not nil, is closed once the record has passed every
	// check and its durable write is queued (forwardOnStaged).
	staged chan struct{}
}

func newIngester(n *Node) *ingester {
	return &ingester{
		n:             n,
		reqs:          make(chan *applyReq, maxApplyBatch),
		pending:       map[cid.Cid]*applyReq{},
		waiting:       map[cid.Cid][]cid.Cid{},
		inflight:      map[cid.Cid]protocol.Parent{},
		inflightSlots: map[string]cid.Cid{},
		recent:        map[cid.Cid]protocol.Parent{},
	}
}

// pendingCount returns the number of records waiting for their past, as
// of the end of the last batch.
func (in *ingester) pendingCount() int { return int(in.pendingN.Load()) }

// Ingest validates raw as a record of this node's network and, once its
// causal past is stored, stores it durably. topic, if not empty, is the
// record topic it arrived on. It returns the record and nil once stored; a
// protocol error otherwise (ErrMissingDeps means the record is held until
// its past arrives; ErrDuplicate that it was already held). Every refusal is
// counted in the node's metrics by reason. Ingest is safe to call
// concurrently; signature checks run on the node's verifier goroutines.
func (n *Node) Ingest(ctx context.Context, raw []byte, topic string, src Source) (*protocol.Record, error) {
	return n.ingest(ctx, raw, topic, src, false)
}

// ingest is Ingest. With forward, it returns nil as soon as the record has
// passed every check and its durable write is queued (the gossip validator
// then lets gossipsub forward it while the write is in flight, see
// forwardOnStaged); without, once the write is durable.
func (n *Node) ingest(ctx context.Context, raw []byte, topic string, src Source, forward bool) (*protocol.Record, error) {
	received := n.opts.clock()
	rec, err := n.validate(ctx, raw)
	if errors.Is(err, errClosed) || (err != nil && err == ctx.Err()) {
		return nil, err
	}
	if err == nil && topic != "" && rec.Env.Topic != topic {
		err = protocol.Errorf(protocol.ReasonWrongTopic, "record of topic %q arrived on topic %q", rec.Env.Topic, topic)
	}
	if err != nil {
		n.refused(err, topic, rec, src)
		return nil, err
	}
	// Duplicates are caught by the apply loop, which knows the records
	// stored, in flight and recently written without asking the store.
	req := &applyReq{rec: rec, src: src, received: received, done: make(chan error, 1)}
	var staged chan struct{} // stays nil (blocks) without forward
	if forward {
		staged = make(chan struct{})
		req.staged = staged
	}
	select {
	case n.ing.reqs <- req:
	case <-ctx.Done():
		return rec, ctx.Err()
	case <-n.ctx.Done():
		return rec, errClosed
	}
	select {
	case err := <-req.done:
		return rec, err
	case <-staged:
		return rec, nil
	case <-ctx.Done():
		return rec, ctx.Err()
	case <-n.ctx.Done():
		return rec, errClosed
	}
}

var errClosed = errors.New("node: closed")

// maxCommitsInFlight bounds the batches queued in the store and not yet
// durable; the apply loop waits when it is reached.
const maxCommitsInFlight = 8

// run is the apply loop. It ends when ctx ends; requests still queued are
// answered with errClosed by their callers' select on the node context.
// Durable writes complete on a second goroutine, so the loop checks and
// queues the next batch while the previous one is being synced.
func (in *ingester) run(ctx context.Context) {
	commits := make(chan *commitBatch, maxCommitsInFlight)
	var cwg sync.WaitGroup
	cwg.Go(func() { in.complete(ctx, commits) })
	defer func() {
		close(commits)
		cwg.Wait()
	}()
	batch := make([]*applyReq, 0, maxApplyBatch)
	for {
		select {
		case <-ctx.Done():
			return
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
		in.pendingN.Store(int64(len(in.pending)))
	}
}

// staged is a record accepted into the current batch.
type staged struct {
	req  *applyReq
	meta protocol.Parent
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
		rec := req.rec
		if missing, err := in.check(rec, inBatch, slots); err != nil {
			if len(missing) > 0 {
				err = in.addPending(req, missing)
			}
			in.finish(req, err)
			continue
		}
		s := &staged{req: req, meta: parentOf(rec)}
		inBatch[rec.CID] = s
		slots[slotKey(rec.Env.Author, rec.Env.Topic, rec.Env.Seq)] = rec.CID
		accepted = append(accepted, s)
		work = append(work, in.release(rec.CID)...)
	}
	if len(accepted) == 0 {
		return
	}
	entries := make([]store.Entry, len(accepted))
	for i, s := range accepted {
		entries[i] = entryOf(s.req.rec)
	}
	wait, err := n.store.EnqueueBatch(ctx, entries, n.opts.clock().UnixMilli())
	if err != nil {
		n.log.Error("store write failed", "records", len(entries), "err", err)
		for _, s := range accepted {
			in.finish(s.req, fmt.Errorf("node: store: %w", err))
		}
		return
	}
	in.inflightMu.Lock()
	for _, s := range accepted {
		r := s.req.rec
		in.inflight[r.CID] = s.meta
		in.inflightSlots[slotKey(r.Env.Author, r.Env.Topic, r.Env.Seq)] = r.CID
	}
	in.inflightMu.Unlock()
	forwardOnStaged(accepted)
	select {
	case commits <- &commitBatch{staged: accepted, wait: wait}:
	case <-ctx.Done():
	}
}

// complete waits for each queued batch to be durable, in order, then
// answers its callers, counts and announces its records, and removes them
// from the in-flight set.
func (in *ingester) complete(ctx context.Context, commits <-chan *commitBatch) {
	n := in.n
	for c := range commits {
		metas, err := c.wait(ctx)
		now := n.opts.clock()
		for i, s := range c.staged {
			rec := s.req.rec
			if err != nil {
				in.finish(s.req, fmt.Errorf("node: store: %w", err))
				continue
			}
			n.metrics.accepted.WithLabelValues(rec.Env.Topic, string(s.req.src)).Inc()
			n.metrics.ingest.Observe(now.Sub(s.req.received).Seconds())
			n.events.publish(Event{Record: rec, Meta: metas[i], Source: s.req.src})
			in.finish(s.req, nil)
		}
		if err != nil {
			n.log.Error("store write failed", "records", len(c.staged), "err", err)
		}
		in.inflightMu.Lock()
		for _, s := range c.staged {
			r := s.req.rec
			delete(in.inflight, r.CID)
			delete(in.inflightSlots, slotKey(r.Env.Author, r.Env.Topic, r.Env.Seq))
			if err == nil {
				in.remember(s.meta)
			}
		}
		in.inflightMu.Unlock()
	}
}

// check decides whether rec can join the batch: not a duplicate, every
// parent stored or staged, links and times consistent with the parents, and
// no other record by the author in the same chain slot.
func (in *ingester) check(rec *protocol.Record, inBatch map[cid.Cid]*staged, slots map[string]cid.Cid) (missing []cid.Cid, err error) {
	st := in.n.store
	in.inflightMu.Lock()
	defer in.inflightMu.Unlock()
	if _, ok := inBatch[rec.CID]; ok {
		return nil, protocol.Errorf(protocol.ReasonDuplicate, "record %s already stored", rec.CID)
	}
	if _, ok := in.inflight[rec.CID]; ok {
		return nil, protocol.Errorf(protocol.ReasonDuplicate, "record %s already stored", rec.CID)
	}
	if _, ok := in.recent[rec.CID]; ok {
		return nil, protocol.Errorf(protocol.ReasonDuplicate, "record %s already stored", rec.CID)
	}
	if _, ok := in.pending[rec.CID]; ok {
		return nil, protocol.Errorf(protocol.ReasonMissingDeps, "record %s already waits for its causal past", rec.CID)
	}
	// The record's chain slot says both whether it is stored (a stored
	// record holds its slot) and whether the author signed another record
	// there. Appending to a chain, the usual case, costs the store no
	// lookup (it keeps the top of recently used chains in memory).
	slot := slotKey(rec.Env.Author, rec.Env.Topic, rec.Env.Seq)
	other, ok := slots[slot]
	if !ok {
		other, ok = in.inflightSlots[slot]
	}
	if !ok {
		c, err := st.ChainAtFast(rec.Env.Author, rec.Env.Topic, rec.Env.Seq)
		switch {
		case err == nil:
			other, ok = c, true
		case !errors.Is(err, store.ErrNotFound):
			return nil, fmt.Errorf("node: store: %w", err)
		}
	}
	if ok && other.Equals(rec.CID) {
		return nil, protocol.Errorf(protocol.ReasonDuplicate, "record %s already stored", rec.CID)
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
			return nil, fmt.Errorf("node: store: %w", err)
		}
		parents = append(parents, protocol.Parent{CID: c, Author: m.Author, Topic: m.Topic, Seq: m.Seq, Time: m.Time})
	}
	if len(missing) > 0 {
		return missing, protocol.Errorf(protocol.ReasonMissingDeps, "record %s lacks %d of its parents", rec.CID, len(missing))
	}
	if err := protocol.CheckParents(rec, parents); err != nil {
		return nil, err
	}
	if ok {
		in.n.log.Warn("equivocation", "author", fmt.Sprintf("%x", rec.Env.Author[:8]), "topic", rec.Env.Topic,
			"seq", rec.Env.Seq, "held", other, "new", rec.CID)
		in.n.reportEquivocation(other, rec)
		return nil, protocol.Errorf(protocol.ReasonEquivocation, "author %x already signed %s at %s seq %d; %s conflicts",
			rec.Env.Author[:8], other, rec.Env.Topic, rec.Env.Seq, rec.CID)
	}
	// Last, the rules of the causal past: membership, issues, processes.
	// admit applies the record to the derived state when it passes.
	return nil, in.n.state.admit(rec)
}

// stored reports whether the store holds rec, by its chain slot (a stored
// record holds its slot): for a record that extends its author's chain the
// store answers from memory. A record whose commit is just returning may
// be reported absent; the apply loop then refuses it as a duplicate.
func (n *Node) stored(rec *protocol.Record) (bool, error) {
	c, err := n.store.ChainAtFast(rec.Env.Author, rec.Env.Topic, rec.Env.Seq)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return c.Equals(rec.CID), nil
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

// addPending registers req as waiting for missing, the parents check found
// neither stored, in flight nor staged in the current batch, within the
// pending limits, and returns the missing-deps error to answer it with.
func (in *ingester) addPending(req *applyReq, missing []cid.Cid) error {
	rec := req.rec
	if _, dup := in.pending[rec.CID]; dup {
		return protocol.Errorf(protocol.ReasonMissingDeps, "record %s already waits for its causal past", rec.CID)
	}
	o := in.n.opts
	if len(in.pending) >= o.pendingRecords || in.pendingBytes+len(rec.Raw) > o.pendingBytes {
		return protocol.Errorf(protocol.ReasonMissingDeps, "record %s lacks %d parents and the pending set is full (%d records, %d bytes); it is dropped until sync fetches it again",
			rec.CID, len(missing), len(in.pending), in.pendingBytes)
	}
	req.missing = len(missing)
	in.pending[rec.CID] = req
	in.pendingBytes += len(rec.Raw)
	// Kept on disk too, so a restart does not lose it (New re-ingests the
	// pending area).
	if err := in.n.store.PutPending(rec.CID, rec.Raw); err != nil {
		in.n.log.Warn("pending record not persisted", "cid", rec.CID, "err", err)
	}
	for _, m := range missing {
		in.waiting[m] = append(in.waiting[m], rec.CID)
	}
	return protocol.Errorf(protocol.ReasonMissingDeps, "record %s waits for %d parents, first %s", rec.CID, len(missing), missing[0])
}

// release returns the pending records that were waiting only for c. Their
// callers have already been answered; these requests carry no done channel.
func (in *ingester) release(c cid.Cid) []*applyReq {
	var ready []*applyReq
	for _, w := range in.waiting[c] {
		p, ok := in.pending[w]
		if !ok {
			continue
		}
		if p.missing--; p.missing == 0 {
			delete(in.pending, w)
			in.pendingBytes -= len(p.rec.Raw)
			if err := in.n.store.DeletePending(w); err != nil {
				in.n.log.Warn("pending record not removed", "cid", w, "err", err)
			}
			ready = append(ready, &applyReq{rec: p.rec, src: p.src, received: p.received})
		}
	}
	delete(in.waiting, c)
	return ready
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

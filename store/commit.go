package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/go-cid"
)

// putReq is one queued Put. The committer sends exactly one result on done,
// which is buffered so that it never blocks on a caller who stopped waiting.
type putReq struct {
	e         Entry
	firstSeen int64
	done      chan putResult
}

type putResult struct {
	meta Meta
	err  error
}

// Put stores e durably with all its index entries, recording firstSeen (unix
// milliseconds, supplied by the caller) as the time this node first saw it.
// It returns only after the write is on stable storage; concurrent Puts are
// committed together and share one fsync.
//
// Put checks that e.Data hashes to e.CID (ErrCorrupt otherwise) and the
// store's preconditions on e (ErrInvalid). If e.CID is already stored, Put
// returns the stored Meta and an error wrapping ErrExists. If the author
// already has a different record at (e.Topic, e.Seq), Put returns an error
// wrapping ErrChainConflict and stores nothing, unless e.Fork is set: then
// e is stored in the fork index (an equivocation the caller keeps). Both
// apply equally to an earlier entry of the same group commit.
//
// The caller must put an entry only after its Prev and Deps are stored (or
// in an earlier call whose Put is still pending): the heads of e.Topic are
// maintained under that assumption.
//
// If ctx ends while the entry is queued or being committed, Put returns
// ctx.Err(); the entry may or may not have been stored, and a later Put of
// the same entry settles it (ErrExists). If Close begins before the entry is
// queued, Put returns ErrClosed; an entry that was queued is committed before
// Close returns.
func (s *Store) Put(ctx context.Context, e Entry, firstSeen int64) (Meta, error) {
	if err := e.validate(); err != nil {
		return Meta{}, err
	}
	if err := ctx.Err(); err != nil {
		return Meta{}, err
	}
	if err := s.rlock(); err != nil {
		return Meta{}, err
	}
	// Fast path for duplicates, frequent under gossip: records are never
	// deleted, so a stored CID stays stored and the committer is not needed.
	m, err := s.getMeta(metaKey(e.CID))
	if err == nil {
		s.mu.RUnlock()
		return m, fmt.Errorf("%w: %s", ErrExists, e.CID)
	}
	if !errors.Is(err, ErrNotFound) {
		s.mu.RUnlock()
		return Meta{}, err
	}
	r := &putReq{e: e.clone(), firstSeen: firstSeen, done: make(chan putResult, 1)}
	select {
	case s.reqs <- r:
		s.mu.RUnlock()
		if s.hookQueued != nil {
			s.hookQueued()
		}
	case <-ctx.Done():
		s.mu.RUnlock()
		return Meta{}, ctx.Err()
	}
	select {
	case res := <-r.done:
		return res.meta, res.err
	case <-ctx.Done():
		return Meta{}, ctx.Err()
	}
}

// commitLoop is the committer goroutine: it owns every write to the
// database. It takes whatever is queued (at least one request, at most
// maxBatch), commits it as one batch and answers the waiters, until Close
// closes the queue; the queue is drained before it returns.
func (s *Store) commitLoop() {
	group := make([]*putReq, 0, s.maxBatch)
	for first := range s.reqs {
		group = append(group[:0], first)
	fill:
		for len(group) < s.maxBatch {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break fill
				}
				group = append(group, r)
			default:
				break fill
			}
		}
		s.commit(group)
		clear(group)
	}
}

// pending is the state of one group commit under construction.
type pending struct {
	ops    ops // the writes
	totals Stats
	// byCID holds the entries accepted into this batch, by CID key string.
	byCID map[string]Meta
	// bySlot holds the CIDs accepted into this batch, by chain key.
	bySlot map[string]cid.Cid
	// accepted holds the entries accepted into this batch, in order.
	accepted []*Entry
	// topics holds the counters of the topics touched by this batch.
	topics map[string]topicStat
}

// commit writes group as one pebble batch with one fsync and answers every
// request. On a commit error every request that depended on the batch gets
// the error and the in-memory totals are left as they were.
func (s *Store) commit(group []*putReq) {
	p := pending{
		totals: s.totals,
		byCID:  make(map[string]Meta, len(group)),
		bySlot: make(map[string]cid.Cid, len(group)),
		topics: make(map[string]topicStat),
	}

	results := make([]putResult, len(group))
	// inBatch[i] reports whether result i depends on this batch committing.
	inBatch := make([]bool, len(group))
	accepted := 0
	for i, r := range group {
		results[i], inBatch[i] = s.add(&p, r)
		if inBatch[i] && results[i].err == nil {
			accepted++
		}
	}

	if accepted > 0 {
		if s.hookBeforeCommit != nil {
			s.hookBeforeCommit(len(group))
		}
		for topic, ts := range p.topics {
			p.set(topicStatKey(topic), ts.encode())
		}
		p.set(statsKey, p.totals.encode())
		// Heads readers wait for the commit: the cached heads change
		// with the records becoming readable, never before or after.
		s.heads.mu.Lock()
		err := s.apply(&p.ops)
		if err == nil {
			for _, e := range p.accepted {
				s.heads.apply(e)
			}
		}
		s.heads.mu.Unlock()
		s.commits.Add(1)
		if err != nil {
			err = fmt.Errorf("store: commit %d records: %w", accepted, err)
			s.log.Error("commit failed", "records", accepted, "err", err)
			for i := range results {
				if inBatch[i] {
					results[i] = putResult{err: err}
				}
			}
		} else {
			s.totals = p.totals
			for topic, ts := range p.topics {
				if _, ok := s.topicStats[topic]; !ok {
					makeRoom(s.topicStats, maxCachedTopics)
				}
				s.topicStats[topic] = ts
			}
			s.tops.mu.Lock()
			for slot := range p.bySlot {
				n := len(slot) - 8
				s.tops.raise(slot[:n], binary.BigEndian.Uint64([]byte(slot[n:])))
			}
			s.tops.mu.Unlock()
		}
	}
	for i, r := range group {
		r.done <- results[i]
	}
}

// maxCachedTopics bounds Store.topicStats: past it, an arbitrary topic's
// counter is forgotten and read again when next needed. A federation's
// busy topics are a few dozen at a time.
const maxCachedTopics = 1024

// op is one write of a group commit.
type op struct {
	key, value []byte
	del        bool
}

// ops holds a group commit's writes by key prefix, each list in the order
// written.
type ops [pFork + 1][]op

func (p *pending) set(key, value []byte) {
	p.ops[key[0]] = append(p.ops[key[0]], op{key: key, value: value})
}

func (p *pending) del(key []byte) { p.ops[key[0]] = append(p.ops[key[0]], op{key: key, del: true}) }

// apply writes ops as one synced pebble batch, grouped by key prefix and,
// for the indexes whose keys cluster (a topic's, a kind's, an author's
// chain), in key order: pebble inserts a batch into its memtable with a
// cursor that it reuses while keys are adjacent, and a group commit's
// writes arrive interleaved by record (block, meta, arrival, topic, ... of
// each). Writes of the same key keep their order, so their meaning.
//
// pebble cannot continue after a failed WAL write: it reports it through
// its logger's Fatalf, which panics (pebbleLogger). apply turns that panic
// into ErrWriteFailed, and fails every later commit with it, so a failing
// disk stops the writer with an error instead of crashing the process.
func (s *Store) apply(all *ops) (err error) {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrWriteFailed, r)
			s.failed.Store(&err)
		}
	}()
	b := s.db.NewBatch()
	defer b.Close()
	for prefix, list := range all {
		switch byte(prefix) {
		case pTopic, pKind, pChain:
			// Keys are unique within these indexes in one commit.
			if !slices.IsSortedFunc(list, cmpOp) {
				slices.SortFunc(list, cmpOp)
			}
		}
		// Batch.Set and Delete copy their arguments and fail only on a
		// batch already committed or closed, which this one is not.
		for _, o := range list {
			if o.del {
				_ = b.Delete(o.key, nil)
			} else {
				_ = b.Set(o.key, o.value, nil)
			}
		}
	}
	return s.db.Apply(b, pebble.Sync)
}

func cmpOp(a, b op) int { return bytes.Compare(a.key, b.key) }

// add adds r to the batch p unless it is a duplicate or a chain conflict. It
// reports whether the result depends on the batch committing.
func (s *Store) add(p *pending, r *putReq) (putResult, bool) {
	e := &r.e
	ck := e.CID.KeyString()
	if m, ok := p.byCID[ck]; ok {
		m.Author = bytes.Clone(m.Author)
		return putResult{meta: m, err: fmt.Errorf("%w: %s", ErrExists, e.CID)}, true
	}
	slot := chainKey(e.Author, e.Topic, e.Seq)
	fork := false
	if other, ok := p.bySlot[string(slot)]; ok {
		if !e.Fork {
			return putResult{err: chainConflict(e, other)}, true
		}
		fork = true
	}
	// Another Put of the same CID may have committed since this one passed
	// its fast-path check; a stored record of the same CID holds the same
	// chain slot, so one look at the slot settles both. Appending to a
	// chain, the usual case, needs no look at all.
	free, err := s.slotFree(slot[:len(slot)-8], e.Seq)
	if err != nil {
		return putResult{err: err}, false
	}
	if !free && !fork {
		switch m, err := s.getMeta(slot); {
		case err == nil && m.CID.Equals(e.CID):
			// Every index entry holds the record's whole Meta.
			return putResult{meta: m, err: fmt.Errorf("%w: %s", ErrExists, e.CID)}, false
		case err == nil && !e.Fork:
			return putResult{err: chainConflict(e, m.CID)}, false
		case err == nil:
			fork = true
		case !errors.Is(err, ErrNotFound):
			return putResult{err: err}, false
		}
	}
	if fork {
		// A record at a slot another holds may itself be stored already,
		// in the fork index.
		switch m, err := s.getMeta(metaKey(e.CID)); {
		case err == nil:
			return putResult{meta: m, err: fmt.Errorf("%w: %s", ErrExists, e.CID)}, false
		case !errors.Is(err, ErrNotFound):
			return putResult{err: err}, false
		}
	}

	ts, ok := p.topics[e.Topic]
	if !ok {
		ts, ok = s.topicStats[e.Topic]
	}
	if !ok {
		v, err := s.getCopy(topicStatKey(e.Topic))
		switch {
		case err == nil:
			if ts, err = decodeTopicStat(v); err != nil {
				return putResult{err: err}, false
			}
		case !errors.Is(err, ErrNotFound):
			return putResult{err: err}, false
		}
	}

	p.totals.LastArrival++
	p.totals.Records++
	p.totals.Bytes += uint64(len(e.Data))
	m := Meta{
		CID:       e.CID,
		Topic:     e.Topic,
		Kind:      e.Kind,
		Author:    e.Author,
		Seq:       e.Seq,
		Time:      e.Time,
		Arrival:   p.totals.LastArrival,
		FirstSeen: r.firstSeen,
		Size:      len(e.Data),
	}
	ts.records++
	ts.lastArrival = m.Arrival
	p.topics[e.Topic] = ts
	p.byCID[ck] = m
	if !fork {
		p.bySlot[string(slot)] = e.CID
	}
	p.accepted = append(p.accepted, e)

	mv := encodeMeta(&m)
	p.set(blockKey(e.CID), e.Data)
	p.set(metaKey(e.CID), mv)
	p.set(arrivalKey(m.Arrival), mv)
	p.set(topicKey(e.Topic, m.Arrival), mv)
	p.set(kindKey(e.Kind, m.Arrival), mv)
	if fork {
		p.set(forkKey(e.Author, e.Topic, e.Seq, e.CID), mv)
	} else {
		p.set(slot, mv)
	}
	// Operations apply in batch order, so a head set earlier in this batch
	// is correctly removed by a later entry that names it.
	if e.Prev.Defined() {
		p.del(headKey(e.Topic, e.Prev))
	}
	for _, d := range e.Deps {
		p.del(headKey(e.Topic, d))
	}
	p.set(headKey(e.Topic, e.CID), nil)
	return putResult{meta: m}, true
}

// chainConflict builds the ErrChainConflict error for e against the CID
// already at its chain slot.
func chainConflict(e *Entry, other cid.Cid) error {
	return fmt.Errorf("%w: author %s… topic %q seq %d: have %s, refusing %s",
		ErrChainConflict, hex.EncodeToString(e.Author[:4]), e.Topic, e.Seq, other, e.CID)
}

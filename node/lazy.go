package node

import (
	"errors"
	"fmt"
	"math"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/store"
)

// Restart without re-reading history (issue 17 item 7): the derived state
// is rebuilt from the store topic by topic, when a topic is first needed,
// not all at once before the node starts.
//
// At start the node applies the members and index topics (small: the
// federation's membership and its list of issues) and nothing else. An
// issue or public topic is applied, all its stored records in arrival
// order, the first time the apply loop needs it: a new record on it, a
// record linking into it, a read of one of its processes. Nothing of the
// derived state is written to disk, so there is no persisted state that a
// crash, a corruption or a rules change could make wrong: what is applied
// is always the stored records themselves, through the same admit.
//
// The state is the one a full replay in arrival order gives. Each topic's
// records are applied in their arrival order, as a full replay applies
// them; records of different topics interleave differently, which changes
// nothing: a record's validity depends on its causal past alone, which is
// always applied first (loadRecord advances the topic of every parent the
// state lacks up to that parent), and an issue's or the index's state
// depends only on the records of its own topic, in the same order.
// TestLazyStateMatchesFullReplay checks it, record by record and audit by
// audit.

// loadPage is how many records of a topic one store scan reads.
const loadPage = 1000

// topicLoad is how far the stored records of a topic not yet fully applied
// have been: every one up to arrival after (0: none).
type topicLoad struct{ after uint64 }

// openStore makes s load the stored records of st lazily: it notes every
// stored topic as not applied, then applies the members and index topics
// (and whatever parts of other topics their records link to). Only New
// calls it, before the apply loop starts.
func (s *fedState) openStore(st *store.Store) (int, error) {
	s.st = st
	topics, err := st.Topics()
	if err != nil {
		return 0, fmt.Errorf("node: load state: %w", err)
	}
	for _, ts := range topics {
		if ts.Records == 0 {
			continue
		}
		s.loads[ts.Topic] = &topicLoad{}
		if slug, ok := protocol.IssueSlug(ts.Topic); ok {
			s.unloaded[slug] = true
		}
	}
	s.dirtyUnloaded = true
	// Equivocators void their records in every issue's effects, so every
	// issue must know them, loaded or not: the store's fork index has
	// every fork stored (docs/protocol.md 8.10).
	forked, err := st.ForkAuthors()
	if err != nil {
		return 0, fmt.Errorf("node: load state: %w", err)
	}
	for _, a := range forked {
		s.noteEquivocator(a)
	}
	before := s.applied
	for _, t := range []string{protocol.TopicMembers, protocol.TopicIndex} {
		if err := s.loadTopic(t); err != nil {
			return 0, err
		}
	}
	return s.applied - before, nil
}

// loadTopic applies every stored record of topic that is not applied yet.
// A topic with no entry in s.loads is fully applied: either its records
// were applied, or it had none when the node started and every record it
// got since went through admit.
func (s *fedState) loadTopic(topic string) error {
	return s.advance(topic, math.MaxUint64)
}

// loadIssue applies the stored records of an issue's topic if they are not
// applied yet.
func (s *fedState) loadIssue(slug string) error {
	return s.loadTopic(protocol.IssueTopic(slug))
}

// advance applies the stored records of topic, in arrival order, up to the
// one that arrived as number upTo (included). Nested calls, for the topics
// of parents, go to records that arrived earlier than the one whose parent
// they are (the store is causally closed, so arrival order is a causal
// order): a nested call to a topic whose advance is under way finds its
// target applied already and returns at once, so the depth of nesting is
// bounded by the number of topics.
func (s *fedState) advance(topic string, upTo uint64) error {
	l, ok := s.loads[topic]
	if !ok {
		return nil
	}
	for l.after < upTo {
		metas, err := s.st.TopicRecords(topic, l.after, loadPage)
		if err != nil {
			return fmt.Errorf("node: load %s: %w", topic, err)
		}
		if len(metas) == 0 {
			s.loaded(topic)
			return nil
		}
		for _, m := range metas {
			if m.Arrival > upTo {
				return nil
			}
			if m.Arrival <= l.after {
				continue
			}
			if err := s.loadRecord(m); err != nil {
				return err
			}
			l.after = m.Arrival
		}
	}
	return nil
}

// loaded notes that every stored record of topic is applied.
func (s *fedState) loaded(topic string) {
	delete(s.loads, topic)
	if slug, ok := protocol.IssueSlug(topic); ok && s.unloaded[slug] {
		delete(s.unloaded, slug)
		s.dirtyUnloaded = true
		// Its processes were left out of snapshots while it loaded.
		s.dirtyIssues[slug] = true
	}
}

// loadRecord applies one stored record, after the records of other topics
// it links to. A stored record that is no longer valid (the rules changed
// since it was stored) is left out of the state, with a warning, as a full
// replay leaves it out.
func (s *fedState) loadRecord(m store.Meta) error {
	raw, err := s.st.Get(m.CID)
	if err != nil {
		return fmt.Errorf("node: load state: %w", err)
	}
	r, err := decodeStored(raw, m.CID)
	if err != nil {
		return fmt.Errorf("node: load state: stored record %s: %w", m.CID, err)
	}
	if err := s.loadParents(r); err != nil {
		return err
	}
	if err := s.apply(r); err != nil {
		s.log.Warn("stored record no longer valid", "cid", m.CID, "err", err)
	}
	s.applied++
	return nil
}

// loadParents applies, for every parent of r that the state lacks, the
// records of the parent's topic up to the parent. A parent the state lacks
// is on a topic not (fully) loaded yet, or a stored record found no longer
// valid (then its topic is past it, and nothing is loaded).
func (s *fedState) loadParents(r *protocol.Record) error {
	if len(s.loads) == 0 {
		return nil
	}
	for _, c := range r.Links() {
		if s.members.Has(c) {
			continue
		}
		pm, err := s.st.Meta(c)
		switch {
		case errors.Is(err, store.ErrNotFound):
			// Not stored: the store is causally closed and records staged
			// or in flight are applied already, so this does not happen;
			// the state ignores a link it does not hold, as before.
			continue
		case err != nil:
			return fmt.Errorf("node: load state: parent %s: %w", c, err)
		}
		if err := s.advance(pm.Topic, pm.Arrival); err != nil {
			return err
		}
	}
	return nil
}

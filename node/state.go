package node

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/protocol/gov"
	"github.com/clearinghouse-net/clearinghouse/store"
)

// fedState is the node's derived state: membership, the index of issues
// and each issue's processes, updated incrementally as records are applied.
// It is written only by the apply loop (admit) and read by API calls; mu
// guards everything.
//
// Membership is evaluated on the members topic alone: each members-topic
// record gets an index and a bitset of the members-topic records in its
// causal past (its closure, itself included); every other record keeps the
// closure bitset of its causal past. The membership in force for a record
// is the fold of the members-topic records in its past's closure, which
// protocol.DeriveMembers computes; results are cached by closure.
type fedState struct {
	g *protocol.Genesis

	mu sync.RWMutex
	// members-topic records in apply order, their reduced form (links
	// taken through other topics) and their closures.
	mrecs    []*protocol.Record
	mindex   map[cid.Cid]int
	mclosure [][]uint64
	// closures of every other record, interned.
	closure map[cid.Cid][]uint64
	intern  map[string][]uint64
	// sets caches the membership of a closure, by closure key.
	sets map[string]*protocol.MemberSet
	// all is the membership of everything applied, rebuilt lazily.
	all *protocol.MemberSet

	index  *gov.Index
	issues map[string]*gov.Issue
	// stale reports whether the issues' whole-set membership
	// (gov.Issue.SetMembers) lags a members-topic record or a new issue;
	// refresh brings it up to date before a read.
	stale bool
}

// refresh gives every issue the membership of every record applied, which
// the effects of process records (adoption, stage, the audit) are derived
// from. It takes the write lock only when something changed.
func (s *fedState) refresh() {
	s.mu.RLock()
	stale := s.stale
	s.mu.RUnlock()
	if !stale {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stale {
		return
	}
	if s.all == nil {
		s.all = protocol.DeriveMembers(s.g, s.mrecs)
	}
	for _, is := range s.issues {
		is.SetMembers(wholeRoster{s.all})
	}
	s.stale = false
}

func newFedState(g *protocol.Genesis) (*fedState, error) {
	idx, err := gov.NewIndex(g)
	if err != nil {
		return nil, err
	}
	return &fedState{
		g: g, mindex: map[cid.Cid]int{}, closure: map[cid.Cid][]uint64{}, intern: map[string][]uint64{},
		sets: map[string]*protocol.MemberSet{}, index: idx, issues: map[string]*gov.Issue{},
	}, nil
}

// closureOf returns the union of the closures of r's parents. Parents the
// state does not know (none, in a causally closed store) are skipped.
func (s *fedState) closureOf(r *protocol.Record) []uint64 {
	words := (len(s.mrecs) + 63) / 64
	out := make([]uint64, words)
	for _, c := range r.Links() {
		var b []uint64
		if i, ok := s.mindex[c]; ok {
			b = s.mclosure[i]
		} else {
			b = s.closure[c]
		}
		for w, x := range b {
			out[w] |= x
		}
	}
	return out
}

func key(b []uint64) string {
	// Trailing zero words do not change the set.
	n := len(b)
	for n > 0 && b[n-1] == 0 {
		n--
	}
	buf := make([]byte, 0, n*8)
	for _, w := range b[:n] {
		for i := range 8 {
			buf = append(buf, byte(w>>(8*i)))
		}
	}
	return string(buf)
}

// past returns the members-topic records of a closure, in apply order.
func (s *fedState) past(cl []uint64) []*protocol.Record {
	var out []*protocol.Record
	for w, x := range cl {
		for x != 0 {
			i := w*64 + bits.TrailingZeros64(x)
			x &= x - 1
			out = append(out, s.mrecs[i])
		}
	}
	return out
}

// membersAt returns the membership in force in a closure.
func (s *fedState) membersAt(cl []uint64) *protocol.MemberSet {
	k := key(cl)
	if set, ok := s.sets[k]; ok {
		return set
	}
	set := protocol.DeriveMembers(s.g, s.past(cl))
	if len(s.sets) > 4096 {
		clear(s.sets)
	}
	s.sets[k] = set
	return set
}

// reduced returns r with its links replaced by its members-topic parents
// (through other topics), so the members fold sees a causally closed set.
// Signatures are not checked again by the fold.
func (s *fedState) reduced(r *protocol.Record, cl []uint64) *protocol.Record {
	// The maximal elements of the closure are the direct members parents:
	// those in no other member's closure.
	past := s.past(cl)
	var parents []cid.Cid
	for _, m := range past {
		i := s.mindex[m.CID]
		maximal := true
		for _, o := range past {
			if j := s.mindex[o.CID]; j > i && hasBit(s.mclosure[j], i) {
				maximal = false
				break
			}
		}
		if maximal {
			parents = append(parents, m.CID)
		}
	}
	cp := *r
	cp.Env.Prev = nil
	var deps []cid.Cid
	for _, p := range parents {
		if r.Env.Prev != nil && p.Equals(r.Env.Prev.Cid) {
			cp.Env.Prev = r.Env.Prev
			continue
		}
		deps = append(deps, p)
	}
	cp.Env.Deps = protocol.SortLinks(deps)
	return &cp
}

func hasBit(set []uint64, i int) bool { return i/64 < len(set) && set[i/64]&(1<<(i%64)) != 0 }

// admit checks r against the state of its causal past and, if it is valid,
// applies it. It is called by the apply loop once r's parents are stored or
// staged. The error is a protocol error (not-member, not-allowed, ...).
func (s *fedState) admit(r *protocol.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cl := s.closureOf(r)
	if r.Env.Topic == protocol.TopicMembers {
		red := s.reduced(r, cl)
		if err := protocol.CheckMembership(s.g, red, s.past(cl)); err != nil {
			return err
		}
		i := len(s.mrecs)
		s.mrecs = append(s.mrecs, red)
		s.mindex[r.CID] = i
		own := slices.Grow(slices.Clone(cl), (i+64)/64-len(cl))[:(i+64)/64]
		own[i/64] |= 1 << (i % 64)
		s.mclosure = append(s.mclosure, own)
		s.all = nil
		s.stale = true
		return nil
	}
	set := s.membersAt(cl)
	if !set.IsMember(r.Env.Author) {
		return protocol.Errorf(protocol.ReasonNotMember, "%s: author %x is not a member in the record's causal past", r.Env.Kind, r.Env.Author[:8])
	}
	ros := roster{set}
	switch protocol.ClassOf(r.Env.Topic) {
	case protocol.ClassIndex:
		if err := s.index.Apply(r, ros); err != nil {
			return err
		}
	case protocol.ClassIssue:
		slug, _ := protocol.IssueSlug(r.Env.Topic)
		is, ok := s.issues[slug]
		if !ok {
			var err error
			if is, err = gov.NewIssue(s.g, slug); err != nil {
				return err
			}
			s.issues[slug] = is
			s.stale = true
		}
		if err := is.Apply(r, ros); err != nil {
			return err
		}
	}
	k := key(cl)
	if in, ok := s.intern[k]; ok {
		cl = in
	} else {
		s.intern[k] = cl
	}
	s.closure[r.CID] = cl
	return nil
}

// roster adapts a MemberSet to gov.Roster.
type roster struct{ set *protocol.MemberSet }

func (r roster) Lookup(key []byte) (protocol.Member, bool) {
	m, ok := r.set.Lookup(key)
	return m.Member, ok
}
func (r roster) Groups() []string  { return r.set.Groups() }
func (r roster) Regions() []string { return r.set.Regions() }

// wholeRoster adapts the membership of every record applied to the
// gov.Issue.SetMembers contract: Lookup resolves every key a current
// member ever held, so a rotation does not make its holder's earlier
// records count for nothing.
type wholeRoster struct{ set *protocol.MemberSet }

func (r wholeRoster) Lookup(key []byte) (protocol.Member, bool) {
	m, ok := r.set.KeyHistory(key)
	if !ok || m.Removed != nil {
		return protocol.Member{}, false
	}
	return m.Member, true
}
func (r wholeRoster) Groups() []string  { return r.set.Groups() }
func (r wholeRoster) Regions() []string { return r.set.Regions() }

// members returns the membership of everything applied.
func (s *fedState) members() *protocol.MemberSet {
	s.mu.RLock()
	all := s.all
	s.mu.RUnlock()
	if all != nil {
		return all
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.all == nil {
		s.all = protocol.DeriveMembers(s.g, s.mrecs)
	}
	return s.all
}

// ErrUnknownProcess is returned by Node.Process and Node.Audit when no
// charter with that CID has been applied.
var ErrUnknownProcess = fmt.Errorf("node: unknown process: %w", store.ErrNotFound)

// Members returns the federation's current members, derived from every
// stored membership record.
func (n *Node) Members() []protocol.MemberInfo { return n.state.members().Members() }

// MemberSet returns the derived membership, for lookups by key.
func (n *Node) MemberSet() *protocol.MemberSet { return n.state.members() }

// Issues returns every issue opened on the network, as the index topic
// records them.
func (n *Node) Issues() []gov.IssueInfo {
	n.state.mu.RLock()
	defer n.state.mu.RUnlock()
	return n.state.index.Issues()
}

// Processes returns the processes of an issue the node follows.
func (n *Node) Processes(slug string) ([]*gov.Process, error) {
	if !protocol.ValidSlug(slug) {
		return nil, fmt.Errorf("node: invalid issue slug %q", slug)
	}
	n.state.refresh()
	n.state.mu.RLock()
	defer n.state.mu.RUnlock()
	is, ok := n.state.issues[slug]
	if !ok {
		return nil, nil
	}
	return is.Processes(), nil
}

// Process returns the derived state of the process chartered by charter.
func (n *Node) Process(charter cid.Cid) (*gov.Process, error) {
	n.state.refresh()
	n.state.mu.RLock()
	defer n.state.mu.RUnlock()
	for _, is := range n.state.issues {
		if p, ok := is.Process(charter); ok {
			return p, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrUnknownProcess, charter)
}

// Audit returns the canonical P1-P4 audit of a process: a function of the
// records alone (membership records included), byte-identical (as JSON)
// on every node that holds them.
func (n *Node) Audit(charter cid.Cid) (*gov.Report, error) {
	p, err := n.Process(charter)
	if err != nil {
		return nil, err
	}
	n.state.mu.RLock()
	defer n.state.mu.RUnlock()
	return p.Audit(nil), nil
}

// AuditLocal returns the audit of a process with this node's first-seen
// time of each record, so P2 also compares claimed times with when this
// node saw them. It is a diagnostic of this node, not an audit anyone can
// check: first-seen times are node-local, two nodes' local audits differ
// in them, and a node that joined late sees every record late.
func (n *Node) AuditLocal(charter cid.Cid) (*gov.Report, error) {
	p, err := n.Process(charter)
	if err != nil {
		return nil, err
	}
	n.state.mu.RLock()
	defer n.state.mu.RUnlock()
	firstSeen := map[cid.Cid]int64{}
	for _, c := range p.Records() {
		m, err := n.store.Meta(c)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if err == nil {
			firstSeen[c] = m.FirstSeen
		}
	}
	return p.Audit(firstSeen), nil
}

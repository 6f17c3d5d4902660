package node

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/protocol/gov"
	"github.com/clearinghouse-net/clearinghouse/store"
)

// fedState is the node's derived state: membership, the index of issues
// and each issue's processes, updated incrementally as records are applied.
// It is owned by the apply loop: only the loop's goroutine touches it (and
// New, before the loop starts). It holds no rules of its own: the
// membership rules are protocol.MembershipEngine's, the issue and index
// rules gov's. Readers never see it; they load the immutable snapshot the
// loop publishes once the records it reflects are durable (snapshot.go).
type fedState struct {
	g       *protocol.Genesis
	members *protocol.MembershipEngine
	index   *gov.Index
	issues  map[string]*gov.Issue

	// What changed since the last snapshot.
	dirtyMembers bool
	dirtyIndex   bool
	dirtyProcs   map[cid.Cid]string // charter -> issue slug
	// dirtyIssues are issues all of whose processes may have changed
	// effects: a checkpoint moves public times, a membership change (all
	// issues) who counts.
	dirtyIssues map[string]bool
	// staleMembers reports whether the issues' whole-set membership
	// (gov.Issue.SetMembers) lags a members-topic record or a new issue;
	// refreshMembers brings it up to date.
	staleMembers bool
	// memberSeqs holds the members-topic chain slots applied, to find
	// forks there (issue and index topics find their own).
	memberSeqs map[string]bool
	// equivocators are the keys with two valid records at one chain slot
	// (author, topic, seq) among the records applied.
	equivocators map[string]bool
}

// refreshMembers gives every issue the membership of every record applied,
// from which the effects of process records (adoption, stage, the audit)
// are derived. Only the apply loop calls it.
func (s *fedState) refreshMembers() {
	if !s.staleMembers {
		return
	}
	ros := newWholeRoster(s.members.Members(), s.equivocators)
	for slug, is := range s.issues {
		is.SetMembers(ros)
		s.dirtyIssues[slug] = true
	}
	s.staleMembers = false
}

// wholeRoster adapts the membership of every record applied to the
// gov.Issue.SetMembers contract: Lookup resolves every key a current
// member ever held, so a rotation does not make its holder's earlier
// records count for nothing. A member any of whose keys equivocated (two
// records at one chain slot in the set, on any topic) is not in it, and
// Equivocated says so (gov.EquivocatorRoster): its records count for
// nothing in any effect.
type wholeRoster struct {
	set             *protocol.MemberSet
	eq              map[string]bool
	groups, regions []string
}

// newWholeRoster returns the whole-set roster of set less the members
// that equivocated with a key in eq (which it does not modify).
func newWholeRoster(set *protocol.MemberSet, eq map[string]bool) wholeRoster {
	r := wholeRoster{set: set, eq: maps.Clone(eq)}
	if len(eq) == 0 {
		r.groups, r.regions = set.Groups(), set.Regions()
		return r
	}
	g, rg := map[string]bool{}, map[string]bool{}
	for _, m := range set.Members() {
		if !r.equivocated(m) {
			g[m.Group], rg[m.Region] = true, true
		}
	}
	for k := range g {
		r.groups = append(r.groups, k)
	}
	for k := range rg {
		r.regions = append(r.regions, k)
	}
	slices.Sort(r.groups)
	slices.Sort(r.regions)
	return r
}

func (r wholeRoster) equivocated(m protocol.MemberInfo) bool {
	for _, k := range m.Keys {
		if r.eq[string(k.Key)] {
			return true
		}
	}
	return false
}

func (r wholeRoster) Lookup(key []byte) (protocol.Member, bool) {
	m, ok := r.set.KeyHistory(key)
	if !ok || m.Removed != nil || r.equivocated(m) {
		return protocol.Member{}, false
	}
	return m.Member, true
}
func (r wholeRoster) Groups() []string  { return slices.Clone(r.groups) }
func (r wholeRoster) Regions() []string { return slices.Clone(r.regions) }

// Equivocated reports whether key, or another key of its member, signed
// two records at one chain slot among the records applied.
func (r wholeRoster) Equivocated(key []byte) bool {
	if len(r.eq) == 0 {
		return false
	}
	if r.eq[string(key)] {
		return true
	}
	m, ok := r.set.KeyHistory(key)
	return ok && r.equivocated(m)
}

func newFedState(g *protocol.Genesis) (*fedState, error) {
	idx, err := gov.NewIndex(g)
	if err != nil {
		return nil, err
	}
	eng, err := protocol.NewMembershipEngine(g)
	if err != nil {
		return nil, err
	}
	return &fedState{
		g: g, members: eng, index: idx, issues: map[string]*gov.Issue{},
		dirtyMembers: true, dirtyIndex: true, dirtyProcs: map[cid.Cid]string{}, dirtyIssues: map[string]bool{},
		memberSeqs: map[string]bool{}, equivocators: map[string]bool{},
	}, nil
}

// admit checks r against the state of its causal past and, if it is valid,
// applies it. It is called by the apply loop once r's parents are stored or
// staged. The error is a protocol error (not-member, not-allowed, ...).
func (s *fedState) admit(r *protocol.Record) error {
	if err := s.members.Check(r); err != nil {
		return err
	}
	fork := false
	switch protocol.ClassOf(r.Env.Topic) {
	case protocol.ClassMembers:
		s.dirtyMembers, s.staleMembers = true, true
		sk := slotKey(r.Env.Author, r.Env.Topic, r.Env.Seq)
		fork = s.memberSeqs[sk]
		s.memberSeqs[sk] = true
	case protocol.ClassIndex:
		fork = s.index.HasSeq(r.Env.Author, r.Env.Seq)
		if err := s.index.Apply(r, roster{s.members.RosterAt(r)}); err != nil {
			return err
		}
		s.dirtyIndex = true
	case protocol.ClassIssue:
		slug, _ := protocol.IssueSlug(r.Env.Topic)
		is, ok := s.issues[slug]
		if !ok {
			var err error
			if is, err = gov.NewIssue(s.g, slug); err != nil {
				return err
			}
			s.issues[slug] = is
			s.staleMembers = true
		}
		fork = is.HasSeq(r.Env.Author, r.Env.Seq)
		if err := is.Apply(r, roster{s.members.RosterAt(r)}); err != nil {
			return err
		}
		if r.Env.Kind == protocol.KindCheckpoint {
			s.dirtyIssues[slug] = true
		} else if _, ok := r.Body.(*protocol.Charter); ok {
			s.dirtyProcs[r.CID] = slug
		} else if proc, _, ok := protocol.ProcessRefs(r.Body); ok {
			s.dirtyProcs[proc] = slug
		}
	}
	s.members.Add(r)
	if fork && !s.equivocators[string(r.Env.Author)] {
		s.equivocators[string(r.Env.Author)] = true
		s.staleMembers = true
	}
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

// process returns the live process chartered by charter.
func (s *fedState) process(charter cid.Cid) (*gov.Process, bool) {
	for _, is := range s.issues {
		if p, ok := is.Process(charter); ok {
			return p, true
		}
	}
	return nil, false
}

// ErrUnknownProcess is returned by Node.Process and Node.Audit when no
// charter with that CID has been applied.
var ErrUnknownProcess = fmt.Errorf("node: unknown process: %w", store.ErrNotFound)

// Members returns the federation's current members, derived from every
// stored membership record.
func (n *Node) Members() []protocol.MemberInfo { return n.snapshot().members.Members() }

// MemberSet returns the derived membership, for lookups by key. The set is
// immutable: a later change of membership is a new set.
func (n *Node) MemberSet() *protocol.MemberSet { return n.snapshot().members }

// Issues returns every issue opened on the network, as the index topic
// records them.
func (n *Node) Issues() []gov.IssueInfo { return slices.Clone(n.snapshot().issues) }

// Processes returns the processes of an issue the node follows, sorted by
// charter CID, as of the last durable write.
func (n *Node) Processes(slug string) ([]*ProcessState, error) {
	if !protocol.ValidSlug(slug) {
		return nil, fmt.Errorf("node: invalid issue slug %q", slug)
	}
	return slices.Clone(n.snapshot().bySlug[slug]), nil
}

// Process returns the derived state of the process chartered by charter,
// as of the last durable write.
func (n *Node) Process(charter cid.Cid) (*ProcessState, error) {
	if p, ok := n.snapshot().procs[charter]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrUnknownProcess, charter)
}

// Audit returns the canonical P1-P4 audit of a process: a function of the
// records alone (membership records included), byte-identical (as JSON)
// on every node that holds them.
// The apply loop computes it once every record it has accepted is
// durable, so the audit counts only stored records.
func (n *Node) Audit(charter cid.Cid) (*gov.Report, error) {
	var rep *gov.Report
	err := n.ing.read(n.ctx, func(s *fedState) error {
		p, ok := s.process(charter)
		if !ok {
			return fmt.Errorf("%w: %s", ErrUnknownProcess, charter)
		}
		s.refreshMembers()
		rep = p.Audit(nil)
		return nil
	})
	return rep, err
}

// AuditLocal returns the audit of a process with this node's first-seen
// time of each record, so P2 also compares claimed times with when this
// node saw them. It is a diagnostic of this node, not an audit anyone can
// check: first-seen times are node-local, two nodes' local audits differ
// in them, and a node that joined late sees every record late.
func (n *Node) AuditLocal(charter cid.Cid) (*gov.Report, error) {
	var rep *gov.Report
	err := n.ing.read(n.ctx, func(s *fedState) error {
		p, ok := s.process(charter)
		if !ok {
			return fmt.Errorf("%w: %s", ErrUnknownProcess, charter)
		}
		s.refreshMembers()
		firstSeen := map[cid.Cid]int64{}
		for _, c := range p.Records() {
			m, err := n.store.Meta(c)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if err == nil {
				firstSeen[c] = m.FirstSeen
			}
		}
		rep = p.Audit(firstSeen)
		return nil
	})
	return rep, err
}

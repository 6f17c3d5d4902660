package node

import (
	"errors"
	"fmt"
	"log/slog"
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

	// Lazy loading from the store (lazy.go). st is nil for a state fed by
	// admit alone.
	st  *store.Store
	log *slog.Logger
	// loads holds the topics with stored records not all applied yet.
	loads map[string]*topicLoad
	// unloaded are the issues whose stored records are not applied yet
	// (readers ask the apply loop to load them); dirtyUnloaded says the
	// set changed since the last snapshot.
	unloaded      map[string]bool
	dirtyUnloaded bool
	// applied counts the stored records applied by loads.
	applied int
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

// newFedState returns the state of the genesis alone. log receives the
// warnings of lazy loads (nil: slog's default).
func newFedState(g *protocol.Genesis, log *slog.Logger) (*fedState, error) {
	if log == nil {
		log = slog.Default()
	}
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
		log: log, loads: map[string]*topicLoad{}, unloaded: map[string]bool{},
	}, nil
}

// admit checks r against the state of its causal past and, if it is valid,
// applies it. It is called by the apply loop once r's parents are stored or
// staged. First it applies the stored records r's check needs and the
// state lacks (lazy.go): its topic's, and those of its parents' topics up
// to the parents. The error is a protocol error (not-member, not-allowed,
// ...), or a store error from that load.
func (s *fedState) admit(r *protocol.Record) error {
	if len(s.loads) > 0 {
		if err := s.loadParents(r); err != nil {
			return err
		}
		if err := s.loadTopic(r.Env.Topic); err != nil {
			return err
		}
	}
	return s.apply(r)
}

// apply checks r against the state of its causal past, which holds every
// record r links to, and applies it if it is valid.
func (s *fedState) apply(r *protocol.Record) error {
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
		switch {
		case s.unloaded[slug]:
			// Part of a load: readers see the issue once it is whole
			// (loaded marks all its processes).
		case r.Env.Kind == protocol.KindCheckpoint:
			s.dirtyIssues[slug] = true
		default:
			if _, ok := r.Body.(*protocol.Charter); ok {
				s.dirtyProcs[r.CID] = slug
			} else if proc, _, ok := protocol.ProcessRefs(r.Body); ok {
				s.dirtyProcs[proc] = slug
			}
		}
	}
	s.members.Add(r)
	if fork {
		s.noteEquivocator(r.Env.Author)
	}
	return nil
}

// noteEquivocator adds key to the equivocators: every issue's whole-set
// roster voids its member from the next refresh on.
func (s *fedState) noteEquivocator(key []byte) {
	if !s.equivocators[string(key)] {
		s.equivocators[string(key)] = true
		s.staleMembers = true
	}
}

// roster adapts a MemberSet to gov.Roster.
type roster struct{ set *protocol.MemberSet }

func (r roster) Lookup(key []byte) (protocol.Member, bool) {
	m, ok := r.set.Lookup(key)
	return m.Member, ok
}
func (r roster) Groups() []string  { return r.set.Groups() }
func (r roster) Regions() []string { return r.set.Regions() }

// process returns the live process chartered by charter, loading its
// issue from the store first if need be.
func (s *fedState) process(charter cid.Cid) (*gov.Process, bool, error) {
	for slug, is := range s.issues {
		if s.unloaded[slug] {
			continue // partly loaded: loadIssueOf completes it
		}
		if p, ok := is.Process(charter); ok {
			return p, true, nil
		}
	}
	if len(s.unloaded) == 0 {
		return nil, false, nil
	}
	slug, err := s.loadIssueOf(charter)
	if err != nil || slug == "" {
		return nil, false, err
	}
	p, ok := s.issues[slug].Process(charter)
	return p, ok, nil
}

// loadIssueOf loads the issue of the stored record c, if c is stored on an
// issue topic not loaded yet, and returns its slug ("" if it loaded none).
func (s *fedState) loadIssueOf(c cid.Cid) (string, error) {
	if s.st == nil {
		return "", nil
	}
	m, err := s.st.Meta(c)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("node: %w", err)
	}
	slug, ok := protocol.IssueSlug(m.Topic)
	if !ok || !s.unloaded[slug] {
		return "", nil
	}
	if _, err := s.issue(slug); err != nil {
		return "", err
	}
	if s.issues[slug] == nil {
		return "", nil // no record of the issue was valid
	}
	return slug, nil
}

// ErrUnknownProcess is returned by Node.Process and Node.Audit when no
// charter with that CID has been applied.
var ErrUnknownProcess = fmt.Errorf("node: unknown process: %w", store.ErrNotFound)

// issue returns the live state of an issue, loading it from the store
// first if need be; nil if the issue has no record.
func (s *fedState) issue(slug string) (*gov.Issue, error) {
	if s.unloaded[slug] {
		if err := s.loadIssue(slug); err != nil {
			return nil, err
		}
	}
	return s.issues[slug], nil
}

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
	snap, err := n.issueSnapshot(slug)
	if err != nil {
		return nil, err
	}
	return slices.Clone(snap.bySlug[slug]), nil
}

// issueSnapshot returns a snapshot that includes the state of issue slug:
// the current one, or, if the issue is not loaded yet, the one the apply
// loop publishes once it has loaded it.
func (n *Node) issueSnapshot(slug string) (*snapshot, error) {
	snap := n.snapshot()
	if !snap.unloaded[slug] {
		return snap, nil
	}
	if err := n.ing.read(n.ctx, func(s *fedState) error {
		_, err := s.issue(slug)
		return err
	}); err != nil {
		return nil, err
	}
	return n.snapshot(), nil
}

// Process returns the derived state of the process chartered by charter,
// as of the last durable write.
func (n *Node) Process(charter cid.Cid) (*ProcessState, error) {
	snap := n.snapshot()
	if p, ok := snap.procs[charter]; ok {
		return p, nil
	}
	if len(snap.unloaded) > 0 {
		// The charter may be on an issue not loaded yet.
		m, err := n.store.Meta(charter)
		switch {
		case err == nil:
			if slug, ok := protocol.IssueSlug(m.Topic); ok && snap.unloaded[slug] {
				if snap, err = n.issueSnapshot(slug); err != nil {
					return nil, err
				}
				if p, ok := snap.procs[charter]; ok {
					return p, nil
				}
			}
		case !errors.Is(err, store.ErrNotFound):
			return nil, fmt.Errorf("node: %w", err)
		}
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
		p, ok, err := s.process(charter)
		if err != nil {
			return err
		}
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
		p, ok, err := s.process(charter)
		if err != nil {
			return err
		}
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

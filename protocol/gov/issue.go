package gov

import (
	"fmt"
	"math/bits"
	"slices"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// stage is a process stage as an index into stageNames.
type stage int8

const (
	scoping stage = iota
	consultation
	decisionStage
	implementation
	delegationStage
	concluded
	numStages
)

var stageNames = [numStages]string{
	protocol.StageScoping, protocol.StageConsultation, protocol.StageDecision,
	protocol.StageImplementation, protocol.StageDelegation, protocol.StageConcluded,
}

func (s stage) String() string { return stageNames[s] }

// rank orders stages; implementation and delegation are alternatives.
func (s stage) rank() int {
	switch s {
	case implementation, delegationStage:
		return 3
	case concluded:
		return 4
	}
	return int(s)
}

func stageByName(name string) (stage, bool) {
	i := slices.Index(stageNames[:], name)
	return stage(i), i >= 0
}

// procSum summarises what the causal past of a record holds about one
// process: enough to decide the stage and the notice and decision
// preconditions without walking the past. Summaries merge by union (bitwise
// or, minimum), so the summary of a record is the same whatever order its
// past was applied in.
type procSum struct {
	proc int32
	// moves holds, per stage, a bit per stakeholder group of the convenors
	// who signed a move (process.stage or process.conclusion) to it.
	moves [numStages]uint64
	// notice holds the earliest date of a notice of at least the minimum
	// notice for a consultation (0) and a decision (1); 0 if none.
	notice [2]int64
	// decided reports whether a valid decision is in the past.
	decided bool
}

func (s *procSum) merge(o *procSum) {
	for i := range s.moves {
		s.moves[i] |= o.moves[i]
	}
	for i := range s.notice {
		if s.notice[i] == 0 || o.notice[i] != 0 && o.notice[i] < s.notice[i] {
			s.notice[i] = o.notice[i]
		}
	}
	s.decided = s.decided || o.decided
}

// stage returns the furthest stage that convenors of at least two distinct
// groups moved to.
func (s *procSum) stage() stage {
	best := scoping
	for st := consultation; st < numStages; st++ {
		if bits.OnesCount64(s.moves[st]) >= 2 && st.rank() > best.rank() {
			best = st
		}
	}
	return best
}

func findSum(sums []procSum, proc int32) (int, bool) {
	return slices.BinarySearchFunc(sums, proc, func(s procSum, p int32) int { return int(s.proc - p) })
}

// mergeSums returns the union of the summaries of links, sharing a link's
// slice when it alone carries anything. The result must not be modified.
func mergeSums(links []*node) []procSum {
	var out []procSum
	owned := false
	for _, l := range links {
		switch {
		case len(l.sums) == 0:
			continue
		case out == nil:
			out = l.sums
			continue
		case len(out) == len(l.sums) && &out[0] == &l.sums[0]:
			continue
		}
		if !owned {
			out, owned = slices.Clone(out), true
		}
		for _, s := range l.sums {
			i, found := findSum(out, s.proc)
			if !found {
				out = slices.Insert(out, i, s)
				continue
			}
			out[i].merge(&s)
		}
	}
	return out
}

// Issue is the derived state of one issue topic: every valid record on it
// and the processes they form. It is updated incrementally by [Issue.Apply],
// one record at a time in causal order, and never needs to re-read earlier
// records. An Issue is not safe for concurrent use.
type Issue struct {
	net     cid.Cid
	topic   string
	groups  []string // the federation's stakeholder groups
	regions []string // the federation's regions
	rules   protocol.Rules

	dag
	members Roster // membership of the whole record set, or nil
	// void caches the authors whose records count for nothing in the
	// whole set (voidAuthors); nil when it must be computed again.
	void  map[string]bool
	procs map[cid.Cid]*Process
	cps   []int32 // the checkpoints applied, by node index
	plist []*Process
	bits  map[string]uint // stakeholder group -> bit in procSum.moves
}

// NewIssue returns the empty state of the issue with the given slug in the
// federation founded by g. It fails if the slug is not valid or the genesis
// cannot be encoded.
func NewIssue(g *protocol.Genesis, slug string) (*Issue, error) {
	if !protocol.ValidSlug(slug) {
		return nil, fmt.Errorf("gov: issue slug %q is not valid", slug)
	}
	net, err := g.NetworkID()
	if err != nil {
		return nil, fmt.Errorf("gov: %w", err)
	}
	return &Issue{
		net:     net,
		topic:   protocol.IssueTopic(slug),
		groups:  slices.Clone(g.Groups),
		regions: slices.Clone(g.Regions),
		rules:   g.Rules,
		dag:     newDAG(),
		procs:   map[cid.Cid]*Process{},
		bits:    map[string]uint{},
	}, nil
}

// Derive applies records to a new issue state in the order of [Order] and
// returns it with the records it rejected, in that order. Records on other
// topics are skipped. rosterAt gives the roster in force in each record's
// causal past. Given the same set of records, in any order and with any
// duplicates, Derive returns the same state. Links to records outside the
// set are ignored, so the set should hold the whole causal past, on this
// topic, of every record in it.
func Derive(g *protocol.Genesis, slug string, records []*protocol.Record, rosterAt RosterFunc) (*Issue, []Rejection, error) {
	is, err := NewIssue(g, slug)
	if err != nil {
		return nil, nil, err
	}
	var mine []*protocol.Record
	for _, r := range records {
		if r.Env.Topic == is.topic {
			mine = append(mine, r)
		}
	}
	var rej []Rejection
	is.byCID = make(map[cid.Cid]int32, len(mine))
	is.seqs = make(map[seqKey]cid.Cid, len(mine))
	for _, r := range Order(mine) {
		if err := is.Apply(r, rosterAt(r)); err != nil {
			rej = append(rej, Rejection{CID: r.CID, Kind: r.Env.Kind, Err: err})
		}
	}
	return is, rej, nil
}

// SetMembers sets the membership of the whole set of records the caller
// holds (members-topic records included), which effects use: an endorser
// whose member is no longer in it counts for nothing in any effect, and
// the audit shows removed members' records apart. Lookup must resolve
// every key a current member ever held. nil (the default) takes each
// author as the roster of its own record knew it. It does not change which
// records are valid.
func (is *Issue) SetMembers(members Roster) { is.members, is.void = members, nil }

// voidAuthors returns the authors whose records count for nothing in the
// universe u (nil: the whole set): those with two records at one seq in
// u and, in the whole set, those the EquivocatorRoster set with
// SetMembers says equivocated on any topic.
func (is *Issue) voidAuthors(u bitset) map[string]bool {
	if u != nil {
		return is.forkedIn(u)
	}
	if is.void != nil {
		return is.void
	}
	v := is.forkedIn(nil)
	if v == nil {
		v = map[string]bool{}
	}
	if er, ok := is.members.(EquivocatorRoster); ok {
		for _, n := range is.nodes {
			a := n.author()
			if _, seen := v[a]; !seen {
				v[a] = er.Equivocated(n.rec.Env.Author)
			}
		}
		for a, ok := range v {
			if !ok {
				delete(v, a)
			}
		}
	}
	is.void = v
	return v
}

// Has reports whether the record with CID c has been applied.
func (is *Issue) Has(c cid.Cid) bool { return is.has(c) }

// Len returns the number of records applied.
func (is *Issue) Len() int { return len(is.nodes) }

// Topic returns the issue's record topic, "issue/<slug>".
func (is *Issue) Topic() string { return is.topic }

// Processes returns the processes on the issue, sorted by charter CID.
func (is *Issue) Processes() []*Process {
	out := slices.Clone(is.plist)
	slices.SortFunc(out, func(a, b *Process) int { return cidCompare(a.charter.rec.CID, b.charter.rec.CID) })
	return out
}

// Process returns the process started by the charter with CID charter.
func (is *Issue) Process(charter cid.Cid) (*Process, bool) {
	p, ok := is.procs[charter]
	return p, ok
}

// Check returns the error [Issue.Apply] would return for r, without
// applying it.
func (is *Issue) Check(r *protocol.Record, roster Roster) error {
	_, err := is.check(r, roster)
	return err
}

// Apply validates r against its causal past and, if it is valid, adds it
// to the state. r must have passed [protocol.Validate], and every record of
// this topic in its causal past must have been applied (or rejected) first:
// links to records the issue does not hold are taken to be records of other
// topics and ignored. roster is the membership in force in r's causal past
// (nil means nobody is a member).
//
// The error is a [protocol.Error]: duplicate (already applied),
// wrong-network, wrong-topic, bad-time (r claims a time before a record it
// links to), bad-links (a record its body references is not among its
// deps), not-member (process records by non-members) or not-allowed (the
// causal past does not allow r; the detail says why). On error the state
// is unchanged.
//
// The state depends only on the set of records applied, not on their
// order. A second record of an author at a seq it already used is valid
// if its causal past allows it: both are kept (an equivocation, see
// Equivocations), and the author's records count for nothing in any
// effect.
func (is *Issue) Apply(r *protocol.Record, roster Roster) error {
	pd, err := is.check(r, roster)
	if err != nil {
		return err
	}
	is.commit(pd)
	return nil
}

// pending is a record that passed its checks, with what commit needs.
type pending struct {
	r      *protocol.Record
	roster Roster
	links  []int32
	sums   []procSum // the union of the links' summaries: the causal past
	member protocol.Member

	proc    *Process // the record's process; for a charter, the new one
	newProc bool
	past    procSum        // proc's summary in the causal past
	self    func(*procSum) // the record's own contribution to the summary
	prop    *proposal
	obj     *objection
	deleg   *delegation
	dec     *decision
}

func (is *Issue) check(r *protocol.Record, roster Roster) (*pending, error) {
	if roster == nil {
		roster = emptyRoster{}
	}
	env := &r.Env
	switch {
	case !env.Network.Equals(is.net):
		return nil, protocol.Errorf(protocol.ReasonWrongNetwork, "record of network %s, issue of %s", env.Network.Cid, is.net)
	case env.Topic != is.topic:
		return nil, protocol.Errorf(protocol.ReasonWrongTopic, "record of topic %q applied to %q", env.Topic, is.topic)
	}
	links, linked, err := is.admit(r)
	if err != nil {
		return nil, err
	}
	pd := &pending{r: r, roster: roster, links: links, sums: mergeSums(linked)}
	if r.Env.Kind == protocol.KindCheckpoint {
		return pd, is.checkCheckpoint(pd)
	}

	procID, _, isProc := protocol.ProcessRefs(r.Body)
	if !isProc {
		// Who may publish what is one rule, shared with the node.
		if _, ok := roster.Lookup(env.Author); !ok && !protocol.OpenToNonMembers(env.Topic, env.Kind) {
			return nil, protocol.Errorf(protocol.ReasonNotMember, "author %x of %s is not a member in its causal past", env.Author[:8], env.Kind)
		}
		return pd, nil
	}
	if err := protocol.CheckRefs(r); err != nil {
		return nil, err
	}
	m, ok := roster.Lookup(env.Author)
	if !ok {
		return nil, protocol.Errorf(protocol.ReasonNotMember, "author %x of %s is not a member in its causal past", env.Author[:8], env.Kind)
	}
	pd.member = m
	if b, ok := r.Body.(*protocol.Charter); ok {
		return pd, is.checkCharter(pd, b)
	}
	p, ok := is.procs[procID]
	if !ok {
		return nil, protocol.Errorf(protocol.ReasonNotAllowed, "process %s is not a charter on %s", procID, is.topic)
	}
	pd.proc = p
	if i, ok := findSum(pd.sums, p.idx); ok {
		pd.past = pd.sums[i]
	}
	return pd, p.check(pd)
}

func (is *Issue) commit(pd *pending) {
	r := pd.r
	is.void = nil
	n := &node{rec: r, links: pd.links, member: pd.member, sums: pd.sums, cp: -1}
	is.add(n)
	if r.Env.Kind == protocol.KindCheckpoint {
		n.cp = n.at
		is.cps = append(is.cps, n.at)
	} else if r.Env.Prev != nil {
		if pn, ok := is.lookup(r.Env.Prev.Cid); ok {
			n.cp = pn.cp
		}
	}
	p := pd.proc
	if p == nil {
		return
	}
	if pd.newProc {
		p.charter = n
		is.procs[r.CID] = p
		is.plist = append(is.plist, p)
	}
	n.proc = p
	if pd.self != nil || pd.newProc {
		sums := slices.Clone(n.sums)
		i, found := findSum(sums, p.idx)
		if !found {
			sums = slices.Insert(sums, i, procSum{proc: p.idx})
		}
		if pd.self != nil {
			pd.self(&sums[i])
		}
		n.sums = sums
	}
	p.add(n, pd)
}

// groupBit returns the bit of a stakeholder group in procSum.moves.
func (is *Issue) groupBit(group string) uint64 {
	b, ok := is.bits[group]
	if !ok {
		b = uint(len(is.bits))
		is.bits[group] = b
	}
	if b >= 64 {
		return 0 // a taxonomy has at most 32 groups
	}
	return 1 << b
}

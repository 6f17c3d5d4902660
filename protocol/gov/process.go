package gov

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// Process is the derived state of one process: its charter and every valid
// record that names it. It is part of an [Issue] and updated by
// [Issue.Apply].
type Process struct {
	is        *Issue
	idx       int32
	charter   *node
	body      *protocol.Charter
	convenors map[string]bool
	conv      []protocol.Member     // convenors as the charter's roster knows them
	rule      protocol.DecisionRule // threshold resolved

	records     []*node
	notices     []*node
	moves       []*node // process.stage and process.conclusion records
	proposals   map[cid.Cid]*proposal
	objections  map[cid.Cid]*objection
	delegations map[cid.Cid]*delegation
	decisions   []*decision
	people      map[string]person // participants by key
	groups      map[string]bool   // groups with members in the roster of any record
	regions     map[string]bool   // regions with members in the roster of any record
}

// person is a participant as the roster of their latest record knows them.
type person struct {
	seq    uint64
	member protocol.Member
}

// latest is an author's latest endorse or withdraw (on), or latest
// feedback stance, on a proposal version.
type latest struct {
	seq    uint64
	on     bool
	stance string
}

type proposal struct {
	n          *node
	body       *protocol.Proposal
	closes     int64 // end of the comment window, unix ms
	endorse    map[string]latest
	stance     map[string]latest
	objections []*objection
	decisions  []*decision
}

type objection struct {
	n         *node
	prop      *proposal
	responses []*node
}

type delegation struct {
	n       *node
	body    *protocol.Delegation
	reports []*node
}

type decision struct {
	n     *node
	prop  *proposal
	tally *Tally
}

// CID returns the CID of the process's charter, which identifies it.
func (p *Process) CID() cid.Cid { return p.charter.rec.CID }

// Charter returns the process's charter body.
func (p *Process) Charter() *protocol.Charter { return p.body }

// Stage returns the stage the process is in given every record applied:
// the furthest stage to which convenors of two distinct groups moved it
// by moves that have effect (a conclusion concurrent with a formal
// objection, or a move to implementation without an effective decision in
// its past, has none).
func (p *Process) Stage() string { return p.effects(nil, p.is.members).stage.String() }

// Len returns the number of records of the process, charter included.
func (p *Process) Len() int { return len(p.records) }

// Adopted returns the CIDs of the proposal versions adopted by a valid
// decision that has effect given every record applied (see
// docs/protocol.md, "Effects from the whole set"), sorted.
func (p *Process) Adopted() []cid.Cid {
	var out []cid.Cid
	for _, d := range p.effects(nil, p.is.members).decisions {
		out = append(out, d.prop.n.rec.CID)
	}
	slices.SortFunc(out, cidCompare)
	return slices.Compact(out)
}

func notAllowed(format string, args ...any) error {
	return protocol.Errorf(protocol.ReasonNotAllowed, format, args...)
}

func fmtTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }

// FormatDuration formats d with its two largest units, days to seconds:
// "14d", "1d 2h", "1h", "59m 59s", "0s" (below a second). A negative d
// reads as its absolute value. The audit, the command line and the web
// pages all write durations this way.
func FormatDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	units := []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}}
	for i, u := range units {
		if d < u.d {
			continue
		}
		s := fmt.Sprintf("%d%s", d/u.d, u.name)
		if i+1 < len(units) {
			if r := d % u.d / units[i+1].d; r > 0 {
				s += fmt.Sprintf(" %d%s", r, units[i+1].name)
			}
		}
		return s
	}
	return "0s"
}

// fmtDuration formats a duration in milliseconds (FormatDuration).
func fmtDuration(ms int64) string { return FormatDuration(time.Duration(ms) * time.Millisecond) }

func (is *Issue) checkCharter(pd *pending, b *protocol.Charter) error {
	author := pd.r.Env.Author
	if !slices.ContainsFunc(b.Convenors, func(k []byte) bool { return bytes.Equal(k, author) }) {
		return notAllowed("the author of a charter must be one of its convenors")
	}
	groups := map[string]bool{}
	var conv []protocol.Member
	for _, k := range b.Convenors {
		m, ok := pd.roster.Lookup(k)
		if !ok {
			return notAllowed("convenor %x is not a member", k[:8])
		}
		groups[m.Group] = true
		conv = append(conv, m)
	}
	if len(groups) < 2 {
		return notAllowed("convenors must come from at least two stakeholder groups")
	}
	if b.MinNoticeSeconds < is.rules.MinNoticeSeconds {
		return notAllowed("minimum notice %s is shorter than the federation's %s",
			fmtDuration(b.MinNoticeSeconds*1000), fmtDuration(is.rules.MinNoticeSeconds*1000))
	}
	rule := b.Rule
	if rule.Threshold == 0 {
		rule.Threshold = is.rules.DecisionMinEndorsements
	} else if rule.Threshold < is.rules.DecisionMinEndorsements {
		return notAllowed("threshold %d is below the federation's %d", rule.Threshold, is.rules.DecisionMinEndorsements)
	}
	if rule.Name == protocol.RuleGroupDecides && !slices.Contains(is.groups, rule.Group) {
		return notAllowed("rule group %q is not a stakeholder group of the federation", rule.Group)
	}
	if b.Mandate != nil {
		if err := is.checkMandate(pd, b); err != nil {
			return err
		}
	}
	p := &Process{
		is: is, idx: int32(len(is.plist)), body: b, rule: rule, conv: conv,
		convenors:   map[string]bool{},
		proposals:   map[cid.Cid]*proposal{},
		objections:  map[cid.Cid]*objection{},
		delegations: map[cid.Cid]*delegation{},
		people:      map[string]person{},
		groups:      map[string]bool{},
		regions:     map[string]bool{},
	}
	for _, k := range b.Convenors {
		p.convenors[string(k)] = true
	}
	pd.proc, pd.newProc = p, true
	return nil
}

// checkMandate checks that a charter naming a non-default rule references
// a valid decision on this issue, taken under the default rule, adopting a
// proposal whose rule field is exactly the charter's rule.
func (is *Issue) checkMandate(pd *pending, b *protocol.Charter) error {
	c := b.Mandate.Cid
	n, ok := is.lookup(c)
	if !ok || n.rec.Env.Kind != protocol.KindDecision || n.proc == nil {
		return notAllowed("mandate %s is not an adopted decision on %s", c, is.topic)
	}
	if n.proc.body.Rule.Name != protocol.RuleConcurrentMajority {
		return notAllowed("mandate %s was adopted under %s, not under the default rule %s", c, n.proc.body.Rule.Name, protocol.RuleConcurrentMajority)
	}
	i := slices.IndexFunc(n.proc.decisions, func(d *decision) bool { return d.n == n })
	if reasons := n.proc.effects(is.pastOf(pd.links), pd.roster).contested[n]; len(reasons) > 0 {
		return notAllowed("mandate %s has no effect in the charter's causal past: %s", c, strings.Join(reasons, "; "))
	}
	approved := n.proc.decisions[i].prop.body.Rule
	if approved == nil || *approved != b.Rule {
		return notAllowed("mandate %s adopts a proposal that does not approve rule %s", c, ruleString(b.Rule))
	}
	return nil
}

func ruleString(r protocol.DecisionRule) string {
	s := r.Name
	if r.Group != "" {
		s += " group=" + r.Group
	}
	return fmt.Sprintf("%s threshold=%d", s, r.Threshold)
}

// stagesAllowed lists the stages each kind may be published in (in the
// record's causal past). Stage moves and conclusions have their own rules.
var stagesAllowed = map[string][]stage{
	protocol.KindNotice:     {scoping, consultation, decisionStage, implementation, delegationStage},
	protocol.KindProposal:   {consultation, decisionStage},
	protocol.KindFeedback:   {consultation, decisionStage},
	protocol.KindObjection:  {consultation, decisionStage},
	protocol.KindEndorse:    {consultation, decisionStage},
	protocol.KindWithdraw:   {consultation, decisionStage},
	protocol.KindResponse:   {scoping, consultation, decisionStage, implementation, delegationStage, concluded},
	protocol.KindDecision:   {decisionStage},
	protocol.KindDelegation: {delegationStage},
	protocol.KindReport:     {delegationStage, concluded},
}

func (p *Process) requireConvenor(pd *pending) error {
	if !p.convenors[string(pd.r.Env.Author)] {
		return notAllowed("%s must be signed by a convenor of the process", pd.r.Env.Kind)
	}
	return nil
}

func (p *Process) proposal(c cid.Cid) (*proposal, error) {
	pr, ok := p.proposals[c]
	if !ok {
		return nil, notAllowed("%s is not a proposal of process %s", c, p.CID())
	}
	return pr, nil
}

// check applies the rules of the record's kind; pd.proc is p.
func (p *Process) check(pd *pending) error {
	r := pd.r
	cur := pd.past.stage()
	if cur.rank() >= implementation.rank() {
		// The summary counts every move in the past; whether a move to
		// implementation or a conclusion has effect there depends on the
		// rest of the past.
		cur = p.effects(p.is.pastOf(pd.links), pd.roster).stage
	}
	if ok, listed := stagesAllowed[r.Env.Kind]; listed && !slices.Contains(ok, cur) {
		names := make([]string, len(ok))
		for i, s := range ok {
			names[i] = s.String()
		}
		return notAllowed("%s is not allowed in stage %s (only in %s)", r.Env.Kind, cur, strings.Join(names, ", "))
	}
	author := string(r.Env.Author)
	switch b := r.Body.(type) {
	case *protocol.Notice:
		if err := p.requireConvenor(pd); err != nil {
			return err
		}
		if b.Date <= r.Env.Time {
			return notAllowed("notice date %s is not after the notice (%s)", fmtTime(b.Date), fmtTime(r.Env.Time))
		}
		slot := -1
		switch b.Subject {
		case protocol.SubjectConsultation:
			slot = 0
		case protocol.SubjectDecision:
			slot = 1
		}
		if slot >= 0 && b.Date-r.Env.Time >= p.body.MinNoticeSeconds*1000 {
			pd.self = func(s *procSum) {
				if s.notice[slot] == 0 || b.Date < s.notice[slot] {
					s.notice[slot] = b.Date
				}
			}
		}

	case *protocol.Proposal:
		if b.Replaces != nil {
			old, err := p.proposal(b.Replaces.Cid)
			if err != nil {
				return err
			}
			if b.Version != old.body.Version+1 {
				return notAllowed("version %d replaces version %d; want %d", b.Version, old.body.Version, old.body.Version+1)
			}
		}

	case *protocol.Feedback:
		pr, err := p.proposal(b.Proposal.Cid)
		if err != nil {
			return err
		}
		if b.Clause != "" && !pr.body.HasClause(b.Clause) {
			return notAllowed("proposal %s has no clause %q", b.Proposal.Cid, b.Clause)
		}
		pd.prop = pr

	case *protocol.Objection:
		pr, err := p.proposal(b.Proposal.Cid)
		if err != nil {
			return err
		}
		pd.prop = pr

	case *protocol.Response:
		o, ok := p.objections[b.Objection.Cid]
		if !ok {
			return notAllowed("%s is not a formal objection of process %s", b.Objection.Cid, p.CID())
		}
		if !p.convenors[author] && o.prop.n.author() != author {
			return notAllowed("a response must be signed by a convenor or by the author of the proposal objected to")
		}
		pd.obj = o

	case *protocol.Endorse, *protocol.Withdraw:
		var c cid.Cid
		if e, ok := b.(*protocol.Endorse); ok {
			c = e.Proposal.Cid
		} else {
			c = b.(*protocol.Withdraw).Proposal.Cid
		}
		pr, err := p.proposal(c)
		if err != nil {
			return err
		}
		st := pr.endorse[author]
		if p.is.forkedOrTaken(author, r.Env.Seq) {
			// pr.endorse is the author's latest record applied, exact
			// only while its chain on the topic has no fork: then every
			// record of lower seq is in r's causal past. Otherwise read
			// r's causal past.
			st = latest{}
			p.is.walk(pd.links, func(n *node) {
				if n.author() != author || n.proc != p {
					return
				}
				seq := n.rec.Env.Seq
				switch nb := n.rec.Body.(type) {
				case *protocol.Endorse:
					if nb.Proposal.Equals(c) && seq >= st.seq {
						st = latest{seq: seq, on: true}
					}
				case *protocol.Withdraw:
					if nb.Proposal.Equals(c) && seq >= st.seq {
						st = latest{seq: seq, on: false}
					}
				}
			})
		}
		on := st.on && st.seq < r.Env.Seq
		switch {
		case r.Env.Kind == protocol.KindEndorse && on:
			return notAllowed("the author already endorses %s", c)
		case r.Env.Kind == protocol.KindWithdraw && !on:
			return notAllowed("the author has no endorsement of %s to withdraw", c)
		}
		pd.prop = pr

	case *protocol.Decision:
		return p.checkDecision(pd, b)

	case *protocol.Delegation:
		if err := p.requireConvenor(pd); err != nil {
			return err
		}
		if b.Decision != nil {
			n, ok := p.is.lookup(b.Decision.Cid)
			if !ok || n.proc != p || n.rec.Env.Kind != protocol.KindDecision {
				return notAllowed("%s is not a decision of process %s", b.Decision.Cid, p.CID())
			}
		}

	case *protocol.Report:
		d, ok := p.delegations[b.Delegation.Cid]
		if !ok {
			return notAllowed("%s is not a delegation of process %s", b.Delegation.Cid, p.CID())
		}
		pd.deleg = d

	case *protocol.StageChange:
		return p.checkMove(pd, cur, b.To)

	case *protocol.Conclusion:
		return p.checkMove(pd, cur, protocol.StageConcluded)
	}
	return nil
}

// next returns the stage that follows s in this process.
func (p *Process) next(s stage) stage {
	switch s {
	case scoping:
		return consultation
	case consultation:
		return decisionStage
	case decisionStage:
		final, _ := stageByName(p.body.FinalStage())
		return final
	}
	return concluded
}

// checkMove checks a process.stage or process.conclusion record moving the
// process from cur to the stage named to.
func (p *Process) checkMove(pd *pending, cur stage, to string) error {
	if err := p.requireConvenor(pd); err != nil {
		return err
	}
	r := pd.r
	target, _ := stageByName(to)
	switch {
	case cur == concluded:
		return notAllowed("the process is already concluded")
	case target == concluded:
		if cur.rank() < decisionStage.rank() {
			return notAllowed("a process concludes from stage %s, %s or %s, not %s", decisionStage, implementation, delegationStage, cur)
		}
		var open []string
		p.unanswered(pd, func(o *node) { open = append(open, o.rec.CID.String()) })
		if len(open) > 0 {
			slices.Sort(open)
			return notAllowed("conclusion refused: formal objection %s has no response in its causal past", strings.Join(open, ", "))
		}
	case target == cur:
		return notAllowed("the process is already in stage %s", cur)
	case target != p.next(cur):
		return notAllowed("stage %s follows %s in this process, not %s", p.next(cur), cur, target)
	default:
		ph, _ := p.body.PhaseOf(to)
		if r.Env.Time < ph.Start {
			return notAllowed("stage %s is planned to start at %s; the move claims %s", to, fmtTime(ph.Start), fmtTime(r.Env.Time))
		}
		slot := map[stage]int{consultation: 0, decisionStage: 1}
		if i, ok := slot[target]; ok {
			if d := pd.past.notice[i]; d == 0 || d > r.Env.Time {
				if p.body.MinNoticeSeconds == 0 {
					return notAllowed("no notice of the %s for a date not after %s in its causal past: publish a notice of the %s first",
						target, fmtTime(r.Env.Time), target)
				}
				return notAllowed("no notice of the %s published at least %s before its date, for a date not after %s, in its causal past",
					target, fmtDuration(p.body.MinNoticeSeconds*1000), fmtTime(r.Env.Time))
			}
		}
		if target.rank() == implementation.rank() && (!pd.past.decided || len(p.effects(p.is.pastOf(pd.links), pd.roster).decisions) == 0) {
			return notAllowed("no adopted decision with effect in its causal past to move to %s", target)
		}
	}
	bit := p.is.groupBit(pd.member.Group)
	pd.self = func(s *procSum) { s.moves[target] |= bit }
	return nil
}

// unanswered calls f for every formal objection of the process in pd's
// causal past without a response there.
func (p *Process) unanswered(pd *pending, f func(*node)) {
	var objs []*node
	answered := map[cid.Cid]bool{}
	p.is.walk(pd.links, func(n *node) {
		if n.proc != p {
			return
		}
		switch b := n.rec.Body.(type) {
		case *protocol.Objection:
			objs = append(objs, n)
		case *protocol.Response:
			answered[b.Objection.Cid] = true
		}
	})
	for _, o := range objs {
		if !answered[o.rec.CID] {
			f(o)
		}
	}
}

// checkDecision checks that the decision's causal past proves the
// proposal adopted under the charter's rule.
func (p *Process) checkDecision(pd *pending, b *protocol.Decision) error {
	if err := p.requireConvenor(pd); err != nil {
		return err
	}
	pr, err := p.proposal(b.Proposal.Cid)
	if err != nil {
		return err
	}
	r := pd.r
	if r.Env.Time < pr.closes {
		return notAllowed("the comment window of %s closes at %s; the decision claims %s",
			b.Proposal.Cid, fmtTime(pr.closes), fmtTime(r.Env.Time))
	}
	endorse := map[string]latest{}
	stance := map[string]latest{}
	objectors := map[string]bool{}
	var objs []cid.Cid
	answered := map[cid.Cid]bool{}
	var already []string // earlier decisions on the proposal
	// An author with two records at one seq in the causal past counts
	// for nothing there (docs/protocol.md, "Equivocation").
	var void map[string]bool
	if len(p.is.forks) > 0 {
		void = p.is.forkedIn(p.is.pastOf(pd.links))
	}
	p.is.walk(pd.links, func(n *node) {
		if n.proc != p || void[n.author()] {
			return
		}
		a, seq := n.author(), n.rec.Env.Seq
		switch nb := n.rec.Body.(type) {
		case *protocol.Endorse:
			if nb.Proposal.Equals(pr.n.rec.CID) && seq >= endorse[a].seq {
				endorse[a] = latest{seq: seq, on: true}
			}
		case *protocol.Withdraw:
			if nb.Proposal.Equals(pr.n.rec.CID) && seq >= endorse[a].seq {
				endorse[a] = latest{seq: seq, on: false}
			}
		case *protocol.Feedback:
			if nb.Proposal.Equals(pr.n.rec.CID) && seq >= stance[a].seq {
				stance[a] = latest{seq: seq, stance: nb.Stance}
			}
		case *protocol.Objection:
			if nb.Proposal.Equals(pr.n.rec.CID) {
				objectors[a] = true
				objs = append(objs, n.rec.CID)
			}
		case *protocol.Response:
			answered[nb.Objection.Cid] = true
		case *protocol.Decision:
			if nb.Proposal.Equals(pr.n.rec.CID) {
				already = append(already, n.rec.CID.String())
			}
		}
	})
	if len(already) > 0 {
		// A decision contested in this one's past (a blocker it did not
		// include is in this past) may be taken again; an effective one
		// may not.
		for _, d := range p.effects(p.is.pastOf(pd.links), pd.roster).decisions {
			if d.prop == pr {
				return notAllowed("%s is already adopted by decision %s in its causal past", b.Proposal.Cid, d.n.rec.CID)
			}
		}
	}
	var open []string
	for _, o := range objs {
		if !answered[o] {
			open = append(open, o.String())
		}
	}
	if len(open) > 0 {
		slices.Sort(open)
		return notAllowed("formal objection %s to %s has no response in the decision's causal past", strings.Join(open, ", "), b.Proposal.Cid)
	}
	var ekeys, okeys []string
	for a, l := range endorse {
		if l.on {
			ekeys = append(ekeys, a)
		}
	}
	for a, l := range stance {
		if l.stance == protocol.StanceObjection {
			objectors[a] = true
		}
	}
	for a := range objectors {
		okeys = append(okeys, a)
	}
	t := &Tally{
		Rule:      p.rule,
		Groups:    sortedSet(pd.roster.Groups()),
		Regions:   sortedSet(pd.roster.Regions()),
		Endorsers: voters(ekeys, pd.roster),
		Objectors: voters(okeys, pd.roster),
	}
	if sf := t.Shortfalls(); len(sf) > 0 {
		return notAllowed("%s is not adopted under %s: %s", b.Proposal.Cid, p.rule.Name, strings.Join(sf, "; "))
	}
	pd.prop = pr
	pd.dec = &decision{prop: pr, tally: t}
	pd.self = func(s *procSum) { s.decided = true }
	return nil
}

func sortedSet(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

// add records a valid record of the process; n.sums is final.
func (p *Process) add(n *node, pd *pending) {
	p.records = append(p.records, n)
	a, seq := n.author(), n.rec.Env.Seq
	if old, ok := p.people[a]; !ok || seq > old.seq {
		p.people[a] = person{seq: seq, member: pd.member}
	}
	for _, g := range pd.roster.Groups() {
		p.groups[g] = true
	}
	for _, r := range pd.roster.Regions() {
		p.regions[r] = true
	}
	switch b := n.rec.Body.(type) {
	case *protocol.Notice:
		p.notices = append(p.notices, n)
	case *protocol.Proposal:
		p.proposals[n.rec.CID] = &proposal{
			n: n, body: b, closes: n.time() + p.body.WindowSeconds*1000,
			endorse: map[string]latest{}, stance: map[string]latest{},
		}
	case *protocol.Feedback:
		n.ref = pd.prop
		if l := pd.prop.stance[a]; seq >= l.seq {
			pd.prop.stance[a] = latest{seq: seq, stance: b.Stance}
		}
	case *protocol.Objection:
		n.ref = pd.prop
		o := &objection{n: n, prop: pd.prop}
		p.objections[n.rec.CID] = o
		pd.prop.objections = append(pd.prop.objections, o)
	case *protocol.Response:
		pd.obj.responses = append(pd.obj.responses, n)
	case *protocol.Endorse, *protocol.Withdraw:
		n.ref = pd.prop
		if l := pd.prop.endorse[a]; seq >= l.seq {
			pd.prop.endorse[a] = latest{seq: seq, on: n.rec.Env.Kind == protocol.KindEndorse}
		}
	case *protocol.Decision:
		pd.dec.n = n
		p.decisions = append(p.decisions, pd.dec)
		pd.prop.decisions = append(pd.prop.decisions, pd.dec)
	case *protocol.Delegation:
		p.delegations[n.rec.CID] = &delegation{n: n, body: b}
	case *protocol.Report:
		pd.deleg.reports = append(pd.deleg.reports, n)
	case *protocol.StageChange, *protocol.Conclusion:
		p.moves = append(p.moves, n)
	}
}

// Records returns the CIDs of the process's records, charter included, in
// the order they were applied.
func (p *Process) Records() []cid.Cid {
	out := make([]cid.Cid, len(p.records))
	for i, n := range p.records {
		out[i] = n.rec.CID
	}
	return out
}

package gov

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// This file derives what the records of a process *do*, as opposed to
// whether each is valid. Validity (Issue.Apply) looks only at a record and
// its causal past, because every node must reach the same verdict whenever
// the record arrives. But a signer chooses its deps and can leave out what
// it dislikes: a formal objection, a withdrawal, the suspension of an
// endorser. So every effect that depends on something being absent is
// computed here from every valid record of the process in a universe: the
// whole set the node holds (the audit, Stage, Adopted), or the causal past
// of a record being checked (a re-decision, a move that needs a decision,
// a charter's mandate), which is again a function of that record alone.
//
// A decision, conclusion or delegation that a record of the universe
// would have blocked, but does not have in its causal past, is contested:
// it has no effect until a later one includes the blocker in its past.
// The rules are listed in docs/protocol.md, "Effects from the whole set".

// bitset is a set of dag node indices.
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

func (b bitset) has(i int32) bool {
	return int(i/64) < len(b) && b[i/64]&(1<<(uint(i)%64)) != 0
}

func (b bitset) set(i int32) { b[i/64] |= 1 << (uint(i) % 64) }

// pastOf returns the strict causal past of a record with the given links.
// Unlike walk it does not touch the nodes, so concurrent readers may call
// it.
func (d *dag) pastOf(links []int32) bitset {
	b := newBitset(len(d.nodes))
	stack := slices.Clone(links)
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if b.has(i) {
			continue
		}
		b.set(i)
		stack = append(stack, d.nodes[i].links...)
	}
	return b
}

// after returns the applied records that have n in their causal past.
// Nodes are applied in causal order, so one pass forward finds them.
func (d *dag) after(n *node) bitset {
	b := newBitset(len(d.nodes))
	for j := n.at + 1; int(j) < len(d.nodes); j++ {
		for _, l := range d.nodes[j].links {
			if l == n.at || b.has(l) {
				b.set(j)
				break
			}
		}
	}
	return b
}

// effects is what the records of a process in one universe make
// effective.
type effects struct {
	// contested holds the decisions, conclusions, stage moves and
	// delegations that have no effect, with the reasons, sorted.
	contested map[*node][]string
	// decisions are the effective decisions, in apply order.
	decisions []*decision
	// delegations are the delegation records that are effective.
	delegations map[*node]bool
	// counted holds, per decision, the CIDs of the endorsements its
	// effect rests on given the universe.
	counted map[*decision]*Tally
	// endorsements holds, per decision, the endorsement records that
	// tally counted.
	endorsements map[*decision][]*node
	stage        stage
	// public holds the public time of every record by node index (0: not
	// witnessed yet), or is nil when time rules use claimed times: in a
	// record's causal past (validity) and on a topic nobody witnesses.
	public []int64
}

// timeOf returns the time rules measure n by: its public time (0 when not
// witnessed yet), or its claimed time when ef.public is nil.
func (ef *effects) timeOf(n *node) int64 {
	if ef.public == nil {
		return n.time()
	}
	return ef.public[n.at]
}

// effects computes the effects of the process's records in u (nil: every
// record applied). members is the membership of the universe: for the
// whole set, the membership of every record the node holds; for a
// record's causal past, the roster of that past. A nil members counts each
// author as the roster of its own record knew it.
func (p *Process) effects(u bitset, members Roster) *effects {
	// An equivocator's records count for nothing: not as decisions,
	// moves, conclusions or delegations, not as endorsements, objections
	// or withdrawals (docs/protocol.md, "Equivocation").
	void := p.is.voidAuthors(u)
	voided := func(n *node) bool { return len(void) > 0 && void[n.author()] }
	in := func(n *node) bool { return (u == nil || u.has(n.at)) && !voided(n) }
	ef := &effects{contested: map[*node][]string{}, delegations: map[*node]bool{}, counted: map[*decision]*Tally{}, endorsements: map[*decision][]*node{}}
	if u == nil {
		ef.public = p.is.witnessed()
	}
	// Decisions and moves in apply order (a causal order): each one's
	// effect depends on the effective moves and decisions in its past.
	byNode := map[*node]*decision{}
	for _, d := range p.decisions {
		byNode[d.n] = d
	}
	var effMoves []*node
	stageIn := func(past bitset) stage {
		var moves [numStages]uint64
		for _, m := range effMoves {
			if past.has(m.at) {
				moves[moveTarget(m)] |= p.is.groupBit(m.member.Group)
			}
		}
		return stageOf(moves)
	}
	for _, n := range p.records {
		if u != nil && !u.has(n.at) {
			continue
		}
		if voided(n) {
			if d, ok := byNode[n]; ok {
				// The audit still shows the tally the decision would have.
				t, counted, _ := p.contestDecision(d, in, members)
				ef.counted[d], ef.endorsements[d] = t, counted
				ef.contested[n] = []string{voidReason}
			} else if n.rec.Env.Kind == protocol.KindStage || n.rec.Env.Kind == protocol.KindConclusion {
				ef.contested[n] = []string{voidReason}
			}
			continue
		}
		if d, ok := byNode[n]; ok {
			t, counted, reasons := p.contestDecision(d, in, members)
			reasons = append(reasons, p.lateDecision(d, ef)...)
			if cur := stageIn(p.is.pastOf(n.links)); cur != decisionStage {
				reasons = append(reasons, fmt.Sprintf("counting moves with effect, the process is in stage %s in its causal past, not %s", cur, decisionStage))
			}
			ef.counted[d], ef.endorsements[d] = t, counted
			if len(reasons) > 0 {
				ef.contested[d.n] = reasons
				continue
			}
			ef.decisions = append(ef.decisions, d)
			continue
		}
		if n.rec.Env.Kind != protocol.KindStage && n.rec.Env.Kind != protocol.KindConclusion {
			continue
		}
		target := moveTarget(n)
		past := p.is.pastOf(n.links)
		var reasons []string
		switch cur := stageIn(past); {
		case target == concluded && cur.rank() < decisionStage.rank(),
			target != concluded && target != p.next(cur):
			reasons = append(reasons, fmt.Sprintf("counting moves with effect, the process is in stage %s in its causal past", cur))
		}
		switch target {
		case consultation, decisionStage:
			reasons = append(reasons, p.untimelyMove(n, target, ef)...)
		case concluded:
			reasons = append(reasons, p.contestConclusion(n, in)...)
		case implementation, delegationStage:
			if !slices.ContainsFunc(ef.decisions, func(d *decision) bool { return past.has(d.n.at) }) {
				reasons = append(reasons, "no decision in its causal past has effect")
			}
		}
		if len(reasons) > 0 {
			ef.contested[n] = reasons
			continue
		}
		effMoves = append(effMoves, n)
	}
	var moves [numStages]uint64
	for _, m := range effMoves {
		moves[moveTarget(m)] |= p.is.groupBit(m.member.Group)
	}
	ef.stage = stageOf(moves)
	p.delegationEffects(ef, u, void, in)
	return ef
}

// voidReason is why an equivocator's decision, move or conclusion has no
// effect.
const voidReason = "its author signed two records at one seq (an equivocation): the author's records count for nothing"

// stageOf returns the furthest stage that moves of convenors of at least
// two groups reached, given the group bits of the moves to each stage.
func stageOf(moves [numStages]uint64) stage {
	best := scoping
	for st := consultation; st < numStages; st++ {
		if bits.OnesCount64(moves[st]) >= 2 && st.rank() > best.rank() {
			best = st
		}
	}
	return best
}

// contestDecision returns the tally of d given every record of the
// universe that does not have d in its causal past, the endorsement
// records it counted, and the reasons d has
// no effect there: a formal objection to the proposal concurrent with d,
// an endorser no longer a member, or a tally (after concurrent
// withdrawals, stances and removals) that no longer meets the rule.
func (p *Process) contestDecision(d *decision, in func(*node) bool, members Roster) (*Tally, []*node, []string) {
	past := p.is.pastOf(d.n.links)
	aft := p.is.after(d.n)
	endorse := map[string]latest{}
	stance := map[string]latest{}
	objectors := map[string]bool{}
	own := map[string]protocol.Member{}
	enode := map[string]*node{}
	var reasons []string
	// late are concurrent records and removals that matter only if the
	// tally no longer meets the rule.
	var late []string
	for _, n := range p.records {
		if n.ref != d.prop || !in(n) || aft.has(n.at) {
			continue
		}
		a, seq := n.author(), n.rec.Env.Seq
		switch b := n.rec.Body.(type) {
		case *protocol.Objection:
			objectors[a] = true
			if !past.has(n.at) {
				reasons = append(reasons, fmt.Sprintf("formal objection %s is concurrent with the decision (not in its causal past)", n.rec.CID))
			}
		case *protocol.Endorse:
			if seq >= endorse[a].seq {
				endorse[a] = latest{seq: seq, on: true}
				enode[a] = n
			}
		case *protocol.Withdraw:
			if seq >= endorse[a].seq {
				endorse[a] = latest{seq: seq, on: false}
				if !past.has(n.at) {
					late = append(late, fmt.Sprintf("withdrawal %s is concurrent with the decision (not in its causal past)", n.rec.CID))
				}
			}
		case *protocol.Feedback:
			if seq >= stance[a].seq {
				stance[a] = latest{seq: seq, stance: b.Stance}
				if !past.has(n.at) && b.Stance == protocol.StanceObjection {
					late = append(late, fmt.Sprintf("objecting feedback %s is concurrent with the decision (not in its causal past)", n.rec.CID))
				}
			}
		default:
			continue
		}
		if old, ok := own[a]; !ok || old.Key == nil {
			own[a] = n.member
		}
	}
	ros := members
	if ros == nil {
		ros = ownRoster(own)
	}
	for _, v := range d.tally.Endorsers {
		if _, ok := ros.Lookup(v.Key); !ok {
			late = append(late, fmt.Sprintf("endorser %x (%s) is no longer a member", v.Key, v.Org))
		}
	}
	var ekeys, okeys []string
	var counted []*node
	for a, l := range endorse {
		if l.on {
			ekeys = append(ekeys, a)
			if _, ok := ros.Lookup([]byte(a)); ok {
				counted = append(counted, enode[a])
			}
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
		Rule: d.tally.Rule, Groups: d.tally.Groups, Regions: d.tally.Regions,
		Endorsers: voters(ekeys, ros), Objectors: voters(okeys, ros),
	}
	if sf := t.Shortfalls(); len(sf) > 0 {
		reasons = append(reasons, "given every record held, the proposal is not adopted: "+strings.Join(sf, "; "))
		reasons = append(reasons, late...)
	}
	slices.Sort(reasons)
	return t, counted, slices.Compact(reasons)
}

// lateDecision returns the reasons a decision has no effect on public
// time: it, or its proposal, is not witnessed yet, or it was public before
// the comment window closed, measured from the proposal's public time.
func (p *Process) lateDecision(d *decision, ef *effects) []string {
	if ef.public == nil {
		return nil
	}
	td, tp := ef.timeOf(d.n), ef.timeOf(d.prop.n)
	switch {
	case tp == 0:
		return []string{fmt.Sprintf("proposal %s is not witnessed yet (no public time)", d.prop.n.rec.CID)}
	case td == 0:
		return []string{"the decision is not witnessed yet (no public time)"}
	case td < tp+p.body.WindowSeconds*1000:
		return []string{fmt.Sprintf("the decision was public at %s, before the comment window closed at %s (proposal public at %s plus %s)",
			fmtTime(td), fmtTime(tp+p.body.WindowSeconds*1000), fmtTime(tp), fmtDuration(p.body.WindowSeconds*1000))}
	}
	return nil
}

// untimelyMove returns the reasons a move to consultation or decision has
// no effect on public time: it is not witnessed yet, or no notice of the
// stage in its causal past was public at least the minimum notice before
// its date, with the move public on or after that date.
func (p *Process) untimelyMove(n *node, target stage, ef *effects) []string {
	if ef.public == nil {
		return nil
	}
	tm := ef.timeOf(n)
	if tm == 0 {
		return []string{"the move is not witnessed yet (no public time)"}
	}
	subject := protocol.SubjectConsultation
	if target == decisionStage {
		subject = protocol.SubjectDecision
	}
	past := p.is.pastOf(n.links)
	minMs := p.body.MinNoticeSeconds * 1000
	var why []string
	for _, nn := range p.notices {
		b := nn.rec.Body.(*protocol.Notice)
		if !past.has(nn.at) || b.Subject != subject {
			continue
		}
		tn := ef.timeOf(nn)
		switch {
		case tn == 0:
			why = append(why, fmt.Sprintf("notice %s is not witnessed yet", nn.rec.CID))
		case b.Date-tn < minMs:
			why = append(why, fmt.Sprintf("notice %s was public at %s, %s before its date %s, less than the minimum notice %s",
				nn.rec.CID, fmtTime(tn), fmtDuration(max(b.Date-tn, 0)), fmtTime(b.Date), fmtDuration(minMs)))
		case tm < b.Date:
			why = append(why, fmt.Sprintf("the move was public at %s, before the date %s of notice %s", fmtTime(tm), fmtTime(b.Date), nn.rec.CID))
		default:
			return nil
		}
	}
	if len(why) == 0 {
		why = []string{"no notice of the " + subject + " in its causal past"}
	}
	slices.Sort(why)
	return why
}

// contestConclusion returns the reasons a conclusion has no effect: a
// formal objection of the process concurrent with it.
func (p *Process) contestConclusion(k *node, in func(*node) bool) []string {
	past := p.is.pastOf(k.links)
	aft := p.is.after(k)
	var reasons []string
	for _, o := range p.objections {
		if in(o.n) && !past.has(o.n.at) && !aft.has(o.n.at) {
			reasons = append(reasons, fmt.Sprintf("formal objection %s is concurrent with the conclusion (not in its causal past)", o.n.rec.CID))
		}
	}
	slices.Sort(reasons)
	return reasons
}

// delegationKey identifies what a delegation delegates: the same decision,
// body, scope and reporting duty.
func delegationKey(b *protocol.Delegation) string {
	dec := ""
	if b.Decision != nil {
		dec = b.Decision.KeyString()
	}
	return strings.Join([]string{dec, b.Body, b.Scope, b.Reporting}, "\x00")
}

// delegationEffects decides which delegations have effect: one cites a
// decision that has effect, and delegation records with the same content
// are signed by convenors of at least two stakeholder groups. Of two such
// delegations, one whose records are all in the causal past of the other's
// is superseded; otherwise both are contested.
func (p *Process) delegationEffects(ef *effects, u bitset, void map[string]bool, in func(*node) bool) {
	type group struct {
		recs   []*node
		groups uint64
	}
	byKey := map[string]*group{}
	var keys []string
	for _, dl := range p.delegations {
		n := dl.n
		if !in(n) {
			if len(void) > 0 && void[n.author()] && (u == nil || u.has(n.at)) {
				ef.contested[n] = []string{voidReason}
			}
			continue
		}
		if dl.body.Decision == nil {
			ef.contested[n] = []string{"cites no decision"}
			continue
		}
		if !slices.ContainsFunc(ef.decisions, func(d *decision) bool { return d.n.rec.CID.Equals(dl.body.Decision.Cid) }) {
			ef.contested[n] = []string{fmt.Sprintf("cites decision %s, which has no effect", dl.body.Decision.Cid)}
			continue
		}
		k := delegationKey(dl.body)
		g := byKey[k]
		if g == nil {
			g = &group{}
			byKey[k] = g
			keys = append(keys, k)
		}
		g.recs = append(g.recs, n)
		g.groups |= p.is.groupBit(n.member.Group)
	}
	slices.Sort(keys)
	var signed []string
	for _, k := range keys {
		g := byKey[k]
		if bits.OnesCount64(g.groups) < 2 {
			for _, n := range g.recs {
				ef.contested[n] = []string{"signed by convenors of one stakeholder group; a delegation needs convenors of two"}
			}
			continue
		}
		signed = append(signed, k)
	}
	// within reports whether every record of a is in the causal past of
	// some record of b.
	within := func(a, b *group) bool {
		var past bitset
		for _, n := range b.recs {
			pb := p.is.pastOf(n.links)
			if past == nil {
				past = pb
				continue
			}
			for i := range past {
				past[i] |= pb[i]
			}
		}
		return !slices.ContainsFunc(a.recs, func(n *node) bool { return !past.has(n.at) })
	}
	for _, k := range signed {
		g := byKey[k]
		var reason string
		for _, o := range signed {
			if o == k {
				continue
			}
			switch h := byKey[o]; {
			case within(g, h):
				reason = "superseded by a later delegation"
			case !within(h, g) && reason == "":
				reason = "another delegation of the process is concurrent with it"
			}
		}
		for _, n := range g.recs {
			if reason != "" {
				ef.contested[n] = []string{reason}
			} else {
				ef.delegations[n] = true
			}
		}
	}
}

// ownRoster is the roster made of authors as their own records' rosters
// knew them.
type ownRoster map[string]protocol.Member

func (r ownRoster) Lookup(key []byte) (protocol.Member, bool) {
	for _, m := range r {
		if string(m.Key) == string(key) {
			return m, true
		}
	}
	m, ok := r[string(key)]
	return m, ok
}
func (r ownRoster) Groups() []string  { return nil }
func (r ownRoster) Regions() []string { return nil }

package protocol

// DeriveMembersNaive is the membership fold as the specification states it,
// without the undo journal: for every members-topic record r it rebuilds
// State(past(r)) from the genesis. It is quadratic and exists only so that
// tests can compare DeriveMembers with it.
func DeriveMembersNaive(g *Genesis, recs []*Record) *MemberSet {
	if _, err := newMemFold(g); err != nil {
		return buildMemberSet(&memFold{st: newMemState()}, nil)
	}
	d := newMemDAG(recs)
	verdicts := map[string]error{}
	for _, r := range d.missing {
		verdicts[r.CID.KeyString()] = Errorf(ReasonMissingDeps, "incomplete")
	}
	valid := make([]bool, len(d.members))
	facts := make([]memFact, len(d.members))
	for i, r := range d.members {
		e, _ := newMemFold(g)
		for k := range i {
			if valid[k] && hasBit(d.anc[i], k) {
				e.apply(d.members[k], facts[k])
			}
		}
		var err error
		facts[i], err = e.check(r)
		verdicts[r.CID.KeyString()] = err
		valid[i] = err == nil
	}
	e, _ := newMemFold(g)
	for k, r := range d.members {
		if valid[k] {
			e.apply(r, facts[k])
		}
	}
	return buildMemberSet(e, verdicts)
}

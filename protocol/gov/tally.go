package gov

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// Voter is a member whose endorsement or objection counts in a tally.
type Voter struct {
	Key    []byte // the member's key as the roster knows it
	Org    string
	Group  string
	Region string
}

// Tally is the count a decision rule is applied to: who endorses a
// proposal version and who objects to it, in the causal past of a decision,
// with the groups and regions that have members there. It does not cover
// the rule's other conditions (comment window closed, every formal
// objection answered), which do not depend on who endorses.
type Tally struct {
	// Rule is the decision rule with its threshold resolved (>= 1).
	Rule protocol.DecisionRule
	// Groups and Regions are those that have at least one member, sorted.
	Groups  []string
	Regions []string
	// Endorsers are the members whose endorsement stands, one entry per
	// member, sorted by key.
	Endorsers []Voter
	// Objectors are the members who formally object or whose latest
	// feedback has stance objection, one entry per member, sorted by key.
	Objectors []Voter
}

// Count returns the endorsements and objections of members of a group (dim
// "group") or a region (dim "region").
func (t *Tally) Count(dim, name string) (endorse, object int) {
	in := func(v Voter) bool {
		if dim == "group" {
			return v.Group == name
		}
		return v.Region == name
	}
	for _, v := range t.Endorsers {
		if in(v) {
			endorse++
		}
	}
	for _, v := range t.Objectors {
		if in(v) {
			object++
		}
	}
	return endorse, object
}

// Counted returns the groups and the regions the rule requires a majority
// in: under the concurrent-majority rule every group and every region with
// members; under the group-decides rule only the deciding group.
func (t *Tally) Counted() (groups, regions []string) {
	if t.Rule.Name == protocol.RuleGroupDecides {
		return []string{t.Rule.Group}, nil
	}
	return t.Groups, t.Regions
}

// Shortfalls returns, for each group or region the rule counts where the
// endorsements miss the threshold or do not outnumber the objections, a
// sentence saying so. The proposal is adopted under the rule (as far as the
// tally goes) exactly when there are none.
func (t *Tally) Shortfalls() []string {
	var out []string
	check := func(dim, name string) {
		e, o := t.Count(dim, name)
		switch {
		case e < t.Rule.Threshold:
			out = append(out, fmt.Sprintf("%s %s: %d endorsement(s), threshold %d", dim, name, e, t.Rule.Threshold))
		case e <= o:
			out = append(out, fmt.Sprintf("%s %s: %d endorsement(s) do not outnumber %d objection(s)", dim, name, e, o))
		}
	}
	groups, regions := t.Counted()
	for _, g := range groups {
		if t.Rule.Name == protocol.RuleGroupDecides && !slices.Contains(t.Groups, g) {
			out = append(out, fmt.Sprintf("group %s: has no members", g))
			continue
		}
		check("group", g)
	}
	for _, r := range regions {
		check("region", r)
	}
	if len(groups)+len(regions) == 0 {
		out = append(out, "no group or region has members")
	}
	return out
}

// Adopted reports whether the tally meets the rule.
func (t *Tally) Adopted() bool { return len(t.Shortfalls()) == 0 }

// Without returns a copy of the tally without the endorsements of the
// members of a group (dim "group") or a region (dim "region").
func (t *Tally) Without(dim, name string) *Tally {
	c := *t
	c.Endorsers = slices.DeleteFunc(slices.Clone(t.Endorsers), func(v Voter) bool {
		if dim == "group" {
			return v.Group == name
		}
		return v.Region == name
	})
	return &c
}

// Needed reports, for the group or region, whether removing its members'
// endorsements leaves the proposal not adopted. It is meaningful for an
// adopted tally; P4 asks that it hold for every group and every region.
func (t *Tally) Needed(dim, name string) bool { return !t.Without(dim, name).Adopted() }

// voters turns member keys into sorted, deduplicated voters using roster.
// Keys the roster does not know count for nothing.
func voters(keys []string, roster Roster) []Voter {
	var out []Voter
	for _, k := range keys {
		m, ok := roster.Lookup([]byte(k))
		if !ok {
			continue
		}
		if len(m.Key) == 0 {
			m.Key = []byte(k)
		}
		out = append(out, Voter{Key: m.Key, Org: m.Org, Group: m.Group, Region: m.Region})
	}
	slices.SortFunc(out, func(a, b Voter) int { return bytes.Compare(a.Key, b.Key) })
	return slices.CompactFunc(out, func(a, b Voter) bool { return bytes.Equal(a.Key, b.Key) })
}

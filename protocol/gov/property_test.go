package gov_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/protocol/gov"
)

type memberSpec struct{ name, group, region string }

// randomFederation returns 2 to maxMembers members over random subsets of
// the default groups and regions; the first two are in distinct groups so
// that they can convene a process.
func randomFederation(rng *rand.Rand, maxMembers int) []memberSpec {
	groups := protocol.DefaultGroups[:1+rng.IntN(len(protocol.DefaultGroups))]
	regions := protocol.DefaultRegions[:1+rng.IntN(len(protocol.DefaultRegions))]
	if len(groups) < 2 {
		groups = protocol.DefaultGroups[:2]
	}
	n := 2 + rng.IntN(maxMembers-1)
	out := make([]memberSpec, n)
	for i := range out {
		g := groups[rng.IntN(len(groups))]
		if i < 2 {
			g = groups[i]
		}
		out[i] = memberSpec{fmt.Sprintf("m%d", i), g, regions[rng.IntN(len(regions))]}
	}
	return out
}

// TestP4Tally checks the P4 property on the pure tally: whenever a
// proposal is adopted under the concurrent-majority rule, removing the
// endorsements of any single group or region that has members makes it
// not adopted.
func TestP4Tally(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	adopted := 0
	for range 20000 {
		fed := randomFederation(rng, 30)
		tl := gov.Tally{Rule: protocol.DecisionRule{Name: protocol.RuleConcurrentMajority, Threshold: 1 + rng.IntN(3)}}
		for _, m := range fed {
			v := gov.Voter{Key: []byte(m.name), Org: m.name, Group: m.group, Region: m.region}
			tl.Groups, tl.Regions = append(tl.Groups, m.group), append(tl.Regions, m.region)
			if rng.Float64() < 0.9 {
				tl.Endorsers = append(tl.Endorsers, v)
			}
			if rng.Float64() < 0.1 {
				tl.Objectors = append(tl.Objectors, v)
			}
		}
		slices.Sort(tl.Groups)
		slices.Sort(tl.Regions)
		tl.Groups, tl.Regions = slices.Compact(tl.Groups), slices.Compact(tl.Regions)
		if !tl.Adopted() {
			continue
		}
		adopted++
		for _, g := range tl.Groups {
			if !tl.Needed("group", g) {
				t.Fatalf("adopted without group %s: %+v", g, tl)
			}
		}
		for _, r := range tl.Regions {
			if !tl.Needed("region", r) {
				t.Fatalf("adopted without region %s: %+v", r, tl)
			}
		}
	}
	t.Logf("%d of 20000 generated tallies adopted", adopted)
	if adopted < 1000 {
		t.Fatalf("only %d of 20000 generated tallies adopted; the generator is too weak", adopted)
	}
}

// decideWith runs a process in a federation up to a decision on one
// proposal that the members in endorse endorse and the members in object
// object to (feedback stance objection), and returns the decision's
// verdict.
func decideWith(t *testing.T, fed []memberSpec, endorse, object map[string]bool) error {
	w := newWorld(t, "p4")
	for _, m := range fed {
		w.member(m.name, m.group, m.region)
	}
	t0 := genesisTime
	at := w.startProcess("c", t0, fed[0].name, fed[1].name)
	w.must(draft{kind: protocol.KindProposal, name: "p", by: fed[0].name, at: at,
		body: &protocol.Proposal{Process: w.link("c"), Version: 1, Title: "P", Text: "T"}})
	for _, m := range fed {
		if endorse[m.name] {
			at = at.Add(time.Minute)
			w.must(draft{kind: protocol.KindEndorse, by: m.name, at: at, body: &protocol.Endorse{Process: w.link("c"), Proposal: w.link("p")}})
		}
		if object[m.name] {
			at = at.Add(time.Minute)
			w.must(draft{kind: protocol.KindFeedback, by: m.name, at: at,
				body: &protocol.Feedback{Process: w.link("c"), Proposal: w.link("p"), Stance: protocol.StanceObjection}})
		}
	}
	dec := w.toDecision("c", t0, at.Add(time.Hour), fed[0].name, fed[1].name)
	_, err := w.publish(draft{kind: protocol.KindDecision, by: fed[0].name, at: dec.Add(time.Hour),
		body: &protocol.Decision{Process: w.link("c"), Proposal: w.link("p")}})
	return err
}

// TestP4Records checks the P4 property end to end, with signed records:
// in generated federations with generated endorsements and objections,
// whenever a decision is valid, the same process without the endorsements
// of any one group, or of any one region, has its decision rejected.
func TestP4Records(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 5))
	adopted, iterations := 0, 60
	if testing.Short() {
		iterations = 15
	}
	for range iterations {
		fed := randomFederation(rng, 9)
		endorse, object := map[string]bool{}, map[string]bool{}
		for _, m := range fed {
			endorse[m.name] = rng.Float64() < 0.9
			object[m.name] = rng.Float64() < 0.1
		}
		if err := decideWith(t, fed, endorse, object); err != nil {
			if protocol.ReasonOf(err) != protocol.ReasonNotAllowed {
				t.Fatalf("decision: %v", err)
			}
			continue
		}
		adopted++
		for _, dim := range []string{"group", "region"} {
			names := map[string]bool{}
			for _, m := range fed {
				names[map[string]string{"group": m.group, "region": m.region}[dim]] = true
			}
			for name := range names {
				without := map[string]bool{}
				for _, m := range fed {
					in := m.group == name
					if dim == "region" {
						in = m.region == name
					}
					without[m.name] = endorse[m.name] && !in
				}
				err := decideWith(t, fed, without, object)
				if protocol.ReasonOf(err) != protocol.ReasonNotAllowed {
					t.Fatalf("federation %v: without the endorsements of %s %s the decision gives %v, want not-allowed", fed, dim, name, err)
				}
			}
		}
	}
	t.Logf("%d of %d generated processes adopted", adopted, iterations)
	if adopted < iterations/4 {
		t.Fatalf("only %d of %d generated processes adopted; the generator is too weak", adopted, iterations)
	}
}

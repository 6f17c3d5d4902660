package gov_test

import (
	"crypto/ed25519"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/protocol/gov"
)

// adoptedSet returns the proposal versions adopted in the issue derived
// from recs.
func adoptedSet(t *testing.T, w *world, recs []*protocol.Record) map[cid.Cid]bool {
	t.Helper()
	is, _, err := gov.Derive(w.genesis, w.slug, recs, w.rosterAt)
	if err != nil {
		t.Fatal(err)
	}
	is.SetMembers(w.roster)
	out := map[cid.Cid]bool{}
	for _, p := range is.Processes() {
		for _, c := range p.Adopted() {
			out[c] = true
		}
	}
	return out
}

// TestRemoveGroupOrRegion checks acceptance 2, first half, on generated
// processes with concurrent branches: removing every record of the
// members of any one group, or of any one region, never leaves a proposal
// adopted that was not adopted with them; under the concurrent-majority
// rule (every group and region with members must endorse) nothing is
// adopted without them at all.
func TestRemoveGroupOrRegion(t *testing.T) {
	worlds := 150
	if testing.Short() {
		worlds = 30
	}
	rng := rand.New(rand.NewPCG(21, 21))
	adoptedWorlds := 0
	for range worlds {
		w := genProcess(t, rng)
		full := adoptedSet(t, w, w.all)
		if len(full) > 0 {
			adoptedWorlds++
		}
		for _, dim := range []string{"group", "region"} {
			names := w.roster.Groups()
			if dim == "region" {
				names = w.roster.Regions()
			}
			for _, name := range names {
				var kept []*protocol.Record
				for _, r := range w.all {
					m, ok := w.roster.Lookup(r.Env.Author)
					if ok && (dim == "group" && m.Group == name || dim == "region" && m.Region == name) {
						continue
					}
					kept = append(kept, r)
				}
				for c := range adoptedSet(t, w, kept) {
					if !full[c] {
						t.Fatalf("without %s %s, %s is adopted; with it, it is not", dim, name, w.rename(c.String()))
					}
					t.Fatalf("without %s %s, %s is still adopted", dim, name, w.rename(c.String()))
				}
			}
		}
	}
	t.Logf("%d of %d generated processes adopt something", adoptedWorlds, worlds)
	if adoptedWorlds < worlds/5 {
		t.Fatalf("only %d of %d generated processes adopt anything; the generator is too weak", adoptedWorlds, worlds)
	}
}

// TestConcurrentBlocker checks acceptance 2, second half: for a decision
// with effect, publishing a valid formal objection to its proposal that is
// concurrent with it (its deps are the decision's own), or the withdrawal
// of an endorsement its tally needs, leaves the proposal not adopted,
// incrementally and when derived from the set.
func TestConcurrentBlocker(t *testing.T) {
	worlds := 150
	if testing.Short() {
		worlds = 30
	}
	rng := rand.New(rand.NewPCG(22, 22))
	tested := map[string]int{}
	for range worlds {
		w := genProcess(t, rng)
		p := w.issue.Processes()[0]
		rep := p.Audit(nil)
		kinds := []string{protocol.KindObjection, protocol.KindWithdraw}
		if rng.IntN(2) == 0 {
			slices.Reverse(kinds)
		}
		for _, kind := range kinds {
			o, by := effectiveOutcome(w, rep, kind)
			if by == "" {
				continue
			}
			d := w.names[w.nameOf[mustCID(t, o.Decision)]]
			var after []string
			for _, l := range d.Links() {
				after = append(after, w.nameOf[l])
			}
			proc := protocol.LinkTo(p.CID())
			prop := protocol.LinkTo(mustCID(t, o.Proposal))
			var body protocol.Body = &protocol.Objection{Process: proc, Proposal: prop, Text: "Concurrent objection."}
			if kind == protocol.KindWithdraw {
				body = &protocol.Withdraw{Process: proc, Proposal: prop}
			}
			if _, err := w.publish(draft{kind: kind, name: "blocker-" + kind, by: by, at: time.UnixMilli(d.Env.Time).UTC(), after: after, body: body}); err != nil {
				t.Fatalf("the blocking %s is not valid: %v", kind, err)
			}
			tested[kind]++
			if slices.ContainsFunc(p.Adopted(), prop.Equals) {
				t.Fatalf("a concurrent %s left %s adopted (incremental)", kind, w.rename(o.Proposal))
			}
			if adoptedSet(t, w, w.all)[prop.Cid] {
				t.Fatalf("a concurrent %s left %s adopted (derived)", kind, w.rename(o.Proposal))
			}
			break
		}
	}
	t.Logf("blocking records tested: %v", tested)
	if tested[protocol.KindObjection] < worlds/10 || tested[protocol.KindWithdraw] < worlds/20 {
		t.Fatalf("too few blocking records tested (%v of %d worlds); the generator is too weak", tested, worlds)
	}
}

func mustCID(t *testing.T, s string) cid.Cid {
	t.Helper()
	c, err := cid.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// effectiveOutcome finds an outcome with effect and a member who can sign
// a blocker of the kind concurrent with its decision: one whose records on
// the topic all lie in the decision's causal past, so that its next record
// can take the decision's deps. For a withdrawal the member must be the
// only counted endorser of some group or region. It returns "" if there is
// none.
func effectiveOutcome(w *world, rep *gov.Report, kind string) (gov.Outcome, string) {
	for _, o := range rep.P4.Outcomes {
		if o.Contested {
			continue
		}
		d := w.names[w.nameOf[mustCIDQuiet(o.Decision)]]
		past := map[cid.Cid]bool{}
		stack := d.Links()
		for len(stack) > 0 {
			c := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if past[c] {
				continue
			}
			past[c] = true
			if r, ok := w.names[w.nameOf[c]]; ok {
				stack = append(stack, r.Links()...)
			}
		}
		free := func(name string) bool {
			key := []byte(w.keys[name].Public().(ed25519.PublicKey))
			for _, r := range w.all {
				if w.issue.Has(r.CID) && slices.Equal(r.Env.Author, key) && !past[r.CID] {
					return false
				}
			}
			return true
		}
		var candidates []string
		if kind == protocol.KindObjection {
			for _, m := range w.members {
				candidates = append(candidates, m.Org)
			}
		} else {
			sole := func(ns []gov.Need, of func(gov.Party) string) {
				for _, n := range ns {
					if n.Endorsements != 1 {
						continue
					}
					for _, e := range o.Endorsers {
						if of(e) == n.Name {
							candidates = append(candidates, e.Org)
						}
					}
				}
			}
			sole(o.Groups, func(p gov.Party) string { return p.Group })
			sole(o.Regions, func(p gov.Party) string { return p.Region })
		}
		for _, name := range candidates {
			if free(name) {
				return o, name
			}
		}
	}
	return gov.Outcome{}, ""
}

func mustCIDQuiet(s string) cid.Cid {
	c, _ := cid.Decode(s)
	return c
}

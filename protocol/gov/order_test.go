package gov_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/protocol/gov"
)

// genProcess publishes a random process with concurrent branches: the
// notices, stage moves and decisions link every topic head, the rest
// (feedback, endorsements, objections, responses, statements, a second
// decision and the conclusions) a random subset of the heads, so many
// records do not see each other. Some records are rejected, which is part
// of what the order-independence test checks. About a fifth of the
// records get a first-seen time later than claimed.
func genProcess(t *testing.T, rng *rand.Rand) *world {
	w := newWorld(t, "gen")
	w.advanceOnReject = true
	fed := randomFederation(rng, 7)
	for _, m := range fed {
		w.member(m.name, m.group, m.region)
	}
	w.found()
	c0, c1 := fed[0].name, fed[1].name
	seq := 0
	randAfter := func() []string {
		heads := w.heads[protocol.IssueTopic(w.slug)]
		if len(heads) == 0 || rng.IntN(4) == 0 {
			return nil
		}
		var out []string
		for _, h := range heads {
			if rng.IntN(2) == 0 {
				out = append(out, w.nameOf[h])
			}
		}
		if len(out) == 0 {
			out = append(out, w.nameOf[heads[rng.IntN(len(heads))]])
		}
		return out
	}
	pub := func(kind, by string, at time.Time, body protocol.Body, concurrent bool) string {
		seq++
		d := draft{kind: kind, name: fmt.Sprintf("r%d", seq), by: by, at: at, body: body}
		if concurrent {
			d.after = randAfter()
		}
		if rng.IntN(5) == 0 {
			d.seen = at.Add(time.Duration(rng.IntN(72)) * time.Hour)
		}
		if _, err := w.publish(d); err != nil && protocol.ReasonOf(err) == "" {
			t.Fatal(err)
		}
		return d.name
	}
	member := func() string { return fed[rng.IntN(len(fed))].name }
	t0 := genesisTime
	ch := pub(protocol.KindCharter, c0, t0, w.defaultCharter(t0, protocol.StageDelegation, c0, c1), false)
	proc := w.link(ch)
	consult := t0.Add(30 * day)
	pub(protocol.KindNotice, c0, t0.Add(time.Hour), &protocol.Notice{Process: proc, Subject: protocol.SubjectConsultation, Date: consult.UnixMilli()}, false)
	pub(protocol.KindStatement, member(), t0.Add(2*time.Hour), &protocol.Statement{Title: "Priorities", Text: "Ours."}, true)
	pub(protocol.KindStage, c0, consult, &protocol.StageChange{Process: proc, To: protocol.StageConsultation}, false)
	pub(protocol.KindStage, c1, consult.Add(time.Hour), &protocol.StageChange{Process: proc, To: protocol.StageConsultation}, false)
	at := consult.Add(2 * time.Hour)
	props := []string{pub(protocol.KindProposal, c0, at, &protocol.Proposal{Process: proc, Version: 1, Title: "P1", Text: "T", Clauses: []protocol.Clause{{ID: "1", Text: "C"}}}, true)}
	if rng.IntN(2) == 0 {
		at = at.Add(time.Hour)
		old := props[0]
		props = append(props, pub(protocol.KindProposal, c1, at, &protocol.Proposal{Process: proc, Version: 2, Replaces: w.linkp(old), Title: "P2", Text: "T2"}, true))
	}
	// The bulk: each member endorses each version with probability 0.85
	// (some withdraw and endorse again), gives feedback with probability
	// 0.5, objects formally with probability 0.08; convenors answer most
	// objections. The actions are shuffled.
	type action struct {
		kind, by string
		prop     int
	}
	var acts []action
	for _, m := range fed {
		for i := range props {
			if rng.Float64() < 0.85 {
				acts = append(acts, action{"toggle", m.name, i})
			}
			if rng.Float64() < 0.15 {
				acts = append(acts, action{"toggle", m.name, i}, action{"toggle", m.name, i})
			}
			if rng.Float64() < 0.5 {
				acts = append(acts, action{"feedback", m.name, i})
			}
			if rng.Float64() < 0.08 {
				acts = append(acts, action{"object", m.name, i})
			}
		}
		if rng.Float64() < 0.3 {
			acts = append(acts, action{"statement", m.name, 0})
		}
	}
	rng.Shuffle(len(acts), func(i, j int) { acts[i], acts[j] = acts[j], acts[i] })
	endorsed := map[action]bool{}
	var objections []string
	dec := t0.Add(60 * day)
	// About a third of the actions come during the decision stage, mixed
	// with decision attempts that see a random part of the topic.
	early := len(acts) * 2 / 3
	for i, a := range acts {
		if i == early {
			pub(protocol.KindNotice, c1, at.Add(time.Hour), &protocol.Notice{Process: proc, Subject: protocol.SubjectDecision, Date: dec.UnixMilli()}, false)
			pub(protocol.KindStage, c0, dec, &protocol.StageChange{Process: proc, To: protocol.StageDecision}, false)
			pub(protocol.KindStage, c1, dec.Add(time.Hour), &protocol.StageChange{Process: proc, To: protocol.StageDecision}, false)
			at = dec.Add(time.Hour)
		}
		if i > early && rng.IntN(4) == 0 {
			at = at.Add(time.Minute)
			pub(protocol.KindDecision, []string{c0, c1}[rng.IntN(2)], at, &protocol.Decision{Process: proc, Proposal: w.link(props[rng.IntN(len(props))])}, true)
		}
		at = at.Add(time.Duration(1+rng.IntN(60)) * time.Minute)
		p := w.link(props[a.prop])
		switch a.kind {
		case "toggle":
			key := action{"", a.by, a.prop}
			var n string
			if endorsed[key] {
				n = pub(protocol.KindWithdraw, a.by, at, &protocol.Withdraw{Process: proc, Proposal: p}, true)
			} else {
				n = pub(protocol.KindEndorse, a.by, at, &protocol.Endorse{Process: proc, Proposal: p}, true)
			}
			if w.issue.Has(w.cid(n)) {
				endorsed[key] = !endorsed[key]
			}
		case "feedback":
			stances := []string{protocol.StanceSupport, protocol.StanceSupport, protocol.StanceNeutral, protocol.StanceConcern, protocol.StanceObjection}
			pub(protocol.KindFeedback, a.by, at, &protocol.Feedback{Process: proc, Proposal: p, Stance: stances[rng.IntN(len(stances))]}, true)
		case "object":
			o := pub(protocol.KindObjection, a.by, at, &protocol.Objection{Process: proc, Proposal: p, Text: "No."}, true)
			if w.issue.Has(w.cid(o)) {
				objections = append(objections, o)
			}
		case "statement":
			pub(protocol.KindStatement, a.by, at, &protocol.Statement{Title: "Note", Text: "Text."}, true)
		}
		if len(objections) > 0 && rng.IntN(6) == 0 {
			o := objections[0]
			objections = objections[1:]
			at = at.Add(time.Minute)
			pub(protocol.KindResponse, []string{c0, c1}[rng.IntN(2)], at, &protocol.Response{Process: proc, Objection: w.link(o), Text: "Answer."}, true)
		}
	}
	if at.Before(dec) {
		at = dec.Add(time.Hour)
	}
	for _, o := range objections {
		if rng.IntN(3) > 0 {
			at = at.Add(time.Minute)
			pub(protocol.KindResponse, c0, at, &protocol.Response{Process: proc, Objection: w.link(o), Text: "Late answer."}, true)
		}
	}
	for _, p := range props {
		at = at.Add(time.Minute)
		pub(protocol.KindDecision, c0, at, &protocol.Decision{Process: proc, Proposal: w.link(p)}, false)
	}
	fin := t0.Add(90 * day)
	pub(protocol.KindStage, c0, fin, &protocol.StageChange{Process: proc, To: protocol.StageDelegation}, false)
	pub(protocol.KindStage, c1, fin.Add(time.Hour), &protocol.StageChange{Process: proc, To: protocol.StageDelegation}, true)
	g := pub(protocol.KindDelegation, c0, fin.Add(2*time.Hour), &protocol.Delegation{Process: proc, Body: "B", Scope: "S", Reporting: "R"}, false)
	if w.issue.Has(w.cid(g)) {
		pub(protocol.KindReport, member(), fin.Add(3*time.Hour), &protocol.Report{Process: proc, Delegation: w.link(g), Text: "Done."}, true)
	}
	pub(protocol.KindConclusion, c0, fin.Add(4*time.Hour), &protocol.Conclusion{Process: proc, Summary: "End."}, true)
	pub(protocol.KindConclusion, c1, fin.Add(5*time.Hour), &protocol.Conclusion{Process: proc, Summary: "End."}, true)
	return w
}

// digest is everything derived from an issue that must not depend on the
// order records were applied in: which records were applied and each
// process's audit JSON.
func digest(t *testing.T, w *world, is *gov.Issue) []byte {
	var b bytes.Buffer
	for _, r := range w.all {
		fmt.Fprintf(&b, "%s %v\n", r.CID, is.Has(r.CID))
	}
	for _, p := range is.Processes() {
		js, err := p.Audit(w.firstSeen).JSON()
		if err != nil {
			t.Fatal(err)
		}
		b.Write(js)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// deliver applies the records to a new issue in a random causal order, as
// a node receiving them from gossip and sync would: a record is applied
// once every record of the set it links to has been applied (or
// rejected), and some records arrive again after they were applied.
func deliver(t *testing.T, w *world, rng *rand.Rand) *gov.Issue {
	is, err := gov.NewIssue(w.genesis, w.slug)
	if err != nil {
		t.Fatal(err)
	}
	in := map[cid.Cid]bool{}
	for _, r := range w.all {
		in[r.CID] = true
	}
	done := map[cid.Cid]bool{}
	var delivered []*protocol.Record
	ready := func(r *protocol.Record) bool {
		for _, l := range r.Links() {
			if in[l] && !done[l] {
				return false
			}
		}
		return true
	}
	waiting := slices.Clone(w.all)
	for len(waiting) > 0 {
		var r *protocol.Record
		if len(delivered) > 0 && rng.IntN(8) == 0 {
			r = delivered[rng.IntN(len(delivered))] // a duplicate
		} else {
			var cands []int
			for i, c := range waiting {
				if ready(c) {
					cands = append(cands, i)
				}
			}
			i := cands[rng.IntN(len(cands))]
			r = waiting[i]
			waiting = slices.Delete(waiting, i, i+1)
		}
		err := is.Apply(r, w.roster)
		if done[r.CID] && protocol.ReasonOf(err) != protocol.ReasonDuplicate && is.Has(r.CID) {
			t.Fatalf("a duplicate gave %v", err)
		}
		done[r.CID] = true
		delivered = append(delivered, r)
	}
	return is
}

// TestOrderIndependence checks that the derived state and the audit JSON
// are byte-identical over 10,000 random delivery orders (with duplicates)
// of generated processes, applied incrementally and through Derive.
func TestOrderIndependence(t *testing.T) {
	processes, orders := 40, 250
	if testing.Short() {
		processes, orders = 10, 100
	}
	rng := rand.New(rand.NewPCG(10, 10))
	rejected, total := 0, 0
	for range processes {
		w := genProcess(t, rng)
		ref, _, err := gov.Derive(w.genesis, w.slug, w.all, w.rosterAt)
		if err != nil {
			t.Fatal(err)
		}
		want := digest(t, w, ref)
		if got := digest(t, w, w.issue); !bytes.Equal(got, want) {
			t.Fatalf("publication order and Derive differ:\n%s\n%s", w.rename(string(got)), w.rename(string(want)))
		}
		for _, r := range w.all {
			total++
			if !ref.Has(r.CID) {
				rejected++
			}
		}
		for range orders {
			if got := digest(t, w, deliver(t, w, rng)); !bytes.Equal(got, want) {
				t.Fatalf("delivery order changed the state:\n%s\nwant:\n%s", w.rename(string(got)), w.rename(string(want)))
			}
			shuffled := slices.Clone(w.all)
			shuffled = append(shuffled, shuffled[:len(shuffled)/4]...)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			is, _, err := gov.Derive(w.genesis, w.slug, shuffled, w.rosterAt)
			if err != nil {
				t.Fatal(err)
			}
			if got := digest(t, w, is); !bytes.Equal(got, want) {
				t.Fatalf("Derive depends on input order:\n%s\nwant:\n%s", w.rename(string(got)), w.rename(string(want)))
			}
		}
	}
	t.Logf("%d processes x %d orders; %d of %d records rejected", processes, orders, rejected, total)
}

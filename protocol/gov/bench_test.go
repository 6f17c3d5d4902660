package gov_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/protocol/gov"
)

var benchWorlds = map[int]*world{}

// benchProcess returns a world holding one process of about n records: 100
// members (4 in each group and region pair), a charter, then proposal
// versions each endorsed by every member, with feedback from every member
// and a few answered formal objections, then a decision. Every record
// links the topic heads, so the causal past of the decision is the whole
// process.
func benchProcess(b *testing.B, n int) *world {
	if w, ok := benchWorlds[n]; ok {
		return w
	}
	w := newWorld(b, "bench")
	// Two witnesses checkpoint the topic every 200 records or so, as
	// member nodes publishing every few minutes would.
	w.witnessNames = []string{"m02", "m03"}
	for i := range 100 {
		w.member(fmt.Sprintf("m%02d", i), protocol.DefaultGroups[i%5], protocol.DefaultRegions[(i/5)%5])
	}
	t0 := genesisTime
	c0, c1 := "m00", "m01"
	at := w.startProcess("c", t0, c0, c1) // witnessed record by record
	w.manualWitness = true
	proc := w.link("c")
	var last, complete string
	for v := 1; len(w.all) < n-8; v++ {
		name := fmt.Sprintf("p%d", v)
		body := &protocol.Proposal{Process: proc, Version: v, Title: "P", Text: "T"}
		if last != "" {
			body.Replaces = w.linkp(last)
		}
		at = at.Add(time.Minute)
		w.must(draft{kind: protocol.KindProposal, name: name, by: c0, at: at, body: body})
		last = name
		p := w.link(name)
		for i := 0; i < 100 && len(w.all) < n-8; i++ {
			if len(w.all)%200 == 0 {
				at = at.Add(time.Minute)
				w.witness(at)
			}
			m := fmt.Sprintf("m%02d", i)
			at = at.Add(time.Second)
			w.must(draft{kind: protocol.KindEndorse, by: m, at: at, body: &protocol.Endorse{Process: proc, Proposal: p}})
			at = at.Add(time.Second)
			w.must(draft{kind: protocol.KindFeedback, by: m, at: at, body: &protocol.Feedback{Process: proc, Proposal: p, Stance: protocol.StanceSupport}})
			if i%40 == 7 {
				o := fmt.Sprintf("o%d-%d", v, i)
				at = at.Add(time.Second)
				w.must(draft{kind: protocol.KindObjection, name: o, by: m, at: at, body: &protocol.Objection{Process: proc, Proposal: p, Text: "No."}})
				at = at.Add(time.Second)
				w.must(draft{kind: protocol.KindResponse, by: c1, at: at, body: &protocol.Response{Process: proc, Objection: w.link(o), Text: "Yes."}})
			}
			if i == 99 {
				complete = name
			}
		}
	}
	if at.After(t0.Add(59 * day)) {
		b.Fatalf("%d records do not fit the consultation phase", n)
	}
	w.witness(at.Add(time.Minute))
	w.manualWitness = false
	dec := w.toDecision("c", t0, at.Add(2*time.Minute), c0, c1)
	w.must(draft{kind: protocol.KindDecision, by: c0, at: dec.Add(time.Hour), body: &protocol.Decision{Process: proc, Proposal: w.link(complete)}})
	benchWorlds[n] = w
	return w
}

var benchSizes = []int{1000, 5000, 10000}

// BenchmarkAudit measures the audit (report and its canonical JSON) of a
// process of 1k, 5k and 10k records.
func BenchmarkAudit(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			w := benchProcess(b, n)
			p, ok := w.issue.Process(w.cid("c"))
			if !ok || p.Len() < n*9/10 || len(p.Adopted()) != 1 {
				b.Fatalf("bench process has %d records, %d adopted", p.Len(), len(p.Adopted()))
			}
			for b.Loop() {
				if _, err := p.Audit(w.firstSeen).JSON(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDerive measures deriving the state of a process of 1k, 5k and
// 10k records from scratch: ordering, then applying every record.
func BenchmarkDerive(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			w := benchProcess(b, n)
			for b.Loop() {
				is, rej, err := gov.Derive(w.genesis, w.slug, w.all, w.rosterAt)
				if err != nil || len(rej) > 0 || is.Len() != len(w.all) {
					b.Fatalf("derive: %v, %d rejected", err, len(rej))
				}
			}
		})
	}
}

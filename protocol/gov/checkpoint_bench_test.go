package gov_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// checkpointDay simulates one day of a federation of 100 members (20 in
// each of the five groups) that all follow the active issues, each issue
// getting perDay records at random times from random members. Every member
// node wakes every interval (plus up to a tenth of jitter) and, on each
// issue, publishes a checkpoint when its policy says so: with grouped, only
// when a record no checkpoint of its own group covers exists and no member
// of its group checkpointed within the interval (gov.Issue.Due, what
// node.Node.Checkpoint does); without, whenever
// the protocol allows one (something new since its own last checkpoint). It
// returns the checkpoints and the other records published in the day.
func checkpointDay(tb testing.TB, issues, perDay int, interval time.Duration, grouped bool, seed uint64) (cps, recs int) {
	rng := rand.New(rand.NewPCG(seed, 1))
	type event struct {
		at     time.Time
		issue  int
		member int // -1: a wake-up of member `who`
		who    int
	}
	var evs []event
	start := genesisTime.Add(time.Hour)
	for i := range issues {
		for range perDay {
			evs = append(evs, event{at: start.Add(time.Duration(rng.Int64N(int64(24 * time.Hour)))), issue: i, member: rng.IntN(100)})
		}
	}
	for m := range 100 {
		t := start.Add(time.Duration(rng.Int64N(int64(interval))))
		for t.Before(start.Add(24 * time.Hour)) {
			evs = append(evs, event{at: t, member: -1, who: m})
			t = t.Add(interval + time.Duration(rng.Int64N(int64(interval/10)+1)))
		}
	}
	slices.SortFunc(evs, func(a, b event) int { return a.at.Compare(b.at) })
	worlds := make([]*world, issues)
	for i := range worlds {
		w := newWorld(tb, fmt.Sprintf("issue-%d", i))
		w.manualWitness = true
		for m := range 100 {
			w.member(fmt.Sprintf("m%02d", m), protocol.DefaultGroups[m%5], protocol.DefaultRegions[(m/5)%5])
		}
		w.found()
		worlds[i] = w
	}
	last := make([]time.Time, len(worlds))
	for _, e := range evs {
		if e.member >= 0 {
			w := worlds[e.issue]
			at := e.at
			if at.Before(last[e.issue]) {
				at = last[e.issue]
			}
			last[e.issue] = at
			w.must(draft{kind: protocol.KindStatement, by: fmt.Sprintf("m%02d", e.member), at: at, body: &protocol.Statement{Title: "T", Text: "Text."}})
			recs++
			continue
		}
		name := fmt.Sprintf("m%02d", e.who)
		group := protocol.DefaultGroups[e.who%5]
		for i, w := range worlds {
			if grouped && !w.issue.Due(group, e.at.UnixMilli(), interval.Milliseconds()) {
				continue
			}
			at := e.at
			if at.Before(last[i]) {
				at = last[i]
			}
			_, err := w.publish(draft{kind: protocol.KindCheckpoint, by: name, at: at, body: &protocol.Checkpoint{}})
			switch {
			case err == nil:
				last[i] = at
				cps++
			case protocol.ReasonOf(err) != protocol.ReasonNotAllowed:
				tb.Fatal(err)
			}
		}
	}
	return cps, recs
}

// BenchmarkCheckpointOverhead reports the checkpoints a day costs 100
// members following 10 active issues (200 records a day each), with the
// node's policy (one checkpoint per group, interval and changed topic) and,
// for comparison, with every member checkpointing whenever the protocol
// allows. The metrics are per simulated day; ns/op is the time to simulate
// it.
func BenchmarkCheckpointOverhead(b *testing.B) {
	for _, c := range []struct {
		name    string
		grouped bool
	}{{"grouped", true}, {"every-member", false}} {
		b.Run(c.name, func(b *testing.B) {
			// Issues are independent: every-member simulates one and
			// scales by 10 (it publishes 100 times as many checkpoints).
			issues, scale := 10, 1
			if !c.grouped {
				issues, scale = 1, 10
			}
			var cps, recs int
			for i := 0; b.Loop(); i++ {
				cps, recs = checkpointDay(b, issues, 200, 10*time.Minute, c.grouped, uint64(i))
				cps, recs = cps*scale, recs*scale
			}
			b.ReportMetric(float64(cps), "checkpoints/day")
			b.ReportMetric(float64(recs), "records/day")
			b.ReportMetric(float64(cps)/float64(recs), "checkpoints/record")
		})
	}
}

// TestCheckpointOverheadBound checks the bound docs/protocol.md states, on
// one issue: with the node's policy, a day costs at most one checkpoint
// per group and interval (5 x 144 a day per issue).
func TestCheckpointOverheadBound(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates a federation day")
	}
	cps, recs := checkpointDay(t, 1, 200, 10*time.Minute, true, 1)
	bound := 5 * int(24*time.Hour/(10*time.Minute))
	t.Logf("1 issue: %d records, %d checkpoints (bound %d)", recs, cps, bound)
	if cps == 0 || cps > bound {
		t.Fatalf("%d checkpoints, bound %d", cps, bound)
	}
}

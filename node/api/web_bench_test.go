package api_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/node/api"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// benchProcess builds a process of about n records on a network of two
// members (of two groups, so the process reaches consultation): a charter,
// two stage moves, proposals of 20 clauses in versions, and, for the rest,
// feedback with reasons on clauses, endorsements, withdrawals and formal
// objections with responses.
func benchProcess(b *testing.B, n int) (*testnet.Network, cid.Cid, *testnet.Clock) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	b.Cleanup(cancel)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock := testnet.NewClock(t0)
	net := testnet.New(b, 2, testnet.WithFollow("privacy"),
		testnet.WithNodeOptions(func(int) []node.Option { return []node.Option{node.WithClock(clock.Now)} }))
	topic := protocol.IssueTopic("privacy")
	for _, tp := range []string{protocol.TopicIndex, topic} {
		if err := net.WaitTopicMesh(ctx, tp); err != nil {
			b.Fatal(err)
		}
	}
	at := t0
	pub := func(i int, kind, tp string, body protocol.Body, deps ...cid.Cid) cid.Cid {
		at = at.Add(time.Second)
		clock.Set(at)
		r, err := net.Nodes[i].Publish(ctx, kind, tp, body, deps...)
		if err != nil {
			b.Fatal(err)
		}
		return r.CID
	}
	sync := func(cs ...cid.Cid) {
		if err := net.Nodes[1].WaitRecords(ctx, cs...); err != nil {
			b.Fatal(err)
		}
		if err := net.Nodes[0].WaitRecords(ctx, cs...); err != nil {
			b.Fatal(err)
		}
	}
	day := int64(24 * 3600 * 1000)
	ms := t0.UnixMilli()
	sync(pub(0, protocol.KindIssueOpen, protocol.TopicIndex, &protocol.IssueOpen{Slug: "privacy", Title: "Privacy"}))
	ch := pub(0, protocol.KindCharter, topic, &protocol.Charter{Title: "Ten thousand records", Aim: "a", Purpose: "p",
		Scope: []string{"s"}, Modalities: "m", Significance: "s", Convenors: [][]byte{net.PublicKey(0), net.PublicKey(1)},
		Phases: []protocol.Phase{{Stage: protocol.StageScoping, Start: ms, End: ms + 15*day}, {Stage: protocol.StageConsultation, Start: ms + 15*day, End: ms + 300*day},
			{Stage: protocol.StageDecision, Start: ms + 300*day, End: ms + 330*day}, {Stage: protocol.StageImplementation, Start: ms + 330*day, End: ms + 400*day}},
		MinNoticeSeconds: 14 * 24 * 3600, WindowSeconds: 200 * 24 * 3600, Rule: protocol.DecisionRule{Name: protocol.RuleConcurrentMajority, Threshold: 1}})
	sync(ch)
	proc := protocol.LinkTo(ch)
	sync(pub(0, protocol.KindNotice, topic, &protocol.Notice{Process: proc, Subject: protocol.SubjectConsultation, Date: ms + 15*day}, ch))
	at = t0.Add(15 * 24 * time.Hour)
	sync(pub(0, protocol.KindStage, topic, &protocol.StageChange{Process: proc, To: protocol.StageConsultation}, ch))
	sync(pub(1, protocol.KindStage, topic, &protocol.StageChange{Process: proc, To: protocol.StageConsultation}, ch))
	var clauses []protocol.Clause
	for c := range 20 {
		clauses = append(clauses, protocol.Clause{ID: fmt.Sprint(c + 1), Text: fmt.Sprintf("Clause %d says what members of every group and region agree on, in about twenty words of text.", c+1)})
	}
	var props []cid.Cid
	var last cid.Cid
	for v := 1; v <= 5; v++ {
		body := &protocol.Proposal{Process: proc, Version: v, Title: "Principles", Text: "The text.", Clauses: clauses}
		deps := []cid.Cid{ch}
		if v > 1 {
			l := protocol.LinkTo(last)
			body.Replaces, deps = &l, append(deps, last)
			clauses[v].Text += " Amended."
		}
		last = pub(v%2, protocol.KindProposal, topic, body, deps...)
		sync(last)
		props = append(props, last)
	}
	var objs []cid.Cid
	for i := 0; len(props)+5+i < n; i++ {
		nd := i % 2
		prop := props[i%len(props)]
		pl := protocol.LinkTo(prop)
		switch {
		case i%50 == 7:
			objs = append(objs, pub(nd, protocol.KindObjection, topic, &protocol.Objection{Process: proc, Proposal: pl, Text: "A formal objection."}, ch, prop))
		case i%50 == 8 && len(objs) > 0:
			o := objs[len(objs)-1]
			if err := net.Nodes[1-nd].WaitRecords(ctx, o); err != nil {
				b.Fatal(err)
			}
			objs = append(objs, pub(1-nd, protocol.KindResponse, topic, &protocol.Response{Process: proc, Objection: protocol.LinkTo(o), Text: "A response."}, ch, o))
		case i%10 == 3:
			pub(nd, protocol.KindEndorse, topic, &protocol.Endorse{Process: proc, Proposal: pl}, ch, prop)
		case i%10 == 4: // the endorsement of the record before
			prev := props[(i-1)%len(props)]
			pub((i-1)%2, protocol.KindWithdraw, topic, &protocol.Withdraw{Process: proc, Proposal: protocol.LinkTo(prev)}, ch, prev)
		default:
			pub(nd, protocol.KindFeedback, topic, &protocol.Feedback{Process: proc, Proposal: pl,
				Stance: []string{protocol.StanceSupport, protocol.StanceNeutral, protocol.StanceConcern, protocol.StanceObjection}[i%4],
				Reason: fmt.Sprintf("Reason number %d, a sentence of feedback on the clause.", i), Clause: fmt.Sprint(i%20 + 1)}, ch, prop)
		}
	}
	p, err := net.Nodes[0].Process(ch)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("process of %d records on node 0", p.Len())
	return net, ch, clock
}

// BenchmarkProcessPage measures the server time of the process page of a
// process of 10,000 records: warm (decoded records cached, as after the
// first view) and cold (a new server per view: every record read from the
// store and decoded); then, as baselines of the cold view, the reads of
// its records alone (read-strict, read-trusted, read-batch).
func BenchmarkProcessPage(b *testing.B) {
	net, ch, clock := benchProcess(b, 10_000)
	path := "/processes/" + ch.String()
	view := func(b *testing.B, srv *api.Server) {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 {
			b.Fatalf("%d: %s", rec.Code, rec.Body.String())
		}
		b.SetBytes(int64(rec.Body.Len()))
	}
	newServer := func(b *testing.B) *api.Server {
		srv, err := api.New(net.Nodes[0], api.WithToken(token), api.WithWebClock(clock.Now))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = srv.Close() })
		return srv
	}
	// On a shared machine wall time counts the waits for a core; the
	// process's CPU time per view (cpu-ms/op, which also counts the idle
	// nodes' background work) is the server time the page costs.
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.Run("warm", func(b *testing.B) {
		srv := newServer(b)
		view(b, srv)
		start := cpu()
		for b.Loop() {
			view(b, srv)
		}
		b.ReportMetric(float64((cpu()-start).Milliseconds())/float64(b.N), "cpu-ms/op")
	})
	b.Run("cold", func(b *testing.B) {
		start := cpu()
		for b.Loop() {
			// Each server closed after its one view, so that the heap
			// does not hold the caches of the views before it.
			srv, err := api.New(net.Nodes[0], api.WithToken(token), api.WithWebClock(clock.Now))
			if err != nil {
				b.Fatal(err)
			}
			view(b, srv)
			if err := srv.Close(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64((cpu()-start).Milliseconds())/float64(b.N), "cpu-ms/op")
	})
	// What a cold view reads, on one core, three ways: each record by
	// itself with the strict decode (how the first view read them before
	// the trusted decode), by itself with the node's trusted decode
	// (Node.Record), and in one batch (Node.Records, as the page does).
	p, err := net.Nodes[0].Process(ch)
	if err != nil {
		b.Fatal(err)
	}
	cids := p.Records()
	nd := net.Nodes[0]
	read := func(name string, f func(b *testing.B)) {
		b.Run(name, func(b *testing.B) {
			start := cpu()
			for b.Loop() {
				f(b)
			}
			b.ReportMetric(float64((cpu()-start).Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
	read("read-strict", func(b *testing.B) {
		for _, c := range cids {
			raw, err := nd.Store().Get(c)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := protocol.Decode(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	read("read-trusted", func(b *testing.B) {
		for _, c := range cids {
			if _, err := nd.Record(c); err != nil {
				b.Fatal(err)
			}
		}
	})
	read("read-batch", func(b *testing.B) {
		n := 0
		if err := nd.Records(cids, func(_ cid.Cid, _ *protocol.Record, err error) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}); err != nil || n != len(cids) {
			b.Fatalf("%d of %d records: %v", n, len(cids), err)
		}
	})
}

package node_test

import (
	"bytes"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// TestGovernanceEndToEnd: six nodes covering three stakeholder groups and
// three regions run a whole process through the node's Go API, from
// opening the issue to conclusion; every node derives the same state and
// byte-identical audit JSON, and the proposal is adopted.
func TestGovernanceEndToEnd(t *testing.T) {
	ctx := testContext(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock := testnet.NewClock(t0)
	groups := []string{"government", "civil-society", "private-sector"}
	regions := []string{"africa", "asia-pacific", "western-europe-others"}
	net := testnet.New(t, 6,
		testnet.WithFollow(slug),
		testnet.WithAffiliation(func(i int) (string, string) { return groups[i%3], regions[i/2] }),
		testnet.WithNodeOptions(func(int) []node.Option { return []node.Option{node.WithClock(clock.Now)} }))
	for _, tp := range []string{protocol.TopicIndex, topic} {
		if err := net.WaitTopicMesh(ctx, tp); err != nil {
			t.Fatal(err)
		}
	}
	day := 24 * time.Hour
	// publish publishes on node i at t0+at and waits until every node has it.
	publish := func(i int, at time.Duration, kind, tp string, body protocol.Body, deps ...cid.Cid) *protocol.Record {
		t.Helper()
		clock.Set(t0.Add(at))
		r, err := net.PublishAll(ctx, i, kind, tp, body, deps...)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	pub := func(i int) []byte { return net.SigningKey(i).Public().(ed25519.PublicKey) }
	ms := func(d time.Duration) int64 { return t0.Add(d).UnixMilli() }
	link := protocol.LinkTo

	publish(0, 0, protocol.KindIssueOpen, protocol.TopicIndex, &protocol.IssueOpen{
		Slug: slug, Title: "Privacy across borders", Summary: "Protection of personal data that crosses borders."})
	charter := publish(0, day, protocol.KindCharter, topic, &protocol.Charter{
		Title: "Cross-border data principles", Aim: "Agree principles.", Purpose: "Interoperable protection.",
		Scope: []string{"transfers"}, Modalities: "Open consultation.", Significance: "Global.",
		Convenors: [][]byte{pub(0), pub(1)},
		Phases: []protocol.Phase{
			{Stage: protocol.StageScoping, Start: ms(day), End: ms(27 * day)},
			{Stage: protocol.StageConsultation, Start: ms(27 * day), End: ms(69 * day)},
			{Stage: protocol.StageDecision, Start: ms(69 * day), End: ms(100 * day)},
			{Stage: protocol.StageImplementation, Start: ms(100 * day), End: ms(360 * day)},
		},
		MinNoticeSeconds: 14 * 24 * 3600, WindowSeconds: 14 * 24 * 3600,
		Rule: protocol.DecisionRule{Name: protocol.RuleConcurrentMajority, Threshold: 1},
	})
	proc := link(charter.CID)
	publish(1, 5*day, protocol.KindNotice, topic, &protocol.Notice{Process: proc, Subject: protocol.SubjectConsultation,
		Date: ms(27 * day), Text: "Consultation opens."}, charter.CID)
	publish(0, 27*day, protocol.KindStage, topic, &protocol.StageChange{Process: proc, To: protocol.StageConsultation}, charter.CID)
	publish(1, 27*day+time.Hour, protocol.KindStage, topic, &protocol.StageChange{Process: proc, To: protocol.StageConsultation}, charter.CID)
	prop := publish(1, 28*day, protocol.KindProposal, topic, &protocol.Proposal{Process: proc, Version: 1,
		Title: "Principles", Text: "The principles.", Clauses: []protocol.Clause{{ID: "1", Text: "Data stays protected."}}}, charter.CID)
	for i := range net.Nodes {
		publish(i, 29*day+time.Duration(i)*time.Hour, protocol.KindEndorse, topic,
			&protocol.Endorse{Process: proc, Proposal: link(prop.CID)}, charter.CID, prop.CID)
	}
	publish(0, 30*day, protocol.KindNotice, topic, &protocol.Notice{Process: proc, Subject: protocol.SubjectDecision,
		Date: ms(69 * day), Text: "Decision on the principles."}, charter.CID)
	publish(0, 69*day, protocol.KindStage, topic, &protocol.StageChange{Process: proc, To: protocol.StageDecision}, charter.CID)
	publish(1, 69*day+time.Hour, protocol.KindStage, topic, &protocol.StageChange{Process: proc, To: protocol.StageDecision}, charter.CID)
	publish(0, 70*day, protocol.KindDecision, topic, &protocol.Decision{Process: proc, Proposal: link(prop.CID),
		Summary: "Adopted."}, charter.CID, prop.CID)
	publish(0, 100*day, protocol.KindStage, topic, &protocol.StageChange{Process: proc, To: protocol.StageImplementation}, charter.CID)
	publish(1, 100*day+time.Hour, protocol.KindStage, topic, &protocol.StageChange{Process: proc, To: protocol.StageImplementation}, charter.CID)
	publish(0, 101*day, protocol.KindConclusion, topic, &protocol.Conclusion{Process: proc, Summary: "Principles adopted."}, charter.CID)
	publish(1, 101*day+time.Hour, protocol.KindConclusion, topic, &protocol.Conclusion{Process: proc, Summary: "Principles adopted."}, charter.CID)

	var want []byte
	for i, nd := range net.Nodes {
		p, err := nd.Process(charter.CID)
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		if p.Stage() != protocol.StageConcluded {
			t.Fatalf("node %d: stage %q, want concluded", i, p.Stage())
		}
		if ad := p.Adopted(); len(ad) != 1 || !ad[0].Equals(prop.CID) {
			t.Fatalf("node %d: adopted %v, want [%s]", i, ad, prop.CID)
		}
		rep, err := nd.Audit(charter.CID)
		if err != nil {
			t.Fatal(err)
		}
		js, err := rep.JSON()
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			want = js
			continue
		}
		// First-seen times differ between nodes only if the clock moved
		// between deliveries; it did not, so the audits must be identical.
		if !bytes.Equal(js, want) {
			t.Fatalf("node %d's audit differs from node 0's:\n%s\n---\n%s", i, js, want)
		}
	}
	if issues := net.Nodes[5].Issues(); len(issues) != 1 || issues[0].Slug != slug {
		t.Fatalf("index lists %+v", issues)
	}
}

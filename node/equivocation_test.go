package node_test

import (
	"bytes"
	"crypto/ed25519"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// TestEquivocationConverges: on ten nodes, a member signs two records at
// one position of its chain (an endorsement and an objecting feedback on
// the proposal), and each is handed to a different half of the nodes.
// Sync then brings both records to every node: every node ends with the
// same record set, the same outcome (adopted: the equivocator's records
// count for nothing, neither its endorsement nor its objection) and a
// byte-identical audit that lists the equivocator's records apart; the
// evidence the members publish suspends the equivocator on every node.
func TestEquivocationConverges(t *testing.T) {
	ctx := testContext(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock := testnet.NewClock(t0)
	groups := []string{"government", "civil-society", "private-sector"}
	regions := []string{"africa", "asia-pacific", "western-europe-others"}
	const n, cheat = 10, 9
	net := testnet.New(t, n,
		testnet.WithFollow(slug), testnet.WithDataDir(t.TempDir()),
		testnet.WithAffiliation(func(i int) (string, string) { return groups[i%3], regions[i%3] }),
		// No periodic sync: the test runs the sync round that heals the
		// split itself, after checking that each half holds one side.
		testnet.WithNodeOptions(func(int) []node.Option {
			return []node.Option{node.WithClock(clock.Now), node.WithSyncInterval(time.Hour)}
		}))
	for _, tp := range []string{protocol.TopicIndex, topic} {
		if err := net.WaitTopicMesh(ctx, tp); err != nil {
			t.Fatal(err)
		}
	}
	day := 24 * time.Hour
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
	for i := range cheat {
		publish(i, 29*day+time.Duration(i)*time.Hour, protocol.KindEndorse, topic,
			&protocol.Endorse{Process: proc, Proposal: link(prop.CID)}, charter.CID, prop.CID)
	}

	// The equivocation: two records at seq 1 of the cheat's chain.
	clock.Set(t0.Add(29*day + 12*time.Hour))
	mk := func(kind string, body protocol.Body) *protocol.Record {
		r, err := protocol.Build(net.SigningKey(cheat), protocol.Draft{
			Network: net.Nodes[0].NetworkID(), Kind: kind, Topic: topic, Seq: 1,
			Deps: []cid.Cid{charter.CID, prop.CID}, Time: clock.Now(), Body: body,
		})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Evidence, published by the members that see both sides, suspends
	// the cheat everywhere (subscribed before the records go out).
	evidence := make([]*node.Subscription, n)
	for i, nd := range net.Nodes {
		evidence[i] = nd.Subscribe(func(e node.Event) bool { return e.Record.Env.Kind == protocol.KindMemberEquivocation })
		t.Cleanup(evidence[i].Close)
	}
	a := mk(protocol.KindEndorse, &protocol.Endorse{Process: proc, Proposal: link(prop.CID)})
	b := mk(protocol.KindFeedback, &protocol.Feedback{Process: proc, Proposal: link(prop.CID), Stance: protocol.StanceObjection,
		Reason: "Against it after all."})
	for i, nd := range net.Nodes {
		r := a
		if i >= n/2 {
			r = b
		}
		if _, err := nd.Ingest(ctx, r.Raw, "", node.SourceSync); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	for i, nd := range net.Nodes {
		other := b
		if i >= n/2 {
			other = a
		}
		if ok, err := nd.Store().Has(other.CID); err != nil || ok {
			t.Fatalf("node %d holds the other side before sync (%v)", i, err)
		}
	}
	// Sync brings the other side to every node: both are kept.
	for i, nd := range net.Nodes {
		if _, err := nd.Sync(ctx); err != nil {
			t.Fatalf("node %d: sync: %v", i, err)
		}
	}
	for i, nd := range net.Nodes {
		if err := nd.WaitRecords(ctx, a.CID, b.CID); err != nil {
			t.Fatalf("node %d never held both sides of the equivocation: %v", i, err)
		}
	}

	for i, nd := range net.Nodes {
		for nd.MemberSet().IsMember(pub(cheat)) {
			select {
			case <-evidence[i].C:
			case <-ctx.Done():
				t.Fatalf("node %d: the cheat is still a member: no equivocation evidence arrived", i)
			}
		}
	}

	publish(0, 30*day, protocol.KindNotice, topic, &protocol.Notice{Process: proc, Subject: protocol.SubjectDecision,
		Date: ms(69 * day), Text: "Decision on the principles."}, charter.CID)
	publish(0, 69*day, protocol.KindStage, topic, &protocol.StageChange{Process: proc, To: protocol.StageDecision}, charter.CID)
	publish(1, 69*day+time.Hour, protocol.KindStage, topic, &protocol.StageChange{Process: proc, To: protocol.StageDecision}, charter.CID)
	publish(0, 70*day, protocol.KindDecision, topic, &protocol.Decision{Process: proc, Proposal: link(prop.CID),
		Summary: "Adopted."}, charter.CID, prop.CID)
	last := publish(1, 70*day+time.Hour, protocol.KindStatement, topic, statement(1))

	var wantSet []cid.Cid
	var wantAudit []byte
	for i, nd := range net.Nodes {
		if err := nd.WaitRecords(ctx, last.CID); err != nil {
			t.Fatal(err)
		}
		ms, err := nd.Store().TopicRecords(topic, 0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		set := make([]cid.Cid, len(ms))
		for j, m := range ms {
			set[j] = m.CID
		}
		slices.SortFunc(set, func(x, y cid.Cid) int { return bytes.Compare(x.Bytes(), y.Bytes()) })
		p, err := nd.Process(charter.CID)
		if err != nil {
			t.Fatal(err)
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
			wantSet, wantAudit = set, js
			// The audit lists the equivocator apart, and counts none of
			// its records.
			if len(rep.Removed) != 1 || len(rep.Removed[0].Records) != 2 {
				t.Fatalf("audit's removed authors: %+v, want the equivocator with its two records", rep.Removed)
			}
			for _, pt := range rep.Participants {
				if pt.Key == rep.Removed[0].Key {
					t.Fatal("the equivocator is counted as a participant")
				}
			}
			continue
		}
		if !slices.EqualFunc(set, wantSet, func(x, y cid.Cid) bool { return x.Equals(y) }) {
			t.Fatalf("node %d holds %d records on %s, node 0 %d, or other ones", i, len(set), topic, len(wantSet))
		}
		if !bytes.Equal(js, wantAudit) {
			t.Fatalf("node %d's audit differs from node 0's:\n%s\n---\n%s", i, js, wantAudit)
		}
	}
	// A restart loads the state from the store (the fork index included)
	// and gives the same audit.
	if err := net.Restart(ctx, 5); err != nil {
		t.Fatal(err)
	}
	rep, err := net.Nodes[5].Audit(charter.CID)
	if err != nil {
		t.Fatal(err)
	}
	if js, err := rep.JSON(); err != nil || !bytes.Equal(js, wantAudit) {
		t.Fatalf("after a restart node 5's audit differs (%v):\n%s\n---\n%s", err, js, wantAudit)
	}
}

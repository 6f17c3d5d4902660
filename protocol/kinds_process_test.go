package protocol_test

import (
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// TestProcessBodies builds a record of every issue and process kind, checks
// that it decodes back to the same bytes, and that malformed bodies are
// rejected as bad-body.
func TestProcessBodies(t *testing.T) {
	key := fixedKey(1)
	net := devNetwork(t, key)
	prev := statement(t, key, net, 1, cid.Undef).CID
	l := protocol.LinkTo(prev)
	lp := &l
	pub := key.Public().(ed25519.PublicKey)
	day := int64(24 * 3600 * 1000)
	t0 := vectorTime.UnixMilli()
	phases := []protocol.Phase{
		{Stage: protocol.StageScoping, Start: t0, End: t0 + 30*day},
		{Stage: protocol.StageConsultation, Start: t0 + 30*day, End: t0 + 60*day},
		{Stage: protocol.StageDecision, Start: t0 + 60*day, End: t0 + 90*day},
		{Stage: protocol.StageDelegation, Start: t0 + 90*day, End: t0 + 120*day},
	}
	charter := func(f func(c *protocol.Charter)) *protocol.Charter {
		c := &protocol.Charter{
			Title: "T", Convenors: [][]byte{pub}, Phases: append([]protocol.Phase(nil), phases...),
			MinNoticeSeconds: 10, WindowSeconds: 10, Rule: protocol.DecisionRule{Name: protocol.RuleConcurrentMajority},
		}
		if f != nil {
			f(c)
		}
		return c
	}
	good := []struct {
		kind string
		body protocol.Body
	}{
		{protocol.KindIssueOpen, &protocol.IssueOpen{Slug: "privacy", Title: "Privacy"}},
		{protocol.KindCharter, charter(nil)},
		{protocol.KindCharter, charter(func(c *protocol.Charter) {
			c.Rule = protocol.DecisionRule{Name: protocol.RuleGroupDecides, Group: "government", Threshold: 2}
			c.Mandate = lp
			c.Background = []protocol.Link{l}
			c.Scope = []string{"a", "b"}
		})},
		{protocol.KindNotice, &protocol.Notice{Process: l, Subject: protocol.SubjectMeeting, Date: t0}},
		{protocol.KindProposal, &protocol.Proposal{Process: l, Version: 1, Title: "P", Clauses: []protocol.Clause{{ID: "1", Text: "c"}}}},
		{protocol.KindProposal, &protocol.Proposal{Process: l, Version: 2, Replaces: lp, Title: "P", Text: "t",
			Rule: &protocol.DecisionRule{Name: protocol.RuleGroupDecides, Group: "government"}}},
		{protocol.KindFeedback, &protocol.Feedback{Process: l, Proposal: l, Stance: protocol.StanceConcern, Clause: "1"}},
		{protocol.KindObjection, &protocol.Objection{Process: l, Proposal: l, Text: "no"}},
		{protocol.KindResponse, &protocol.Response{Process: l, Objection: l, Text: "yes"}},
		{protocol.KindEndorse, &protocol.Endorse{Process: l, Proposal: l}},
		{protocol.KindWithdraw, &protocol.Withdraw{Process: l, Proposal: l}},
		{protocol.KindDecision, &protocol.Decision{Process: l, Proposal: l}},
		{protocol.KindDelegation, &protocol.Delegation{Process: l, Body: "b", Scope: "s", Reporting: "r"}},
		{protocol.KindReport, &protocol.Report{Process: l, Delegation: l, Text: "r"}},
		{protocol.KindStage, &protocol.StageChange{Process: l, To: protocol.StageConsultation}},
		{protocol.KindConclusion, &protocol.Conclusion{Process: l, Summary: "s"}},
	}
	for _, tt := range good {
		t.Run("good "+tt.kind, func(t *testing.T) {
			topic := protocol.IssueTopic("privacy")
			if tt.kind == protocol.KindIssueOpen {
				topic = protocol.TopicIndex
			}
			r, err := protocol.Build(key, protocol.Draft{Network: net, Kind: tt.kind, Topic: topic, Seq: 1, Deps: []cid.Cid{prev}, Time: vectorTime, Body: tt.body})
			if err != nil {
				t.Fatalf("build: %v", err)
			}
			back, err := protocol.Validate(r.Raw, net, vectorTime)
			if err != nil {
				t.Fatalf("validate: %v", err)
			}
			if !back.CID.Equals(r.CID) {
				t.Fatal("CID changed on decoding")
			}
			if err := protocol.CheckRefs(back); err != nil {
				t.Fatalf("refs: %v", err)
			}
			wrong := protocol.TopicMembers
			if _, err := protocol.Build(key, protocol.Draft{Network: net, Kind: tt.kind, Topic: wrong, Seq: 1, Time: vectorTime, Body: tt.body}); protocol.ReasonOf(err) != protocol.ReasonWrongTopic {
				t.Fatalf("on topic %s: %v, want wrong-topic", wrong, err)
			}
		})
	}

	bad := []struct {
		name string
		kind string
		body protocol.Body
		want string
	}{
		{"slug", protocol.KindIssueOpen, &protocol.IssueOpen{Slug: "Privacy!", Title: "P"}, "slug"},
		{"no convenors", protocol.KindCharter, charter(func(c *protocol.Charter) { c.Convenors = nil }), "convenors"},
		{"short key", protocol.KindCharter, charter(func(c *protocol.Charter) { c.Convenors = [][]byte{pub[:8]} }), "convenors[0]"},
		{"convenor twice", protocol.KindCharter, charter(func(c *protocol.Charter) { c.Convenors = [][]byte{pub, pub} }), "listed twice"},
		{"three phases", protocol.KindCharter, charter(func(c *protocol.Charter) { c.Phases = c.Phases[:3] }), "phases"},
		{"phase order", protocol.KindCharter, charter(func(c *protocol.Charter) { c.Phases[1], c.Phases[2] = c.Phases[2], c.Phases[1] }), "phases[1]"},
		{"phase overlap", protocol.KindCharter, charter(func(c *protocol.Charter) { c.Phases[2].Start -= day }), "phases[2]"},
		{"empty phase", protocol.KindCharter, charter(func(c *protocol.Charter) { c.Phases[0].End = c.Phases[0].Start }), "phases[0]"},
		{"window below notice", protocol.KindCharter, charter(func(c *protocol.Charter) { c.WindowSeconds = 5 }), "windowSeconds"},
		{"unknown rule", protocol.KindCharter, charter(func(c *protocol.Charter) { c.Rule.Name = "majority" }), "rule.name"},
		{"rule without mandate", protocol.KindCharter, charter(func(c *protocol.Charter) {
			c.Rule = protocol.DecisionRule{Name: protocol.RuleGroupDecides, Group: "government"}
		}), "mandate"},
		{"default rule with mandate", protocol.KindCharter, charter(func(c *protocol.Charter) { c.Mandate = lp }), "mandate"},
		{"group on default rule", protocol.KindCharter, charter(func(c *protocol.Charter) { c.Rule.Group = "government" }), "rule.group"},
		{"subject", protocol.KindNotice, &protocol.Notice{Process: l, Subject: "party", Date: t0}, "subject"},
		{"date", protocol.KindNotice, &protocol.Notice{Process: l, Subject: protocol.SubjectMeeting}, "date"},
		{"version 2 without replaces", protocol.KindProposal, &protocol.Proposal{Process: l, Version: 2, Title: "P", Text: "t"}, "replaces"},
		{"version 1 with replaces", protocol.KindProposal, &protocol.Proposal{Process: l, Version: 1, Replaces: lp, Title: "P", Text: "t"}, "replaces"},
		{"empty proposal", protocol.KindProposal, &protocol.Proposal{Process: l, Version: 1, Title: "P"}, "text"},
		{"clause twice", protocol.KindProposal, &protocol.Proposal{Process: l, Version: 1, Title: "P",
			Clauses: []protocol.Clause{{ID: "1", Text: "a"}, {ID: "1", Text: "b"}}}, "used twice"},
		{"stance", protocol.KindFeedback, &protocol.Feedback{Process: l, Proposal: l, Stance: "meh"}, "stance"},
		{"empty objection", protocol.KindObjection, &protocol.Objection{Process: l, Proposal: l}, "text"},
		{"stage to scoping", protocol.KindStage, &protocol.StageChange{Process: l, To: protocol.StageScoping}, "to"},
		{"stage to concluded", protocol.KindStage, &protocol.StageChange{Process: l, To: protocol.StageConcluded}, "to"},
		{"delegation without body", protocol.KindDelegation, &protocol.Delegation{Process: l, Scope: "s", Reporting: "r"}, "body"},
	}
	for _, tt := range bad {
		t.Run("bad "+tt.name, func(t *testing.T) {
			topic := protocol.IssueTopic("privacy")
			if tt.kind == protocol.KindIssueOpen {
				topic = protocol.TopicIndex
			}
			_, err := protocol.Build(key, protocol.Draft{Network: net, Kind: tt.kind, Topic: topic, Seq: 1, Time: vectorTime, Body: tt.body})
			if protocol.ReasonOf(err) != protocol.ReasonBadBody || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want bad-body about %q", err, tt.want)
			}
		})
	}

	// A body reference missing from deps is bad-links.
	other := statement(t, key, net, 1, cid.Undef, prev).CID
	r, err := protocol.Build(key, protocol.Draft{Network: net, Kind: protocol.KindEndorse, Topic: protocol.IssueTopic("privacy"), Seq: 1,
		Deps: []cid.Cid{prev}, Time: vectorTime, Body: &protocol.Endorse{Process: l, Proposal: protocol.LinkTo(other)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := protocol.CheckRefs(r); protocol.ReasonOf(err) != protocol.ReasonBadLinks {
		t.Fatalf("reference outside deps: %v, want bad-links", err)
	}
}

package testnet

import (
	"context"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// Demo holds the records of the demo data (PublishDemo).
type Demo struct {
	// Slug is the demo issue.
	Slug string
	// Process is the demo process, in consultation with two versions of a
	// proposal; Scoping a second process of the same title, in scoping.
	Process, Scoping cid.Cid
	// V1 and V2 are the proposal versions; Answered is a formal objection
	// to V1 with a response, Unanswered one to V2 without.
	V1, V2, Answered, Unanswered cid.Cid
	// Now is the clock's time after the demo: today for the pages.
	Now time.Time
}

// PublishDemo publishes a consultation on nodes 0 to 4, which must be
// members (five founders of the default affiliation cover every group and
// region), setting clock before each record: an issue, a process in
// consultation with a full charter, a notice, a proposal in two versions
// with clauses, feedback of every stance with reasons and clauses, an
// answered and an unanswered formal objection, endorsements, and a second
// process of the same title still in scoping. Every node of the network
// holds every record when it returns. The nodes must use clock
// (node.WithClock).
func (net *Network) PublishDemo(ctx context.Context, clock *Clock, t0 time.Time) (*Demo, error) {
	const day = 24 * time.Hour
	d := &Demo{Slug: "privacy"}
	topic := protocol.IssueTopic(d.Slug)
	var err error
	pub := func(i int, at time.Duration, kind, tp string, body protocol.Body, deps ...cid.Cid) cid.Cid {
		if err != nil {
			return cid.Undef
		}
		clock.Set(t0.Add(at))
		var r *protocol.Record
		r, err = net.PublishAll(ctx, i, kind, tp, body, deps...)
		if err != nil {
			return cid.Undef
		}
		return r.CID
	}
	ms := func(x time.Duration) int64 { return t0.Add(x).UnixMilli() }
	phases := func(from time.Duration) []protocol.Phase {
		return []protocol.Phase{
			{Stage: protocol.StageScoping, Start: ms(from), End: ms(from + 19*day)},
			{Stage: protocol.StageConsultation, Start: ms(from + 19*day), End: ms(from + 59*day)},
			{Stage: protocol.StageDecision, Start: ms(from + 59*day), End: ms(from + 89*day)},
			{Stage: protocol.StageImplementation, Start: ms(from + 89*day), End: ms(from + 359*day)},
		}
	}
	charter := func(from time.Duration, conv ...int) *protocol.Charter {
		c := &protocol.Charter{
			Title:        "Cross-border data flows",
			Aim:          "Agree on a global baseline for personal data that crosses borders.",
			Purpose:      "Give people the same protection wherever their data is processed, and give operators one set of rules.",
			Scope:        []string{"transfers of personal data between jurisdictions", "redress for people abroad", "law enforcement access"},
			Modalities:   "Open online consultation on this clearing house; two regional meetings; written feedback by clause.",
			Significance: "Most Internet services process personal data in more than one jurisdiction.",
			Phases:       phases(from), MinNoticeSeconds: 14 * 24 * 3600, WindowSeconds: 30 * 24 * 3600,
			Rule: protocol.DecisionRule{Name: protocol.RuleConcurrentMajority, Threshold: 1},
		}
		for _, i := range conv {
			c.Convenors = append(c.Convenors, net.PublicKey(i))
		}
		return c
	}
	pub(0, 0, protocol.KindIssueOpen, protocol.TopicIndex, &protocol.IssueOpen{Slug: d.Slug, Title: "Privacy and data protection",
		Summary: "How personal data is protected when it crosses borders."})
	d.Process = pub(0, day, protocol.KindCharter, topic, charter(day, 0, 1))
	proc := protocol.LinkTo(d.Process)
	pub(1, 2*day, protocol.KindNotice, topic, &protocol.Notice{Process: proc, Subject: protocol.SubjectConsultation,
		Date: ms(20 * day), Text: "The consultation opens on the first version of the baseline principles."}, d.Process)
	pub(0, 20*day, protocol.KindStage, topic, &protocol.StageChange{Process: proc, To: protocol.StageConsultation}, d.Process)
	pub(1, 20*day+time.Hour, protocol.KindStage, topic, &protocol.StageChange{Process: proc, To: protocol.StageConsultation}, d.Process)
	d.V1 = pub(1, 21*day, protocol.KindProposal, topic, &protocol.Proposal{Process: proc, Version: 1,
		Title: "Baseline principles", Text: "Principles every participating jurisdiction applies to personal data leaving it.",
		Clauses: []protocol.Clause{
			{ID: "1", Text: "Personal data may leave a jurisdiction only to one that protects it to the baseline."},
			{ID: "2", Text: "Every transfer is recorded and the record is kept for five years."},
			{ID: "3", Text: "A person may seek redress in their own jurisdiction."},
		}}, d.Process)
	v1 := protocol.LinkTo(d.V1)
	pub(0, 22*day, protocol.KindFeedback, topic, &protocol.Feedback{Process: proc, Proposal: v1, Stance: protocol.StanceConcern,
		Reason: "Five years is too long for small operators.", Clause: "2"}, d.Process, d.V1)
	pub(2, 22*day+time.Hour, protocol.KindFeedback, topic, &protocol.Feedback{Process: proc, Proposal: v1, Stance: protocol.StanceSupport,
		Reason: "A clear baseline helps people and operators alike."}, d.Process, d.V1)
	pub(3, 22*day+2*time.Hour, protocol.KindFeedback, topic, &protocol.Feedback{Process: proc, Proposal: v1, Stance: protocol.StanceObjection,
		Reason: "Redress abroad must not depend on the operator's home courts.", Clause: "3"}, d.Process, d.V1)
	d.Answered = pub(3, 23*day, protocol.KindObjection, topic, &protocol.Objection{Process: proc, Proposal: v1,
		Text: "Clause 3 leaves people without redress where the operator has no presence."}, d.Process, d.V1)
	pub(0, 24*day, protocol.KindResponse, topic, &protocol.Response{Process: proc, Objection: protocol.LinkTo(d.Answered),
		Text: "Version 2 adds a designated representative in every jurisdiction served."}, d.Process, d.Answered)
	d.V2 = pub(1, 26*day, protocol.KindProposal, topic, &protocol.Proposal{Process: proc, Version: 2, Replaces: &v1,
		Title: "Baseline principles", Text: "Principles every participating jurisdiction applies to personal data leaving it.",
		Clauses: []protocol.Clause{
			{ID: "1", Text: "Personal data may leave a jurisdiction only to one that protects it to the baseline."},
			{ID: "2", Text: "Every transfer is recorded and the record is kept for two years."},
			{ID: "4", Text: "An operator names a representative in every jurisdiction it serves, where people may seek redress."},
		}}, d.Process, d.V1)
	v2 := protocol.LinkTo(d.V2)
	for i := range 3 {
		pub(i, 27*day+time.Duration(i)*time.Hour, protocol.KindEndorse, topic, &protocol.Endorse{Process: proc, Proposal: v2}, d.Process, d.V2)
	}
	pub(4, 27*day+4*time.Hour, protocol.KindFeedback, topic, &protocol.Feedback{Process: proc, Proposal: v2, Stance: protocol.StanceNeutral,
		Reason: "Intergovernmental bodies need an exemption for their own archives.", Clause: "2"}, d.Process, d.V2)
	d.Unanswered = pub(4, 28*day, protocol.KindObjection, topic, &protocol.Objection{Process: proc, Proposal: v2,
		Text: "Clause 4 burdens operators that serve many small jurisdictions."}, d.Process, d.V2)
	d.Scoping = pub(2, 30*day, protocol.KindCharter, topic, charter(30*day, 2, 3))
	if err != nil {
		return nil, err
	}
	d.Now = t0.Add(35 * day)
	clock.Set(d.Now)
	return d, nil
}

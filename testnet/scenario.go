package testnet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// FullProcess is what RunFullProcess published.
type FullProcess struct {
	// Open is the issue.open record; Charter the process's charter;
	// Proposal the adopted proposal; Decision the decision.
	Open, Charter, Proposal, Decision *protocol.Record
	// Records are every record published, in order.
	Records []*protocol.Record
}

// RunFullProcess runs a whole process on the issue slug, from opening the
// issue to conclusion: a charter convened by nodes 0 and 1, notices, stage
// moves, a proposal with feedback, a formal objection and its response, a
// second version of the proposal, an endorsement of it by every member node, a decision, implementation and
// conclusion. Every node must follow slug and run on clock (node.WithClock),
// which it sets from t0 on; nodes 0 and 1 must be of two distinct
// stakeholder groups, and there must be no observer among the first two.
// Each record is published on one node and awaited on all of them.
func (net *Network) RunFullProcess(ctx context.Context, clock *Clock, t0 time.Time, slug string) (*FullProcess, error) {
	if len(net.Nodes)-net.opts.observers < 2 {
		return nil, errors.New("testnet: a full process needs at least two member nodes")
	}
	topic := protocol.IssueTopic(slug)
	for _, tp := range []string{protocol.TopicIndex, topic} {
		if err := net.WaitTopicMesh(ctx, tp); err != nil {
			return nil, err
		}
	}
	fp := &FullProcess{}
	var err error
	day := 24 * time.Hour
	publish := func(i int, at time.Duration, kind, tp string, body protocol.Body, deps ...cid.Cid) *protocol.Record {
		if err != nil {
			return nil
		}
		clock.Set(t0.Add(at))
		var r *protocol.Record
		if r, err = net.PublishAll(ctx, i, kind, tp, body, deps...); err != nil {
			return nil
		}
		fp.Records = append(fp.Records, r)
		return r
	}
	ms := func(d time.Duration) int64 { return t0.Add(d).UnixMilli() }
	link := protocol.LinkTo

	fp.Open = publish(0, 0, protocol.KindIssueOpen, protocol.TopicIndex, &protocol.IssueOpen{
		Slug: slug, Title: "Privacy across borders", Summary: "Protection of personal data that crosses borders."})
	fp.Charter = publish(0, day, protocol.KindCharter, topic, &protocol.Charter{
		Title: "Cross-border data principles", Aim: "Agree principles.", Purpose: "Interoperable protection.",
		Scope: []string{"transfers"}, Modalities: "Open consultation.", Significance: "Global.",
		Convenors: [][]byte{net.PublicKey(0), net.PublicKey(1)},
		Phases: []protocol.Phase{
			{Stage: protocol.StageScoping, Start: ms(day), End: ms(27 * day)},
			{Stage: protocol.StageConsultation, Start: ms(27 * day), End: ms(69 * day)},
			{Stage: protocol.StageDecision, Start: ms(69 * day), End: ms(100 * day)},
			{Stage: protocol.StageImplementation, Start: ms(100 * day), End: ms(360 * day)},
		},
		MinNoticeSeconds: 14 * 24 * 3600, WindowSeconds: 14 * 24 * 3600,
		Rule: protocol.DecisionRule{Name: protocol.RuleConcurrentMajority, Threshold: 1},
	})
	if err != nil {
		return nil, err
	}
	ch := fp.Charter.CID
	proc := link(ch)
	publish(1, 5*day, protocol.KindNotice, topic, &protocol.Notice{Process: proc, Subject: protocol.SubjectConsultation,
		Date: ms(27 * day), Text: "Consultation opens."}, ch)
	publish(0, 27*day, protocol.KindStage, topic, &protocol.StageChange{Process: proc, To: protocol.StageConsultation}, ch)
	publish(1, 27*day+time.Hour, protocol.KindStage, topic, &protocol.StageChange{Process: proc, To: protocol.StageConsultation}, ch)
	v1 := publish(1, 28*day, protocol.KindProposal, topic, &protocol.Proposal{Process: proc, Version: 1,
		Title: "Principles", Text: "The principles.", Clauses: []protocol.Clause{{ID: "1", Text: "Data stays protected."}}}, ch)
	if err != nil {
		return nil, err
	}
	members := len(net.Nodes) - net.opts.observers
	last := members - 1
	publish(last, 28*day+time.Hour, protocol.KindFeedback, topic, &protocol.Feedback{Process: proc, Proposal: link(v1.CID),
		Stance: protocol.StanceConcern, Reason: "Clause 1 needs an exception for courts.", Clause: "1"}, ch, v1.CID)
	obj := publish(last, 28*day+2*time.Hour, protocol.KindObjection, topic, &protocol.Objection{Process: proc, Proposal: link(v1.CID),
		Text: "Courts are not covered."}, ch, v1.CID)
	if err != nil {
		return nil, err
	}
	publish(1, 28*day+3*time.Hour, protocol.KindResponse, topic, &protocol.Response{Process: proc, Objection: link(obj.CID),
		Text: "Version 2 covers courts."}, ch, obj.CID)
	fp.Proposal = publish(1, 28*day+4*time.Hour, protocol.KindProposal, topic, &protocol.Proposal{Process: proc, Version: 2,
		Replaces: &protocol.Link{Cid: v1.CID}, Title: "Principles", Text: "The principles, courts included.",
		Clauses: []protocol.Clause{{ID: "1", Text: "Data stays protected, in courts too."}}}, ch, v1.CID)
	if err != nil {
		return nil, err
	}
	prop := fp.Proposal.CID
	publish(last, 28*day+5*time.Hour, protocol.KindFeedback, topic, &protocol.Feedback{Process: proc, Proposal: link(prop),
		Stance: protocol.StanceSupport, Reason: "Courts are covered now."}, ch, prop)
	for i := range members {
		publish(i, 29*day+time.Duration(i)*time.Hour, protocol.KindEndorse, topic,
			&protocol.Endorse{Process: proc, Proposal: link(prop)}, ch, prop)
	}
	publish(0, 30*day, protocol.KindNotice, topic, &protocol.Notice{Process: proc, Subject: protocol.SubjectDecision,
		Date: ms(69 * day), Text: "Decision on the principles."}, ch)
	publish(0, 69*day, protocol.KindStage, topic, &protocol.StageChange{Process: proc, To: protocol.StageDecision}, ch)
	publish(1, 69*day+time.Hour, protocol.KindStage, topic, &protocol.StageChange{Process: proc, To: protocol.StageDecision}, ch)
	fp.Decision = publish(0, 70*day, protocol.KindDecision, topic, &protocol.Decision{Process: proc, Proposal: link(prop),
		Summary: "Adopted."}, ch, prop)
	publish(0, 100*day, protocol.KindStage, topic, &protocol.StageChange{Process: proc, To: protocol.StageImplementation}, ch)
	publish(1, 100*day+time.Hour, protocol.KindStage, topic, &protocol.StageChange{Process: proc, To: protocol.StageImplementation}, ch)
	publish(0, 101*day, protocol.KindConclusion, topic, &protocol.Conclusion{Process: proc, Summary: "Principles adopted."}, ch)
	publish(1, 101*day+time.Hour, protocol.KindConclusion, topic, &protocol.Conclusion{Process: proc, Summary: "Principles adopted."}, ch)
	if err != nil {
		return nil, err
	}
	p, perr := net.Nodes[0].Process(ch)
	if perr != nil {
		return nil, perr
	}
	if p.Stage() != protocol.StageConcluded {
		return nil, fmt.Errorf("testnet: the process ended in stage %q, not concluded", p.Stage())
	}
	return fp, nil
}

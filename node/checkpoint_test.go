package node_test

import (
	"bytes"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// TestCheckpoints: three member nodes of two groups. Before any checkpoint
// the audit says times are as claimed; after nodes of both groups
// checkpoint (the second government node has nothing left to witness) every
// node derives the same public time for the notice, the time of the
// checkpoint that completed the quorum, and the same audit.
func TestCheckpoints(t *testing.T) {
	ctx := testContext(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock := testnet.NewClock(t0)
	groups := []string{"government", "civil-society", "government"}
	net := testnet.New(t, 3,
		testnet.WithFollow(slug),
		testnet.WithAffiliation(func(i int) (string, string) { return groups[i], "africa" }),
		testnet.WithNodeOptions(func(int) []node.Option {
			return []node.Option{node.WithClock(clock.Now), node.WithCheckpointInterval(0)}
		}))
	if err := net.WaitTopicMesh(ctx, topic); err != nil {
		t.Fatal(err)
	}
	pub := func(i int) []byte { return net.SigningKey(i).Public().(ed25519.PublicKey) }
	ms := func(d time.Duration) int64 { return t0.Add(d).UnixMilli() }
	day := 24 * time.Hour
	charter, err := net.PublishAll(ctx, 0, protocol.KindCharter, topic, &protocol.Charter{
		Title: "Principles", Aim: "Agree.", Purpose: "Protect.", Scope: []string{"transfers"}, Modalities: "Open.", Significance: "Global.",
		Convenors: [][]byte{pub(0), pub(1)},
		Phases: []protocol.Phase{
			{Stage: protocol.StageScoping, Start: ms(0), End: ms(30 * day)},
			{Stage: protocol.StageConsultation, Start: ms(30 * day), End: ms(60 * day)},
			{Stage: protocol.StageDecision, Start: ms(60 * day), End: ms(90 * day)},
			{Stage: protocol.StageImplementation, Start: ms(90 * day), End: ms(120 * day)},
		},
		MinNoticeSeconds: 14 * 24 * 3600, WindowSeconds: 14 * 24 * 3600,
		Rule: protocol.DecisionRule{Name: protocol.RuleConcurrentMajority},
	})
	if err != nil {
		t.Fatal(err)
	}
	clock.Set(t0.Add(time.Hour))
	notice, err := net.PublishAll(ctx, 0, protocol.KindNotice, topic, &protocol.Notice{Process: protocol.LinkTo(charter.CID),
		Subject: protocol.SubjectConsultation, Date: ms(30 * day)}, charter.CID)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := net.Nodes[2].Audit(charter.CID)
	if err != nil {
		t.Fatal(err)
	}
	if rep.P2.Witnessed || rep.P2.Status != "not-yet" {
		t.Fatalf("before any checkpoint: witnessed %v, P2 %s", rep.P2.Witnessed, rep.P2.Status)
	}

	clock.Set(t0.Add(2 * time.Hour))
	var cps []*protocol.Record
	for i, want := range []int{1, 1, 0} {
		got, err := net.Nodes[i].Checkpoint(ctx, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != want {
			t.Fatalf("node %d published %d checkpoints, want %d", i, len(got), want)
		}
		for _, r := range got {
			for j, nd := range net.Nodes {
				if err := nd.WaitRecords(ctx, r.CID); err != nil {
					t.Fatalf("node %d waiting for node %d's checkpoint: %v", j, i, err)
				}
			}
		}
		cps = append(cps, got...)
	}
	if got, err := net.Nodes[0].Checkpoint(ctx, 0); err != nil || len(got) != 0 {
		t.Fatalf("a second checkpoint with nothing new: %d published, %v", len(got), err)
	}
	var want []byte
	for i, nd := range net.Nodes {
		rep, err := nd.Audit(charter.CID)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.P2.Witnessed || len(rep.P2.Notices) != 1 {
			t.Fatalf("node %d: witnessed %v, %d notices", i, rep.P2.Witnessed, len(rep.P2.Notices))
		}
		n := rep.P2.Notices[0]
		if n.Record != notice.CID.String() || n.Public == nil || *n.Public != cps[1].Env.Time || n.Claimed != ms(time.Hour) {
			t.Fatalf("node %d: notice %+v, want public at the second checkpoint's time %d", i, n, cps[1].Env.Time)
		}
		js, err := rep.JSON()
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			want = js
		} else if !bytes.Equal(js, want) {
			t.Fatalf("node %d's audit differs from node 0's:\n%s\n%s", i, js, want)
		}
	}
}

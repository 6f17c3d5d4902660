package node_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// TestPublicComment: following an issue joins its public topic; an
// observer, which signs nothing else, signs a public comment and a member
// stores it through gossip; the node keeps the protocol's pace itself;
// unfollowing leaves both topics.
func TestPublicComment(t *testing.T) {
	ctx := testContext(t)
	clock := testnet.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	net := testnet.New(t, 2, testnet.WithObservers(1),
		testnet.WithNodeOptions(func(int) []node.Option { return []node.Option{node.WithClock(clock.Now)} }))
	member, obs := net.Nodes[0], net.Nodes[1]
	if _, err := net.PublishAll(ctx, 0, protocol.KindIssueOpen, protocol.TopicIndex, &protocol.IssueOpen{Slug: "privacy", Title: "Privacy"}); err != nil {
		t.Fatal(err)
	}
	for _, nd := range net.Nodes {
		if err := nd.Follow("privacy"); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(nd.Topics(), "public/privacy") || !slices.Contains(nd.Topics(), "issue/privacy") {
			t.Fatalf("topics after Follow: %v", nd.Topics())
		}
	}
	if err := net.WaitTopicMesh(ctx, "public/privacy"); err != nil {
		t.Fatal(err)
	}
	if _, err := obs.Publish(ctx, protocol.KindStatement, "issue/privacy", &protocol.Statement{Title: "t", Text: "x"}); !errors.Is(err, protocol.ErrObserver) {
		t.Fatalf("observer publish: %v", err)
	}
	body := &protocol.PublicComment{Person: make([]byte, 16), Text: "Hello from the public."}
	rec, err := obs.PublishComment(ctx, "privacy", body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rec.Env.Author, net.PublicKey(1)) || rec.Env.Topic != "public/privacy" {
		t.Fatalf("comment by %x on %s", rec.Env.Author, rec.Env.Topic)
	}
	if err := member.WaitRecords(ctx, rec.CID); err != nil {
		t.Fatal(err)
	}
	// Too soon after the last one: the node refuses to sign what its peers
	// would refuse.
	clock.Set(clock.Now().Add(protocol.MinCommentInterval - time.Second))
	if _, err := obs.PublishComment(ctx, "privacy", body); !errors.Is(err, node.ErrCommentTooSoon) {
		t.Fatalf("comment too soon: %v", err)
	}
	clock.Set(clock.Now().Add(time.Second))
	if _, err := obs.PublishComment(ctx, "privacy", body); err != nil {
		t.Fatalf("comment after the interval: %v", err)
	}
	if err := member.Unfollow("privacy"); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(member.Topics(), "public/privacy") || slices.Contains(member.Topics(), "issue/privacy") {
		t.Fatalf("topics after Unfollow: %v", member.Topics())
	}
}

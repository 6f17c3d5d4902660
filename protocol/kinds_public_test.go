package protocol_test

import (
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// TestPublicComment: public comment and response bodies are checked; they
// are valid only on public topics; a comment must keep the pace after its
// author's previous record; a response must list its comment.
func TestPublicComment(t *testing.T) {
	key := fixedKey(3)
	net := devNetwork(t, key)
	l := protocol.LinkTo(statement(t, key, net, 1, cid.Undef).CID)
	person := make([]byte, 16)
	topic := protocol.PublicTopic("privacy")
	if c := protocol.ClassOf(topic); c != protocol.ClassPublic {
		t.Fatalf("class of %s: %v", topic, c)
	}
	if _, ok := protocol.PublicSlug("public/Bad"); ok {
		t.Fatal("public/Bad is a public topic")
	}
	build := func(kind, tp string, seq uint64, prev cid.Cid, at time.Time, body protocol.Body, deps ...cid.Cid) (*protocol.Record, error) {
		return protocol.Build(key, protocol.Draft{Network: net, Kind: kind, Topic: tp, Seq: seq, Prev: prev, Deps: deps, Time: at, Body: body})
	}
	for _, tt := range []struct {
		name string
		body protocol.Body
		ok   bool
	}{
		{"issue-wide", &protocol.PublicComment{Person: person, Text: "hello"}, true},
		{"on a clause", &protocol.PublicComment{Process: &l, Proposal: &l, Clause: "2", Name: "Ada", Person: person, Text: "hi"}, true},
		{"empty text", &protocol.PublicComment{Person: person}, false},
		{"short person", &protocol.PublicComment{Person: person[:8], Text: "x"}, false},
		{"proposal without process", &protocol.PublicComment{Proposal: &l, Person: person, Text: "x"}, false},
		{"clause without proposal", &protocol.PublicComment{Clause: "1", Person: person, Text: "x"}, false},
		{"long name", &protocol.PublicComment{Name: string(make([]byte, 81)), Person: person, Text: "x"}, false},
		{"response", &protocol.PublicResponse{Comment: l, Text: "thanks"}, true},
		{"empty response", &protocol.PublicResponse{Comment: l}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			kind := protocol.KindPublicComment
			if _, ok := tt.body.(*protocol.PublicResponse); ok {
				kind = protocol.KindPublicResponse
			}
			_, err := build(kind, topic, 1, cid.Undef, vectorTime, tt.body, l.Cid)
			if (err == nil) != tt.ok {
				t.Fatalf("build: %v, want ok %v", err, tt.ok)
			}
			if !tt.ok && protocol.ReasonOf(err) != protocol.ReasonBadBody {
				t.Fatalf("reason %q, want bad-body: %v", protocol.ReasonOf(err), err)
			}
		})
	}
	// Only on public topics, and no process kind on them.
	if _, err := build(protocol.KindPublicComment, "issue/privacy", 1, cid.Undef, vectorTime, &protocol.PublicComment{Person: person, Text: "x"}); protocol.ReasonOf(err) != protocol.ReasonWrongTopic {
		t.Fatalf("comment on an issue topic: %v", err)
	}
	if _, err := build(protocol.KindFeedback, topic, 1, cid.Undef, vectorTime, &protocol.Feedback{Process: l, Proposal: l, Stance: protocol.StanceSupport}); protocol.ReasonOf(err) != protocol.ReasonWrongTopic {
		t.Fatalf("feedback on a public topic: %v", err)
	}

	// The pace: a comment less than MinCommentInterval after its prev is
	// not allowed; at the interval it is.
	first, err := build(protocol.KindPublicComment, topic, 1, cid.Undef, vectorTime, &protocol.PublicComment{Person: person, Text: "one"})
	if err != nil {
		t.Fatal(err)
	}
	parent := protocol.Parent{CID: first.CID, Author: first.Env.Author, Topic: topic, Seq: 1, Time: first.Env.Time}
	for _, tt := range []struct {
		after time.Duration
		want  protocol.Reason
	}{{0, protocol.ReasonNotAllowed}, {protocol.MinCommentInterval - time.Millisecond, protocol.ReasonNotAllowed}, {protocol.MinCommentInterval, ""}} {
		next, err := build(protocol.KindPublicComment, topic, 2, first.CID, vectorTime.Add(tt.after), &protocol.PublicComment{Person: person, Text: "two"})
		if err != nil {
			t.Fatal(err)
		}
		if got := protocol.ReasonOf(protocol.CheckParents(next, []protocol.Parent{parent})); got != tt.want {
			t.Fatalf("comment %s after its prev: reason %q, want %q", tt.after, got, tt.want)
		}
	}
	// A response (any pace) must list its comment.
	resp, err := build(protocol.KindPublicResponse, topic, 2, first.CID, vectorTime, &protocol.PublicResponse{Comment: l, Text: "thanks"})
	if err != nil {
		t.Fatal(err)
	}
	if got := protocol.ReasonOf(protocol.CheckParents(resp, []protocol.Parent{parent})); got != protocol.ReasonBadLinks {
		t.Fatalf("response without its comment in deps: %q", got)
	}
	resp, err = build(protocol.KindPublicResponse, topic, 2, first.CID, vectorTime, &protocol.PublicResponse{Comment: protocol.LinkTo(first.CID), Text: "thanks"})
	if err != nil {
		t.Fatal(err)
	}
	if err := protocol.CheckParents(resp, []protocol.Parent{parent}); err != nil {
		t.Fatalf("response to its prev: %v", err)
	}
}

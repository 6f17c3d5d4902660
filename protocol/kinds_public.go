package protocol

import (
	"errors"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
)

// Public comments: the voice of the wider public (DESIGN.md section 9).
//
// Anyone may comment on an issue, its processes and proposal versions
// through the web page of any node, member or observer. The node that
// accepts a comment signs it with its own key and publishes it on the
// issue's public topic, "public/<slug>", the one topic on which a record
// of a non-member is valid. So every comment has a node that answers for
// it, and:
//
//   - a node's comments are paced: a public.comment must claim a time at
//     least MinCommentInterval after its author's previous record on the
//     topic (its prev), so with the receivers' MaxClockSkew no node can
//     put more than one comment per interval on a topic, however it
//     signs them (checked from the record and its prev alone, so every
//     node reaches the same verdict);
//   - a comment names the person pseudonymously (Person, chosen by the
//     relaying node, stable for one person at that node), so readers and
//     nodes can count and fold a person's comments, and the relaying node
//     limits each person (node/api, not part of validity);
//   - members answer comments with public.response records, valid from
//     members only and on the same topic.
//
// Public topics are separate from issue topics, so no rule of
// protocol/gov ever sees a public record: no public comment changes a
// tally, a stage, a decision or the P1-P4 audit.
const (
	// KindPublicComment is a comment of a member of the public, signed by
	// the node that accepted it.
	KindPublicComment = "public.comment"
	// KindPublicResponse is a member's public response to a comment.
	KindPublicResponse = "public.response"
)

// MinCommentInterval is the least time between two records of one author
// on a public topic when the later one is a public.comment, by claimed
// time.
const MinCommentInterval = 10 * time.Second

// Public comment body limits, in bytes.
const (
	maxCommentName = 80
	maxCommentText = 4000
	personLen      = 16
)

func init() {
	register(KindSpec{Name: KindPublicComment, Topics: ClassPublic, New: func() Body { return new(PublicComment) }})
	register(KindSpec{Name: KindPublicResponse, Topics: ClassPublic, New: func() Body { return new(PublicResponse) }})
}

// PublicTopic returns the public-comment topic of the issue slug.
func PublicTopic(slug string) string { return publicPrefix + slug }

// PublicSlug returns the slug of a public-comment topic and whether topic
// is one.
func PublicSlug(topic string) (string, bool) {
	slug, ok := strings.CutPrefix(topic, publicPrefix)
	return slug, ok && ValidSlug(slug)
}

// PublicComment is the body of a public.comment record.
type PublicComment struct {
	// Process and Proposal, if set, link the process and the proposal
	// version commented on; both nil for a comment on the whole issue.
	Process  *Link `cbor:"process"`
	Proposal *Link `cbor:"proposal"`
	// Clause is the id of the clause commented on, or empty.
	Clause string `cbor:"clause"`
	// Name is how the person wants to be shown; may be empty.
	Name string `cbor:"name"`
	// Person is the relaying node's pseudonym of the person: 16 bytes,
	// the same for all of one person's comments at that node.
	Person []byte `cbor:"person"`
	Text   string `cbor:"text"`
}

// Check validates a public comment body.
func (b *PublicComment) Check() error {
	if b.Proposal != nil && b.Process == nil {
		return errors.New("process: required with a proposal")
	}
	if b.Clause != "" && b.Proposal == nil {
		return errors.New("clause: only with a proposal")
	}
	if err := checkText("clause", b.Clause, 0, maxClauseID); err != nil {
		return err
	}
	if err := checkText("name", b.Name, 0, maxCommentName); err != nil {
		return err
	}
	if len(b.Person) != personLen {
		return errors.New("person: must be 16 bytes")
	}
	return checkText("text", b.Text, 1, maxCommentText)
}

// PublicResponse is the body of a public.response record: a member's
// answer to a public comment, which it must list in its deps.
type PublicResponse struct {
	Comment Link   `cbor:"comment"`
	Text    string `cbor:"text"`
}

// Check validates a public response body.
func (b *PublicResponse) Check() error { return checkText("text", b.Text, 1, maxCommentText) }

// checkPublicParents is the causal rule of public records, given their
// parents (CheckParents): a comment is paced after its author's previous
// record on the topic; a response lists its comment in its links. Whether
// a response's author is a member is decided with membership, by the
// node (as for every member kind).
func checkPublicParents(r *Record, byCID map[cid.Cid]*Parent) error {
	switch b := r.Body.(type) {
	case *PublicComment:
		if r.Env.Prev == nil {
			return nil
		}
		p := byCID[r.Env.Prev.Cid]
		if p != nil && r.Env.Time < p.Time+MinCommentInterval.Milliseconds() {
			return Errorf(ReasonNotAllowed, "public.comment %s follows its author's previous record %s by %s, less than %s",
				r.CID, p.CID, time.Duration(r.Env.Time-p.Time)*time.Millisecond, MinCommentInterval)
		}
	case *PublicResponse:
		if _, ok := byCID[b.Comment.Cid]; !ok {
			return Errorf(ReasonBadLinks, "public.response %s does not list its comment %s in its deps", r.CID, b.Comment.Cid)
		}
	}
	return nil
}

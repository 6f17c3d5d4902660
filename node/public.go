package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// Public comments (protocol/kinds_public.go): the node side. Following an
// issue joins its public topic too; the apply loop accepts a
// public.comment from any key (protocol.OpenToNonMembers), every other
// record only from members; and any node, an observer too, signs the comments it
// accepts through its web page with its own identity key
// (PublishComment).

// ErrCommentTooSoon is returned by PublishComment when the node's
// previous record on the public topic is less than
// protocol.MinCommentInterval old: peers would refuse the comment.
var ErrCommentTooSoon = errors.New("node: the node's previous public comment on this issue is too recent")

// joinIssue joins the issue topic and the public-comment topic of slug.
func (n *Node) joinIssue(slug string) error {
	if err := n.join(protocol.IssueTopic(slug)); err != nil {
		return err
	}
	return n.join(protocol.PublicTopic(slug))
}

// PublishComment signs a public comment on the public topic of slug with
// the node's identity key, stores it and gossips it. It works on an
// observer too: the node answers for the comments it relays. The caller
// (the web page) limits comments per person; the protocol paces the
// node's comments (ErrCommentTooSoon).
func (n *Node) PublishComment(ctx context.Context, slug string, body *protocol.PublicComment) (*protocol.Record, error) {
	if !protocol.ValidSlug(slug) {
		return nil, fmt.Errorf("node: invalid issue slug %q", slug)
	}
	topic := protocol.PublicTopic(slug)
	if err := n.join(topic); err != nil {
		return nil, err
	}
	if err := n.sync.confirmChain(ctx, topic); err != nil {
		return nil, fmt.Errorf("node: publish %s on %s: %w", protocol.KindPublicComment, topic, err)
	}
	// The apply loop builds and signs the comment on the node's own chain
	// of the topic, as it does every record of the node's own, so that
	// concurrent comments never make two records at one seq; it refuses a
	// comment within protocol.MinCommentInterval of the previous one
	// (ErrCommentTooSoon).
	return n.publishDraft(ctx, &ownDraft{kind: protocol.KindPublicComment, topic: topic, body: body})
}

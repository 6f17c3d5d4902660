package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// Public comments (protocol/kinds_public.go): the node side. Following an
// issue joins its public topic too; the apply loop accepts a
// public.comment from any key (publicAllowed), every other record only
// from members; and any node, an observer too, signs the comments it
// accepts through its web page with its own identity key
// (PublishComment).

// ErrCommentTooSoon is returned by PublishComment when the node's
// previous record on the public topic is less than
// protocol.MinCommentInterval old: peers would refuse the comment.
var ErrCommentTooSoon = errors.New("node: the node's previous public comment on this issue is too recent")

// publicAllowed reports whether r is valid from a key that is not a
// member: only a public comment is.
func publicAllowed(r *protocol.Record) bool { return r.Env.Kind == protocol.KindPublicComment }

// joinIssue joins the issue topic and the public-comment topic of slug.
func (n *Node) joinIssue(slug string) error {
	if err := n.join(protocol.IssueTopic(slug)); err != nil {
		return err
	}
	return n.join(protocol.PublicTopic(slug))
}

// commentSigner returns the key that signs the node's public comments:
// its identity key, on member and observer nodes alike.
func (n *Node) commentSigner() (ed25519.PrivateKey, error) {
	raw, err := n.opts.identity.Raw()
	if err != nil {
		return nil, fmt.Errorf("node: identity: %w", err)
	}
	return ed25519.PrivateKey(raw), nil
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
	key, err := n.commentSigner()
	if err != nil {
		return nil, err
	}
	n.pubMu.Lock()
	rec, err := n.buildComment(key, topic, body)
	if err == nil {
		_, err = n.Ingest(ctx, rec.Raw, "", SourceLocal)
	}
	n.pubMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("node: publish %s on %s: %w", protocol.KindPublicComment, topic, err)
	}
	n.mu.Lock()
	j := n.topics[topic]
	n.mu.Unlock()
	if j != nil {
		if err := j.topic.Publish(ctx, rec.Raw); err != nil {
			n.log.Warn("gossip of stored record failed; sync will deliver it", "cid", rec.CID, "err", err)
		}
	}
	return rec, nil
}

// buildComment builds and signs the node's next comment on topic: its
// deps are the topic's heads. The caller holds pubMu.
func (n *Node) buildComment(key ed25519.PrivateKey, topic string, body *protocol.PublicComment) (*protocol.Record, error) {
	seq, prev, err := n.store.ChainHead([]byte(key.Public().(ed25519.PublicKey)), topic)
	if err != nil {
		return nil, err
	}
	heads, err := n.store.Heads(topic)
	if err != nil {
		return nil, err
	}
	var deps []cid.Cid
	for _, c := range heads {
		if !c.Equals(prev) && len(deps) < protocol.MaxDeps {
			deps = append(deps, c)
		}
	}
	now := n.opts.clock()
	for _, c := range append([]cid.Cid{prev}, deps...) {
		if !c.Defined() {
			continue
		}
		m, err := n.store.Meta(c)
		if err != nil {
			return nil, fmt.Errorf("dep %s: %w", c, err)
		}
		t := time.UnixMilli(m.Time)
		if c.Equals(prev) && now.Before(t.Add(protocol.MinCommentInterval)) {
			return nil, ErrCommentTooSoon
		}
		if t.After(now) {
			now = t
		}
	}
	return protocol.Build(key, protocol.Draft{
		Network: n.network, Kind: protocol.KindPublicComment, Topic: topic,
		Seq: seq + 1, Prev: prev, Deps: deps, Time: now, Body: body,
	})
}

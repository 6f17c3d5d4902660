package node

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// Publish builds a record of the given kind on topic with body, signs it
// with the node's key, stores it durably and then gossips it. The record's
// seq and prev continue the node's chain on the topic, and its deps are
// deps plus the topic's current heads and the members topic's heads (at
// most protocol.MaxDeps in all; the caller's deps come first). The claimed time is the node's clock, or the
// latest parent's claimed time if that is later. It returns the stored
// record; a gossip failure after the record is stored is logged, not
// returned, because sync delivers the record later.
//
// Publish joins the topic if the node has not joined it yet. On a node
// started with WithRecoverChain(true) it first confirms the node's chain
// head on the topic with connected peers and fails with ErrChainUnconfirmed
// if it cannot. It returns an error wrapping protocol.ErrObserver on an
// observer.
func (n *Node) Publish(ctx context.Context, kind, topic string, body protocol.Body, deps ...cid.Cid) (*protocol.Record, error) {
	if n.key == nil {
		return nil, protocol.ErrObserver
	}
	if err := protocol.ValidTopic(topic); err != nil {
		return nil, err
	}
	if err := n.join(topic); err != nil {
		return nil, err
	}
	if err := n.sync.confirmChain(ctx, topic); err != nil {
		return nil, fmt.Errorf("node: publish %s on %s: %w", kind, topic, err)
	}
	n.pubMu.Lock()
	rec, err := n.buildNext(kind, topic, body, deps)
	if err == nil {
		_, err = n.Ingest(ctx, rec.Raw, "", SourceLocal)
	}
	n.pubMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("node: publish %s on %s: %w", kind, topic, err)
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

// buildNext builds and signs the node's next record on topic. The caller
// holds pubMu.
func (n *Node) buildNext(kind, topic string, body protocol.Body, deps []cid.Cid) (*protocol.Record, error) {
	seq, prev, err := n.store.ChainHead([]byte(n.key.Public().(ed25519.PublicKey)), topic)
	if err != nil {
		return nil, err
	}
	heads, err := n.store.Heads(topic)
	if err != nil {
		return nil, err
	}
	if topic != protocol.TopicMembers {
		// The membership the author relies on must be in the record's
		// causal past, or peers cannot tell that the author is a member.
		mh, err := n.store.Heads(protocol.TopicMembers)
		if err != nil {
			return nil, err
		}
		heads = append(heads, mh...)
	}
	// The caller's deps are kept even when one is also the prev (a body
	// that references a record must list it in deps); heads that are the
	// prev are linked already.
	var all []cid.Cid
	seen := map[cid.Cid]bool{}
	for _, c := range deps {
		if c.Defined() && !seen[c] {
			seen[c] = true
			all = append(all, c)
		}
	}
	if len(all) > protocol.MaxDeps {
		return nil, protocol.Errorf(protocol.ReasonBadLinks, "%d deps, limit %d", len(all), protocol.MaxDeps)
	}
	seen[prev] = true
	for _, c := range heads {
		if !seen[c] && len(all) < protocol.MaxDeps {
			seen[c] = true
			all = append(all, c)
		}
	}
	now := n.opts.clock()
	for c := range seen {
		if !c.Defined() {
			continue
		}
		m, err := n.store.Meta(c)
		if err != nil {
			return nil, fmt.Errorf("dep %s: %w", c, err)
		}
		if t := time.UnixMilli(m.Time); t.After(now) {
			now = t
		}
	}
	return protocol.Build(n.key, protocol.Draft{
		Network: n.network, Kind: kind, Topic: topic,
		Seq: seq + 1, Prev: prev, Deps: all, Time: now, Body: body,
	})
}

package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/store"
)

// Publish builds a record of the given kind on topic with body, signs it
// with the node's key, stores it durably and then gossips it. The record's
// seq and prev continue the node's chain on the topic, and its deps are
// deps plus the topic's current heads and the members topic's heads (at
// most protocol.MaxDeps in all; the caller's deps come first). The claimed
// time is the node's clock, or the latest parent's claimed time if that is
// later. It returns the stored record.
//
// The record is built, signed, checked and stored by the apply loop, which
// owns the node's chain position: concurrent publishes, and records of the
// node's own chain arriving by sync, can never make two records at one seq.
// Once the loop has taken the request, the record's fate no longer depends
// on ctx: if ctx ends first, Publish returns ctx's error, but the record is
// still stored and gossiped (a gossip failure is logged; sync delivers the
// record later).
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
	req := &applyReq{
		draft: &ownDraft{kind: kind, topic: topic, body: body, deps: deps},
		src:   SourceLocal, received: n.opts.clock(), done: make(chan error, 1),
	}
	var err error
	select {
	case n.ing.reqs <- req:
		select {
		case err = <-req.done:
		case <-ctx.Done():
			err = ctx.Err()
		case <-n.ctx.Done():
			err = errClosed
		}
	case <-ctx.Done():
		err = ctx.Err()
	case <-n.ctx.Done():
		err = errClosed
	}
	if err != nil {
		return nil, fmt.Errorf("node: publish %s on %s: %w", kind, topic, err)
	}
	return req.rec, nil
}

// gossipQueue is the capacity of the queue of own records waiting to be
// gossiped.
const gossipQueue = 256

// gossipStored hands a durably stored record to the gossip goroutine: one
// of the node's own, or one that arrived by gossip before its past and was
// not forwarded then. It blocks while the queue is full, and returns at
// once when the node closes.
func (n *Node) gossipStored(rec *protocol.Record) {
	select {
	case n.gossipQ <- rec:
	case <-n.ctx.Done():
	}
}

// runGossip publishes the stored records handed to gossipStored on their
// topics, in the order they were stored, until ctx ends.
func (n *Node) runGossip(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case rec := <-n.gossipQ:
			n.mu.Lock()
			j := n.topics[rec.Env.Topic]
			n.mu.Unlock()
			if j == nil {
				continue
			}
			if err := j.topic.Publish(ctx, rec.Raw); err != nil {
				n.log.Warn("gossip of stored record failed; sync will deliver it", "cid", rec.CID, "err", err)
			}
		}
	}
}

// ownHead returns the head of the node's own chain on topic: the record
// with the highest seq the loop has accepted, or the store's chain head.
// Only the apply loop calls it.
func (in *ingester) ownHead(topic string) (protocol.Parent, error) {
	if p, ok := in.own[topic]; ok {
		return p, nil
	}
	pub := in.n.key.Public().(ed25519.PublicKey)
	_, prev, err := in.n.store.ChainHead(pub, topic)
	if err != nil {
		return protocol.Parent{}, err
	}
	var p protocol.Parent
	if prev.Defined() {
		m, err := in.n.store.Meta(prev)
		if err != nil {
			return protocol.Parent{}, err
		}
		p = protocol.Parent{CID: prev, Author: m.Author, Topic: m.Topic, Seq: m.Seq, Time: m.Time}
	}
	in.own[topic] = p
	return p, nil
}

// raiseOwn records an accepted record of the node's own.
func (in *ingester) raiseOwn(p protocol.Parent) error {
	cur, err := in.ownHead(p.Topic)
	if err != nil {
		return err
	}
	if !cur.CID.Defined() || p.Seq > cur.Seq {
		in.own[p.Topic] = p
	}
	return nil
}

// parent returns what the checks need of a record that is staged in the
// batch, in flight, recently written or stored.
func (in *ingester) parent(c cid.Cid, inBatch map[cid.Cid]*staged) (protocol.Parent, error) {
	if s, ok := inBatch[c]; ok {
		return s.meta, nil
	}
	in.inflightMu.Lock()
	p, ok := in.inflight[c]
	if !ok {
		p, ok = in.recent[c]
	}
	in.inflightMu.Unlock()
	if ok {
		return p, nil
	}
	m, err := in.n.store.Meta(c)
	if err != nil {
		return protocol.Parent{}, err
	}
	return protocol.Parent{CID: c, Author: m.Author, Topic: m.Topic, Seq: m.Seq, Time: m.Time}, nil
}

// build builds and signs the node's next record on the draft's topic. Only
// the apply loop calls it: the next seq is the loop's own chain head plus
// one, whatever is in flight.
func (in *ingester) build(d *ownDraft, inBatch map[cid.Cid]*staged) (*protocol.Record, error) {
	n := in.n
	head, err := in.ownHead(d.topic)
	if err != nil {
		return nil, fmt.Errorf("node: store: %w", err)
	}
	heads, err := n.store.Heads(d.topic)
	if err != nil {
		return nil, fmt.Errorf("node: store: %w", err)
	}
	if d.topic != protocol.TopicMembers {
		// The membership the author relies on must be in the record's
		// causal past, or peers cannot tell that the author is a member.
		mh, err := n.store.Heads(protocol.TopicMembers)
		if err != nil {
			return nil, fmt.Errorf("node: store: %w", err)
		}
		heads = append(heads, mh...)
	}
	// The caller's deps are kept even when one is also the prev (a body
	// that references a record must list it in deps); heads that are the
	// prev are linked already.
	var all []cid.Cid
	seen := map[cid.Cid]bool{}
	for _, c := range d.deps {
		if c.Defined() && !seen[c] {
			seen[c] = true
			all = append(all, c)
		}
	}
	if len(all) > protocol.MaxDeps {
		return nil, protocol.Errorf(protocol.ReasonBadLinks, "%d deps, limit %d", len(all), protocol.MaxDeps)
	}
	seen[head.CID] = true
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
		p, err := in.parent(c, inBatch)
		if errors.Is(err, store.ErrNotFound) {
			return nil, protocol.Errorf(protocol.ReasonMissingDeps, "dep %s is not stored", c)
		} else if err != nil {
			return nil, fmt.Errorf("node: store: dep %s: %w", c, err)
		}
		if t := time.UnixMilli(p.Time); t.After(now) {
			now = t
		}
	}
	return protocol.Build(n.key, protocol.Draft{
		Network: n.network, Kind: d.kind, Topic: d.topic,
		Seq: head.Seq + 1, Prev: head.CID, Deps: all, Time: now, Body: d.body,
	})
}

package node

import (
	"context"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// reportEquivocation publishes member.equivocation evidence when the node
// stores a second record of an author at one topic and seq: held is the
// record it stored first, conflicting the new one (both are kept).
// Observers only log. Evidence is published once per (author, topic, seq)
// by this node, and not at all once the node holds evidence against the
// key, in the background, because the apply loop that detects it also
// applies the evidence. Valid evidence suspends the member
// (docs/protocol.md 9.6).
func (n *Node) reportEquivocation(held cid.Cid, conflicting *protocol.Record) {
	if n.key == nil {
		return
	}
	if len(n.snapshot().members.Flagged(conflicting.Env.Author)) > 0 {
		return // evidence against the key is held already
	}
	slot := slotKey(conflicting.Env.Author, conflicting.Env.Topic, conflicting.Env.Seq)
	n.mu.Lock()
	if n.reported == nil {
		n.reported = map[string]bool{}
	}
	if n.reported[slot] || n.closed {
		n.mu.Unlock()
		return
	}
	n.reported[slot] = true
	// Started under mu, so Close (which sets closed under mu before it
	// waits) never waits while a goroutine is being added.
	n.wg.Go(func() {
		ctx, cancel := context.WithTimeout(n.ctx, time.Minute)
		defer cancel()
		if err := n.publishEquivocation(ctx, held, conflicting); err != nil {
			n.log.Warn("equivocation evidence not published", "author", fmt.Sprintf("%x", conflicting.Env.Author[:8]), "err", err)
		}
	})
	n.mu.Unlock()
}

func (n *Node) publishEquivocation(ctx context.Context, held cid.Cid, conflicting *protocol.Record) error {
	// The held record may still be in flight to the store.
	if err := n.WaitRecords(ctx, held); err != nil {
		return err
	}
	a, err := n.Record(held)
	if err != nil {
		return err
	}
	body, err := protocol.NewEquivocation(a, conflicting)
	if err != nil {
		return err
	}
	rec, err := n.Publish(ctx, protocol.KindMemberEquivocation, protocol.TopicMembers, body)
	if err != nil {
		return err
	}
	n.log.Warn("published equivocation evidence", "author", fmt.Sprintf("%x", conflicting.Env.Author[:8]), "evidence", rec.CID)
	return nil
}

package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// DefaultCheckpointInterval is how often a member node considers
// publishing a checkpoint on each issue topic it follows (see
// Node.Checkpoint). Public times (docs/protocol.md, "Witnessed time") are
// then at most about one interval later than publication.
const DefaultCheckpointInterval = 10 * time.Minute

// WithCheckpointInterval sets how often the node considers publishing
// checkpoints (default DefaultCheckpointInterval); 0 turns the publisher
// off (the node still answers Checkpoint calls). A positive interval must
// be at least protocol.MinCheckpointInterval. Observers never publish.
func WithCheckpointInterval(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return errors.New("node: checkpoint interval must be >= 0")
		}
		if d != 0 && d < protocol.MinCheckpointInterval {
			return fmt.Errorf("node: checkpoint interval %s is below the protocol minimum %s", d, protocol.MinCheckpointInterval)
		}
		o.checkpointInterval = d
		return nil
	}
}

// Checkpoint publishes a checkpoint on every issue topic the node has
// joined where its stakeholder group has something to witness and has not
// witnessed for interval: a record, other than a checkpoint, that no
// checkpoint of a member of the node's group covers yet, and no checkpoint
// of such a member claiming a time within interval of the node's clock
// (gov.Issue.Due). So a topic costs at most one checkpoint per group and
// interval however many members follow it, and a quiet topic costs
// nothing. A checkpoint the protocol refuses (another one of this node
// less than protocol.MinCheckpointInterval ago) is skipped. It returns the
// checkpoints published. It fails with protocol.ErrObserver on an
// observer; on a node that is not a member it publishes nothing.
func (n *Node) Checkpoint(ctx context.Context, interval time.Duration) ([]*protocol.Record, error) {
	if n.key == nil {
		return nil, protocol.ErrObserver
	}
	m, ok := n.MemberSet().Lookup(n.key.Public().(ed25519.PublicKey))
	if !ok {
		return nil, nil
	}
	var due []string
	now := n.opts.clock().UnixMilli()
	topics := n.Topics()
	err := n.ing.read(ctx, func(s *fedState) error {
		for _, topic := range topics {
			slug, ok := protocol.IssueSlug(topic)
			if !ok {
				continue
			}
			is, err := s.issue(slug)
			if err != nil {
				return err
			}
			if is != nil && is.Due(m.Group, now, interval.Milliseconds()) {
				due = append(due, topic)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(due)
	var out []*protocol.Record
	for _, topic := range due {
		r, err := n.Publish(ctx, protocol.KindCheckpoint, topic, &protocol.Checkpoint{})
		switch {
		case err == nil:
			out = append(out, r)
		case protocol.ReasonOf(err) == protocol.ReasonNotAllowed:
			n.log.Debug("checkpoint skipped", "topic", topic, "err", err)
		default:
			return out, err
		}
	}
	return out, nil
}

// runCheckpoints publishes checkpoints every interval (with up to a tenth
// of jitter, so that the members of a group do not all wake at once) until
// the node closes.
func (n *Node) runCheckpoints(interval time.Duration) {
	for {
		d := interval + time.Duration(rand.Int64N(int64(interval/10)+1))
		t := time.NewTimer(d)
		select {
		case <-n.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if _, err := n.Checkpoint(n.ctx, interval); err != nil && n.ctx.Err() == nil {
			n.log.Warn("checkpoint failed", "err", err)
		}
	}
}

package node

import (
	"context"
	"errors"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// Forwarding a gossiped record does not wait for its durable write.
//
// The gossip validator used to return only once the record was durable, so
// every hop of the gossip tree paid a group commit (an fsync) before
// passing the record on, and a record crossing the network paid one per
// hop: with 100 nodes on one disk, fsyncs queue behind each other and the
// p50 of publish -> stored on all grew to seconds (docs/benchmarks.md,
// "Live propagation"). Now the validator accepts a record for forwarding
// as soon as the apply loop has checked it (signature, topic, duplicates,
// every parent stored or in flight, links, times, chain slot, membership
// and process rules) and queued its durable write; the fsync of this hop
// overlaps with the next hops.
//
// What stays as it was: nothing unverified or refused is forwarded, nor a
// record whose past is incomplete (the checks are the same and complete
// before the validator returns); a record is acknowledged to local callers
// (Publish, Ingest, sync, the events of Subscribe and WaitRecords, the
// readers' snapshot) only once it is durable; the node's own records are
// gossiped only once durable; and the store stays causally closed, since
// records are written in the order they are queued. If the durable write
// then fails, the node stops (Node.Err); the record was valid and its
// peers store it by themselves.

// ingestGossip is Ingest for the gossip validator: it returns nil as soon
// as the record has passed every check and its durable write is queued,
// and otherwise what Ingest returns.
func (n *Node) ingestGossip(ctx context.Context, raw []byte, topic string, from peer.ID) (*protocol.Record, error) {
	received := n.opts.clock()
	rec, err := n.validateGossip(ctx, raw)
	if errors.Is(err, errClosed) || (err != nil && err == ctx.Err()) {
		return nil, err
	}
	if err == nil && rec.Env.Topic != topic {
		err = protocol.Errorf(protocol.ReasonWrongTopic, "record of topic %q arrived for topic %q", rec.Env.Topic, topic)
	}
	if err != nil {
		n.refused(err, topic, rec, SourceGossip)
		return nil, err
	}
	req := &applyReq{rec: rec, src: SourceGossip, from: from, received: received, done: make(chan error, 1), staged: make(chan struct{})}
	select {
	case n.ing.reqs <- req:
	case <-ctx.Done():
		return rec, ctx.Err()
	case <-n.ctx.Done():
		return rec, errClosed
	}
	select {
	case err := <-req.done:
		return rec, err
	case <-req.staged:
		return rec, nil
	case <-ctx.Done():
		return rec, ctx.Err()
	case <-n.ctx.Done():
		return rec, errClosed
	}
}

// validateGossip validates one gossiped record. When the verifier pool has
// nothing queued and fewer than GOMAXPROCS records are being checked this
// way, it checks the record on the caller's goroutine (pubsub's validation
// goroutine): a hand-off to a verifier goroutine costs a scheduling round
// trip, which on a loaded machine was most of the time a gossiped record
// spent in a node (167 ms of 170 ms on average, 50 nodes on one busy
// 2-core machine, docs/benchmarks.md). Under load the queue is not empty
// and records go to the pool, which checks them in batches.
func (n *Node) validateGossip(ctx context.Context, raw []byte) (*protocol.Record, error) {
	if len(n.verifyJobs) == 0 {
		select {
		case n.verifyInline <- struct{}{}:
			r, err := protocol.Validate(raw, n.network, n.opts.clock())
			<-n.verifyInline
			return r, err
		default:
		}
	}
	r := n.validateAll(ctx, [][]byte{raw})[0]
	return r.rec, r.err
}

// forwardOnStaged tells the gossip validators waiting on accepted records
// that their checks passed and their durable write is queued. The apply
// loop calls it right after queuing the batch.
func forwardOnStaged(accepted []*staged) {
	for _, s := range accepted {
		if s.req.staged != nil {
			close(s.req.staged)
		}
	}
}

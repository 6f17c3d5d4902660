package node

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// errHeld is the result of a record ingestMany's hold kept back.
var errHeld = errors.New("node: held for a later batch")

// ingestResult is the outcome of one record of ingestMany.
type ingestResult struct {
	rec *protocol.Record // nil if the record did not decode
	err error
}

// origin says where the records of an ingestMany call come from.
type origin struct {
	src  Source
	peer peer.ID // the sending peer (sync); "" if local
	// received, if not nil, is when each record was first received (a
	// reload of the pending area); otherwise now.
	received []time.Time
}

// ingestMany is the batch form of Ingest, for catch-ups: it verifies the
// records on GOMAXPROCS workers, then queues the valid ones to the apply
// loop in (claimed time, CID) order, so that parents mostly precede their
// children and a batch is written in a few group commits. It returns once
// the records are queued, with a function that waits for the apply loop's
// answers and returns the results (result i belongs to raws[i]), so a
// caller can verify the next batch while the loop writes this one; batches
// queued one after the other are applied in that order. Records must be of
// topic if it is not empty.
//
// If hold is not nil, ingestMany asks it about each valid record, parents
// first; a record it holds is not queued: it gets errHeld and its bytes are
// returned in held, for the caller to hand in again with a later batch (a
// catch-up holds a record whose parent is yet to come, so that it does not
// wait in the pending set).
func (n *Node) ingestMany(ctx context.Context, raws [][]byte, topic string, o origin, hold func(*protocol.Record) bool) (wait func() []ingestResult, held [][]byte) {
	res := make([]ingestResult, len(raws))
	src := o.src
	received := n.opts.clock()
	for i, j := range n.validateAll(ctx, raws) {
		rec, err := j.rec, j.err
		if err == nil && topic != "" && rec.Env.Topic != topic {
			err = protocol.Errorf(protocol.ReasonWrongTopic, "record of topic %q arrived for topic %q", rec.Env.Topic, topic)
		}
		res[i] = ingestResult{rec: rec, err: err}
	}

	order := make([]int, 0, len(raws))
	for i, r := range res {
		if r.err != nil {
			if protocol.ReasonOf(r.err) != "" { // not ctx's end or the node's
				n.refused(r.err, topic, r.rec, src)
			}
			continue
		}
		// Whether it is already held is the apply loop's to say.
		order = append(order, i)
	}
	if len(order) > 1 {
		order = parentsFirst(sortByTime(order, res), res)
	}
	if hold != nil {
		kept := order[:0]
		for _, i := range order {
			if hold(res[i].rec) {
				res[i].err = errHeld
				held = append(held, raws[i])
				continue
			}
			kept = append(kept, i)
		}
		order = kept
	}
	reqs := make([]*applyReq, len(order))
	for k, i := range order {
		at := received
		if o.received != nil {
			at = o.received[i]
		}
		reqs[k] = &applyReq{rec: res[i].rec, src: src, from: o.peer, received: at, done: make(chan error, 1)}
	}
	sent := 0
send:
	for _, req := range reqs {
		select {
		case n.ing.reqs <- req:
			sent++
		case <-ctx.Done():
			break send
		case <-n.ctx.Done():
			break send
		}
	}
	return func() []ingestResult {
		n.waitMany(ctx, res, order, reqs, sent)
		return res
	}, held
}

// waitMany fills in the results of the queued requests.
func (n *Node) waitMany(ctx context.Context, res []ingestResult, order []int, reqs []*applyReq, sent int) {
	for k, i := range order {
		if k >= sent {
			res[i].err = context.Cause(ctx)
			if n.ctx.Err() != nil {
				res[i].err = errClosed
			}
			continue
		}
		select {
		case err := <-reqs[k].done:
			res[i].err = err
		case <-ctx.Done():
			res[i].err = ctx.Err()
		case <-n.ctx.Done():
			res[i].err = errClosed
		}
	}
}

// parentsFirst reorders order (indexes into res, sorted by claimed time)
// so that a record comes after its parents in the same batch, keeping the
// time order otherwise. Records of one millisecond sort by CID, which can
// put a child first; the apply loop would then hold it as pending and look
// its parent up in the store before the parent arrives a moment later.
func parentsFirst(order []int, res []ingestResult) []int {
	at := make(map[cid.Cid]int, len(order)) // CID -> index into res
	for _, i := range order {
		at[res[i].rec.CID] = i
	}
	out := make([]int, 0, len(order))
	done := make(map[int]bool, len(order))
	var emit func(i int)
	emit = func(i int) {
		if done[i] {
			return
		}
		done[i] = true // before the parents: a cycle (impossible by hashing) cannot loop
		for _, l := range res[i].rec.Links() {
			if j, ok := at[l]; ok {
				emit(j)
			}
		}
		out = append(out, i)
	}
	for _, i := range order {
		emit(i)
	}
	return out
}

// sortByTime sorts order (indexes into res) by claimed time, then CID.
func sortByTime(order []int, res []ingestResult) []int {
	slices.SortFunc(order, func(a, b int) int {
		ra, rb := res[a].rec, res[b].rec
		if ra.Env.Time != rb.Env.Time {
			if ra.Env.Time < rb.Env.Time {
				return -1
			}
			return 1
		}
		return bytes.Compare(ra.CID.Bytes(), rb.CID.Bytes())
	})
	return order
}

package node

import (
	"context"
	"runtime"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// verifyJob is one record for the verifier pool.
type verifyJob struct {
	raw  []byte
	rec  *protocol.Record
	err  error
	done chan struct{} // closed once rec and err are set
}

// verifyQueue is the capacity of the verifier pool's queue, per worker.
const verifyQueue = 2 * protocol.MaxSigBatch

// runVerifier is one of the node's GOMAXPROCS verifier goroutines. Every
// ingest path (gossip, sync, local) hands its records to them. A worker
// takes every job queued, up to protocol.MaxSigBatch, and validates them
// with protocol.ValidateBatch: under load the signatures are checked in
// batches, at about half the CPU per record of checking them one by one;
// a lone record is checked alone, without waiting for company. Running
// the checks here rather than on each caller's goroutine also bounds them
// to the cores there are, whatever the number of callers, and keeps them
// on goroutines whose stacks have grown to what ed25519 and the decoder
// need (pubsub validates each message on a fresh goroutine). A worker
// finishes the jobs it took before it looks at ctx again; jobs left in the
// queue when the node closes are abandoned, and their callers return
// errClosed.
func (n *Node) runVerifier(ctx context.Context) {
	jobs := make([]*verifyJob, 0, protocol.MaxSigBatch)
	raws := make([][]byte, 0, protocol.MaxSigBatch)
	for {
		select {
		case j := <-n.verifyJobs:
			jobs = append(jobs[:0], j)
		case <-ctx.Done():
			return
		}
		// Callers woken together (by a group commit, or a burst of gossip)
		// queue their next records a moment apart: let them run before
		// taking what is queued. Under light load nothing else is runnable
		// and this returns at once.
		runtime.Gosched()
	drain:
		for len(jobs) < protocol.MaxSigBatch {
			select {
			case j := <-n.verifyJobs:
				jobs = append(jobs, j)
			default:
				break drain
			}
		}
		n.metrics.batch.Observe(float64(len(jobs)))
		raws = raws[:0]
		for _, j := range jobs {
			raws = append(raws, j.raw)
		}
		recs, errs := protocol.ValidateBatch(raws, n.network, n.opts.clock())
		for i, j := range jobs {
			j.rec, j.err = recs[i], errs[i]
			close(j.done)
		}
		clear(jobs)
		clear(raws)
	}
}

// validateAll validates raws on the verifier pool, as protocol.Validate
// would at about the current time: it queues them all, so the pool checks
// them in batches on every core, and waits for every one.
// Result i belongs to raws[i]; a record not validated before ctx ended or
// the node closed gets that error.
func (n *Node) validateAll(ctx context.Context, raws [][]byte) []ingestResult {
	res := make([]ingestResult, len(raws))
	jobs := make([]verifyJob, len(raws))
	queued := 0
queue:
	for i, raw := range raws {
		jobs[i] = verifyJob{raw: raw, done: make(chan struct{})}
		select {
		case n.verifyJobs <- &jobs[i]:
			queued++
		case <-ctx.Done():
			break queue
		case <-n.ctx.Done():
			break queue
		}
	}
	for i := range res {
		if i < queued {
			select {
			case <-jobs[i].done:
				res[i] = ingestResult{rec: jobs[i].rec, err: jobs[i].err}
				continue
			case <-ctx.Done():
			case <-n.ctx.Done():
			}
		}
		// Not queued, or abandoned (a worker may still write jobs[i]):
		// ctx ended or the node closed.
		res[i].err = ctx.Err()
		if res[i].err == nil {
			res[i].err = errClosed
		}
	}
	return res
}

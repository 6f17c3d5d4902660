package node

// Forwarding a gossiped record does not wait for its durable write.
//
// A gossip validator used to return only once the record was durable, so
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
// What stays as it was: nothing unverified or refused is forwarded (the
// checks are the same and complete before the validator returns); a
// record is acknowledged to local callers (Publish, Ingest, sync, the
// events of Subscribe and WaitRecords) only once it is durable; and the
// store stays causally closed, since records are written in the order
// they are queued. If the durable write then fails, the node logs it and
// the record is not stored here, but it was valid and peers store it by
// themselves: forwarding a valid record is never wrong, and sync brings
// the record back to this node.

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

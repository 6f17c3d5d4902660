package store

import (
	"context"
	"fmt"
)

// PutBatch stores entries durably in the given order, as Put does for each:
// they are queued back to back, so the committer writes them in order in as
// few group commits as its batch size allows, and an entry is never on
// stable storage before an entry that precedes it. The entries must satisfy
// Put's preconditions, with "stored" including earlier entries of the same
// call. It returns the Meta of every entry (the zero Meta for an entry that
// failed) and the first error, naming the entry's index.
func (s *Store) PutBatch(ctx context.Context, entries []Entry, firstSeen int64) ([]Meta, error) {
	wait, err := s.EnqueueBatch(ctx, entries, firstSeen)
	if err != nil {
		return nil, err
	}
	return wait(ctx)
}

// EnqueueBatch queues entries for durable storage in order, like PutBatch,
// but returns as soon as they are queued. The returned function waits until
// they are committed and returns what PutBatch would. Entries queued by
// later calls are committed after these, so a caller may queue a batch
// whose entries depend on an earlier batch that is not yet durable.
func (s *Store) EnqueueBatch(ctx context.Context, entries []Entry, firstSeen int64) (func(context.Context) ([]Meta, error), error) {
	for i := range entries {
		if err := entries[i].validate(); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.rlock(); err != nil {
		return nil, err
	}
	reqs := make([]*putReq, 0, len(entries))
	for i := range entries {
		r := &putReq{e: entries[i].clone(), firstSeen: firstSeen, done: make(chan putResult, 1)}
		select {
		case s.reqs <- r:
			reqs = append(reqs, r)
		case <-ctx.Done():
			s.mu.RUnlock()
			return nil, ctx.Err()
		}
	}
	s.mu.RUnlock()
	return func(ctx context.Context) ([]Meta, error) {
		metas := make([]Meta, len(reqs))
		var first error
		for i, r := range reqs {
			select {
			case res := <-r.done:
				metas[i] = res.meta
				if res.err != nil && first == nil {
					first = fmt.Errorf("entry %d of %d: %w", i, len(reqs), res.err)
				}
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return metas, first
	}, nil
}

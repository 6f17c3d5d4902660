package store

import (
	"context"
	"errors"

	"github.com/ipfs/go-cid"
)

// ErrWriterTaken is returned by Store.Writer when the store's writer
// handle has already been taken.
var ErrWriterTaken = errors.New("store: writer handle already taken")

// Writer is the handle of the store's one writer (a node's apply loop). It
// holds the reads that are exact only for the goroutine that also knows
// what it has queued and not yet seen return (ChainAt), beside the write
// that queues batches. Only the writer holds it; every other reader uses
// the Store's methods.
type Writer struct {
	s *Store
}

// Writer returns the store's writer handle. It can be taken once; later
// calls return ErrWriterTaken.
func (s *Store) Writer() (*Writer, error) {
	if !s.writerTaken.CompareAndSwap(false, true) {
		return nil, ErrWriterTaken
	}
	return &Writer{s: s}, nil
}

// ChainAt is Store.ChainAt for the writer: it answers ErrNotFound from
// memory, without reading pebble, when seq is above the highest seq it
// knows of on the chain (see chainTops), as it is for a record that extends
// its author's chain. The memory is updated when a commit is durable, just
// before the Put or batch that wrote it returns: a record of a commit that
// has not returned yet may be reported absent although a pebble read would
// already find it. The writer keeps track of what it has queued and not
// yet seen return, so it is not misled by that; no one else may rely on it.
func (w *Writer) ChainAt(author []byte, topic string, seq uint64) (cid.Cid, error) {
	return w.s.chainAt(author, topic, seq, true)
}

// EnqueueBatch is Store.EnqueueBatch.
func (w *Writer) EnqueueBatch(ctx context.Context, entries []Entry, firstSeen int64) (func(context.Context) ([]Meta, error), error) {
	return w.s.EnqueueBatch(ctx, entries, firstSeen)
}

package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/store"
)

// Record returns a stored record, decoded. The store checks that the bytes
// hash to c on the way out (a damaged block is an error wrapping
// store.ErrCorrupt); they are then decoded without repeating the
// canonical-form check that the record passed before it was stored
// (protocol.DecodeTrusted).
func (n *Node) Record(c cid.Cid) (*protocol.Record, error) {
	raw, err := n.store.Get(c)
	if err != nil {
		return nil, err
	}
	return decodeStored(raw, c)
}

// decodeStored decodes raw, the bytes store.Get returned for c. Every
// record in the store passed protocol.Validate before it was written, and
// Get has just checked that raw hashes to c, so the trusted decode is
// enough.
func decodeStored(raw []byte, c cid.Cid) (*protocol.Record, error) {
	r, err := protocol.DecodeTrusted(raw, c)
	if err != nil {
		return nil, fmt.Errorf("node: stored record %s does not decode: %w", c, err)
	}
	return r, nil
}

// WaitRecords blocks until every CID in cids is stored and visible to the
// node's readers (the derived state counts it), or ctx ends. It subscribes
// to events before it looks at the store, so it cannot miss a record stored
// in between.
func (n *Node) WaitRecords(ctx context.Context, cids ...cid.Cid) error {
	set := make(map[cid.Cid]bool, len(cids)) // read by the filter, never written after this
	want := make(map[cid.Cid]bool, len(cids))
	for _, c := range cids {
		set[c], want[c] = true, true
	}
	sub := n.Subscribe(func(e Event) bool { return set[e.Record.CID] })
	defer sub.Close()
	var newest uint64 // of the records already stored
	for c := range want {
		m, err := n.store.Meta(c)
		switch {
		case errors.Is(err, store.ErrNotFound):
			continue
		case err != nil:
			return err
		}
		delete(want, c)
		newest = max(newest, m.Arrival)
	}
	// A record in the store is visible to readers once the snapshot that
	// includes it is published, a moment after its commit (events come
	// after that too).
	if len(want) == 0 {
		if !n.shown.wait(newest, ctx.Done(), n.ctx.Done()) {
			return fmt.Errorf("node %s: waiting for records to be visible: %w", n.ID(), errors.Join(ctx.Err(), n.ctx.Err()))
		}
		return nil
	}
	for len(want) > 0 {
		select {
		case e, ok := <-sub.C:
			if !ok {
				return fmt.Errorf("node: closed while waiting for %d records", len(want))
			}
			delete(want, e.Record.CID)
		case <-ctx.Done():
			return fmt.Errorf("node %s: %d of %d records still missing: %w", n.ID(), len(want), len(cids), ctx.Err())
		}
	}
	return nil
}

// Records reads the stored records cs and calls fn with each, decoded as
// Record does, or with the error Record would give (store.ErrNotFound, an
// error wrapping store.ErrCorrupt, a decode error). It reads them in the
// store's key order, not in the order of cs, with one iterator
// (store.GetMany), which for many records costs less than a Record each.
// fn must not call the node's store.
func (n *Node) Records(cs []cid.Cid, fn func(c cid.Cid, r *protocol.Record, err error)) error {
	return n.store.GetMany(cs, func(c cid.Cid, raw []byte, err error) error {
		if err != nil {
			fn(c, nil, err)
			return nil
		}
		r, err := decodeStored(raw, c)
		fn(c, r, err)
		return nil
	})
}

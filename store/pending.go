package store

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/go-cid"
)

// The pending area holds records that are valid on their own but wait for
// their causal past. They are not blocks of the store (Get, Has and the
// indexes do not see them); the node keeps them here so a restart does not
// lose them. Writes are not synced: a pending record lost in a crash is
// fetched again by sync.

// PutPending keeps raw, the bytes of the record c, in the pending area.
func (s *Store) PutPending(c cid.Cid, raw []byte) error {
	if err := s.rlock(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if err := s.db.Set(cidKey(pPending, c), raw, pebble.NoSync); err != nil {
		return fmt.Errorf("store: put pending %s: %w", c, err)
	}
	return nil
}

// DeletePending removes c from the pending area; removing an absent record
// is not an error.
func (s *Store) DeletePending(c cid.Cid) error {
	if err := s.rlock(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if err := s.db.Delete(cidKey(pPending, c), pebble.NoSync); err != nil {
		return fmt.Errorf("store: delete pending %s: %w", c, err)
	}
	return nil
}

// Pending calls fn for every record in the pending area, with copies of
// its bytes, in CID order, until fn returns an error.
func (s *Store) Pending(fn func(c cid.Cid, raw []byte) error) error {
	if err := s.rlock(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{pPending}, UpperBound: []byte{pPending + 1}})
	if err != nil {
		return fmt.Errorf("store: pending: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		c, err := cid.Cast(it.Key()[1:])
		if err != nil {
			return fmt.Errorf("store: pending key: %w", err)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("store: pending %s: %w", c, err)
		}
		if err := fn(c, append([]byte(nil), v...)); err != nil {
			return err
		}
	}
	return it.Error()
}

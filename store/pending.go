package store

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/go-cid"
)

// The pending area holds records that are valid on their own but wait for
// their causal past. They are not blocks of the store (Get, Has and the
// indexes do not see them); the node keeps them here so a restart does not
// lose them, and drops them again when they expire or can never complete
// (docs/protocol.md 7.1). Writes are not synced: a pending record lost in
// a crash is fetched again by sync.
//
// A value is pendingV1 (one byte), the time the node received the record
// (unix milliseconds, 8 bytes big-endian), then the record's bytes. Values
// written before the time was kept are the record's bytes alone; a record
// is a CBOR map, whose first byte is never pendingV1 (CBOR unsigned 0), so
// the two read apart, and an old entry reads with received 0.

// pendingV1 is the first byte of a pending value that carries its time.
const pendingV1 = 0x00

// PendingEntry is a record in the pending area.
type PendingEntry struct {
	CID cid.Cid
	Raw []byte // the record's bytes
	// Received is when the node received the record, in unix
	// milliseconds; 0 for an entry written before the time was kept.
	Received int64
}

// PutPending keeps raw, the bytes of the record c received at received
// (unix milliseconds), in the pending area.
func (s *Store) PutPending(c cid.Cid, raw []byte, received int64) error {
	if err := s.rlock(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	v := make([]byte, 0, 9+len(raw))
	v = append(v, pendingV1)
	v = binary.BigEndian.AppendUint64(v, uint64(received))
	v = append(v, raw...)
	if err := s.db.Set(cidKey(pPending, c), v, pebble.NoSync); err != nil {
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

// Pending calls fn for every record in the pending area, with a copy of
// its bytes, in CID order, until fn returns an error.
func (s *Store) Pending(fn func(e PendingEntry) error) error {
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
		e := PendingEntry{CID: c}
		if len(v) >= 9 && v[0] == pendingV1 {
			e.Received = int64(binary.BigEndian.Uint64(v[1:9]))
			v = v[9:]
		}
		e.Raw = append([]byte(nil), v...)
		if err := fn(e); err != nil {
			return err
		}
	}
	return it.Error()
}

package store

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// The block list holds the relaying keys whose public records the node's
// operator chose not to forward or show (node.Block), so a restart keeps
// them blocked. Keys are 0x0c | author key (32 bytes); values are the time
// of the block (8-byte big-endian unix milliseconds) followed by the
// operator's reason (UTF-8, may be empty). Writes are synced: they are
// answers to an operator's command. The store gives the list no meaning.

// Block is an entry of the block list.
type Block struct {
	// Key is the blocked author key (32 bytes).
	Key []byte
	// Since is when the key was blocked, in unix milliseconds.
	Since int64
	// Reason is the operator's note; may be empty.
	Reason string
}

// SetBlock adds b to the block list, or replaces the entry of its key.
func (s *Store) SetBlock(b Block) error {
	if err := validAuthor(b.Key); err != nil {
		return err
	}
	if err := s.rlock(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(b.Reason)), uint64(b.Since))
	if err := s.db.Set(append([]byte{pBlockList}, b.Key...), append(v, b.Reason...), pebble.Sync); err != nil {
		return fmt.Errorf("store: block list: %w", err)
	}
	return nil
}

// DeleteBlock removes key from the block list; removing a key that is not
// there does nothing.
func (s *Store) DeleteBlock(key []byte) error {
	if err := validAuthor(key); err != nil {
		return err
	}
	if err := s.rlock(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if err := s.db.Delete(append([]byte{pBlockList}, key...), pebble.Sync); err != nil {
		return fmt.Errorf("store: block list: %w", err)
	}
	return nil
}

// Blocks returns the block list, sorted by key bytes.
func (s *Store) Blocks() ([]Block, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{pBlockList}, UpperBound: []byte{pBlockList + 1}})
	if err != nil {
		return nil, fmt.Errorf("store: block list: %w", err)
	}
	var out []Block
	for ok := it.First(); ok; ok = it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != 1+AuthorSize || len(v) < 8 {
			_ = it.Close()
			return nil, fmt.Errorf("%w: block list entry %x", ErrCorrupt, k)
		}
		out = append(out, Block{Key: append([]byte(nil), k[1:]...), Since: int64(binary.BigEndian.Uint64(v)), Reason: string(v[8:])})
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("store: block list: %w", err)
	}
	return out, nil
}

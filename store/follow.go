package store

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// The follow list holds the issue topics the node's operator chose to
// follow at runtime, so a restart follows them again. Keys are
// 0x0b | slug, values empty. Writes are synced: they are answers to an
// operator's command.

// SetFollow adds slug to the follow list (on) or removes it.
func (s *Store) SetFollow(slug string, on bool) error {
	if err := validName("slug", slug); err != nil {
		return err
	}
	if err := s.rlock(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	k := append([]byte{pFollow}, slug...)
	var err error
	if on {
		err = s.db.Set(k, nil, pebble.Sync)
	} else {
		err = s.db.Delete(k, pebble.Sync)
	}
	if err != nil {
		return fmt.Errorf("store: follow list: %w", err)
	}
	return nil
}

// Follows returns the follow list, sorted.
func (s *Store) Follows() ([]string, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{pFollow}, UpperBound: []byte{pFollow + 1}})
	if err != nil {
		return nil, fmt.Errorf("store: follow list: %w", err)
	}
	var out []string
	for ok := it.First(); ok; ok = it.Next() {
		out = append(out, string(it.Key()[1:]))
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("store: follow list: %w", err)
	}
	return out, nil
}

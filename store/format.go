package store

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// FormatVersion is the on-disk format version this build of the store
// writes, and the newest it reads. It is kept in the schema key (0x00, one
// byte). An older store is upgraded at Open by the migrations, one version
// at a time; a newer one is refused with ErrNewerFormat. Change it (and
// add a migration) whenever the meaning of a key or value changes.
const FormatVersion = 1

// ErrNewerFormat is returned by Open when the directory holds a store
// written by a newer build, in a format version this build cannot read. Its
// message names both versions. Downgrading is not supported: run the newer
// build, or restore a backup made by this one.
var ErrNewerFormat = errors.New("store: on-disk format is newer than this build")

// migration upgrades a store from one format version to the next. It reads
// through db and writes through b, which Open commits (synced) together
// with the new version number, so a crash leaves the old version or the
// new one, never a mix.
type migration func(db *pebble.DB, b *pebble.Batch) error

// migrations[v] upgrades format version v to v+1. Version 1 is the first
// format; no migration exists yet.
var migrations = map[int]migration{}

// checkFormat reads the store's format version, writes FormatVersion into
// a new store, refuses a newer one and migrates an older one.
func (s *Store) checkFormat(dir string) error {
	v, err := s.getCopy(schemaKey)
	switch {
	case errors.Is(err, ErrNotFound):
		// A new store. (Every store since the first build has the key.)
		if err := s.db.Set(schemaKey, []byte{FormatVersion}, pebble.Sync); err != nil {
			return fmt.Errorf("store: write format version: %w", err)
		}
		return nil
	case err != nil:
		return err
	case len(v) != 1 || v[0] == 0:
		return fmt.Errorf("%w: format version key %x", ErrIncompatible, v)
	}
	return migrate(s.db, dir, int(v[0]), FormatVersion, migrations)
}

// migrate upgrades the store in db from format version from to to with
// steps, one committed batch per version, or refuses a store newer than
// to.
func migrate(db *pebble.DB, dir string, from, to int, steps map[int]migration) error {
	if from > to {
		return fmt.Errorf("%w: the store in %q has format version %d; this build reads versions up to %d: upgrade clearinghouse, or restore a backup made by this version",
			ErrNewerFormat, dir, from, to)
	}
	for v := from; v < to; v++ {
		step, ok := steps[v]
		if !ok {
			return fmt.Errorf("%w: no migration from format version %d to %d", ErrIncompatible, v, v+1)
		}
		b := db.NewBatch()
		if err := step(db, b); err != nil {
			_ = b.Close()
			return fmt.Errorf("store: migrate format version %d to %d: %w", v, v+1, err)
		}
		if err := b.Set(schemaKey, []byte{byte(v + 1)}, nil); err != nil {
			_ = b.Close()
			return fmt.Errorf("store: migrate format version %d to %d: %w", v, v+1, err)
		}
		if err := b.Commit(pebble.Sync); err != nil {
			_ = b.Close()
			return fmt.Errorf("store: migrate format version %d to %d: %w", v, v+1, err)
		}
		if err := b.Close(); err != nil {
			return err
		}
	}
	return nil
}

// Checkpoint writes a consistent copy of the store to dir, which must not
// exist (its parent must): every record whose Put returned before
// Checkpoint was called is in it. The copy is a pebble database that Open
// reads like the original; the store keeps running meanwhile (files are
// hard-linked where the file system allows, so it costs little space).
func (s *Store) Checkpoint(dir string) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if !s.onDisk {
		return fmt.Errorf("%w: checkpoint of a store that is not on disk", ErrInvalid)
	}
	if err := s.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("store: checkpoint to %q: %w", dir, err)
	}
	return nil
}

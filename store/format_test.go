package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/ipfs/go-cid"
)

// setFormat overwrites the format version of the closed store in dir.
func setFormat(t *testing.T, dir string, v byte) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{FormatMajorVersion: pebble.FormatNewest})
	wantNoErr(t, err)
	wantNoErr(t, db.Set(schemaKey, []byte{v}, pebble.Sync))
	wantNoErr(t, db.Close())
}

// TestNewerFormatRefused: a store written by a newer build is refused
// with ErrNewerFormat and a message naming both versions, and left as it
// was.
func TestNewerFormatRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s, err := Open(dir, WithLogger(testLogger(t)))
	wantNoErr(t, err)
	mustPut(t, s, mkEntry(t, "kept", author(1), "issue/privacy", 1, cid.Undef))
	wantNoErr(t, s.Close())

	setFormat(t, dir, FormatVersion+1)
	_, err = Open(dir, WithLogger(testLogger(t)))
	wantErr(t, err, ErrNewerFormat)
	for _, want := range []string{"format version 2", "versions up to 1", dir} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	// Untouched: with the version put back, the record is there.
	setFormat(t, dir, FormatVersion)
	s, err = Open(dir, WithLogger(testLogger(t)))
	wantNoErr(t, err)
	defer s.Close()
	if st, err := s.Stats(); err != nil || st.Records != 1 {
		t.Fatalf("stats %+v, %v; want 1 record", st, err)
	}
}

// TestMigrate: migrate runs each step from the store's version to the
// current one, in order, committing the version with each step; a missing
// step stops it with ErrIncompatible at the version it reached.
func TestMigrate(t *testing.T) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	wantNoErr(t, err)
	defer db.Close()
	wantNoErr(t, db.Set(schemaKey, []byte{1}, pebble.Sync))
	var ran []int
	step := func(v int) migration {
		return func(db *pebble.DB, b *pebble.Batch) error {
			ran = append(ran, v)
			return b.Set([]byte{0xf0, byte(v)}, nil, nil)
		}
	}
	wantNoErr(t, migrate(db, "mem", 1, 3, map[int]migration{1: step(1), 2: step(2)}))
	if len(ran) != 2 || ran[0] != 1 || ran[1] != 2 {
		t.Fatalf("steps ran %v, want [1 2]", ran)
	}
	version := func() byte {
		v, closer, err := db.Get(schemaKey)
		wantNoErr(t, err)
		defer closer.Close()
		return v[0]
	}
	if v := version(); v != 3 {
		t.Fatalf("version after migrate = %d, want 3", v)
	}
	for _, k := range [][]byte{{0xf0, 1}, {0xf0, 2}} {
		if _, closer, err := db.Get(k); err != nil {
			t.Fatalf("key %x of a step: %v", k, err)
		} else {
			closer.Close()
		}
	}

	// A failing step leaves the version where it was.
	boom := errors.New("boom")
	err = migrate(db, "mem", 3, 5, map[int]migration{3: func(*pebble.DB, *pebble.Batch) error { return boom }})
	wantErr(t, err, boom)
	if v := version(); v != 3 {
		t.Fatalf("version after a failed step = %d, want 3", v)
	}
	wantErr(t, migrate(db, "mem", 3, 4, nil), ErrIncompatible)
}

// TestCheckpoint: a checkpoint taken while Puts are running holds every
// record whose Put had returned, and opens as a store of its own.
func TestCheckpoint(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "store"), WithLogger(testLogger(t)))
	wantNoErr(t, err)
	defer s.Close()
	var acked []cid.Cid
	prev := cid.Undef
	for i := range 200 {
		e := mkEntry(t, "r", author(1), "issue/privacy", uint64(i+1), prev)
		mustPut(t, s, e)
		acked, prev = append(acked, e.CID), e.CID
	}
	// Writes go on during the checkpoint.
	var more []Entry
	for i := range 200 {
		e := mkEntry(t, "r", author(1), "issue/privacy", uint64(201+i), prev)
		more, prev = append(more, e), e.CID
	}
	done := make(chan error, 1)
	go func() {
		for _, e := range more {
			if _, err := s.Put(context.Background(), e, 0); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	backup := filepath.Join(dir, "backup")
	wantNoErr(t, s.Checkpoint(backup))
	wantNoErr(t, <-done)
	if err := s.Checkpoint(backup); err == nil {
		t.Error("checkpoint into an existing directory succeeded")
	}

	b, err := Open(backup, WithLogger(testLogger(t)))
	wantNoErr(t, err) // Open checks the totals against the arrival index
	defer b.Close()
	for _, c := range acked {
		if ok, err := b.Has(c); err != nil || !ok {
			t.Fatalf("acknowledged record %s not in the checkpoint: %v", c, err)
		}
	}
	st, err := b.Stats()
	wantNoErr(t, err)
	if st.Records < uint64(len(acked)) || st.Records > uint64(len(acked)+len(more)) {
		t.Fatalf("checkpoint holds %d records, want %d to %d", st.Records, len(acked), len(acked)+len(more))
	}
}

// TestCheckpointInMemory: a store that is not on disk cannot be
// checkpointed to a directory (it would write into its own file system).
func TestCheckpointInMemory(t *testing.T) {
	s := openMem(t)
	wantErr(t, s.Checkpoint(filepath.Join(t.TempDir(), "x")), ErrInvalid)
}

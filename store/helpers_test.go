package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// testLogger logs warnings and errors into the test's output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// openMem opens an in-memory store closed by t.Cleanup.
func openMem(t testing.TB, opts ...Option) *Store {
	t.Helper()
	s, err := Open("", append([]Option{WithInMemory(), WithLogger(testLogger(t))}, opts...)...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// author returns a fake 32-byte author key.
func author(n byte) []byte { return bytes.Repeat([]byte{n}, AuthorSize) }

// cidOf returns the CIDv1 dag-cbor sha2-256 of data.
func cidOf(t testing.TB, data []byte) cid.Cid {
	t.Helper()
	sum, err := mh.Sum(data, mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.DagCBOR, sum)
}

// mkEntry builds an entry whose Data is arbitrary bytes derived from its
// fields and body, so equal arguments give equal CIDs and a different body
// gives a different record for the same chain slot.
func mkEntry(t testing.TB, body string, a []byte, topic string, seq uint64, prev cid.Cid, deps ...cid.Cid) Entry {
	t.Helper()
	data := fmt.Appendf(nil, "%s|%x|%s|%d|%s|%v", body, a, topic, seq, prev, deps)
	return Entry{
		CID:    cidOf(t, data),
		Data:   data,
		Topic:  topic,
		Kind:   "statement",
		Author: a,
		Seq:    seq,
		Prev:   prev,
		Deps:   deps,
		Time:   int64(seq) * 1000,
	}
}

// mustPut puts e and fails the test on any error.
func mustPut(t testing.TB, s *Store, e Entry) Meta {
	t.Helper()
	m, err := s.Put(context.Background(), e, 42)
	if err != nil {
		t.Fatalf("Put %s: %v", e.CID, err)
	}
	return m
}

// wantErr fails the test unless errors.Is(err, target).
func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

// wantNoErr fails the test on a non-nil err.
func wantNoErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// cidsEqual reports whether a and b hold the same CIDs in the same order.
func cidsEqual(a, b []cid.Cid) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equals(b[i]) {
			return false
		}
	}
	return true
}

// sortedCIDs returns cs sorted by CID bytes, the order of Heads.
func sortedCIDs(cs ...cid.Cid) []cid.Cid {
	out := slices.Clone(cs)
	slices.SortFunc(out, func(a, b cid.Cid) int { return strings.Compare(a.KeyString(), b.KeyString()) })
	return out
}

// metaEqual reports whether two Metas are equal.
func metaEqual(a, b Meta) bool {
	return a.CID.Equals(b.CID) && a.Topic == b.Topic && a.Kind == b.Kind &&
		bytes.Equal(a.Author, b.Author) && a.Seq == b.Seq && a.Time == b.Time &&
		a.Arrival == b.Arrival && a.FirstSeen == b.FirstSeen && a.Size == b.Size
}

// commitGroup runs one group commit of entries directly, so that a test can
// be sure they share a batch. The committer goroutine is idle (no Put is in
// flight), so this is the only writer.
func commitGroup(s *Store, entries ...Entry) []putResult {
	group := make([]*putReq, len(entries))
	for i, e := range entries {
		group[i] = &putReq{e: e.clone(), firstSeen: 7, done: make(chan putResult, 1)}
	}
	s.commit(group)
	out := make([]putResult, len(group))
	for i, r := range group {
		out[i] = <-r.done
	}
	return out
}

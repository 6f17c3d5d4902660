package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
)

// TestChainTopsAfterReopen: a store reopened with an empty cache still
// finds duplicates and chain conflicts of records stored before, and
// appends after them.
func TestChainTopsAfterReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	a := author(7)
	var chain []Entry
	prev := cid.Undef
	for seq := uint64(1); seq <= 5; seq++ {
		e := mkEntry(t, "r", a, "issue/x", seq, prev)
		mustPut(t, s, e)
		chain = append(chain, e)
		prev = e.CID
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })

	m, err := s.Put(context.Background(), chain[2], 99)
	wantErr(t, err, ErrExists)
	if m.Arrival != 3 || !m.CID.Equals(chain[2].CID) {
		t.Fatalf("duplicate of seq 3 returned %+v, want the stored Meta (arrival 3)", m)
	}
	_, err = s.Put(context.Background(), mkEntry(t, "other", a, "issue/x", 2, chain[0].CID), 99)
	wantErr(t, err, ErrChainConflict)
	if c, err := fast(s).ChainAt(a, "issue/x", 5); err != nil || !c.Equals(chain[4].CID) {
		t.Fatalf("Writer.ChainAt 5 = %s, %v; want %s", c, err, chain[4].CID)
	}
	if _, err := fast(s).ChainAt(a, "issue/x", 6); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Writer.ChainAt 6: %v, want ErrNotFound", err)
	}
	mustPut(t, s, mkEntry(t, "r", a, "issue/x", 6, prev))
	if _, err := fast(s).ChainAt(a, "issue/x", 6); err != nil {
		t.Fatalf("Writer.ChainAt 6 after Put: %v", err)
	}
}

// TestChainTopsForgetting: with room for two chains in the cache, records
// of many interleaved chains are still checked correctly as entries are
// forgotten and read again.
func TestChainTopsForgetting(t *testing.T) {
	s := openMem(t)
	s.tops.max = 2
	const chains, length = 6, 5
	entries := make([][]Entry, chains)
	for seq := uint64(1); seq <= length; seq++ {
		for i := range chains {
			prev := cid.Undef
			if seq > 1 {
				prev = entries[i][seq-2].CID
			}
			e := mkEntry(t, "r", author(byte(i+1)), "issue/x", seq, prev)
			mustPut(t, s, e)
			entries[i] = append(entries[i], e)
		}
	}
	if n := len(s.tops.m); n > 2 {
		t.Fatalf("cache holds %d chains, limit 2", n)
	}
	for i := range chains {
		for _, e := range entries[i] {
			_, err := s.Put(context.Background(), e, 1)
			wantErr(t, err, ErrExists)
			_, err = s.Put(context.Background(), mkEntry(t, "forked", e.Author, e.Topic, e.Seq, e.Prev), 1)
			wantErr(t, err, ErrChainConflict)
		}
		if _, err := fast(s).ChainAt(author(byte(i+1)), "issue/x", length+1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("chain %d: ChainAt past the top: %v", i, err)
		}
	}
	if st, _ := s.Stats(); st.Records != chains*length {
		t.Fatalf("stored %d records, want %d", st.Records, chains*length)
	}
}

// TestChainAtSeesEveryCommit: once Put returns, Writer.ChainAt finds the record,
// while other goroutines load and forget cache entries concurrently (run
// it with -race).
func TestChainAtSeesEveryCommit(t *testing.T) {
	s := openMem(t)
	s.tops.max = 3
	const writers, length = 4, 150
	ctx, cancel := context.WithCancel(context.Background())
	var readers sync.WaitGroup
	for r := range 2 {
		readers.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				_, _ = fast(s).ChainAt(author(byte(1+(i+r)%writers)), "issue/x", uint64(1+i%length))
			}
		})
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			a := author(byte(1 + w))
			prev := cid.Undef
			for seq := uint64(1); seq <= length; seq++ {
				e := mkEntry(t, "r", a, "issue/x", seq, prev)
				if _, err := s.Put(context.Background(), e, 1); err != nil {
					errs <- err
					return
				}
				if c, err := fast(s).ChainAt(a, "issue/x", seq); err != nil || !c.Equals(e.CID) {
					errs <- errors.Join(errors.New("Writer.ChainAt after Put returned"), err)
					return
				}
				prev = e.CID
			}
		})
	}
	wg.Wait()
	cancel()
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestHeadsCacheMatchesIndex: over a random DAG on three topics, with room
// for two topics in the cache, Heads always equals a scan of the head
// index in pebble, before and after a reopen.
func TestHeadsCacheMatchesIndex(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	s.heads.max = 2
	topics := []string{"issue/a", "issue/b", "issue/c"}
	rng := rand.New(rand.NewPCG(3, 4))
	byTopic := map[string][]cid.Cid{}
	tops := map[string]cid.Cid{} // author|topic -> last
	seqs := map[string]uint64{}
	check := func(s *Store) {
		t.Helper()
		for _, tp := range topics {
			got, err := s.Heads(tp)
			if err != nil {
				t.Fatal(err)
			}
			scan, err := s.scanHeads(tp)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(scan)
			if len(got) != len(scan) {
				t.Fatalf("%s: Heads has %d, index %d", tp, len(got), len(scan))
			}
			for i := range got {
				if got[i].KeyString() != scan[i] {
					t.Fatalf("%s: head %d differs from the index", tp, i)
				}
			}
		}
	}
	for round := range 60 {
		var batch []Entry
		for range 1 + rng.IntN(6) {
			tp := topics[rng.IntN(len(topics))]
			a := author(byte(1 + rng.IntN(4)))
			key := string(a) + tp
			seqs[key]++
			var deps []cid.Cid
			for range rng.IntN(3) {
				if c := byTopic[tp]; len(c) > 0 {
					deps = append(deps, c[rng.IntN(len(c))])
				}
			}
			e := mkEntry(t, fmt.Sprint(round), a, tp, seqs[key], tops[key], deps...)
			batch = append(batch, e)
			tops[key] = e.CID
			byTopic[tp] = append(byTopic[tp], e.CID)
		}
		if _, err := s.PutBatch(context.Background(), batch, 1); err != nil {
			t.Fatal(err)
		}
		check(s)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir, WithLogger(testLogger(t))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	check(s)
}

// TestHeadsNeverLagReads: a reader that finds a record in the store finds
// it, or a record after it, among the heads: the cached heads change with
// the records becoming readable (a commit's records are readable in pebble
// before its Put returns).
func TestHeadsNeverLagReads(t *testing.T) {
	s := openMem(t)
	a := author(3)
	const n = 300
	chain := make([]Entry, n)
	prev := cid.Undef
	for i := range chain {
		chain[i] = mkEntry(t, "r", a, "issue/x", uint64(i+1), prev)
		prev = chain[i].CID
	}
	done := make(chan error, 1)
	go func() {
		for _, e := range chain {
			if _, err := s.Put(context.Background(), e, 1); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := range chain {
		for {
			ok, err := s.Has(chain[i].CID)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				break
			}
			runtime.Gosched() // the writer is making progress
		}
		heads, err := s.Heads("issue/x")
		if err != nil {
			t.Fatal(err)
		}
		if len(heads) != 1 || !slices.ContainsFunc(chain[i:], func(e Entry) bool { return e.CID.Equals(heads[0]) }) {
			t.Fatalf("record %d is readable but the heads are %v", i+1, heads)
		}
		if c, err := s.ChainAt(a, "issue/x", uint64(i+1)); err != nil || !c.Equals(chain[i].CID) {
			t.Fatalf("record %d is readable but ChainAt says %s, %v", i+1, c, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// fast returns a writer handle on s without taking it, for the tests of
// the writer's reads.
func fast(s *Store) *Writer { return &Writer{s: s} }

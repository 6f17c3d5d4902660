package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/ipfs/go-cid"
)

func TestRestartKeepsIndexes(t *testing.T) {
	dir := t.TempDir()
	open := func() *Store {
		t.Helper()
		s, err := Open(dir, WithLogger(testLogger(t)))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	}

	s := open()
	emptyOpenReads := s.openReads
	topics := []string{"index", "members", "issue/privacy"}
	const n = 300
	entries := fillTopics(t, s, n, topics)
	metas := map[cid.Cid]Meta{}
	for _, e := range entries {
		m, err := s.Meta(e.CID)
		wantNoErr(t, err)
		metas[e.CID] = m
	}
	heads := map[string][]cid.Cid{}
	for _, topic := range topics {
		h, err := s.Heads(topic)
		wantNoErr(t, err)
		heads[topic] = h
	}
	wantTopics, err := s.Topics()
	wantNoErr(t, err)
	wantNoErr(t, s.Close())

	s = open()
	defer s.Close()
	// Open read the same fixed handful of keys as on an empty store: it
	// rebuilt and counted nothing.
	if s.openReads != emptyOpenReads || s.openReads != 3 {
		t.Fatalf("Open read %d keys with %d records (%d when empty), want 3", s.openReads, n, emptyOpenReads)
	}

	for _, e := range entries {
		data, err := s.Get(e.CID)
		wantNoErr(t, err)
		if !bytes.Equal(data, e.Data) {
			t.Fatalf("Get %s after restart: bytes differ", e.CID)
		}
		m, err := s.Meta(e.CID)
		wantNoErr(t, err)
		if !metaEqual(m, metas[e.CID]) {
			t.Fatalf("Meta %s after restart = %+v, want %+v", e.CID, m, metas[e.CID])
		}
	}
	last := map[string]Entry{}
	for _, e := range entries {
		last[fmt.Sprintf("%x/%s", e.Author, e.Topic)] = e
	}
	for _, e := range last {
		seq, c, err := s.ChainHead(e.Author, e.Topic)
		wantNoErr(t, err)
		if seq != e.Seq || !c.Equals(e.CID) {
			t.Fatalf("ChainHead after restart = %d, %s; want %d, %s", seq, c, e.Seq, e.CID)
		}
	}
	for _, topic := range topics {
		h, err := s.Heads(topic)
		wantNoErr(t, err)
		if !cidsEqual(h, heads[topic]) {
			t.Fatalf("Heads(%q) after restart = %v, want %v", topic, h, heads[topic])
		}
	}
	gotTopics, err := s.Topics()
	wantNoErr(t, err)
	if fmt.Sprint(gotTopics) != fmt.Sprint(wantTopics) {
		t.Fatalf("Topics after restart = %v, want %v", gotTopics, wantTopics)
	}
	st, err := s.Stats()
	wantNoErr(t, err)
	if st.Records != n || st.LastArrival != n {
		t.Fatalf("Stats after restart = %+v", st)
	}
	m := mustPut(t, s, mkEntry(t, "after restart", author(77), "index", 1, cid.Undef))
	if m.Arrival != n+1 {
		t.Fatalf("first Put after restart got arrival %d, want %d", m.Arrival, n+1)
	}
}

func TestOpenRejectsInconsistentStore(t *testing.T) {
	fs := vfs.NewMem()
	open := func() (*Store, error) { return Open("db", WithFS(fs), WithLogger(testLogger(t))) }
	s, err := open()
	wantNoErr(t, err)
	mustPut(t, s, mkEntry(t, "x", author(1), "t", 1, cid.Undef))
	// Make the totals disagree with the arrival index behind the store's back.
	wantNoErr(t, s.db.Set(statsKey, Stats{Records: 1, LastArrival: 5}.encode(), nil))
	wantNoErr(t, s.Close())
	_, err = open()
	wantErr(t, err, ErrCorrupt)
	// The failed Open closed pebble and released its directory lock (MemFS
	// enforces it in-process): a second Open fails the same way, not with a
	// lock error.
	_, err = open()
	wantErr(t, err, ErrCorrupt)

	fs = vfs.NewMem()
	s, err = open()
	wantNoErr(t, err)
	wantNoErr(t, s.db.Set(schemaKey, []byte{99}, nil))
	wantNoErr(t, s.Close())
	_, err = open()
	wantErr(t, err, ErrIncompatible)
}

// TestConcurrentPutsGroupCommit puts from many goroutines on a crashable
// in-memory file system. Halfway through it takes a crash image of the file
// system holding only synced data: every Put acknowledged before the image
// must be in it, which holds only if Put returns after the fsync. The number
// of pebble commits must be well below the number of Puts.
//
// An in-memory sync costs nothing, so on its own the committer would rarely
// find more than one request waiting. The test makes every commit wait, by
// events and not by time, until each writer that is not in the commit has
// queued its next Put (or has finished): what a slow disk does for a busy
// node, made deterministic.
func TestConcurrentPutsGroupCommit(t *testing.T) {
	const (
		writers = 64
		perW    = 50
		total   = writers * perW
	)
	fs := vfs.NewCrashableMem()
	s, err := Open("db", WithFS(fs), WithLogger(testLogger(t)))
	wantNoErr(t, err)
	defer s.Close()

	// queued counts Puts queued and not yet taken into a commit; finished
	// counts writers that will queue nothing more.
	var (
		qmu      sync.Mutex
		qcond    = sync.NewCond(&qmu)
		queued   int
		finished int
	)
	s.hookQueued = func() {
		qmu.Lock()
		queued++
		qcond.Broadcast()
		qmu.Unlock()
	}
	s.hookBeforeCommit = func(n int) {
		qmu.Lock()
		defer qmu.Unlock()
		queued -= n
		for queued < writers-finished-n {
			qcond.Wait()
		}
	}
	writerDone := func() {
		qmu.Lock()
		finished++
		qcond.Broadcast()
		qmu.Unlock()
	}

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		acked   []cid.Cid
		halfway = make(chan struct{})
		errc    = make(chan error, writers)
	)
	for w := range writers {
		wg.Go(func() {
			defer writerDone()
			a := author(byte(w))
			prev := cid.Undef
			for i := range perW {
				e := mkEntry(t, "conc", a, "issue/load", uint64(i+1), prev)
				m, err := s.Put(context.Background(), e, 1)
				if err != nil {
					errc <- err
					return
				}
				if m.Arrival == 0 || m.Arrival > total {
					errc <- fmt.Errorf("arrival %d out of range", m.Arrival)
					return
				}
				prev = e.CID
				mu.Lock()
				acked = append(acked, e.CID)
				if len(acked) == total/2 {
					close(halfway)
				}
				mu.Unlock()
			}
		})
	}
	var snapshot []cid.Cid
	var crashed *vfs.MemFS
	select {
	case <-halfway:
		mu.Lock()
		snapshot = slices.Clone(acked)
		mu.Unlock()
		crashed = fs.CrashClone(vfs.CrashCloneCfg{}) // synced data only
	case err := <-errc:
		t.Fatal(err)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}

	st, err := s.Stats()
	wantNoErr(t, err)
	if st.Records != total || st.LastArrival != total {
		t.Fatalf("Stats = %+v, want %d records", st, total)
	}
	heads, err := s.Heads("issue/load")
	wantNoErr(t, err)
	if len(heads) != writers {
		t.Fatalf("%d heads, want one per writer (%d)", len(heads), writers)
	}
	commits := s.commits.Load()
	t.Logf("%d puts in %d commits (%.1f per commit)", total, commits, float64(total)/float64(commits))
	if commits > total/4 {
		t.Fatalf("%d commits for %d puts: group commit did not happen", commits, total)
	}

	c, err := Open("db", WithFS(crashed), WithLogger(testLogger(t)))
	wantNoErr(t, err)
	defer c.Close()
	for _, id := range snapshot {
		if ok, err := c.Has(id); err != nil || !ok {
			t.Fatalf("Put of %s returned before it was durable: missing after crash (%v)", id, err)
		}
	}
	t.Logf("crash image holds all %d puts acknowledged before it", len(snapshot))
}

func TestCloseWhilePutting(t *testing.T) {
	fs := vfs.NewMem()
	s, err := Open("db", WithFS(fs), WithLogger(testLogger(t)))
	wantNoErr(t, err)

	const writers = 16
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		acked   []cid.Cid
		started = make(chan struct{}, writers)
		bad     = make(chan error, writers)
	)
	for w := range writers {
		wg.Go(func() {
			a := author(byte(w))
			prev := cid.Undef
			for i := uint64(1); ; i++ {
				e := mkEntry(t, "close", a, "t", i, prev)
				_, err := s.Put(context.Background(), e, 1)
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					bad <- err
					return
				}
				if i == 3 {
					started <- struct{}{}
				}
				prev = e.CID
				mu.Lock()
				acked = append(acked, e.CID)
				mu.Unlock()
			}
		})
	}
	for range writers {
		<-started
	}
	wantNoErr(t, s.Close())
	wg.Wait()
	close(bad)
	for err := range bad {
		t.Fatalf("Put during Close returned %v, want success or ErrClosed", err)
	}
	if n := stacksContaining("store.(*Store).commitLoop"); n != 0 {
		t.Fatalf("%d committer goroutines left after Close", n)
	}

	// Every acknowledged Put survived the Close.
	s, err = Open("db", WithFS(fs), WithLogger(testLogger(t)))
	wantNoErr(t, err)
	defer s.Close()
	for _, c := range acked {
		if ok, err := s.Has(c); err != nil || !ok {
			t.Fatalf("acknowledged %s missing after Close: %v", c, err)
		}
	}
}

// stacksContaining returns how many goroutines have fn on their stack.
func stacksContaining(fn string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			n++
		}
	}
	return n
}

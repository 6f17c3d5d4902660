package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

func TestPutGetRoundTrip(t *testing.T) {
	s := openMem(t)
	e := mkEntry(t, "hello", author(1), "issue/privacy", 1, cid.Undef)
	m, err := s.Put(context.Background(), e, 1234)
	wantNoErr(t, err)
	want := Meta{CID: e.CID, Topic: e.Topic, Kind: e.Kind, Author: e.Author, Seq: 1, Time: 1000,
		Arrival: 1, FirstSeen: 1234, Size: len(e.Data)}
	if !metaEqual(m, want) {
		t.Fatalf("Put meta = %+v, want %+v", m, want)
	}

	data, err := s.Get(e.CID)
	wantNoErr(t, err)
	if !bytes.Equal(data, e.Data) {
		t.Fatalf("Get = %q, want %q", data, e.Data)
	}
	got, err := s.Meta(e.CID)
	wantNoErr(t, err)
	if !metaEqual(got, want) {
		t.Fatalf("Meta = %+v, want %+v", got, want)
	}
	if ok, err := s.Has(e.CID); err != nil || !ok {
		t.Fatalf("Has = %v, %v; want true", ok, err)
	}

	absent := mkEntry(t, "absent", author(1), "issue/privacy", 2, e.CID).CID
	if ok, err := s.Has(absent); err != nil || ok {
		t.Fatalf("Has(absent) = %v, %v; want false", ok, err)
	}
	_, err = s.Get(absent)
	wantErr(t, err, ErrNotFound)
	_, err = s.Meta(absent)
	wantErr(t, err, ErrNotFound)
}

func TestPutDoesNotAliasCallerBuffers(t *testing.T) {
	s := openMem(t)
	e := mkEntry(t, "alias", author(1), "t", 1, cid.Undef)
	orig := bytes.Clone(e.Data)
	mustPut(t, s, e)
	e.Data[0] ^= 0xff
	e.Author[0] ^= 0xff
	data, err := s.Get(e.CID)
	wantNoErr(t, err)
	if !bytes.Equal(data, orig) {
		t.Fatal("stored data changed with the caller's buffer")
	}
}

func TestGetTamperedBlock(t *testing.T) {
	s := openMem(t)
	e := mkEntry(t, "tamper", author(1), "t", 1, cid.Undef)
	other := mkEntry(t, "other", author(2), "t", 1, cid.Undef)
	mustPut(t, s, e)

	for _, tc := range []struct {
		name  string
		value []byte
	}{
		{"garbage", []byte("garbage")},
		{"empty", nil},
		{"flipped bit", append([]byte{e.Data[0] ^ 1}, e.Data[1:]...)},
		{"another record", other.Data},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantNoErr(t, s.db.Set(blockKey(e.CID), tc.value, pebble.Sync))
			_, err := s.Get(e.CID)
			wantErr(t, err, ErrCorrupt)
			if !strings.Contains(err.Error(), e.CID.String()) {
				t.Fatalf("error %q does not name the CID", err)
			}
		})
	}
}

func TestPutRejects(t *testing.T) {
	good := func() Entry { return mkEntry(t, "x", author(1), "t", 1, cid.Undef) }
	s := openMem(t)
	for _, tc := range []struct {
		name   string
		modify func(*Entry)
		want   error
	}{
		{"data not matching cid", func(e *Entry) { e.Data = append(e.Data, '!') }, ErrCorrupt},
		{"undefined cid", func(e *Entry) { e.CID = cid.Undef }, ErrInvalid},
		{"raw codec", func(e *Entry) { e.CID = cid.NewCidV1(cid.Raw, e.CID.Hash()) }, ErrInvalid},
		{"cidv0", func(e *Entry) { e.CID = cid.NewCidV0(e.CID.Hash()) }, ErrInvalid},
		{"blake2b", func(e *Entry) {
			sum, err := mh.Sum(e.Data, mh.BLAKE2B_MIN+31, -1)
			if err != nil {
				t.Fatal(err)
			}
			e.CID = cid.NewCidV1(cid.DagCBOR, sum)
		}, ErrInvalid},
		{"short author", func(e *Entry) { e.Author = e.Author[:31] }, ErrInvalid},
		{"empty topic", func(e *Entry) { e.Topic = "" }, ErrInvalid},
		{"nul in topic", func(e *Entry) { e.Topic = "a\x00b" }, ErrInvalid},
		{"empty kind", func(e *Entry) { e.Kind = "" }, ErrInvalid},
		{"nul in kind", func(e *Entry) { e.Kind = "\x00" }, ErrInvalid},
		{"seq 0", func(e *Entry) { e.Seq = 0 }, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := good()
			tc.modify(&e)
			_, err := s.Put(context.Background(), e, 1)
			wantErr(t, err, tc.want)
		})
	}
	st, err := s.Stats()
	wantNoErr(t, err)
	if st != (Stats{}) {
		t.Fatalf("rejected entries changed stats: %+v", st)
	}
}

func TestPutDuplicate(t *testing.T) {
	s := openMem(t)
	e := mkEntry(t, "dup", author(1), "t", 1, cid.Undef)
	first := mustPut(t, s, e)
	m, err := s.Put(context.Background(), e, 999)
	wantErr(t, err, ErrExists)
	if !metaEqual(m, first) {
		t.Fatalf("duplicate Put meta = %+v, want the stored %+v", m, first)
	}
	next := mustPut(t, s, mkEntry(t, "next", author(1), "t", 2, e.CID))
	if next.Arrival != 2 {
		t.Fatalf("next arrival = %d, want 2 (a duplicate consumes no arrival)", next.Arrival)
	}
	st, err := s.Stats()
	wantNoErr(t, err)
	if st.Records != 2 {
		t.Fatalf("Stats.Records = %d, want 2", st.Records)
	}
}

func TestChainConflict(t *testing.T) {
	s := openMem(t)
	a := author(0xab)
	e1 := mkEntry(t, "one", a, "issue/x", 1, cid.Undef)
	mustPut(t, s, e1)
	before, err := s.Stats()
	wantNoErr(t, err)

	fork := mkEntry(t, "fork", a, "issue/x", 1, cid.Undef)
	_, err = s.Put(context.Background(), fork, 1)
	wantErr(t, err, ErrChainConflict)
	for _, part := range []string{"abababab", `"issue/x"`, "seq 1", e1.CID.String(), fork.CID.String()} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("conflict error %q does not contain %q", err, part)
		}
	}

	if ok, err := s.Has(fork.CID); err != nil || ok {
		t.Fatalf("Has(fork) = %v, %v; want false", ok, err)
	}
	_, err = s.Meta(fork.CID)
	wantErr(t, err, ErrNotFound)
	after, err := s.Stats()
	wantNoErr(t, err)
	if after != before {
		t.Fatalf("stats changed by a conflict: %+v -> %+v", before, after)
	}
	heads, err := s.Heads("issue/x")
	wantNoErr(t, err)
	if !cidsEqual(heads, []cid.Cid{e1.CID}) {
		t.Fatalf("heads = %v, want [%s]", heads, e1.CID)
	}
	got, err := s.ChainAt(a, "issue/x", 1)
	wantNoErr(t, err)
	if !got.Equals(e1.CID) {
		t.Fatalf("ChainAt = %s, want %s", got, e1.CID)
	}
	// The same seq on another topic is not a conflict.
	mustPut(t, s, mkEntry(t, "fork", a, "issue/y", 1, cid.Undef))
}

func TestSameBatchDuplicateAndConflict(t *testing.T) {
	s := openMem(t)
	a := author(3)
	x := mkEntry(t, "x", a, "t", 1, cid.Undef)
	xFork := mkEntry(t, "x-fork", a, "t", 1, cid.Undef)
	y := mkEntry(t, "y", a, "t", 2, x.CID)

	res := commitGroup(s, x, x, xFork, y)
	if s.commits.Load() != 1 {
		t.Fatalf("commits = %d, want 1", s.commits.Load())
	}
	wantNoErr(t, res[0].err)
	wantErr(t, res[1].err, ErrExists)
	if !metaEqual(res[1].meta, res[0].meta) {
		t.Fatalf("in-batch duplicate meta = %+v, want %+v", res[1].meta, res[0].meta)
	}
	wantErr(t, res[2].err, ErrChainConflict)
	wantNoErr(t, res[3].err)
	if res[0].meta.Arrival != 1 || res[3].meta.Arrival != 2 {
		t.Fatalf("arrivals = %d, %d; want 1, 2", res[0].meta.Arrival, res[3].meta.Arrival)
	}
	if ok, _ := s.Has(xFork.CID); ok {
		t.Fatal("in-batch chain conflict was stored")
	}
	heads, err := s.Heads("t")
	wantNoErr(t, err)
	if !cidsEqual(heads, []cid.Cid{y.CID}) {
		t.Fatalf("heads = %v, want [%s]: a head set earlier in the batch must be removed", heads, y.CID)
	}
	topics, err := s.Topics()
	wantNoErr(t, err)
	if len(topics) != 1 || topics[0].Records != 2 || topics[0].LastArrival != 2 {
		t.Fatalf("topics = %+v, want t with 2 records", topics)
	}

	// A group of only duplicates writes nothing and does not sync.
	res = commitGroup(s, x, y)
	wantErr(t, res[0].err, ErrExists)
	wantErr(t, res[1].err, ErrExists)
	if s.commits.Load() != 1 {
		t.Fatalf("commits = %d after a group of duplicates, want still 1", s.commits.Load())
	}
}

func TestHeads(t *testing.T) {
	s := openMem(t)
	const topic = "issue/heads"
	a, b, c3 := author(1), author(2), author(3)
	ea := mkEntry(t, "a", a, topic, 1, cid.Undef)
	eb := mkEntry(t, "b", a, topic, 2, ea.CID)
	ec := mkEntry(t, "c", a, topic, 3, eb.CID)
	ed := mkEntry(t, "d", b, topic, 1, cid.Undef, ea.CID)
	other := mkEntry(t, "other", a, "issue/other", 1, cid.Undef)

	heads := func() []cid.Cid {
		t.Helper()
		h, err := s.Heads(topic)
		wantNoErr(t, err)
		return h
	}
	for _, e := range []Entry{ea, eb, ec, other, ed} {
		mustPut(t, s, e)
	}
	if got, want := heads(), sortedCIDs(ec.CID, ed.CID); !cidsEqual(got, want) {
		t.Fatalf("heads after fork = %v, want %v", got, want)
	}

	ee := mkEntry(t, "e", c3, topic, 1, cid.Undef, ec.CID, ed.CID)
	mustPut(t, s, ee)
	if got, want := heads(), []cid.Cid{ee.CID}; !cidsEqual(got, want) {
		t.Fatalf("heads after merge = %v, want %v", got, want)
	}
	h, err := s.Heads("issue/other")
	wantNoErr(t, err)
	if !cidsEqual(h, []cid.Cid{other.CID}) {
		t.Fatalf("heads of another topic = %v, want [%s]", h, other.CID)
	}
	h, err = s.Heads("issue/none")
	wantNoErr(t, err)
	if len(h) != 0 {
		t.Fatalf("heads of an empty topic = %v", h)
	}
}

// fillTopics puts n records round-robin over topics and kinds, each author
// chaining on its own topic, and returns them in put order.
func fillTopics(t testing.TB, s *Store, n int, topics []string) []Entry {
	t.Helper()
	type slot struct {
		seq  uint64
		prev cid.Cid
	}
	chains := map[string]*slot{}
	var out []Entry
	for i := range n {
		topic := topics[i%len(topics)]
		a := author(byte(i % 5))
		k := fmt.Sprintf("%x/%s", a, topic)
		sl := chains[k]
		if sl == nil {
			sl = &slot{}
			chains[k] = sl
		}
		sl.seq++
		e := mkEntry(t, fmt.Sprint(i), a, topic, sl.seq, sl.prev)
		e.Kind = []string{"statement", "feedback", "notice"}[i%3]
		sl.prev = e.CID
		mustPut(t, s, e)
		out = append(out, e)
	}
	return out
}

func TestPagingWithCursors(t *testing.T) {
	s := openMem(t)
	topics := []string{"index", "members", "issue/privacy", "issue/privacy2"}
	entries := fillTopics(t, s, 250, topics)

	// page collects every page of a cursor-based read and checks order.
	page := func(name string, read func(after uint64, limit int) ([]Meta, error), limit int) []cid.Cid {
		t.Helper()
		var got []cid.Cid
		var after uint64
		for {
			ms, err := read(after, limit)
			wantNoErr(t, err)
			if len(ms) > limit {
				t.Fatalf("%s: page of %d > limit %d", name, len(ms), limit)
			}
			if len(ms) == 0 {
				return got
			}
			for _, m := range ms {
				if m.Arrival <= after {
					t.Fatalf("%s: arrival %d not after cursor %d", name, m.Arrival, after)
				}
				after = m.Arrival
				got = append(got, m.CID)
			}
		}
	}
	want := func(keep func(Entry) bool) []cid.Cid {
		var out []cid.Cid
		for _, e := range entries {
			if keep(e) {
				out = append(out, e.CID)
			}
		}
		return out
	}

	if got := page("Since", s.Since, 13); !cidsEqual(got, want(func(Entry) bool { return true })) {
		t.Fatalf("Since pages: got %d records, want all %d in arrival order", len(got), len(entries))
	}
	for _, topic := range topics {
		read := func(after uint64, limit int) ([]Meta, error) { return s.TopicRecords(topic, after, limit) }
		if got := page(topic, read, 7); !cidsEqual(got, want(func(e Entry) bool { return e.Topic == topic })) {
			t.Fatalf("TopicRecords(%q) pages differ from the topic's records in arrival order", topic)
		}
	}
	for _, kind := range []string{"statement", "feedback", "notice"} {
		read := func(after uint64, limit int) ([]Meta, error) { return s.ByKind(kind, after, limit) }
		if got := page(kind, read, 11); !cidsEqual(got, want(func(e Entry) bool { return e.Kind == kind })) {
			t.Fatalf("ByKind(%q) pages differ from the kind's records in arrival order", kind)
		}
	}

	// Default limit, cursor at the end and beyond, unknown topic.
	all, err := s.Since(0, 0)
	wantNoErr(t, err)
	if len(all) != len(entries) {
		t.Fatalf("Since(0, 0) = %d records, want %d", len(all), len(entries))
	}
	for _, after := range []uint64{250, 1 << 40, ^uint64(0)} {
		ms, err := s.Since(after, 10)
		wantNoErr(t, err)
		if len(ms) != 0 {
			t.Fatalf("Since(%d) = %d records, want 0", after, len(ms))
		}
	}
	ms, err := s.TopicRecords("nope", 0, 10)
	wantNoErr(t, err)
	if len(ms) != 0 {
		t.Fatalf("TopicRecords(unknown) = %d records", len(ms))
	}
	_, err = s.TopicRecords("bad\x00", 0, 10)
	wantErr(t, err, ErrInvalid)
}

func TestClampLimit(t *testing.T) {
	for _, tc := range []struct{ in, want int }{
		{-1, defaultLimit}, {0, defaultLimit}, {1, 1}, {maxLimit, maxLimit}, {maxLimit + 1, maxLimit},
	} {
		if got := clampLimit(tc.in); got != tc.want {
			t.Errorf("clampLimit(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestChainQueries(t *testing.T) {
	s := openMem(t)
	a := author(9)
	seq, c, err := s.ChainHead(a, "t")
	wantNoErr(t, err)
	if seq != 0 || c.Defined() {
		t.Fatalf("ChainHead of nothing = %d, %s; want 0, Undef", seq, c)
	}
	var chain []Entry
	prev := cid.Undef
	for i := uint64(1); i <= 5; i++ {
		e := mkEntry(t, "c", a, "t", i, prev)
		mustPut(t, s, e)
		chain = append(chain, e)
		prev = e.CID
	}
	mustPut(t, s, mkEntry(t, "c", a, "t2", 1, cid.Undef))        // other topic
	mustPut(t, s, mkEntry(t, "c", author(8), "t", 1, cid.Undef)) // other author

	seq, c, err = s.ChainHead(a, "t")
	wantNoErr(t, err)
	if seq != 5 || !c.Equals(chain[4].CID) {
		t.Fatalf("ChainHead = %d, %s; want 5, %s", seq, c, chain[4].CID)
	}
	got, err := s.ChainAt(a, "t", 3)
	wantNoErr(t, err)
	if !got.Equals(chain[2].CID) {
		t.Fatalf("ChainAt(3) = %s, want %s", got, chain[2].CID)
	}
	_, err = s.ChainAt(a, "t", 6)
	wantErr(t, err, ErrNotFound)
	_, err = s.ChainAt(a[:5], "t", 1)
	wantErr(t, err, ErrInvalid)

	ms, err := s.Chain(a, "t", 2, 2)
	wantNoErr(t, err)
	if len(ms) != 2 || ms[0].Seq != 2 || ms[1].Seq != 3 {
		t.Fatalf("Chain(from 2, limit 2) = %+v", ms)
	}
	ms, err = s.Chain(a, "t", 0, 0)
	wantNoErr(t, err)
	if len(ms) != 5 {
		t.Fatalf("Chain(from 0) = %d records, want 5", len(ms))
	}
	for i, m := range ms {
		if !m.CID.Equals(chain[i].CID) || m.Seq != uint64(i+1) {
			t.Fatalf("Chain[%d] = %s seq %d, want %s seq %d", i, m.CID, m.Seq, chain[i].CID, i+1)
		}
	}
}

func TestTopicsAndStats(t *testing.T) {
	s := openMem(t)
	st, err := s.Stats()
	wantNoErr(t, err)
	if st != (Stats{}) {
		t.Fatalf("empty Stats = %+v", st)
	}
	entries := fillTopics(t, s, 30, []string{"b", "a", "c"})
	var bytesTotal uint64
	counts := map[string]uint64{}
	last := map[string]uint64{}
	for i, e := range entries {
		bytesTotal += uint64(len(e.Data))
		counts[e.Topic]++
		last[e.Topic] = uint64(i + 1)
	}
	st, err = s.Stats()
	wantNoErr(t, err)
	if want := (Stats{Records: 30, Bytes: bytesTotal, LastArrival: 30}); st != want {
		t.Fatalf("Stats = %+v, want %+v", st, want)
	}
	topics, err := s.Topics()
	wantNoErr(t, err)
	var names []string
	for _, ts := range topics {
		names = append(names, ts.Topic)
		if ts.Records != counts[ts.Topic] || ts.LastArrival != last[ts.Topic] {
			t.Errorf("topic %q = %+v, want %d records, last %d", ts.Topic, ts, counts[ts.Topic], last[ts.Topic])
		}
	}
	if strings.Join(names, ",") != "a,b,c" {
		t.Fatalf("topics = %v, want a,b,c", names)
	}
	// Topic reads one of them, the same as Topics does.
	for _, ts := range topics {
		one, err := s.Topic(ts.Topic)
		wantNoErr(t, err)
		if one != ts {
			t.Errorf("Topic(%q) = %+v, Topics gives %+v", ts.Topic, one, ts)
		}
	}
	if one, err := s.Topic("none"); err != nil || one != (TopicStat{Topic: "none"}) {
		t.Errorf("Topic of a topic without records = %+v, %v", one, err)
	}
}

// TestTopicsPastCache writes to more topics than the committer caches
// counters for, in turns, so that counters are evicted and read back from
// pebble between the records of a topic: every count stays exact.
func TestTopicsPastCache(t *testing.T) {
	s := openMem(t)
	topics := make([]string, maxCachedTopics+7)
	for i := range topics {
		topics[i] = fmt.Sprintf("t%04d", i)
	}
	const rounds = 3
	fillTopics(t, s, rounds*len(topics), topics)
	if len(s.topicStats) > maxCachedTopics {
		t.Fatalf("committer caches %d topic counters, bound %d", len(s.topicStats), maxCachedTopics)
	}
	got, err := s.Topics()
	wantNoErr(t, err)
	if len(got) != len(topics) {
		t.Fatalf("Topics gives %d topics, want %d", len(got), len(topics))
	}
	for i, ts := range got {
		// The last round wrote topic i at arrival 2n+i+1.
		last := uint64((rounds-1)*len(topics) + i + 1)
		if ts.Topic != topics[i] || ts.Records != rounds || ts.LastArrival != last {
			t.Fatalf("topic %d = %+v, want %s with %d records, last %d", i, ts, topics[i], rounds, last)
		}
	}
}

func TestPutContext(t *testing.T) {
	s := openMem(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e := mkEntry(t, "ctx", author(1), "t", 1, cid.Undef)
	_, err := s.Put(ctx, e, 1)
	wantErr(t, err, context.Canceled)
	if ok, _ := s.Has(e.CID); ok {
		t.Fatal("Put with a cancelled context stored the entry")
	}

	// A context that ends while the entry is being committed: Put returns
	// ctx.Err() and the entry is stored all the same.
	entered, release := make(chan struct{}), make(chan struct{})
	s.hookBeforeCommit = func(int) {
		close(entered)
		<-release
	}
	ctx, cancel = context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := s.Put(ctx, e, 1)
		errc <- err
	}()
	<-entered
	cancel()
	wantErr(t, <-errc, context.Canceled)
	close(release)
	s.hookBeforeCommit = nil // safe: the committer reads it again only for the next Put
	m, err := s.Put(context.Background(), e, 1)
	wantErr(t, err, ErrExists)
	if m.Arrival != 1 {
		t.Fatalf("arrival = %d, want 1", m.Arrival)
	}
}

func TestAfterClose(t *testing.T) {
	s := openMem(t)
	e := mkEntry(t, "c", author(1), "t", 1, cid.Undef)
	mustPut(t, s, e)
	wantNoErr(t, s.Close())
	wantNoErr(t, s.Close())

	_, err := s.Put(context.Background(), mkEntry(t, "d", author(1), "t", 2, e.CID), 1)
	wantErr(t, err, ErrClosed)
	calls := map[string]func() error{
		"Get":          func() error { _, err := s.Get(e.CID); return err },
		"Has":          func() error { _, err := s.Has(e.CID); return err },
		"Meta":         func() error { _, err := s.Meta(e.CID); return err },
		"TopicRecords": func() error { _, err := s.TopicRecords("t", 0, 0); return err },
		"Since":        func() error { _, err := s.Since(0, 0); return err },
		"ByKind":       func() error { _, err := s.ByKind("statement", 0, 0); return err },
		"Chain":        func() error { _, err := s.Chain(e.Author, "t", 0, 0); return err },
		"ChainAt":      func() error { _, err := s.ChainAt(e.Author, "t", 1); return err },
		"ChainHead":    func() error { _, _, err := s.ChainHead(e.Author, "t"); return err },
		"Heads":        func() error { _, err := s.Heads("t"); return err },
		"Topics":       func() error { _, err := s.Topics(); return err },
		"Stats":        func() error { _, err := s.Stats(); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

func TestOpenOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Option
	}{
		{"nil logger", WithLogger(nil)},
		{"zero batch", WithMaxBatch(0)},
		{"huge batch", WithMaxBatch(maxMaxBatch + 1)},
		{"zero cache", WithCacheSize(0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Open("", WithInMemory(), tc.opt); err == nil {
				t.Fatal("Open accepted an invalid option")
			}
		})
	}
	if _, err := Open(""); err == nil {
		t.Fatal("Open accepted an empty dir without WithInMemory")
	}
	s := openMem(t, WithMaxBatch(1), WithCacheSize(1<<20))
	mustPut(t, s, mkEntry(t, "o", author(1), "t", 1, cid.Undef))
}

func TestPendingArea(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	a := mkEntry(t, "a", author(1), "issue/x", 1, cid.Undef)
	b := mkEntry(t, "b", author(1), "issue/x", 2, a.CID)
	for i, e := range []Entry{a, b} {
		if err := s.PutPending(e.CID, e.Data, int64(1000+i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeletePending(a.CID); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Has(b.CID); ok {
		t.Fatal("a pending record is visible as a stored block")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []cid.Cid
	if err := s.Pending(func(e PendingEntry) error {
		if string(e.Raw) != string(b.Data) || e.Received != 1001 {
			t.Fatalf("pending %s: bytes or received time (%d) changed", e.CID, e.Received)
		}
		got = append(got, e.CID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Equals(b.CID) {
		t.Fatalf("pending after restart: %v, want [%s]", got, b.CID)
	}
	// A value written before receipt times were kept (the record's bytes
	// alone) reads with received 0.
	if err := s.db.Set(cidKey(pPending, a.CID), a.Data, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Pending(func(e PendingEntry) error {
		if e.CID.Equals(a.CID) && (string(e.Raw) != string(a.Data) || e.Received != 0) {
			t.Fatalf("old-format entry read as %d bytes, received %d", len(e.Raw), e.Received)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestFollowList: the follow list keeps what was set, sorted, across a
// reopen, and forgets what was removed.
func TestFollowList(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	for _, slug := range []string{"privacy", "jurisdiction", "dns"} {
		if err := s.SetFollow(slug, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetFollow("dns", false); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFollow("", true); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty slug: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir, WithLogger(testLogger(t))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	got, err := s.Follows()
	if err != nil || !slices.Equal(got, []string{"jurisdiction", "privacy"}) {
		t.Fatalf("Follows = %v, %v", got, err)
	}
	if st, _ := s.Stats(); st.Records != 0 {
		t.Fatalf("the follow list counted as records: %+v", st)
	}
}

// TestBlockList: the block list keeps what was set, sorted by key, with
// its time and reason, across a reopen; a second SetBlock replaces the
// entry; DeleteBlock forgets it; a key that is not 32 bytes is refused.
func TestBlockList(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range []Block{{Key: author(3), Since: 30, Reason: "spam"}, {Key: author(1), Since: 10},
		{Key: author(2), Since: 20, Reason: "abuse"}, {Key: author(3), Since: 31, Reason: "spam, again"}} {
		if err := s.SetBlock(b); err != nil {
			t.Fatalf("SetBlock %d: %v", i, err)
		}
	}
	if err := s.DeleteBlock(author(2)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBlock(author(9)); err != nil {
		t.Fatalf("DeleteBlock of a key not there: %v", err)
	}
	if err := s.SetBlock(Block{Key: []byte("short")}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("short key: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir, WithLogger(testLogger(t))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	got, err := s.Blocks()
	want := []Block{{Key: author(1), Since: 10}, {Key: author(3), Since: 31, Reason: "spam, again"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Blocks = %+v, %v; want %+v", got, err, want)
	}
	if st, _ := s.Stats(); st.Records != 0 {
		t.Fatalf("the block list counted as records: %+v", st)
	}
}

// TestGetMany: GetMany gives every CID exactly what Get gives it, whatever
// the order of the CIDs, duplicates included: the bytes of a stored
// record, ErrNotFound for one not stored, ErrCorrupt for a damaged block;
// and an error of fn stops it.
func TestGetMany(t *testing.T) {
	s := openMem(t)
	var cs []cid.Cid
	for i := range 50 {
		e := mkEntry(t, fmt.Sprint("many ", i), author(byte(i%5+1)), "t", uint64(i/5+1), cid.Undef)
		mustPut(t, s, e)
		cs = append(cs, e.CID)
	}
	missing := mkEntry(t, "never stored", author(9), "t", 1, cid.Undef).CID
	damaged := cs[17]
	wantNoErr(t, s.db.Set(blockKey(damaged), []byte("garbage"), pebble.Sync))
	ask := append(slices.Clone(cs), missing, cs[3])
	rand.Shuffle(len(ask), func(i, j int) { ask[i], ask[j] = ask[j], ask[i] })
	calls := map[cid.Cid]int{}
	wantNoErr(t, s.GetMany(ask, func(c cid.Cid, data []byte, err error) error {
		calls[c]++
		want, wantErr := s.getCopy(blockKey(c))
		switch {
		case c.Equals(missing):
			if !errors.Is(err, ErrNotFound) || data != nil {
				t.Errorf("missing CID: %v, %q", err, data)
			}
		case c.Equals(damaged):
			if !errors.Is(err, ErrCorrupt) || data != nil {
				t.Errorf("damaged block: %v, %q", err, data)
			}
		case err != nil || wantErr != nil || !bytes.Equal(data, want):
			t.Errorf("%s: %q, %v; Get gives %q", c, data, err, want)
		}
		return nil
	}))
	if len(calls) != len(cs)+1 || calls[cs[3]] != 2 {
		t.Fatalf("fn called for %d CIDs (%d times for the one asked twice), want %d", len(calls), calls[cs[3]], len(cs)+1)
	}
	stop := errors.New("stop")
	n := 0
	if err := s.GetMany(cs, func(cid.Cid, []byte, error) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("GetMany after fn failed: %v, %d calls", err, n)
	}
}

// TestForkEntry checks that an entry marked Fork is stored beside the
// record holding its chain slot: readable, a topic head, counted, while
// the chain index keeps the slot's first record; and that storing it
// again, alone or in one group commit with the slot's holder, is a
// duplicate.
func TestForkEntry(t *testing.T) {
	s := openMem(t)
	a := author(0xcd)
	e1 := mkEntry(t, "one", a, "issue/x", 1, cid.Undef)
	mustPut(t, s, e1)
	fork := mkEntry(t, "fork", a, "issue/x", 1, cid.Undef)
	fork.Fork = true
	m := mustPut(t, s, fork)
	if m.Seq != 1 || !m.CID.Equals(fork.CID) {
		t.Fatalf("fork meta = %+v", m)
	}
	if _, err := s.Put(context.Background(), fork, 2); !errors.Is(err, ErrExists) {
		t.Fatalf("second put of the fork: %v, want ErrExists", err)
	}
	got, err := s.ChainAt(a, "issue/x", 1)
	wantNoErr(t, err)
	if !got.Equals(e1.CID) {
		t.Fatalf("ChainAt = %s, want the slot's first record %s", got, e1.CID)
	}
	raw, err := s.Get(fork.CID)
	wantNoErr(t, err)
	if string(raw) != string(fork.Data) {
		t.Fatal("fork data differs")
	}
	heads, err := s.Heads("issue/x")
	wantNoErr(t, err)
	if !cidsEqual(heads, sortedCIDs(e1.CID, fork.CID)) {
		t.Fatalf("heads = %v, want both records of the slot", heads)
	}
	st, err := s.Stats()
	wantNoErr(t, err)
	if st.Records != 2 {
		t.Fatalf("Stats.Records = %d, want 2", st.Records)
	}
	b := author(0x01)
	mustPut(t, s, mkEntry(t, "b one", b, "issue/x", 1, cid.Undef))
	fb := mkEntry(t, "b two", b, "issue/x", 1, cid.Undef)
	fb.Fork = true
	mustPut(t, s, fb)
	fb2 := mkEntry(t, "b three", b, "issue/x", 1, cid.Undef)
	fb2.Fork = true
	mustPut(t, s, fb2)
	forked, err := s.ForkAuthors()
	wantNoErr(t, err)
	if len(forked) != 2 || !bytes.Equal(forked[0], b) || !bytes.Equal(forked[1], a) {
		t.Fatalf("ForkAuthors = %x, want [%x %x]", forked, b, a)
	}

	// Both sides of a fork in one group commit.
	s2 := openMem(t)
	res := commitGroup(s2, e1, fork, fork)
	wantNoErr(t, res[0].err)
	wantNoErr(t, res[1].err)
	wantErr(t, res[2].err, ErrExists)
	if ok, err := s2.Has(fork.CID); err != nil || !ok {
		t.Fatalf("Has(fork) = %v, %v", ok, err)
	}
}

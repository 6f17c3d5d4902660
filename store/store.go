package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/ipfs/go-cid"
)

// Store is a node's record store on one pebble database. All methods are safe
// for concurrent use. The caller of Open must call Close.
type Store struct {
	db  *pebble.DB
	log *slog.Logger
	// onDisk reports whether the store is on the operating system's file
	// system (not WithInMemory or WithFS): only then can it be
	// checkpointed to a directory.
	onDisk bool

	// mu guards closed and the lifetime of db and reqs: every read holds
	// it shared for the duration of its pebble calls, Put holds it shared
	// while queueing, and Close holds it exclusively to set closed and
	// close reqs. After closed is set no new read or Put reaches pebble.
	mu     sync.RWMutex
	closed bool

	// reqs queues Puts for the committer; it is closed by Close.
	reqs     chan *putReq
	maxBatch int
	wg       sync.WaitGroup // the committer goroutine

	// totals is owned by the committer goroutine (read by Open before it
	// starts): the persisted totals as of the last successful commit.
	totals Stats
	// topicStats is owned by the committer goroutine: the persisted
	// counters of the topics it committed to most recently (at most
	// maxCachedTopics), so that a commit to a busy topic need not read its
	// counter back from pebble first.
	topicStats map[string]topicStat

	closeOnce sync.Once
	closeErr  error

	// writerTaken reports whether Writer has handed out the writer handle.
	writerTaken atomic.Bool

	// failed is set by the committer when a commit could not be made
	// durable: every later commit fails with it (ErrWriteFailed).
	failed atomic.Pointer[error]

	// commits counts pebble batch commits made by the committer. Tests and
	// benchmarks read it to show that group commit happened.
	commits atomic.Uint64
	// hookBeforeCommit, if set by a test before the first Put, is called
	// by the committer before each group commit with the number of
	// requests the group holds.
	hookBeforeCommit func(n int)
	// hookQueued, if set by a test before the first Put, is called by Put
	// after it has queued its request.
	hookQueued func()
	// tops caches the top seq of recently used chains (see chainTops).
	tops *chainTops
	// heads caches the heads of recently asked-for topics (see topicHeads).
	heads *topicHeads
	// openReads counts the keys Open read to recover its state. Tests read
	// it to show that Open rebuilds nothing.
	openReads int
}

// Open opens the store in dir, creating it if needed, and starts its
// committer goroutine. With WithInMemory, dir may be empty. The caller must
// call Close. If Open fails it has closed everything it opened.
func Open(dir string, opts ...Option) (*Store, error) {
	o := defaults()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	popts := &pebble.Options{
		Logger:             pebbleLogger{log: o.logger},
		EventListener:      eventListener(o.logger),
		FormatMajorVersion: pebble.FormatNewest,
	}
	// A larger memtable than pebble's 4 MiB default: fewer flushes and
	// compactions under a burst of records (a catch-up).
	popts.MemTableSize = 64 << 20
	// Bloom filters on every level: most lookups on the ingest path ask
	// whether a record is stored, and the answer is usually no.
	for i := range popts.Levels {
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	switch {
	case o.fs != nil:
		popts.FS = o.fs
	case o.inMemory:
		popts.FS = vfs.NewMem()
		dir = ""
	case dir == "":
		return nil, fmt.Errorf("store: dir: must not be empty")
	}
	cache := pebble.NewCache(o.cacheSize)
	defer cache.Unref() // the DB holds its own reference
	popts.Cache = cache

	db, err := pebble.Open(dir, popts)
	if err != nil {
		return nil, fmt.Errorf("store: open %q: %w", dir, err)
	}
	s := &Store{
		db:       db,
		onDisk:   popts.FS == nil,
		log:      o.logger,
		reqs:     make(chan *putReq, o.maxBatch),
		maxBatch: o.maxBatch,
		tops:     newChainTops(),
		heads:    newTopicHeads(),

		topicStats: map[string]topicStat{},
	}
	if err := s.recover(dir); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	s.wg.Go(s.commitLoop)
	s.log.Debug("store opened", "dir", dir, "records", s.totals.Records, "last_arrival", s.totals.LastArrival)
	return s, nil
}

// recover checks the format version (format.go) and reads the totals, checking the totals against
// the last key of the arrival index. It reads exactly three keys however large
// the store is; every index is persisted and none is rebuilt.
func (s *Store) recover(dir string) error {
	s.openReads++
	if err := s.checkFormat(dir); err != nil {
		return err
	}

	s.openReads++
	v, err := s.getCopy(statsKey)
	switch {
	case errors.Is(err, ErrNotFound):
		s.totals = Stats{}
	case err != nil:
		return err
	default:
		if s.totals, err = decodeStats(v); err != nil {
			return err
		}
	}

	s.openReads++
	last, err := s.lastArrival()
	if err != nil {
		return err
	}
	if last != s.totals.LastArrival {
		return fmt.Errorf("%w: totals say last arrival %d, arrival index says %d",
			ErrCorrupt, s.totals.LastArrival, last)
	}
	return nil
}

// lastArrival returns the last key of the arrival index, 0 if it is empty.
func (s *Store) lastArrival() (uint64, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{pArrival},
		UpperBound: []byte{pArrival + 1},
	})
	if err != nil {
		return 0, fmt.Errorf("store: arrival index: %w", err)
	}
	var last uint64
	if it.Last() {
		k := it.Key()
		if len(k) != 9 {
			_ = it.Close()
			return 0, fmt.Errorf("%w: arrival key %x", ErrCorrupt, k)
		}
		last = binary.BigEndian.Uint64(k[1:])
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("store: arrival index: %w", err)
	}
	return last, nil
}

// Close waits for every queued Put to be committed and answered, stops the
// committer goroutine and closes the database. It is safe to call more than
// once and concurrently; every call returns the result of the first. Methods
// called after Close return ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.reqs)
		s.mu.Unlock()
		s.wg.Wait()
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("store: close: %w", err)
		}
		s.log.Debug("store closed")
	})
	return s.closeErr
}

// rlock takes the read lock and reports ErrClosed if the store is closed; on
// success the caller must call s.mu.RUnlock.
func (s *Store) rlock() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// getCopy returns a copy of the value under key, or ErrNotFound.
func (s *Store) getCopy(key []byte) ([]byte, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get: %w", err)
	}
	out := bytes.Clone(v)
	if out == nil {
		out = []byte{}
	}
	return out, closer.Close()
}

// getMeta decodes the Meta stored under key, or returns ErrNotFound.
func (s *Store) getMeta(key []byte) (Meta, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return Meta{}, ErrNotFound
	}
	if err != nil {
		return Meta{}, fmt.Errorf("store: get: %w", err)
	}
	m, err := decodeMeta(v)
	if cerr := closer.Close(); err == nil {
		err = cerr
	}
	return m, err
}

// Get returns the record bytes stored under c. It re-hashes them and returns
// an error wrapping ErrCorrupt if they do not match c, and ErrNotFound if the
// store does not hold c.
func (s *Store) Get(c cid.Cid) ([]byte, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	data, err := s.getCopy(blockKey(c))
	if err != nil {
		return nil, err
	}
	if err := verifyBlock(c, data); err != nil {
		if !errors.Is(err, ErrCorrupt) {
			err = fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		s.log.Error("corrupt block", "cid", c, "err", err)
		return nil, err
	}
	return data, nil
}

// Has reports whether the store holds the record c.
func (s *Store) Has(c cid.Cid) (bool, error) {
	if err := s.rlock(); err != nil {
		return false, err
	}
	defer s.mu.RUnlock()
	_, closer, err := s.db.Get(blockKey(c))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: has %s: %w", c, err)
	}
	return true, closer.Close()
}

// Meta returns what the store recorded when it accepted c, or ErrNotFound.
func (s *Store) Meta(c cid.Cid) (Meta, error) {
	if err := s.rlock(); err != nil {
		return Meta{}, err
	}
	defer s.mu.RUnlock()
	return s.getMeta(metaKey(c))
}

// TopicRecords returns up to limit records of topic in arrival order, starting
// after the cursor after: the Arrival of the last record already seen, 0 to
// start from the beginning. A limit <= 0 means 1000; limits above 10000 are
// capped. An empty result means the caller has seen everything.
func (s *Store) TopicRecords(topic string, after uint64, limit int) ([]Meta, error) {
	if err := validName("topic", topic); err != nil {
		return nil, err
	}
	if after == ^uint64(0) {
		return nil, nil
	}
	p := namePrefix(pTopic, topic)
	return s.scan(topicKey(topic, after+1), upperBound(p), limit)
}

// ByKind returns up to limit records of kind in arrival order, starting after
// the cursor after, with the same paging rules as TopicRecords.
func (s *Store) ByKind(kind string, after uint64, limit int) ([]Meta, error) {
	if err := validName("kind", kind); err != nil {
		return nil, err
	}
	if after == ^uint64(0) {
		return nil, nil
	}
	p := namePrefix(pKind, kind)
	return s.scan(kindKey(kind, after+1), upperBound(p), limit)
}

// Since returns up to limit records of every topic in global arrival order,
// starting after the cursor after, with the same paging rules as
// TopicRecords. It serves a resumable event stream.
func (s *Store) Since(after uint64, limit int) ([]Meta, error) {
	if after == ^uint64(0) {
		return nil, nil
	}
	return s.scan(arrivalKey(after+1), []byte{pArrival + 1}, limit)
}

// Chain returns up to limit records of the author's hash chain on topic, in
// sequence order starting at fromSeq (0 is treated as 1). A limit <= 0 means
// 1000; limits above 10000 are capped.
func (s *Store) Chain(author []byte, topic string, fromSeq uint64, limit int) ([]Meta, error) {
	if err := validAuthor(author); err != nil {
		return nil, err
	}
	if err := validName("topic", topic); err != nil {
		return nil, err
	}
	p := chainPrefix(author, topic)
	return s.scan(chainKey(author, topic, max(fromSeq, 1)), upperBound(p), limit)
}

// scan decodes the Meta values of the keys in [lo, hi), at most
// clampLimit(limit) of them.
func (s *Store) scan(lo, hi []byte, limit int) ([]Meta, error) {
	limit = clampLimit(limit)
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, fmt.Errorf("store: scan: %w", err)
	}
	out := make([]Meta, 0, min(limit, 64))
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			break // it.Close reports it
		}
		m, err := decodeMeta(v)
		if err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("key %x: %w", it.Key(), err)
		}
		out = append(out, m)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("store: scan: %w", err)
	}
	return out, nil
}

// ChainAt returns the CID of the author's record number seq on topic, or
// ErrNotFound.
func (s *Store) ChainAt(author []byte, topic string, seq uint64) (cid.Cid, error) {
	return s.chainAt(author, topic, seq, false)
}

func (s *Store) chainAt(author []byte, topic string, seq uint64, fast bool) (cid.Cid, error) {
	if err := validAuthor(author); err != nil {
		return cid.Undef, err
	}
	if err := validName("topic", topic); err != nil {
		return cid.Undef, err
	}
	if err := s.rlock(); err != nil {
		return cid.Undef, err
	}
	defer s.mu.RUnlock()
	key := chainKey(author, topic, seq)
	if fast {
		switch free, err := s.slotFree(key[:len(key)-8], seq); {
		case err != nil:
			return cid.Undef, err
		case free:
			return cid.Undef, ErrNotFound
		}
	}
	m, err := s.getMeta(key)
	if err != nil {
		return cid.Undef, err
	}
	return m.CID, nil
}

// ChainHead returns the highest sequence number the author has on topic and
// its CID. If the author has nothing on topic it returns 0, cid.Undef and a
// nil error.
func (s *Store) ChainHead(author []byte, topic string) (seq uint64, c cid.Cid, err error) {
	if err := validAuthor(author); err != nil {
		return 0, cid.Undef, err
	}
	if err := validName("topic", topic); err != nil {
		return 0, cid.Undef, err
	}
	if err := s.rlock(); err != nil {
		return 0, cid.Undef, err
	}
	defer s.mu.RUnlock()
	m, err := s.chainLast(chainPrefix(author, topic))
	return m.Seq, m.CID, err
}

// chainLast returns the Meta of the last record of the chain whose keys
// start with p, the zero Meta if it has none.
func (s *Store) chainLast(p []byte) (Meta, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return Meta{}, fmt.Errorf("store: chain head: %w", err)
	}
	var m Meta
	if it.Last() {
		var v []byte
		if v, err = it.ValueAndErr(); err == nil {
			m, err = decodeMeta(v)
		}
	}
	if cerr := it.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("store: chain head: %w", cerr)
	}
	if err != nil {
		return Meta{}, err
	}
	return m, nil
}

// slotFree reports whether seq is above the highest seq stored on the
// chain of prefix, from memory when it can (see chainTops): then nothing
// is stored at the slot and no record of the slot is stored at all.
func (s *Store) slotFree(prefix []byte, seq uint64) (bool, error) {
	return s.tops.above(prefix, seq, func() (uint64, error) {
		m, err := s.chainLast(prefix)
		return m.Seq, err
	})
}

// Heads returns the current heads of topic's causal DAG (the records of the
// topic that no record of the topic names as Prev or in Deps), sorted by CID
// bytes. It answers from memory after the first call for a topic (see
// topicHeads).
func (s *Store) Heads(topic string) ([]cid.Cid, error) {
	if err := validName("topic", topic); err != nil {
		return nil, err
	}
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	keys, err := s.heads.get(topic, func() ([]string, error) { return s.scanHeads(topic) })
	if err != nil {
		return nil, err
	}
	slices.Sort(keys) // a CID's key string is its bytes
	out := make([]cid.Cid, len(keys))
	for i, k := range keys {
		if out[i], err = cid.Cast([]byte(k)); err != nil {
			return nil, fmt.Errorf("%w: head %x: %w", ErrCorrupt, k, err)
		}
	}
	return out, nil
}

// scanHeads reads the head index of topic from pebble.
func (s *Store) scanHeads(topic string) ([]string, error) {
	p := namePrefix(pHead, topic)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return nil, fmt.Errorf("store: heads: %w", err)
	}
	var out []string
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()[len(p):]
		if _, err := cid.Cast(k); err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("%w: head key %x: %w", ErrCorrupt, it.Key(), err)
		}
		out = append(out, string(k))
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("store: heads: %w", err)
	}
	return out, nil
}

// Topics returns every topic with at least one record, sorted by name, with
// its persisted record count.
func (s *Store) Topics() ([]TopicStat, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{pTopicStat},
		UpperBound: []byte{pTopicStat + 1},
	})
	if err != nil {
		return nil, fmt.Errorf("store: topics: %w", err)
	}
	var out []TopicStat
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			break // it.Close reports it
		}
		ts, err := decodeTopicStat(v)
		if err != nil {
			_ = it.Close()
			return nil, err
		}
		out = append(out, TopicStat{
			Topic:       string(it.Key()[1:]),
			Records:     ts.records,
			LastArrival: ts.lastArrival,
		})
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("store: topics: %w", err)
	}
	return out, nil
}

// Topic returns the stats of one topic, the zero TopicStat (with its name)
// if it has no record: one lookup, where Topics reads every topic.
func (s *Store) Topic(topic string) (TopicStat, error) {
	if err := s.rlock(); err != nil {
		return TopicStat{}, err
	}
	defer s.mu.RUnlock()
	v, err := s.getCopy(append([]byte{pTopicStat}, topic...))
	if errors.Is(err, ErrNotFound) {
		return TopicStat{Topic: topic}, nil
	}
	if err != nil {
		return TopicStat{}, fmt.Errorf("store: topic %s: %w", topic, err)
	}
	ts, err := decodeTopicStat(v)
	if err != nil {
		return TopicStat{}, err
	}
	return TopicStat{Topic: topic, Records: ts.records, LastArrival: ts.lastArrival}, nil
}

// Stats returns the store-wide totals as of the last commit.
func (s *Store) Stats() (Stats, error) {
	if err := s.rlock(); err != nil {
		return Stats{}, err
	}
	defer s.mu.RUnlock()
	v, err := s.getCopy(statsKey)
	if errors.Is(err, ErrNotFound) {
		return Stats{}, nil
	}
	if err != nil {
		return Stats{}, err
	}
	return decodeStats(v)
}

// GetMany reads the records cs as Get does, each re-hashed against its
// CID, and calls fn once per CID with its bytes (fn may keep them) or with
// the error Get would give (ErrNotFound, an error wrapping ErrCorrupt). It
// reads them in key order with one iterator, not in the order of cs: for
// many records (a process page's 10,000) that costs about half of as many
// Gets, whose every point lookup searches the memtable and each level from
// the top. fn is called with the store's read lock held and must not call
// the store. GetMany returns the first error fn returns, or a read error.
func (s *Store) GetMany(cs []cid.Cid, fn func(c cid.Cid, data []byte, err error) error) error {
	if err := s.rlock(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	keys := make([][]byte, len(cs))
	order := make([]int, len(cs))
	for i, c := range cs {
		keys[i], order[i] = blockKey(c), i
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(keys[a], keys[b]) })
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{pBlock}, UpperBound: []byte{pBlock + 1}})
	if err != nil {
		return fmt.Errorf("store: get many: %w", err)
	}
	defer it.Close()
	for _, i := range order {
		c, key := cs[i], keys[i]
		if !it.SeekGE(key) || !bytes.Equal(it.Key(), key) {
			if err := it.Error(); err != nil {
				return fmt.Errorf("store: get many: %w", err)
			}
			if err := fn(c, nil, ErrNotFound); err != nil {
				return err
			}
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("store: get many: %w", err)
		}
		data := bytes.Clone(v)
		if data == nil {
			data = []byte{}
		}
		if err := verifyBlock(c, data); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				err = fmt.Errorf("%w: %w", ErrCorrupt, err)
			}
			s.log.Error("corrupt block", "cid", c, "err", err)
			if err := fn(c, nil, err); err != nil {
				return err
			}
			continue
		}
		if err := fn(c, data, nil); err != nil {
			return err
		}
	}
	return nil
}

// ForkAuthors returns the authors of the records in the fork index (a
// record stored, with Entry.Fork, at a chain slot another record of its
// author holds: an equivocation), each once, sorted by bytes.
func (s *Store) ForkAuthors() ([][]byte, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{pFork}, UpperBound: []byte{pFork + 1}})
	if err != nil {
		return nil, fmt.Errorf("store: fork authors: %w", err)
	}
	var out [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) < 1+AuthorSize {
			continue
		}
		a := k[1 : 1+AuthorSize]
		// Keys sort by author first, so an author's forks are adjacent.
		if len(out) == 0 || !bytes.Equal(out[len(out)-1], a) {
			out = append(out, bytes.Clone(a))
		}
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("store: fork authors: %w", err)
	}
	return out, nil
}

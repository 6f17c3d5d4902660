package store

import (
	"sync"
)

// chainTopsMax bounds the number of (author, topic) chains whose top the
// store keeps in memory; beyond it an arbitrary entry is forgotten and read
// again from pebble when next needed.
const chainTopsMax = 1 << 18

// chainTops remembers, for recently used (author, topic) chains, an upper
// bound of the highest seq stored. A record whose seq is above the bound is
// neither stored nor in conflict with a stored record (its CID names its
// chain slot), so the hot path of ingest, appending to a chain, needs no
// pebble lookup for its duplicate and chain-slot checks.
//
// Invariant: a cached value is >= the highest seq of the chain in every
// commit that has returned to its Put or batch. The committer raises a
// cached value after each commit is durable, before it answers the
// waiters; between the two, a reader of pebble may already see a record
// the cache does not know of (so only the writer, who knows what it has
// in flight, uses the cache: Writer.ChainAt). A missing entry is loaded
// from pebble under mu, so a commit cannot slip between the load and the
// insertion. Forgetting an entry is always safe.
type chainTops struct {
	mu  sync.Mutex
	m   map[string]uint64 // chainPrefix(author, topic) -> top seq
	max int               // entries kept; chainTopsMax but in tests
}

func newChainTops() *chainTops { return &chainTops{m: map[string]uint64{}, max: chainTopsMax} }

// above reports whether seq is above the top of the chain whose key prefix
// is prefix; load reads the committed top from pebble when it is not
// cached.
func (t *chainTops) above(prefix []byte, seq uint64, load func() (uint64, error)) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	top, ok := t.m[string(prefix)]
	if !ok {
		var err error
		if top, err = load(); err != nil {
			return false, err
		}
		t.insert(string(prefix), top)
	}
	return seq > top, nil
}

// raise records that seq was committed on the chain of prefix. Unknown
// chains stay unknown: their top is loaded from pebble when needed.
func (t *chainTops) raise(prefix string, seq uint64) {
	if top, ok := t.m[prefix]; ok && seq > top {
		t.m[prefix] = seq
	}
}

// insert adds an entry, forgetting an arbitrary one if the map is full.
// The caller holds mu.
func (t *chainTops) insert(prefix string, top uint64) {
	makeRoom(t.m, t.max)
	t.m[prefix] = top
}

// makeRoom forgets an arbitrary entry of m if it holds max or more, so a
// bounded cache can take one more.
func makeRoom[K comparable, V any](m map[K]V, max int) {
	if len(m) < max {
		return
	}
	for k := range m {
		delete(m, k)
		return
	}
}

// headsMax bounds the number of topics whose heads the store keeps in
// memory; beyond it an arbitrary topic is forgotten and read again from
// pebble when next asked for.
const headsMax = 4096

// topicHeads keeps the heads of recently asked-for topics in memory. The
// head index in pebble is exact but, as every record deletes its parents'
// head entries, a topic's key range fills with deletion tombstones until
// compaction drops them, and a scan of it costs time in the number of
// records the topic ever had (35 ms at 50,000). Publish asks for a topic's
// heads for every record it builds.
//
// Invariant: a cached set equals the head index as readers of pebble see
// it. The committer holds mu while it applies a commit to pebble and then
// to the cached sets, so a reader of Heads sees either neither or both; a
// missing topic is loaded from pebble under mu, so no commit slips between
// the load and the insertion.
type topicHeads struct {
	mu  sync.Mutex
	m   map[string]map[string]struct{} // topic -> CID key strings
	max int
}

func newTopicHeads() *topicHeads {
	return &topicHeads{m: map[string]map[string]struct{}{}, max: headsMax}
}

// get returns the heads of topic, loading them with load if they are not
// cached. The caller owns the returned map only until it calls another
// method; get returns a copy.
func (h *topicHeads) get(topic string, load func() ([]string, error)) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	set, ok := h.m[topic]
	if !ok {
		keys, err := load()
		if err != nil {
			return nil, err
		}
		makeRoom(h.m, h.max)
		set = make(map[string]struct{}, len(keys))
		for _, k := range keys {
			set[k] = struct{}{}
		}
		h.m[topic] = set
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	return out, nil
}

// apply records that e was committed: it is a head of its topic, and its
// prev and deps are not. Topics not cached stay so. The caller holds mu.
func (h *topicHeads) apply(e *Entry) {
	set, ok := h.m[e.Topic]
	if !ok {
		return
	}
	if e.Prev.Defined() {
		delete(set, e.Prev.KeyString())
	}
	for _, d := range e.Deps {
		delete(set, d.KeyString())
	}
	set[e.CID.KeyString()] = struct{}{}
}

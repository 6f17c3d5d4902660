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
// Invariant: a cached value is >= the highest seq committed for the chain.
// The committer raises a cached value after each commit, before it answers
// the waiters; a missing entry is loaded from pebble under mu, so a commit
// cannot slip between the load and the insertion. Forgetting an entry is
// always safe.
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
	if len(t.m) >= t.max {
		for k := range t.m {
			delete(t.m, k)
			break
		}
	}
	t.m[prefix] = top
}

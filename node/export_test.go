package node

import (
	"slices"
	"strings"
)

// CachedItemSets returns the topics whose reconciliation sets the node
// keeps cached, for tests of the cache's bounds.
func CachedItemSets(n *Node) []string {
	s := n.sync
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.sets))
	for t := range s.sets {
		out = append(out, t)
	}
	return out
}

// PullBackTopics returns the topics this node pulled back from a peer
// after serving its reconciliation (reverseSync), sorted.
func PullBackTopics(n *Node) []string {
	sc := &n.sync.sched
	sc.mu.Lock()
	defer sc.mu.Unlock()
	var out []string
	for k := range sc.reverse {
		_, t, _ := strings.Cut(k, "|")
		out = append(out, t)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

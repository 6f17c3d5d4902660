package node

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

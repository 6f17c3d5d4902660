package gov

import (
	"cmp"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// Order returns the records without duplicates (by CID) in the
// deterministic causal order that [Derive] applies them in: by depth, then
// by CID bytes. The depth of a record is 1 plus the greatest depth of the
// records among its prev and deps that are in the set (1 if none are), so
// every record comes after its causal past within the set, and the order
// does not depend on the order of the input.
func Order(records []*protocol.Record) []*protocol.Record {
	idx := make(map[cid.Cid]int, len(records))
	var uniq []*protocol.Record
	for _, r := range records {
		if _, dup := idx[r.CID]; dup {
			continue
		}
		idx[r.CID] = len(uniq)
		uniq = append(uniq, r)
	}
	// Kahn's algorithm over the links inside the set.
	pending := make([]int, len(uniq))
	children := make([][]int32, len(uniq))
	for i, r := range uniq {
		for _, l := range distinctLinks(r) {
			if j, ok := idx[l]; ok {
				pending[i]++
				children[j] = append(children[j], int32(i))
			}
		}
	}
	depth := make([]int, len(uniq))
	queue := make([]int32, 0, len(uniq))
	for i, n := range pending {
		if n == 0 {
			depth[i] = 1
			queue = append(queue, int32(i))
		}
	}
	for k := 0; k < len(queue); k++ {
		i := queue[k]
		for _, c := range children[i] {
			depth[c] = max(depth[c], depth[i]+1)
			if pending[c]--; pending[c] == 0 {
				queue = append(queue, c)
			}
		}
	}
	// A cycle would need a SHA-256 collision; records in one are dropped.
	out := make([]*protocol.Record, 0, len(queue))
	keys := make([]string, len(uniq))
	for _, i := range queue {
		out = append(out, uniq[i])
		keys[i] = uniq[i].CID.KeyString()
	}
	slices.SortFunc(out, func(a, b *protocol.Record) int {
		i, j := idx[a.CID], idx[b.CID]
		return cmp.Or(cmp.Compare(depth[i], depth[j]), strings.Compare(keys[i], keys[j]))
	})
	return out
}

// distinctLinks returns prev and deps without repetition.
func distinctLinks(r *protocol.Record) []cid.Cid {
	ls := r.Links()
	if r.Env.Prev != nil && slices.ContainsFunc(r.Env.Deps, func(l protocol.Link) bool { return l.Equals(r.Env.Prev.Cid) }) {
		ls = ls[1:]
	}
	return ls
}

// Rejection is a record that [Derive] or [DeriveIndex] did not apply, with
// the protocol error saying why.
type Rejection struct {
	CID  cid.Cid
	Kind string
	Err  error
}

// cidCompare orders CIDs by their bytes.
func cidCompare(a, b cid.Cid) int { return strings.Compare(a.KeyString(), b.KeyString()) }

package gov

import (
	"bytes"
	"cmp"
	"slices"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// node is an applied record.
type node struct {
	rec   *protocol.Record
	links []int32 // applied records among prev and deps
	proc  *Process
	// member is the author as the roster of the record's causal past
	// knows it (records whose author must be a member).
	member protocol.Member
	// sums summarises the record's causal past and the record itself.
	sums  []procSum
	stamp uint32
	at    int32 // index in dag.nodes: nodes come in causal order
	// cp is the index of the author's latest checkpoint in its chain up
	// to this record (itself if it is one), or -1.
	cp int32
	// cs is the record's CID as text, made once for the audit.
	cs string
	// ref is the proposal version a feedback, objection, endorsement or
	// withdrawal refers to.
	ref *proposal
}

func (n *node) time() int64 { return n.rec.Env.Time }

func (n *node) author() string { return string(n.rec.Env.Author) }

type seqKey struct {
	author string
	seq    uint64
}

// dag holds the applied records of one topic and their causal links.
type dag struct {
	nodes []*node
	byCID map[cid.Cid]int32
	seqs  map[seqKey]cid.Cid
	// forks holds the records (node indices, in apply order) of every
	// slot at which an author signed two or more records: an equivocation.
	forks map[seqKey][]int32
	stamp uint32
}

func newDAG() dag {
	return dag{byCID: map[cid.Cid]int32{}, seqs: map[seqKey]cid.Cid{}, forks: map[seqKey][]int32{}}
}

func (d *dag) has(c cid.Cid) bool { _, ok := d.byCID[c]; return ok }

// admit runs the checks common to every record: not a duplicate and not
// claiming a time before a record it links to. It returns the applied
// records r links to. A second record of an author at one seq is valid
// (an equivocation: both are kept, see Equivocations); add records
// the fork.
func (d *dag) admit(r *protocol.Record) ([]int32, []*node, error) {
	env := &r.Env
	if d.has(r.CID) {
		return nil, nil, protocol.Errorf(protocol.ReasonDuplicate, "%s already applied", r.CID)
	}
	var links []int32
	linked := make([]*node, 0, len(env.Deps)+1)
	for _, c := range distinctLinks(r) {
		i, ok := d.byCID[c]
		if !ok {
			continue
		}
		n := d.nodes[i]
		if env.Time < n.time() {
			return nil, nil, protocol.Errorf(protocol.ReasonBadTime, "claims %s, before %s %s which it links to (%s)",
				fmtTime(env.Time), n.rec.Env.Kind, c, fmtTime(n.time()))
		}
		links = append(links, i)
		linked = append(linked, n)
	}
	return links, linked, nil
}

func (d *dag) add(n *node) {
	n.at = int32(len(d.nodes))
	n.cs = n.rec.CID.String()
	d.byCID[n.rec.CID] = n.at
	d.nodes = append(d.nodes, n)
	k := seqKey{n.author(), n.rec.Env.Seq}
	if other, ok := d.seqs[k]; ok {
		if len(d.forks[k]) == 0 {
			d.forks[k] = []int32{d.byCID[other]}
		}
		d.forks[k] = append(d.forks[k], n.at)
		return
	}
	d.seqs[k] = n.rec.CID
}

// HasSeq reports whether a record of author at seq has been applied: one
// more would be an equivocation.
func (d *dag) HasSeq(author []byte, seq uint64) bool {
	_, ok := d.seqs[seqKey{string(author), seq}]
	return ok
}

// forkedOrTaken reports whether author has a fork among the records
// applied or already has a record at seq (so one at seq would fork).
func (d *dag) forkedOrTaken(author string, seq uint64) bool {
	if _, ok := d.seqs[seqKey{author, seq}]; ok {
		return true
	}
	for k := range d.forks {
		if k.author == author {
			return true
		}
	}
	return false
}

// forkedIn returns the authors two of whose records at one seq are both
// in the universe u (nil: every record applied), or nil if none.
func (d *dag) forkedIn(u bitset) map[string]bool {
	var out map[string]bool
	for k, at := range d.forks {
		n := 0
		for _, i := range at {
			if u == nil || u.has(i) {
				n++
			}
		}
		if n >= 2 {
			if out == nil {
				out = map[string]bool{}
			}
			out[k.author] = true
		}
	}
	return out
}

// Equivocation is a fork in an author's chain: two records the author
// signed at one seq of one topic.
type Equivocation struct {
	Author []byte
	Seq    uint64
	A, B   cid.Cid // by CID bytes, A first
}

// Equivocations returns the forks among the records applied: every pair
// of records one author signed at one seq, sorted by author, seq and
// CIDs. Both records of a fork are valid (kept, forwarded, synced); their
// author's records count for nothing in any effect (docs/protocol.md,
// "Equivocation").
func (d *dag) Equivocations() []Equivocation {
	var out []Equivocation
	for k, at := range d.forks {
		for i, x := range at {
			for _, y := range at[i+1:] {
				a, b := d.nodes[x].rec.CID, d.nodes[y].rec.CID
				if cidCompare(a, b) > 0 {
					a, b = b, a
				}
				out = append(out, Equivocation{Author: []byte(k.author), Seq: k.seq, A: a, B: b})
			}
		}
	}
	slices.SortFunc(out, func(x, y Equivocation) int {
		return cmp.Or(bytes.Compare(x.Author, y.Author), cmp.Compare(x.Seq, y.Seq), cidCompare(x.A, y.A), cidCompare(x.B, y.B))
	})
	return out
}

// walk calls visit for every applied record in the causal past of the
// given links, once each.
func (d *dag) walk(links []int32, visit func(*node)) {
	d.stamp++
	st := d.stamp
	stack := make([]int32, 0, 64)
	push := func(i int32) {
		if n := d.nodes[i]; n.stamp != st {
			n.stamp = st
			stack = append(stack, i)
		}
	}
	for _, i := range links {
		push(i)
	}
	for len(stack) > 0 {
		n := d.nodes[stack[len(stack)-1]]
		stack = stack[:len(stack)-1]
		visit(n)
		for _, i := range n.links {
			push(i)
		}
	}
}

// lookup returns the applied record with CID c.
func (d *dag) lookup(c cid.Cid) (*node, bool) {
	i, ok := d.byCID[c]
	if !ok {
		return nil, false
	}
	return d.nodes[i], true
}

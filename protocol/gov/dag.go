package gov

import (
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
	stamp uint32
}

func newDAG() dag {
	return dag{byCID: map[cid.Cid]int32{}, seqs: map[seqKey]cid.Cid{}}
}

func (d *dag) has(c cid.Cid) bool { _, ok := d.byCID[c]; return ok }

// admit runs the checks common to every record: not a duplicate, not a
// second record of its author at its seq, and not claiming a time before
// a record it links to. It returns the applied records r links to.
func (d *dag) admit(r *protocol.Record) ([]int32, []*node, error) {
	env := &r.Env
	if d.has(r.CID) {
		return nil, nil, protocol.Errorf(protocol.ReasonDuplicate, "%s already applied", r.CID)
	}
	if other, ok := d.seqs[seqKey{string(env.Author), env.Seq}]; ok {
		return nil, nil, protocol.Errorf(protocol.ReasonEquivocation, "author %x already signed %s at seq %d", env.Author[:8], other, env.Seq)
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
	d.seqs[seqKey{n.author(), n.rec.Env.Seq}] = n.rec.CID
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

package protocol

import (
	"fmt"
	"math/bits"
	"slices"

	"github.com/ipfs/go-cid"
)

// OpenToNonMembers reports whether a key that is not a member in a record's
// causal past may publish a record of kind on topic. It is the one rule of
// who may publish what, and where, that the node and gov.Derive share: a
// member.apply on the members topic is the only record a non-member may
// sign. Every other record (every other members-topic kind, every record on
// the index and issue topics, statements included) is refused with
// not-member when its author is not a member in its causal past. The
// members fold (CheckMembership) and gov's Issue and Index apply it.
func OpenToNonMembers(topic, kind string) bool {
	return topic == TopicMembers && kind == KindMemberApply
}

// MembershipEngine is the incremental form of [DeriveMembers] and
// [CheckMembership]: it takes the records of a federation one by one, in a
// causal order (every record after the records it links to), and answers
// for each the membership in force in its causal past. It is what a node
// runs as records arrive; gov.Derive callers may use it as their RosterFunc
// source. Its verdicts are those of CheckMembership and its rosters those
// of DeriveMembers over the record's causal past, whatever causal order the
// records come in.
//
// Membership is evaluated on the members topic alone: each members-topic
// record gets an index and a bitset of the members-topic records in its
// causal past (its closure, itself included); every other record keeps the
// closure of its causal past, interned. The membership in force for a
// record is the fold of the members-topic records of its closure, computed
// by DeriveMembers and cached by closure.
//
// A MembershipEngine is not safe for concurrent use; the MemberSets it
// returns are immutable and may be shared.
type MembershipEngine struct {
	g *Genesis
	// members-topic records in apply order, in reduced form (links taken
	// through other topics), and their closures.
	mrecs    []*Record
	mindex   map[cid.Cid]int
	mclosure [][]uint64
	// closures of every other record, interned.
	closure map[cid.Cid][]uint64
	intern  map[string][]uint64
	// sets caches the membership of a closure, by closure key.
	sets map[string]*MemberSet
	// all is the membership of everything applied, built lazily.
	all *MemberSet
}

// maxCachedSets bounds the engine's cache of memberships by closure.
const maxCachedSets = 4096

// NewMembershipEngine returns the engine of the federation founded by g,
// which is assumed verified (Genesis.Verify). Its state is the genesis.
func NewMembershipEngine(g *Genesis) (*MembershipEngine, error) {
	if g == nil {
		return nil, fmt.Errorf("protocol: membership engine: no genesis")
	}
	if _, err := g.NetworkID(); err != nil {
		return nil, fmt.Errorf("protocol: membership engine: %w", err)
	}
	return &MembershipEngine{
		g: g, mindex: map[cid.Cid]int{}, closure: map[cid.Cid][]uint64{}, intern: map[string][]uint64{},
		sets: map[string]*MemberSet{},
	}, nil
}

// Has reports whether the record with CID c was added.
func (e *MembershipEngine) Has(c cid.Cid) bool {
	if _, ok := e.mindex[c]; ok {
		return true
	}
	_, ok := e.closure[c]
	return ok
}

// RosterAt returns the membership in force in r's causal past: the fold of
// the members-topic records the engine holds among r's ancestors. Links to
// records the engine does not hold are ignored.
func (e *MembershipEngine) RosterAt(r *Record) *MemberSet {
	return e.membersAt(e.closureOf(r))
}

// Check returns the error [MembershipEngine.Apply] would return for r,
// without adding it. For a members-topic record it is the verdict of
// CheckMembership over r's causal past; for a record of another topic it
// is not-member if the author is not a member in r's causal past and
// OpenToNonMembers does not allow it, else nil (the topic's own rules are
// gov's).
func (e *MembershipEngine) Check(r *Record) error {
	cl := e.closureOf(r)
	if r.Env.Topic == TopicMembers {
		return CheckMembership(e.g, e.reduced(r, cl), e.past(cl))
	}
	if !OpenToNonMembers(r.Env.Topic, r.Env.Kind) && !e.membersAt(cl).IsMember(r.Env.Author) {
		return Errorf(ReasonNotMember, "%s: author %x is not a member in the record's causal past", r.Env.Kind, r.Env.Author[:8])
	}
	return nil
}

// Add adds r so that later records see it in their causal past. A node
// adds the records it accepts (those that passed Check and, on the index
// and issue topics, the topic's own rules). Adding a record that failed
// Check is harmless, as gov.Derive over a set with invalid records needs:
// the fold judges every members-topic record of a past again, and a record
// of another topic carries no membership. Adding a record twice does
// nothing.
func (e *MembershipEngine) Add(r *Record) {
	if e.Has(r.CID) {
		return
	}
	cl := e.closureOf(r)
	if r.Env.Topic == TopicMembers {
		i := len(e.mrecs)
		e.mrecs = append(e.mrecs, e.reduced(r, cl))
		e.mindex[r.CID] = i
		own := slices.Grow(slices.Clone(cl), (i+64)/64-len(cl))[:(i+64)/64]
		own[i/64] |= 1 << (i % 64)
		e.mclosure = append(e.mclosure, own)
		e.all = nil
		return
	}
	k := closureKey(cl)
	if in, ok := e.intern[k]; ok {
		cl = in
	} else {
		e.intern[k] = cl
	}
	e.closure[r.CID] = cl
}

// Apply checks r (Check) and adds it (Add) if it is valid.
func (e *MembershipEngine) Apply(r *Record) error {
	if err := e.Check(r); err != nil {
		return err
	}
	e.Add(r)
	return nil
}

// Members returns the membership of every record added.
func (e *MembershipEngine) Members() *MemberSet {
	if e.all == nil {
		e.all = DeriveMembers(e.g, e.mrecs)
	}
	return e.all
}

// closureOf returns the union of the closures of r's parents. Parents the
// engine does not hold are skipped.
func (e *MembershipEngine) closureOf(r *Record) []uint64 {
	out := make([]uint64, (len(e.mrecs)+63)/64)
	for _, c := range r.Links() {
		var b []uint64
		if i, ok := e.mindex[c]; ok {
			b = e.mclosure[i]
		} else {
			b = e.closure[c]
		}
		for w, x := range b {
			out[w] |= x
		}
	}
	return out
}

// closureKey encodes a closure as a map key; trailing zero words do not
// change the set.
func closureKey(b []uint64) string {
	n := len(b)
	for n > 0 && b[n-1] == 0 {
		n--
	}
	buf := make([]byte, 0, n*8)
	for _, w := range b[:n] {
		for i := range 8 {
			buf = append(buf, byte(w>>(8*i)))
		}
	}
	return string(buf)
}

// past returns the members-topic records of a closure, in apply order.
func (e *MembershipEngine) past(cl []uint64) []*Record {
	var out []*Record
	for w, x := range cl {
		for x != 0 {
			i := w*64 + bits.TrailingZeros64(x)
			x &= x - 1
			out = append(out, e.mrecs[i])
		}
	}
	return out
}

// membersAt returns the membership in force in a closure.
func (e *MembershipEngine) membersAt(cl []uint64) *MemberSet {
	k := closureKey(cl)
	if set, ok := e.sets[k]; ok {
		return set
	}
	set := DeriveMembers(e.g, e.past(cl))
	if len(e.sets) >= maxCachedSets {
		clear(e.sets)
	}
	e.sets[k] = set
	return set
}

// reduced returns r with its links replaced by members-topic records of its
// causal past, so the members fold sees a causally closed set with the
// same ancestry: r's own members-topic links (kept as they are, since a
// rule may require a link among the deps, as member.endorse does for its
// application) and the maximal members-topic records reached through other
// topics. Signatures are not checked again by the fold.
func (e *MembershipEngine) reduced(r *Record, cl []uint64) *Record {
	direct := map[cid.Cid]bool{}
	for _, c := range r.Links() {
		if _, ok := e.mindex[c]; ok {
			direct[c] = true
		}
	}
	// The maximal elements of the closure: in no other member's closure.
	past := e.past(cl)
	var parents []cid.Cid
	for _, m := range past {
		i := e.mindex[m.CID]
		maximal := !direct[m.CID]
		for _, o := range past {
			if !maximal {
				break
			}
			if j := e.mindex[o.CID]; j > i && i/64 < len(e.mclosure[j]) && e.mclosure[j][i/64]&(1<<(i%64)) != 0 {
				maximal = false
			}
		}
		if maximal || direct[m.CID] {
			parents = append(parents, m.CID)
		}
	}
	cp := *r
	cp.Env.Prev = nil
	var deps []cid.Cid
	for _, p := range parents {
		if r.Env.Prev != nil && p.Equals(r.Env.Prev.Cid) {
			cp.Env.Prev = r.Env.Prev
			continue
		}
		deps = append(deps, p)
	}
	cp.Env.Deps = SortLinks(deps)
	return &cp
}

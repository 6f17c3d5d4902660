package protocol

import (
	"bytes"
	"math/bits"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
)

// This file holds the membership fold. Its specification, which another
// implementation must follow, is docs/protocol.md, "Membership"; in short:
//
//   - State(P), the membership of a causally closed set P, is the genesis
//     followed by the members-topic records of P that are valid, applied
//     one by one in the fold order: by members depth (the greatest number
//     of members-topic records on a prev/deps path below the record), then
//     by CID bytes. Depth depends only on a record's causal past, so the order of
//     P's records is the same in every set that holds them.
//   - A record is valid when it is allowed by State(past(r)), its own
//     strict causal past (check). Applying it (apply) can still find that a
//     concurrent record, earlier in the fold order, got there first; then
//     it has no effect. That is the only tie-break, and it is deterministic.
//
// Computing State(past(r)) from scratch for every record is quadratic. The
// fold instead keeps one running state over the fold order with an undo
// journal, and before checking r brings it to State(past(r)): it rolls
// back to the first record where the records applied so far and past(r)
// differ in a way that matters, and replays past(r) from there. Usually
// nothing needs to be rolled back. A record that nobody later depends on
// is rolled back once and left out until the final state needs it. A
// record far behind the others, whose past is smaller than what would
// have to be undone and redone, is checked against a fresh fold of its
// past instead. The cost is proportional to how far back the concurrency
// reaches.

// memDAG is a causally closed set of records in fold order, with, for each
// members-topic record, the members-topic records of its causal past.
type memDAG struct {
	members []*Record  // members-topic records in fold order
	anc     [][]uint64 // anc[i]: bitset over members of the strict past of members[i]
	missing []*Record  // members-topic records whose causal past is incomplete
}

func newMemDAG(recs []*Record) *memDAG {
	type node struct {
		r       *Record
		key     string
		parents []int
		state   int8 // 0 new, 1 parents pending, 2 done
		ok      bool // whole causal past present
		depth   int  // longest path, for a topological order
		mdepth  int  // members depth, for the fold order
		mi      int  // index in members, or -1
		anc     []uint64
	}
	idx := make(map[string]int, len(recs))
	nodes := make([]node, 0, len(recs))
	for _, r := range recs {
		if r == nil {
			continue
		}
		k := r.CID.KeyString()
		if _, dup := idx[k]; dup {
			continue
		}
		idx[k] = len(nodes)
		nodes = append(nodes, node{r: r, key: k, mi: -1})
	}
	// Depth and completeness, by an iterative post-order walk.
	for i := range nodes {
		stack := []int{i}
		for len(stack) > 0 {
			n := &nodes[stack[len(stack)-1]]
			switch n.state {
			case 2:
				stack = stack[:len(stack)-1]
			case 0:
				n.state, n.ok = 1, true
				for _, c := range n.r.Links() {
					p, ok := idx[c.KeyString()]
					if !ok {
						n.ok = false
						continue
					}
					n.parents = append(n.parents, p)
					if nodes[p].state == 0 {
						stack = append(stack, p)
					}
				}
			case 1:
				for _, p := range n.parents {
					pn := &nodes[p]
					if pn.state != 2 || !pn.ok { // a cycle, or an incomplete past
						n.ok = false
						continue
					}
					n.depth = max(n.depth, pn.depth+1)
					// Only members-topic records count in members depths,
					// so a set reduced to its members-topic records (links
					// taken through other topics) folds in the same order.
					step := 0
					if pn.r.Env.Topic == TopicMembers {
						step = 1
					}
					n.mdepth = max(n.mdepth, pn.mdepth+step)
				}
				n.state = 2
				stack = stack[:len(stack)-1]
			}
		}
	}
	order := make([]int, 0, len(nodes))
	d := &memDAG{}
	for i := range nodes {
		if nodes[i].ok {
			order = append(order, i)
		} else if nodes[i].r.Env.Topic == TopicMembers {
			d.missing = append(d.missing, nodes[i].r)
		}
	}
	// order is topological (parents first), for the closures below; the
	// fold order of the members-topic records is by members depth.
	slices.SortFunc(order, func(a, b int) int {
		if c := nodes[a].depth - nodes[b].depth; c != 0 {
			return c
		}
		return strings.Compare(nodes[a].key, nodes[b].key)
	})
	var morder []int
	for _, i := range order {
		if nodes[i].r.Env.Topic == TopicMembers {
			morder = append(morder, i)
		}
	}
	slices.SortFunc(morder, func(a, b int) int {
		if c := nodes[a].mdepth - nodes[b].mdepth; c != 0 {
			return c
		}
		return strings.Compare(nodes[a].key, nodes[b].key)
	})
	for _, i := range morder {
		nodes[i].mi = len(d.members)
		d.members = append(d.members, nodes[i].r)
	}
	words := (len(d.members) + 63) / 64
	for _, i := range order {
		n := &nodes[i]
		if len(n.parents) == 1 && nodes[n.parents[0]].mi < 0 {
			n.anc = nodes[n.parents[0]].anc // share: nothing to add
		} else {
			n.anc = make([]uint64, words)
			for _, p := range n.parents {
				pn := &nodes[p]
				for w, x := range pn.anc {
					n.anc[w] |= x
				}
				if pn.mi >= 0 {
					n.anc[pn.mi/64] |= 1 << (pn.mi % 64)
				}
			}
		}
	}
	d.anc = make([][]uint64, len(d.members))
	for _, i := range morder {
		d.anc[nodes[i].mi] = nodes[i].anc
	}
	return d
}

func hasBit(set []uint64, i int) bool { return set[i/64]&(1<<(i%64)) != 0 }

// memFold computes membership states.
type memFold struct {
	net      cid.Cid
	rules    Rules
	groups   map[string]bool
	regions  map[string]bool
	founders []Member
	st       *memState
}

// memState is a membership state with an undo journal.
type memState struct {
	ids     map[string]*memIdentity // by identity: the member's first key
	owner   map[string]*memIdentity // by every key the member ever held
	known   map[string]bool         // keys that no binding may claim again
	apps    map[string]*memApp      // registered applications, by CID key string
	tallies map[string]*memTally    // revocation and suspension votes
	flags   map[string][]cid.Cid    // equivocating key -> evidence
	undo    []func()
}

type memIdentity struct {
	id      string
	info    Member
	orgKey  string // OrgKey(info.Org)
	app     cid.Cid
	keys    []memEpoch
	removed cid.Cid
}

type memEpoch struct {
	key         []byte
	from, until cid.Cid
}

type memApp struct {
	cid      cid.Cid
	key      string
	body     *MemberApply
	voters   map[string]memVoter
	admitted bool
}

type memTally struct {
	voters map[string]memVoter
	done   bool
}

// memVoter is a member as it was in the causal past of one of its records.
type memVoter struct {
	group, region string
}

// memFact is what a valid record's check learnt from its causal past and
// its apply needs.
type memFact struct {
	voter string // identity of the author
	memVoter
	flag string // equivocation evidence: the equivocating key
}

func newMemState() *memState {
	return &memState{
		ids:     map[string]*memIdentity{},
		owner:   map[string]*memIdentity{},
		known:   map[string]bool{},
		apps:    map[string]*memApp{},
		tallies: map[string]*memTally{},
		flags:   map[string][]cid.Cid{},
	}
}

func newMemFold(g *Genesis) (*memFold, error) {
	if g == nil {
		return nil, Errorf(ReasonWrongNetwork, "no genesis")
	}
	net, err := g.NetworkID()
	if err != nil {
		return nil, Errorf(ReasonWrongNetwork, "genesis: %v", err)
	}
	e := &memFold{net: net, rules: g.Rules, groups: map[string]bool{}, regions: map[string]bool{}, founders: g.Founders}
	for _, n := range g.Groups {
		e.groups[n] = true
	}
	for _, n := range g.Regions {
		e.regions[n] = true
	}
	e.st = e.genesisState()
	return e, nil
}

// genesisState returns the state in which the founders are the members.
func (e *memFold) genesisState() *memState {
	st := newMemState()
	for _, f := range e.founders {
		k := string(f.Key)
		if st.known[k] {
			continue // CheckShape forbids this; stay deterministic anyway
		}
		m := f
		m.Key = slices.Clone(f.Key)
		ok, _ := OrgKey(m.Org)
		id := &memIdentity{id: k, info: m, orgKey: ok, keys: []memEpoch{{key: m.Key}}}
		st.ids[k], st.owner[k], st.known[k] = id, id, true
	}
	return st
}

// run folds the DAG's members-topic records into e's state, which then is
// State of the whole set, and returns the verdict of every members-topic
// record given, by CID key string.
func (e *memFold) run(d *memDAG) map[string]error {
	n := len(d.members)
	verdicts := make(map[string]error, n+len(d.missing))
	for _, r := range d.missing {
		verdicts[r.CID.KeyString()] = Errorf(ReasonMissingDeps, "the causal past of %s is incomplete", r.CID)
	}
	facts := make([]memFact, n)
	words := (n + 63) / 64
	// The state is always the fold of a subsequence Q of the records so
	// far: applied[k] says whether members[k] is in Q, mark[k] is the
	// journal length before it was applied, and changed[k] whether
	// applying it changed the state. A record of Q that changed nothing
	// can be left out without changing any later state, so the state is
	// the fold of a target set T (valid records only) exactly when Q and T
	// agree on every record that changed something.
	valid := make([]uint64, words)
	applied := make([]uint64, words)
	changed := make([]uint64, words)
	mark := make([]int, n)
	target := make([]uint64, words)
	// reach makes the state the fold of target over members[:limit].
	reach := func(limit int) {
		k := firstDiff(applied, changed, target, limit)
		if k == limit {
			return
		}
		if m := firstSet(applied, k, limit); m < limit {
			e.st.rollback(mark[m])
		}
		clearFrom(applied, k)
		clearFrom(changed, k)
		for ; k < limit; k++ {
			if !hasBit(target, k) {
				continue
			}
			mark[k] = len(e.st.undo)
			e.apply(d.members[k], facts[k])
			setBit(applied, k)
			if len(e.st.undo) > mark[k] {
				setBit(changed, k)
			}
		}
	}
	for i, r := range d.members {
		for w := range target {
			target[w] = d.anc[i][w] & valid[w]
		}
		var err error
		if k := firstDiff(applied, changed, target, i); k < i && count(target, 0, i) < count(applied, k, i) {
			// r's causal past is smaller than what the running state would
			// have to undo (r is far behind): fold it afresh, and keep the
			// running state for the records that come next.
			fresh := *e
			fresh.st = e.genesisState()
			for w, x := range target {
				for ; x != 0; x &= x - 1 {
					k := w*64 + bits.TrailingZeros64(x)
					fresh.apply(d.members[k], facts[k])
				}
			}
			facts[i], err = fresh.check(r)
		} else {
			reach(i)
			facts[i], err = e.check(r)
		}
		verdicts[r.CID.KeyString()] = err
		if err == nil {
			setBit(valid, i)
		}
	}
	copy(target, valid)
	reach(n)
	return verdicts
}

// firstDiff returns the least index below limit where the records applied
// and the target disagree on a record that matters: one in the target but
// not applied, or one applied, not in the target, that changed the state.
// It returns limit if there is none.
func firstDiff(applied, changed, target []uint64, limit int) int {
	for w := 0; w*64 < limit; w++ {
		if x := (target[w] &^ applied[w]) | (changed[w] &^ target[w]); x != 0 {
			return min(w*64+bits.TrailingZeros64(x), limit)
		}
	}
	return limit
}

// count returns the number of bits set in [from, limit).
func count(set []uint64, from, limit int) int {
	n := 0
	for w := from / 64; w*64 < limit; w++ {
		x := set[w]
		if w == from/64 {
			x &^= 1<<(from%64) - 1
		}
		if (w+1)*64 > limit {
			x &= 1<<(limit%64) - 1
		}
		n += bits.OnesCount64(x)
	}
	return n
}

// firstSet returns the least index in [from, limit) whose bit is set, or
// limit.
func firstSet(set []uint64, from, limit int) int {
	for k := from; k < limit; k++ {
		if k%64 == 0 && set[k/64] == 0 {
			k += 63
			continue
		}
		if hasBit(set, k) {
			return k
		}
	}
	return limit
}

// clearFrom clears every bit from index k on.
func clearFrom(set []uint64, k int) {
	w := k / 64
	if w < len(set) {
		set[w] &= 1<<(k%64) - 1
		clear(set[w+1:])
	}
}

func setBit(set []uint64, i int) { set[i/64] |= 1 << (i % 64) }

// current returns the member whose current key is key, or nil.
func (s *memState) current(key []byte) *memIdentity {
	id := s.owner[string(key)]
	if id == nil || id.removed.Defined() || !bytes.Equal(id.info.Key, key) {
		return nil
	}
	return id
}

// check decides whether r is valid given that e's state is State(past(r)).
func (e *memFold) check(r *Record) (memFact, error) {
	st := e.st
	if !r.Env.Network.Equals(e.net) {
		return memFact{}, Errorf(ReasonWrongNetwork, "record of network %s, genesis is %s", r.Env.Network.Cid, e.net)
	}
	author := r.Env.Author
	if apply, ok := r.Body.(*MemberApply); ok && r.Env.Topic == TopicMembers {
		switch {
		case st.current(author) != nil:
			return memFact{}, Errorf(ReasonNotAllowed, "member.apply: %x is already a member key", author[:8])
		case st.known[string(author)]:
			return memFact{}, Errorf(ReasonNotAllowed, "member.apply: %x was a member key or has applied before", author[:8])
		case !e.groups[apply.Group]:
			return memFact{}, Errorf(ReasonNotAllowed, "member.apply: group %q is not in the genesis taxonomy", apply.Group)
		case !e.regions[apply.Region]:
			return memFact{}, Errorf(ReasonNotAllowed, "member.apply: region %q is not in the genesis taxonomy", apply.Region)
		}
		if m := st.sameOrg(apply.Org); m != nil {
			return memFact{}, Errorf(ReasonNotAllowed, "member.apply: organisation %q is already a member as %q (one organisation is one member)", apply.Org, m.info.Org)
		}
		return memFact{}, nil
	}
	id := st.current(author)
	if id == nil {
		return memFact{}, Errorf(ReasonNotMember, "%s: %x is not a member key in the record's causal past", r.Env.Kind, author[:8])
	}
	f := memFact{voter: id.id, memVoter: memVoter{group: id.info.Group, region: id.info.Region}}
	if r.Env.Topic != TopicMembers {
		return f, nil
	}
	notAllowed := func(format string, args ...any) (memFact, error) {
		return memFact{}, Errorf(ReasonNotAllowed, r.Env.Kind+": "+format, args...)
	}
	switch b := r.Body.(type) {
	case *MemberEndorse:
		if !slices.ContainsFunc(r.Env.Deps, func(l Link) bool { return l.Equals(b.Application.Cid) }) {
			return memFact{}, Errorf(ReasonBadLinks, "member.endorse: application %s is not among the deps", b.Application.Cid)
		}
		app := st.apps[b.Application.KeyString()]
		switch {
		case app == nil:
			return notAllowed("%s is not a registered application in the causal past", b.Application.Cid)
		case app.key == string(author):
			return notAllowed("an applicant cannot endorse its own application")
		}
	case *MemberRotate:
		if st.known[string(b.NewKey)] {
			return notAllowed("new key %x is or was a member key or an applicant's", b.NewKey[:8])
		}
	case *MemberRevoke:
		if err := e.checkTarget(r, b.Key); err != nil {
			return memFact{}, err
		}
		if len(b.Replacement) > 0 && st.known[string(b.Replacement)] {
			return notAllowed("replacement %x is or was a member key or an applicant's", b.Replacement[:8])
		}
	case *MemberSuspend:
		if err := e.checkTarget(r, b.Key); err != nil {
			return memFact{}, err
		}
	case *MemberEquivocation:
		a, _, err := b.decode() // Decode's body check verified the signatures
		if err != nil {
			return memFact{}, Errorf(ReasonBadBody, "member.equivocation: %v", err)
		}
		if !a.Env.Network.Equals(e.net) {
			return memFact{}, Errorf(ReasonBadBody, "member.equivocation: evidence of network %s", a.Env.Network.Cid)
		}
		f.flag = string(a.Env.Author)
	}
	return f, nil
}

func (e *memFold) checkTarget(r *Record, key []byte) error {
	switch {
	case bytes.Equal(key, r.Env.Author):
		return Errorf(ReasonNotAllowed, "%s: a member cannot vote against its own key", r.Env.Kind)
	case e.st.current(key) == nil:
		return Errorf(ReasonNotAllowed, "%s: %x is not a member key in the record's causal past", r.Env.Kind, key[:8])
	}
	return nil
}

// apply adds the effect of a valid record to the state. Whatever a
// concurrent record earlier in the fold order already did wins.
func (e *memFold) apply(r *Record, f memFact) {
	st := e.st
	author := string(r.Env.Author)
	switch b := r.Body.(type) {
	case *MemberApply:
		if st.known[author] {
			return
		}
		setMap(st, st.known, author, true)
		setMap(st, st.apps, r.CID.KeyString(), &memApp{cid: r.CID, key: author, body: b, voters: map[string]memVoter{}})
	case *MemberEndorse:
		app := st.apps[b.Application.KeyString()]
		if app == nil || app.admitted || f.voter == app.key {
			return
		}
		if _, dup := app.voters[f.voter]; dup {
			return
		}
		setMap(st, app.voters, f.voter, f.memVoter)
		if !e.meets(app.voters, app.body.Group, app.body.Region, "") || st.owner[app.key] != nil || st.sameOrg(app.body.Org) != nil {
			return
		}
		setVal(st, &app.admitted, true)
		key := []byte(app.key)
		ok, _ := OrgKey(app.body.Org)
		id := &memIdentity{
			id:     app.key,
			orgKey: ok,
			info:   Member{Key: key, Org: app.body.Org, Group: app.body.Group, Region: app.body.Region, Contact: app.body.Contact},
			app:    app.cid,
			keys:   []memEpoch{{key: key, from: r.CID}},
		}
		setMap(st, st.ids, app.key, id)
		setMap(st, st.owner, app.key, id)
	case *MemberRotate:
		if id := st.current(r.Env.Author); id != nil && !st.known[string(b.NewKey)] {
			st.rekey(id, b.NewKey, r.CID)
		}
	case *MemberRevoke:
		t := e.vote(st.tallyOf("revoke", b.Key, b.Replacement), b.Key, f)
		if t == nil {
			return
		}
		id := st.owner[string(b.Key)]
		switch {
		case id == nil || id.removed.Defined():
		case len(b.Replacement) == 0:
			st.remove(id, r.CID)
		case bytes.Equal(id.info.Key, b.Key) && !st.known[string(b.Replacement)]:
			st.rekey(id, b.Replacement, r.CID)
		}
	case *MemberWithdraw:
		if id := st.ids[f.voter]; id != nil && !id.removed.Defined() {
			st.remove(id, r.CID)
		}
	case *MemberSuspend:
		if e.vote(st.tallyOf("suspend", b.Key, nil), b.Key, f) == nil {
			return
		}
		if id := st.owner[string(b.Key)]; id != nil && !id.removed.Defined() {
			st.remove(id, r.CID)
		}
	case *MemberEquivocation:
		setMap(st, st.flags, f.flag, append(slices.Clone(st.flags[f.flag]), r.CID))
		// Evidence suspends the member that holds or held the key at
		// once: a key that signed two histories is trusted for neither
		// (docs/protocol.md, 9.6).
		if id := st.owner[f.flag]; id != nil && !id.removed.Defined() {
			st.remove(id, r.CID)
		}
	}
}

// vote adds f's author to a tally against target and returns the tally if
// this vote made it meet the threshold for the first time.
func (e *memFold) vote(t *memTally, target []byte, f memFact) *memTally {
	if t.done {
		return nil
	}
	if id := e.st.owner[string(target)]; id != nil && id.id == f.voter {
		return nil
	}
	if _, dup := t.voters[f.voter]; dup {
		return nil
	}
	setMap(e.st, t.voters, f.voter, f.memVoter)
	id := e.st.owner[string(target)]
	if id == nil || !e.meets(t.voters, id.info.Group, id.info.Region, id.id) {
		return nil
	}
	setVal(e.st, &t.done, true)
	return t
}

// meets reports whether voters may change the membership of group and
// region: add a member to them (an admission) or remove one from them (a
// revocation or suspension of the identity except, "" for an admission).
// They must meet the genesis threshold, at least AdmitEndorsements
// distinct members from at least AdmitGroups groups and AdmitRegions
// regions, and (membership obeys P4 too, for groups and for regions) no
// coalition short of the concurrent majority may change another group or
// another region: a current member of group (other than except) must be
// among them, or, if group has no such member, a member of every group
// that has current members; and the same for region.
func (e *memFold) meets(voters map[string]memVoter, group, region, except string) bool {
	if len(voters) < e.rules.AdmitEndorsements {
		return false
	}
	var groups, regions []string
	for _, v := range voters {
		if !slices.Contains(groups, v.group) {
			groups = append(groups, v.group)
		}
		if !slices.Contains(regions, v.region) {
			regions = append(regions, v.region)
		}
	}
	if len(groups) < e.rules.AdmitGroups || len(regions) < e.rules.AdmitRegions {
		return false
	}
	return e.consents(groups, group, except, func(m *Member) string { return m.Group }) &&
		e.consents(regions, region, except, func(m *Member) string { return m.Region })
}

// consents reports whether voters, the classes (groups, or regions: of
// returns a member's) of the voting members, may change class: one of
// them is class, or class has no current member (but except) and they
// cover every class that has current members.
func (e *memFold) consents(voters []string, class, except string, of func(*Member) string) bool {
	if slices.Contains(voters, class) {
		return true
	}
	for _, id := range e.st.ids {
		if id.removed.Defined() || id.id == except {
			continue
		}
		c := of(&id.info)
		if c == class {
			return false // the class has members, and none of them agrees
		}
		if !slices.Contains(voters, c) {
			return false // the class has none: every class must agree
		}
	}
	return true
}

// sameOrg returns the current member whose organisation name is org's
// (by OrgKey), or nil.
func (s *memState) sameOrg(org string) *memIdentity {
	k, err := OrgKey(org)
	if err != nil {
		return nil
	}
	for _, id := range s.ids {
		if !id.removed.Defined() && id.orgKey == k {
			return id
		}
	}
	return nil
}

func (s *memState) tallyOf(kind string, target, replacement []byte) *memTally {
	k := kind + "\x00" + string(target) + "\x00" + string(replacement)
	t := s.tallies[k]
	if t == nil {
		t = &memTally{voters: map[string]memVoter{}}
		setMap(s, s.tallies, k, t)
	}
	return t
}

// rekey retires id's current key and makes key its current key.
func (s *memState) rekey(id *memIdentity, key []byte, by cid.Cid) {
	key = slices.Clone(key)
	setVal(s, &id.keys[len(id.keys)-1].until, by)
	setVal(s, &id.keys, append(id.keys, memEpoch{key: key, from: by}))
	setVal(s, &id.info.Key, key)
	setMap(s, s.known, string(key), true)
	setMap(s, s.owner, string(key), id)
}

// remove ends id's membership.
func (s *memState) remove(id *memIdentity, by cid.Cid) {
	setVal(s, &id.removed, by)
	if last := &id.keys[len(id.keys)-1]; !last.until.Defined() {
		setVal(s, &last.until, by)
	}
}

// rollback undoes every change made after the journal had length mark.
func (s *memState) rollback(mark int) {
	for len(s.undo) > mark {
		s.undo[len(s.undo)-1]()
		s.undo = s.undo[:len(s.undo)-1]
	}
}

func setMap[K comparable, V any](s *memState, m map[K]V, k K, v V) {
	old, had := m[k]
	m[k] = v
	s.undo = append(s.undo, func() {
		if had {
			m[k] = old
		} else {
			delete(m, k)
		}
	})
}

func setVal[T any](s *memState, p *T, v T) {
	old := *p
	*p = v
	s.undo = append(s.undo, func() { *p = old })
}

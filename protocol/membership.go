package protocol

import (
	"bytes"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
)

// MemberInfo describes one member of a federation: a founder or an admitted
// applicant, under every key it ever held.
type MemberInfo struct {
	// Member holds the organisation's details and, in Key, the member's
	// current key (its last key if it was removed).
	Member
	// Application links the member.apply record that admitted the member;
	// nil for a founder.
	Application *Link `cbor:"application"`
	// Keys is the member's key history, oldest first. The last entry is the
	// current key unless the member was removed.
	Keys []KeyEpoch `cbor:"keys"`
	// Removed links the record that removed the member (a withdrawal, or the
	// vote that completed a suspension or a revocation without replacement);
	// nil while the member is a member.
	Removed *Link `cbor:"removed"`
	// Flags links every valid equivocation evidence against any of the
	// member's keys, sorted by CID bytes. A flag is a mark, not a removal.
	Flags []Link `cbor:"flags"`
}

// KeyEpoch is one key of a member and the records that bound and retired it.
type KeyEpoch struct {
	// Key is the 32-byte ed25519 public key.
	Key []byte `cbor:"key"`
	// From links the record that made the key a member key: the endorsement
	// that completed the admission, the rotation, or the revocation vote
	// that completed a recovery. Nil for a founder's key (the genesis).
	From *Link `cbor:"from"`
	// Until links the record that retired the key: the rotation, the
	// revocation vote that completed a revocation, the withdrawal or the
	// vote that completed a suspension. Nil while the key is current.
	Until *Link `cbor:"until"`
}

// MemberSet is the membership derived from a genesis and a set of records
// by [DeriveMembers]. It is immutable; its methods may be called
// concurrently. Every returned value is a copy.
type MemberSet struct {
	members  []MemberInfo         // current members, sorted by key
	former   []MemberInfo         // removed members, sorted by last key
	current  map[string]int       // current key -> index in members
	history  map[string]keyRef    // every key ever held -> its member
	flags    map[string][]cid.Cid // equivocating key -> evidence, sorted
	verdicts map[string]error     // members-topic record CID -> nil if counted
	groups   []string
	regions  []string
}

type keyRef struct {
	former bool
	i      int
}

// IsMember reports whether key is the current key of a member.
func (s *MemberSet) IsMember(key []byte) bool {
	_, ok := s.current[string(key)]
	return ok
}

// Lookup returns the member whose current key is key.
func (s *MemberSet) Lookup(key []byte) (MemberInfo, bool) {
	i, ok := s.current[string(key)]
	if !ok {
		return MemberInfo{}, false
	}
	return s.members[i].clone(), true
}

// KeyHistory returns the member that holds or ever held key, including a
// removed member, with its whole key history. A record signed by key is
// attributable to that member; whether the key was a member key in the
// record's causal past is what [CheckMembership] decides.
func (s *MemberSet) KeyHistory(key []byte) (MemberInfo, bool) {
	ref, ok := s.history[string(key)]
	if !ok {
		return MemberInfo{}, false
	}
	if ref.former {
		return s.former[ref.i].clone(), true
	}
	return s.members[ref.i].clone(), true
}

// Members returns the current members sorted by current key bytes.
func (s *MemberSet) Members() []MemberInfo {
	return cloneInfos(s.members)
}

// Former returns the removed members sorted by their last key's bytes.
func (s *MemberSet) Former() []MemberInfo {
	return cloneInfos(s.former)
}

// Len returns the number of current members.
func (s *MemberSet) Len() int { return len(s.members) }

// Groups returns the stakeholder groups that have at least one current
// member, sorted.
func (s *MemberSet) Groups() []string { return slices.Clone(s.groups) }

// Regions returns the regions that have at least one current member,
// sorted.
func (s *MemberSet) Regions() []string { return slices.Clone(s.regions) }

// Flagged returns the CIDs of the valid equivocation evidence against key,
// sorted by bytes, whether or not key belongs to a member.
func (s *MemberSet) Flagged(key []byte) []cid.Cid {
	return slices.Clone(s.flags[string(key)])
}

// Verdict reports whether the members-topic record c was in the set given
// to DeriveMembers, and if so why it did not count: err is nil for a record
// that counted, or an *Error whose reason says why not (not-member,
// not-allowed, bad-body, bad-links, wrong-network, missing-deps).
func (s *MemberSet) Verdict(c cid.Cid) (known bool, err error) {
	err, known = s.verdicts[c.KeyString()]
	return known, err
}

func (m MemberInfo) clone() MemberInfo {
	m.Key = slices.Clone(m.Key)
	m.Keys = slices.Clone(m.Keys)
	for i := range m.Keys {
		m.Keys[i].Key = slices.Clone(m.Keys[i].Key)
	}
	m.Flags = slices.Clone(m.Flags)
	return m
}

func cloneInfos(in []MemberInfo) []MemberInfo {
	out := make([]MemberInfo, len(in))
	for i, m := range in {
		out[i] = m.clone()
	}
	return out
}

// DeriveMembers folds the genesis g and the records of a causally closed
// set (every record's prev and deps are in the set) into the member set.
//
// The result depends only on the set: not on the order of recs, nor on
// duplicates in it. Records of every topic may be given; only members-topic
// records change membership, the others only carry causal order. A
// members-topic record counts only if it is valid relative to its own
// causal past, as [CheckMembership] decides; a record whose causal past is
// not in the set, or that belongs to another network, counts for nothing.
// g is assumed verified (Genesis.Verify), and recs to come from Decode or
// Validate with their signatures checked; Decode's body check is what
// verifies the two records inside equivocation evidence, so a Record built
// by hand must not carry unchecked evidence.
func DeriveMembers(g *Genesis, recs []*Record) *MemberSet {
	e, err := newMemFold(g)
	if err != nil {
		return buildMemberSet(&memFold{st: newMemState()}, nil)
	}
	dag := newMemDAG(recs)
	verdicts := e.run(dag)
	return buildMemberSet(e, verdicts)
}

// CheckMembership reports whether r's author may publish r given r's causal
// past, taken from past: every record reachable from r's prev and deps must
// be in past (records of past that are not r's ancestors are ignored, so a
// caller may pass a superset). It returns nil, or an *Error:
//
//   - not-member: the author is not a member in r's causal past (every
//     record on the index and issue topics, and every members-topic kind but
//     member.apply, requires it);
//   - not-allowed: the causal past does not allow the record (an applicant
//     who is or was a member key, a group outside the taxonomy, endorsing
//     what is not an application, rotating to a known key, voting against a
//     non-member or oneself, ...);
//   - bad-links: a member.endorse whose application is not among its deps;
//   - bad-body: equivocation evidence of another network;
//   - wrong-network: r or its genesis do not match;
//   - missing-deps: part of r's causal past is not in past.
//
// The result depends only on r and its causal past. g is assumed verified,
// and r and past to come from Decode or Validate as for [DeriveMembers].
func CheckMembership(g *Genesis, r *Record, past []*Record) error {
	e, err := newMemFold(g)
	if err != nil {
		return err
	}
	anc, err := ancestors(r, past)
	if err != nil {
		return err
	}
	e.run(newMemDAG(anc))
	_, err = e.check(r)
	return err
}

// ancestors returns the records of past reachable from r's links.
func ancestors(r *Record, past []*Record) ([]*Record, error) {
	index := make(map[string]*Record, len(past))
	for _, p := range past {
		if p != nil {
			index[p.CID.KeyString()] = p
		}
	}
	seen := map[string]bool{r.CID.KeyString(): true}
	var out []*Record
	stack := r.Links()
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		k := c.KeyString()
		if seen[k] {
			continue
		}
		seen[k] = true
		p, ok := index[k]
		if !ok {
			return nil, Errorf(ReasonMissingDeps, "%s in the causal past of %s is not given", c, r.CID)
		}
		out = append(out, p)
		stack = append(stack, p.Links()...)
	}
	return out, nil
}

func buildMemberSet(e *memFold, verdicts map[string]error) *MemberSet {
	s := &MemberSet{
		current:  map[string]int{},
		history:  map[string]keyRef{},
		flags:    map[string][]cid.Cid{},
		verdicts: verdicts,
	}
	for k, evidence := range e.st.flags {
		cs := slices.Clone(evidence)
		slices.SortFunc(cs, func(a, b cid.Cid) int { return strings.Compare(a.KeyString(), b.KeyString()) })
		s.flags[k] = slices.CompactFunc(cs, cid.Cid.Equals)
	}
	for _, id := range e.st.ids {
		m := MemberInfo{Member: id.info, Application: optLink(id.app), Removed: optLink(id.removed)}
		m.Key = slices.Clone(m.Key)
		var flags []cid.Cid
		for _, ep := range id.keys {
			m.Keys = append(m.Keys, KeyEpoch{Key: slices.Clone(ep.key), From: optLink(ep.from), Until: optLink(ep.until)})
			flags = append(flags, s.flags[string(ep.key)]...)
		}
		slices.SortFunc(flags, func(a, b cid.Cid) int { return strings.Compare(a.KeyString(), b.KeyString()) })
		for _, c := range slices.CompactFunc(flags, cid.Cid.Equals) {
			m.Flags = append(m.Flags, Link{c})
		}
		if id.removed.Defined() {
			s.former = append(s.former, m)
		} else {
			s.members = append(s.members, m)
		}
	}
	byKey := func(a, b MemberInfo) int { return bytes.Compare(a.Key, b.Key) }
	slices.SortFunc(s.members, byKey)
	slices.SortFunc(s.former, byKey)
	for i, m := range s.members {
		s.current[string(m.Key)] = i
		for _, ep := range m.Keys {
			s.history[string(ep.Key)] = keyRef{i: i}
		}
		s.groups = append(s.groups, m.Group)
		s.regions = append(s.regions, m.Region)
	}
	for i, m := range s.former {
		for _, ep := range m.Keys {
			s.history[string(ep.Key)] = keyRef{former: true, i: i}
		}
	}
	slices.Sort(s.groups)
	s.groups = slices.Compact(s.groups)
	slices.Sort(s.regions)
	s.regions = slices.Compact(s.regions)
	return s
}

func optLink(c cid.Cid) *Link {
	if !c.Defined() {
		return nil
	}
	return &Link{c}
}

package gov

import (
	"fmt"
	"slices"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// Index is the derived state of a federation's index topic: which issues
// are open. Like [Issue] it is updated by Apply in causal order, or built
// by [DeriveIndex] from a set of records. It is not safe for concurrent
// use.
type Index struct {
	net cid.Cid
	dag
	opens map[string][]*node // valid issue.open records by slug
}

// IssueInfo describes an open issue.
type IssueInfo struct {
	Slug    string
	Title   string
	Summary string
	// Open is the issue.open record that won the slug; Author and Time are
	// its author (as the roster of its causal past knows them) and claimed
	// time.
	Open   cid.Cid
	Author protocol.Member
	Time   int64
	// Contenders are the other valid issue.open records of the slug
	// (concurrent with Open, so neither saw the other), sorted by CID.
	Contenders []cid.Cid
}

// NewIndex returns the empty index state of the federation founded by g.
func NewIndex(g *protocol.Genesis) (*Index, error) {
	net, err := g.NetworkID()
	if err != nil {
		return nil, fmt.Errorf("gov: %w", err)
	}
	return &Index{net: net, dag: newDAG(), opens: map[string][]*node{}}, nil
}

// DeriveIndex applies the records of the index topic among records to a
// new index in the order of [Order], and returns it with the records it
// rejected. The result does not depend on the order of records.
func DeriveIndex(g *protocol.Genesis, records []*protocol.Record, rosterAt RosterFunc) (*Index, []Rejection, error) {
	x, err := NewIndex(g)
	if err != nil {
		return nil, nil, err
	}
	var mine []*protocol.Record
	for _, r := range records {
		if r.Env.Topic == protocol.TopicIndex {
			mine = append(mine, r)
		}
	}
	var rej []Rejection
	for _, r := range Order(mine) {
		if err := x.Apply(r, rosterAt(r)); err != nil {
			rej = append(rej, Rejection{CID: r.CID, Kind: r.Env.Kind, Err: err})
		}
	}
	return x, rej, nil
}

// Has reports whether the record with CID c has been applied.
func (x *Index) Has(c cid.Cid) bool { return x.has(c) }

// Len returns the number of records applied.
func (x *Index) Len() int { return len(x.nodes) }

// Check returns the error [Index.Apply] would return for r, without
// applying it.
func (x *Index) Check(r *protocol.Record, roster Roster) error {
	_, _, err := x.check(r, roster)
	return err
}

// Apply validates r against its causal past and adds it to the index. The
// preconditions and errors are those of [Issue.Apply]. An issue.open
// record must be signed by a member, and is not allowed if another
// issue.open of the same slug is in its causal past: of concurrent opens
// of one slug, all are valid and the one with the smallest CID wins.
func (x *Index) Apply(r *protocol.Record, roster Roster) error {
	links, m, err := x.check(r, roster)
	if err != nil {
		return err
	}
	n := &node{rec: r, links: links, member: m}
	x.add(n)
	if b, ok := r.Body.(*protocol.IssueOpen); ok {
		x.opens[b.Slug] = append(x.opens[b.Slug], n)
	}
	return nil
}

func (x *Index) check(r *protocol.Record, roster Roster) ([]int32, protocol.Member, error) {
	if roster == nil {
		roster = emptyRoster{}
	}
	switch {
	case !r.Env.Network.Equals(x.net):
		return nil, protocol.Member{}, protocol.Errorf(protocol.ReasonWrongNetwork, "record of network %s, index of %s", r.Env.Network.Cid, x.net)
	case r.Env.Topic != protocol.TopicIndex:
		return nil, protocol.Member{}, protocol.Errorf(protocol.ReasonWrongTopic, "record of topic %q applied to the index", r.Env.Topic)
	}
	links, _, err := x.admit(r)
	if err != nil {
		return nil, protocol.Member{}, err
	}
	b, ok := r.Body.(*protocol.IssueOpen)
	if !ok {
		// Who may publish what is one rule, shared with the node.
		if _, ok := roster.Lookup(r.Env.Author); !ok && !protocol.OpenToNonMembers(r.Env.Topic, r.Env.Kind) {
			return nil, protocol.Member{}, protocol.Errorf(protocol.ReasonNotMember, "author %x of %s is not a member in its causal past", r.Env.Author[:8], r.Env.Kind)
		}
		return links, protocol.Member{}, nil
	}
	m, ok := roster.Lookup(r.Env.Author)
	if !ok {
		return nil, protocol.Member{}, protocol.Errorf(protocol.ReasonNotMember, "author %x of %s is not a member in its causal past", r.Env.Author[:8], r.Env.Kind)
	}
	if len(x.opens[b.Slug]) > 0 {
		var prior cid.Cid
		x.walk(links, func(n *node) {
			if o, ok := n.rec.Body.(*protocol.IssueOpen); ok && o.Slug == b.Slug && (!prior.Defined() || cidCompare(n.rec.CID, prior) < 0) {
				prior = n.rec.CID
			}
		})
		if prior.Defined() {
			return nil, protocol.Member{}, notAllowed("issue %q is already opened by %s in its causal past", b.Slug, prior)
		}
	}
	return links, m, nil
}

// Issues returns the open issues, sorted by slug.
func (x *Index) Issues() []IssueInfo {
	out := make([]IssueInfo, 0, len(x.opens))
	for _, slug := range sortedKeys(x.opens) {
		info, _ := x.Issue(slug)
		out = append(out, info)
	}
	return out
}

// Issue returns the issue with the given slug and whether it is open.
func (x *Index) Issue(slug string) (IssueInfo, bool) {
	ns := slices.Clone(x.opens[slug])
	if len(ns) == 0 {
		return IssueInfo{}, false
	}
	slices.SortFunc(ns, func(a, b *node) int { return cidCompare(a.rec.CID, b.rec.CID) })
	w := ns[0]
	b := w.rec.Body.(*protocol.IssueOpen)
	info := IssueInfo{Slug: slug, Title: b.Title, Summary: b.Summary, Open: w.rec.CID, Author: w.member, Time: w.time()}
	for _, n := range ns[1:] {
		info.Contenders = append(info.Contenders, n.rec.CID)
	}
	return info, true
}

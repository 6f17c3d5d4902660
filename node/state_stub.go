package node

// TEMPORARY: this file stands in for the governance and membership state
// methods the lead is adding in main. It derives the state from the store
// on every call with the genesis founders as the only roster. Delete it at
// merge.

import (
	"fmt"
	"slices"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/protocol/gov"
	"github.com/clearinghouse-net/clearinghouse/store"
)

// Members returns the federation's current members.
func (n *Node) Members() []protocol.MemberInfo {
	return protocol.DeriveMembers(n.genesis, nil).Members()
}

// Issues returns the open issues.
func (n *Node) Issues() []gov.IssueInfo {
	recs, err := n.topicRecords(protocol.TopicIndex)
	if err != nil {
		return nil
	}
	x, _, err := gov.DeriveIndex(n.genesis, recs, n.stubRoster)
	if err != nil {
		return nil
	}
	return x.Issues()
}

// Processes returns the processes of an issue.
func (n *Node) Processes(slug string) ([]*gov.Process, error) {
	is, err := n.stubIssue(slug)
	if err != nil {
		return nil, err
	}
	return is.Processes(), nil
}

// Process returns the derived state of the process started by charter; the
// error wraps store.ErrNotFound if it is unknown.
func (n *Node) Process(charter cid.Cid) (*gov.Process, error) {
	m, err := n.store.Meta(charter)
	if err != nil {
		return nil, err
	}
	if m.Kind != protocol.KindCharter {
		return nil, fmt.Errorf("node: %s is not a charter: %w", charter, store.ErrNotFound)
	}
	slug, ok := protocol.IssueSlug(m.Topic)
	if !ok {
		return nil, fmt.Errorf("node: charter %s: %w", charter, store.ErrNotFound)
	}
	is, err := n.stubIssue(slug)
	if err != nil {
		return nil, err
	}
	p, ok := is.Process(charter)
	if !ok {
		return nil, fmt.Errorf("node: process %s: %w", charter, store.ErrNotFound)
	}
	return p, nil
}

// Audit returns the P1-P4 audit of the process started by charter.
func (n *Node) Audit(charter cid.Cid) (*gov.Report, error) {
	p, err := n.Process(charter)
	if err != nil {
		return nil, err
	}
	return p.Audit(nil), nil
}

func (n *Node) stubIssue(slug string) (*gov.Issue, error) {
	if !protocol.ValidSlug(slug) {
		return nil, fmt.Errorf("node: issue %q: %w", slug, store.ErrNotFound)
	}
	if !slices.ContainsFunc(n.Issues(), func(i gov.IssueInfo) bool { return i.Slug == slug }) {
		return nil, fmt.Errorf("node: issue %q: %w", slug, store.ErrNotFound)
	}
	recs, err := n.topicRecords(protocol.IssueTopic(slug))
	if err != nil {
		return nil, err
	}
	is, _, err := gov.Derive(n.genesis, slug, recs, n.stubRoster)
	return is, err
}

func (n *Node) topicRecords(topic string) ([]*protocol.Record, error) {
	var out []*protocol.Record
	var after uint64
	for {
		ms, err := n.store.TopicRecords(topic, after, 1000)
		if err != nil {
			return nil, err
		}
		if len(ms) == 0 {
			return out, nil
		}
		for _, m := range ms {
			r, err := n.Record(m.CID)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
			after = m.Arrival
		}
	}
}

type stubRoster struct{ g *protocol.Genesis }

func (r stubRoster) Lookup(key []byte) (protocol.Member, bool) {
	for _, m := range r.g.Founders {
		if string(m.Key) == string(key) {
			return m, true
		}
	}
	return protocol.Member{}, false
}
func (r stubRoster) Groups() []string {
	return r.set(func(m protocol.Member) string { return m.Group })
}
func (r stubRoster) Regions() []string {
	return r.set(func(m protocol.Member) string { return m.Region })
}
func (r stubRoster) set(f func(protocol.Member) string) []string {
	var out []string
	for _, m := range r.g.Founders {
		if !slices.Contains(out, f(m)) {
			out = append(out, f(m))
		}
	}
	slices.Sort(out)
	return out
}

func (n *Node) stubRoster(*protocol.Record) gov.Roster { return stubRoster{n.genesis} }

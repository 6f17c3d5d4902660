package api

import (
	"fmt"
	"slices"
	"strings"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/protocol/gov"
)

// refuse returns why this node refuses to publish a record of kind on
// topic with body, or "" if it does not. These are typos that would leave
// state no one sees: the protocol accepts the record (its validity rules
// are the network's, and stay as they are), but it would never count. A
// record arriving from a peer is not checked here.
func (s *Server) refuse(kind, topic string, body any) string {
	if kind != protocol.KindCharter {
		return ""
	}
	slug, ok := protocol.IssueSlug(topic)
	if ok && !s.issueOpen(slug) {
		return fmt.Sprintf("issue %q is not open on this federation's index, so a charter on %s would reach no one: "+
			"open it first (clearinghouse issue open %s --title TITLE), or check the slug against clearinghouse issue list", slug, topic, slug)
	}
	if c, ok := body.(*protocol.Charter); ok && strings.TrimSpace(c.Aim) == "" {
		return "the charter states no aim: principle P2 wants notice of the aim, purpose, modalities and significance of every process"
	}
	return ""
}

// issueOpen reports whether the issue slug is open on the node's index.
func (s *Server) issueOpen(slug string) bool {
	return slices.ContainsFunc(s.n.Issues(), func(i gov.IssueInfo) bool { return i.Slug == slug })
}

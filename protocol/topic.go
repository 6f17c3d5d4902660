package protocol

import (
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
	p2pprotocol "github.com/libp2p/go-libp2p/core/protocol"
)

// Record topics. Every record names one topic; the gossipsub topic it travels
// on is derived from it and from the network id by [PubsubTopic].
const (
	// TopicIndex is the federation-wide topic on which issues are opened.
	TopicIndex = "index"
	// TopicMembers is the federation-wide topic of membership records.
	TopicMembers = "members"
	// issuePrefix starts the topic of an issue: "issue/<slug>".
	issuePrefix = "issue/"
	// publicPrefix starts the public-comment topic of an issue:
	// "public/<slug>" (kinds_public.go).
	publicPrefix = "public/"
)

// TopicClass says on which topics a kind may appear.
type TopicClass uint8

// Topic classes.
const (
	ClassIndex TopicClass = 1 << iota
	ClassMembers
	ClassIssue
	// ClassPublic is the public-comment topic of an issue, the one topic
	// on which records of non-members are valid (kinds_public.go).
	ClassPublic
)

// IssueTopic returns the record topic of the issue with the given slug.
func IssueTopic(slug string) string { return issuePrefix + slug }

// IssueSlug returns the slug of an issue topic and whether topic is one.
func IssueSlug(topic string) (string, bool) {
	slug, ok := strings.CutPrefix(topic, issuePrefix)
	return slug, ok && ValidSlug(slug)
}

// ValidSlug reports whether s is a valid issue slug: 1 to 63 characters of
// a-z, 0-9 and '-', starting with a letter or digit.
func ValidSlug(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0:
		default:
			return false
		}
	}
	return true
}

// ClassOf returns the class of a record topic, or 0 if the topic is malformed.
func ClassOf(topic string) TopicClass {
	switch topic {
	case TopicIndex:
		return ClassIndex
	case TopicMembers:
		return ClassMembers
	}
	if _, ok := IssueSlug(topic); ok {
		return ClassIssue
	}
	if _, ok := PublicSlug(topic); ok {
		return ClassPublic
	}
	return 0
}

// ValidTopic returns nil if topic is a well-formed record topic.
func ValidTopic(topic string) error {
	if len(topic) > MaxTopicLen || ClassOf(topic) == 0 {
		return Errorf(ReasonWrongTopic, "malformed topic %q (want %q, %q, \"issue/<slug>\" or \"public/<slug>\")", topic, TopicIndex, TopicMembers)
	}
	return nil
}

// PubsubTopic returns the gossipsub topic name that carries a record topic
// of the given network: "/clearinghouse/<network cid>/<topic>".
func PubsubTopic(network cid.Cid, topic string) string {
	return "/clearinghouse/" + network.String() + "/" + topic
}

// RecordTopic returns the record topic of a gossipsub topic name of the
// given network, and whether the name belongs to that network.
func RecordTopic(network cid.Cid, pubsubTopic string) (string, bool) {
	t, ok := strings.CutPrefix(pubsubTopic, "/clearinghouse/"+network.String()+"/")
	if !ok || ClassOf(t) == 0 {
		return "", false
	}
	return t, true
}

// SyncProtocol returns the libp2p protocol id of the sync protocol of a
// network.
func SyncProtocol(network cid.Cid) p2pprotocol.ID {
	return p2pprotocol.ID(fmt.Sprintf("/clearinghouse/%s/sync/1.0.0", network))
}

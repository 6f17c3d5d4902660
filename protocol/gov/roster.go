package gov

import "github.com/clearinghouse-net/clearinghouse/protocol"

// Roster is the membership in force in some causal past. Implementations
// live with the membership rules; tests use a map built from a genesis.
type Roster interface {
	// Lookup returns the member a key identifies (organisation, group and
	// region, and the member's current key in Member.Key) and whether the
	// key belongs to a member.
	Lookup(key []byte) (protocol.Member, bool)
	// Groups returns the stakeholder groups that have at least one member.
	Groups() []string
	// Regions returns the regions that have at least one member.
	Regions() []string
}

// EquivocatorRoster is a Roster of the whole record set (Issue.SetMembers)
// that also knows the equivocators of every topic. An Issue finds the
// forks on its own topic itself; a node or a caller of Derive passes the
// keys that equivocated elsewhere (or against which the members topic
// holds evidence) through this interface, so every issue voids them.
type EquivocatorRoster interface {
	Roster
	// Equivocated reports whether key, or another key of the same
	// member, signed two records at one seq of one topic in the set.
	Equivocated(key []byte) bool
}

// RosterFunc returns the roster in force in a record's causal past. It must
// be a function of that causal past only, so that every node reaches the
// same verdict on the record.
type RosterFunc func(r *protocol.Record) Roster

// emptyRoster is the roster used when a caller passes nil: nobody is a member.
type emptyRoster struct{}

func (emptyRoster) Lookup([]byte) (protocol.Member, bool) { return protocol.Member{}, false }
func (emptyRoster) Groups() []string                      { return nil }
func (emptyRoster) Regions() []string                     { return nil }

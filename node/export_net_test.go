package node

import "github.com/libp2p/go-libp2p/core/peer"

// WithBootstrapHook exports withBootstrapHook to the node_test package.
func WithBootstrapHook(f func(peer.ID, error)) Option { return withBootstrapHook(f) }

// MemberTag exports memberTag, the connection manager tag of members.
const MemberTag = memberTag

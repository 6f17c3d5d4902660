package testnet

import (
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// NopGossipTracer is a gossipsub raw tracer that does nothing. Embed it in
// a tracer that needs only some of pubsub.RawTracer's methods and define
// those (node.WithGossipTracer installs one on a node).
type NopGossipTracer struct{}

var _ pubsub.RawTracer = NopGossipTracer{}

func (NopGossipTracer) AddPeer(peer.ID, protocol.ID)                         {}
func (NopGossipTracer) RemovePeer(peer.ID)                                   {}
func (NopGossipTracer) Join(string)                                          {}
func (NopGossipTracer) Leave(string)                                         {}
func (NopGossipTracer) Graft(peer.ID, string)                                {}
func (NopGossipTracer) Prune(peer.ID, string)                                {}
func (NopGossipTracer) ValidateMessage(*pubsub.Message)                      {}
func (NopGossipTracer) DeliverMessage(*pubsub.Message)                       {}
func (NopGossipTracer) RejectMessage(*pubsub.Message, string)                {}
func (NopGossipTracer) DuplicateMessage(*pubsub.Message)                     {}
func (NopGossipTracer) ThrottlePeer(peer.ID)                                 {}
func (NopGossipTracer) RecvRPC(*pubsub.RPC)                                  {}
func (NopGossipTracer) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (NopGossipTracer) DropRPC(*pubsub.RPC, peer.ID)                         {}
func (NopGossipTracer) UndeliverableMessage(*pubsub.Message)                 {}
func (NopGossipTracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (NopGossipTracer) OnClosedOutboundStream(peer.ID)                       {}
func (NopGossipTracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}

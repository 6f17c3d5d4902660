package node

import (
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// GossipOptions returns the gossipsub options every clearinghouse node
// uses for propagation: mesh and heartbeat parameters, flood publishing,
// queue sizes, the message size limit and peer scoring. They do not
// include what is specific to records (message id, signature policy,
// validators, tracer), which New adds. The testnet benchmark gives raw
// gossipsub the same options, so the two are compared like for like.
// docs/benchmarks.md gives every value that differs from gossipsub's
// default and the measurement that chose it.
func GossipOptions() []pubsub.Option { return gossipOptions(nil) }

// gossipOptions is GossipOptions with app as the application-specific
// part of the peer score (nil: none).
func gossipOptions(app func(peer.ID) float64) []pubsub.Option {
	return []pubsub.Option{
		pubsub.WithGossipSubParams(GossipParams()),
		// Flood-publish our own records to every topic peer: governance
		// records are few, and a record must not wait for the mesh.
		pubsub.WithFloodPublish(true),
		// Bursts (a catch-up, a busy consultation) must not overflow the
		// per-peer send queue or the validation queue, which drop silently.
		pubsub.WithPeerOutboundQueueSize(DefaultPubsubQueue),
		pubsub.WithValidateQueueSize(DefaultPubsubQueue),
		// Frames up to gossipsub's default size are read whole, so an
		// oversize record in one is refused and counted, and costs the
		// peer nothing else (a frame above the read limit resets the
		// stream and loses the peer's later messages).
		pubsub.WithMaxMessageSize(protocol.MaxGossipFrame),
		pubsub.WithPeerScore(peerScoreParams(app), peerScoreThresholds()),
	}
}

// GossipParams returns the gossipsub router parameters of a node.
func GossipParams() pubsub.GossipSubParams {
	p := pubsub.DefaultGossipSubParams()
	return p
}

// GossipTopicScoreParams returns the peer-scoring parameters a node sets on
// every record topic it joins.
func GossipTopicScoreParams() *pubsub.TopicScoreParams { return topicScoreParams() }

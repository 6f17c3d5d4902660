package node

import (
	"errors"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

// WithHostOptions adds libp2p options to the node's host, after the
// node's own (identity, listen addresses, TCP and QUIC, the connection
// manager, no relay, metrics). The simulated network of testnet/simulation
// uses it to put nodes on go-libp2p's simulated QUIC network; options that
// contradict the node's own make New fail.
func WithHostOptions(opts ...libp2p.Option) Option {
	return func(o *options) error {
		for _, opt := range opts {
			if opt == nil {
				return errors.New("node: nil host option")
			}
		}
		o.hostOpts = append(o.hostOpts, opts...)
		return nil
	}
}

// WithGossipTracer adds a raw tracer to the node's gossipsub router: it is
// called for every RPC the node sends and receives, every mesh change and
// every message validated, from gossipsub's event loop, so it must not
// block. The testnet benchmark uses it to count the gossip traffic by
// topic and message type (docs/benchmarks.md section 8).
func WithGossipTracer(t pubsub.RawTracer) Option {
	return func(o *options) error {
		if t == nil {
			return errors.New("node: nil gossip tracer")
		}
		o.gossipTracer = append(o.gossipTracer, t)
		return nil
	}
}

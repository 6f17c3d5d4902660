package node

import (
	"errors"

	"github.com/libp2p/go-libp2p"
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

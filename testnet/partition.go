package testnet

import (
	"context"
	"sync"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// Partition cuts a network into groups that cannot connect to each other.
// Create it with NewPartition, pass it to New with WithPartition (it
// installs a connection gater on every node), then Cut and Heal. It is safe
// for concurrent use.
type Partition struct {
	mu      sync.RWMutex // guards blocked
	blocked map[[2]peer.ID]bool
}

// NewPartition returns a partition that blocks nothing.
func NewPartition() *Partition {
	return &Partition{blocked: map[[2]peer.ID]bool{}}
}

// WithPartition installs p's connection gater on every node of the network.
func WithPartition(p *Partition) Option {
	return func(o *options) error { o.partition = p; return nil }
}

func pair(a, b peer.ID) [2]peer.ID {
	if a > b {
		a, b = b, a
	}
	return [2]peer.ID{a, b}
}

func (p *Partition) allowed(a, b peer.ID) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return !p.blocked[pair(a, b)]
}

// Cut blocks connections between every node of a and every node of b (by
// index in net) and closes the existing ones.
func (p *Partition) Cut(net *Network, a, b []int) error {
	p.mu.Lock()
	for _, i := range a {
		for _, j := range b {
			p.blocked[pair(net.Nodes[i].ID(), net.Nodes[j].ID())] = true
		}
	}
	p.mu.Unlock()
	for _, i := range a {
		for _, j := range b {
			if err := net.Nodes[i].Host().Network().ClosePeer(net.Nodes[j].ID()); err != nil {
				return err
			}
		}
	}
	return nil
}

// Heal unblocks every connection and reconnects the network's topology.
func (p *Partition) Heal(ctx context.Context, net *Network) error {
	p.mu.Lock()
	p.blocked = map[[2]peer.ID]bool{}
	p.mu.Unlock()
	for _, e := range net.opts.topology.Edges(len(net.Nodes)) {
		if err := net.Connect(ctx, e[0], e[1]); err != nil {
			return err
		}
	}
	return nil
}

// gater is the connection gater of one node.
type gater struct {
	p    *Partition
	self peer.ID
}

var _ connmgr.ConnectionGater = gater{}

// InterceptPeerDial refuses dials across the cut.
func (g gater) InterceptPeerDial(p peer.ID) bool { return g.p.allowed(g.self, p) }

// InterceptAddrDial refuses dials across the cut.
func (g gater) InterceptAddrDial(p peer.ID, _ multiaddr.Multiaddr) bool {
	return g.p.allowed(g.self, p)
}

// InterceptAccept accepts every inbound connection; InterceptSecured
// decides once the peer is known.
func (g gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured refuses connections across the cut.
func (g gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.p.allowed(g.self, p)
}

// InterceptUpgraded accepts every upgraded connection.
func (g gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

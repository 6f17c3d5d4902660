package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// Defaults of the node's networking: discovery, NAT traversal, resources.
const (
	// DefaultWantPeers is how many connected peers a node wants: below it,
	// it keeps dialling its bootstrap peers (with backoff) and the peers
	// it finds in the DHT.
	DefaultWantPeers = 8
	// DefaultBootstrapBackoffMin and DefaultBootstrapBackoffMax bound the
	// wait between two rounds of bootstrap dials while the node has fewer
	// peers than it wants; the wait doubles from the minimum to the
	// maximum.
	DefaultBootstrapBackoffMin, DefaultBootstrapBackoffMax = time.Second, time.Minute
	// DefaultDiscoveryInterval is how often a node with enough peers
	// renews its DHT advertisements (when due) and looks for the
	// followers of its topics.
	DefaultDiscoveryInterval = time.Minute
	// DefaultDiscoveryDials bounds the peers dialled per rendezvous key
	// and round.
	DefaultDiscoveryDials = 16

	// DefaultResourceMemory is the memory the libp2p resource manager lets
	// the node's connections and streams use, in bytes; its other limits
	// (connections, streams, per peer and per protocol) scale from it
	// (docs/operations.md lists them).
	DefaultResourceMemory = 512 << 20
	// DefaultResourceFDs is the number of file descriptors the resource
	// manager lets connections use.
	DefaultResourceFDs = 1024

	// DefaultRelayDuration and DefaultRelayData are the limits of one
	// connection relayed by the node's relay service: time, and bytes in
	// each direction. Enough for DCUtR to upgrade the connection to a
	// direct one, not for bulk data.
	DefaultRelayDuration, DefaultRelayData = 2 * time.Minute, 1 << 20
	// DefaultRelayReservations is how many peers may hold a reservation
	// on the node's relay service at once.
	DefaultRelayReservations = 128
	// DefaultRelayCircuits is how many relayed connections one peer may
	// have through the node at once.
	DefaultRelayCircuits = 16
	// DefaultRelayReservationsWanted is how many relays a private node
	// keeps a reservation with.
	DefaultRelayReservationsWanted = 2
	// DefaultRelayBootDelay is how long a private node waits for relay
	// candidates before it reserves with those it has.
	DefaultRelayBootDelay = 10 * time.Second
)

// netOptions are the options of the node's networking (host.go,
// discovery.go).
type netOptions struct {
	announce       []multiaddr.Multiaddr
	reachability   string // "": learnt by AutoNAT
	relayService   bool
	autoNAT        bool
	autoRelay      bool
	relayBootDelay time.Duration
	natPortMap     bool
	dht            bool
	mdns           bool
	wantPeers      int
	bootMin        time.Duration
	bootMax        time.Duration
	rcMemory       int64
	rcFDs          int
	bootstrapHook  func(peer.ID, error) // tests: called after each bootstrap dial
}

// netDefaults returns the networking defaults.
func netDefaults() netOptions {
	return netOptions{
		relayService:   true,
		autoNAT:        true,
		autoRelay:      true,
		relayBootDelay: DefaultRelayBootDelay,
		dht:            true,
		wantPeers:      DefaultWantPeers,
		bootMin:        DefaultBootstrapBackoffMin,
		bootMax:        DefaultBootstrapBackoffMax,
		rcMemory:       DefaultResourceMemory,
		rcFDs:          DefaultResourceFDs,
	}
}

// WithAnnounce sets the addresses the node tells other peers to dial it on
// (identify, the DHT), replacing its listen addresses: for a node behind a
// port forward or a load balancer, or with a DNS name, e.g.
// "/dns4/node.example.org/tcp/4001". Each must be a multiaddr without a
// /p2p/ part and with a non-zero port.
func WithAnnounce(addrs []string) Option {
	return func(o *options) error {
		o.announce = o.announce[:0]
		for i, s := range addrs {
			a, err := multiaddr.NewMultiaddr(s)
			if err != nil {
				return fmt.Errorf("node: announce address %d %q: %w", i, s, err)
			}
			if err := checkDialable(a); err != nil {
				return fmt.Errorf("node: announce address %d %q: %w", i, s, err)
			}
			o.announce = append(o.announce, a)
		}
		return nil
	}
}

// checkDialable returns an error unless a is an address another peer can
// dial: a non-zero TCP or UDP port, no /p2p/ part, no wildcard IP.
func checkDialable(a multiaddr.Multiaddr) error {
	if _, err := a.ValueForProtocol(multiaddr.P_P2P); err == nil {
		return errors.New("must not contain /p2p/ (the peer id is added)")
	}
	port := ""
	for _, p := range []int{multiaddr.P_TCP, multiaddr.P_UDP} {
		if v, err := a.ValueForProtocol(p); err == nil {
			port = v
		}
	}
	if port == "" || port == "0" {
		return errors.New("needs a non-zero tcp or udp port")
	}
	for _, p := range []int{multiaddr.P_IP4, multiaddr.P_IP6} {
		if v, err := a.ValueForProtocol(p); err == nil && (v == "0.0.0.0" || v == "::") {
			return errors.New("must not be a wildcard address")
		}
	}
	return nil
}

// WithReachability forces the node's reachability instead of learning it
// with AutoNAT: ReachabilityPublic for a node known to be dialable from the
// internet (its DHT then serves at once), ReachabilityPrivate for one known
// not to be; "" (the default) or ReachabilityUnknown lets AutoNAT decide.
func WithReachability(r string) Option {
	return func(o *options) error {
		switch r {
		case "", ReachabilityUnknown:
			o.reachability = ""
		case ReachabilityPublic, ReachabilityPrivate:
			o.reachability = r
		default:
			return fmt.Errorf("node: reachability must be %q, %q or %q, not %q",
				ReachabilityPublic, ReachabilityPrivate, ReachabilityUnknown, r)
		}
		return nil
	}
}

// WithAutoNAT sets whether the node runs AutoNAT: the v2 client that asks
// peers to dial its addresses back, and the service that answers such
// requests. Default on. Each adds a small dialing host; in-process
// simulations of many nodes on loopback, where reachability means
// nothing, may turn it off.
func WithAutoNAT(on bool) Option {
	return func(o *options) error { o.autoNAT = on; return nil }
}

// WithRelayService sets whether the node offers a circuit relay v2 service
// (with the Default*Relay* limits) while it is publicly reachable. Default
// on.
func WithRelayService(on bool) Option {
	return func(o *options) error { o.relayService = on; return nil }
}

// WithAutoRelay sets whether the node, while it is not publicly reachable,
// reserves slots on relays among its peers and upgrades relayed
// connections to direct ones by DCUtR hole punching. Default on. bootDelay
// is how long it waits for relay candidates before it reserves with the
// ones it has (default DefaultRelayBootDelay); it must be > 0.
func WithAutoRelay(on bool, bootDelay time.Duration) Option {
	return func(o *options) error {
		if bootDelay <= 0 {
			return errors.New("node: auto relay boot delay must be > 0")
		}
		o.autoRelay, o.relayBootDelay = on, bootDelay
		return nil
	}
}

// WithNATPortMap sets whether the node asks the local router, by UPnP or
// NAT-PMP, to forward its listen ports. Default off.
func WithNATPortMap(on bool) Option {
	return func(o *options) error { o.natPortMap = on; return nil }
}

// WithDHT sets whether the node runs the federation's private Kademlia DHT
// to advertise itself and find peers. Default on.
func WithDHT(on bool) Option {
	return func(o *options) error { o.dht = on; return nil }
}

// WithMDNS sets whether the node finds peers of its federation on the local
// network by mDNS. Default off.
func WithMDNS(on bool) Option {
	return func(o *options) error { o.mdns = on; return nil }
}

// WithWantPeers sets how many connected peers the node wants (default
// DefaultWantPeers); below it, it keeps dialling. It must be >= 1.
func WithWantPeers(k int) Option {
	return func(o *options) error {
		if k < 1 {
			return errors.New("node: want peers must be >= 1")
		}
		o.wantPeers = k
		return nil
	}
}

// WithBootstrapBackoff sets the minimum and maximum wait between rounds of
// bootstrap dials (defaults DefaultBootstrapBackoffMin and
// DefaultBootstrapBackoffMax); need 0 < lo <= hi.
func WithBootstrapBackoff(lo, hi time.Duration) Option {
	return func(o *options) error {
		if lo <= 0 || hi < lo {
			return errors.New("node: bootstrap backoff: need 0 < min <= max")
		}
		o.bootMin, o.bootMax = lo, hi
		return nil
	}
}

// WithResourceLimits sets the memory (bytes) and file descriptors the
// libp2p resource manager lets the node's connections and streams use
// (defaults DefaultResourceMemory, DefaultResourceFDs); the per-peer and
// per-protocol limits scale with them. Need memory >= 64 MiB and fds >= 64.
func WithResourceLimits(memory int64, fds int) Option {
	return func(o *options) error {
		if memory < 64<<20 || fds < 64 {
			return errors.New("node: resource limits: need memory >= 64 MiB and fds >= 64")
		}
		o.rcMemory, o.rcFDs = memory, fds
		return nil
	}
}

// withBootstrapHook makes the discovery loop call f after each dial of a
// bootstrap peer, from the dialling goroutine; f must not block. For tests.
func withBootstrapHook(f func(peer.ID, error)) Option {
	return func(o *options) error { o.bootstrapHook = f; return nil }
}

package node

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// Defaults. Every default of the node is here.
const (
	// DefaultPendingRecords bounds how many records may wait for their causal past.
	DefaultPendingRecords = 10_000
	// DefaultPendingBytes bounds the bytes of records waiting for their causal past.
	DefaultPendingBytes = 64 << 20
	// DefaultConnLow and DefaultConnHigh are the connection manager watermarks.
	DefaultConnLow, DefaultConnHigh = 64, 128
	// DefaultPubsubQueue is the size of gossipsub's per-peer outbound queue
	// and of its validation queue, in messages.
	DefaultPubsubQueue = 4096
	// DefaultEventBuffer is the channel size of an event subscription.
	DefaultEventBuffer = 1024
	// DefaultSyncInterval is how often a node syncs every joined topic with
	// every connected peer, besides syncing on connection.
	DefaultSyncInterval = 30 * time.Second
	// DefaultSyncPenalty is how long a node refuses to sync from a peer
	// that served it a bad record.
	DefaultSyncPenalty = 10 * time.Minute

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

// DefaultListenAddrs are the addresses a node listens on when none are
// given: loopback only, TCP and QUIC, on port 4001.
var DefaultListenAddrs = []string{"/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1"}

// Option configures a node. Options validate their input; New returns the
// first error.
type Option func(*options) error

type options struct {
	identity       crypto.PrivKey
	dataDir        string
	inMemory       bool
	genesis        *protocol.Genesis
	listen         []multiaddr.Multiaddr
	bootstrap      []peer.AddrInfo
	observer       bool
	follow         []string
	logger         *slog.Logger
	clock          func() time.Time
	gater          connmgr.ConnectionGater
	registry       *prometheus.Registry
	pendingRecords int
	pendingBytes   int
	connLow        int
	connHigh       int
	org            string
	syncInterval   time.Duration
	syncPenalty    time.Duration
	recoverChain   bool
	storeCache     int64 // 0: the store's default
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

func defaults() options {
	return options{
		logger:         slog.Default(),
		clock:          time.Now,
		pendingRecords: DefaultPendingRecords,
		pendingBytes:   DefaultPendingBytes,
		connLow:        DefaultConnLow,
		connHigh:       DefaultConnHigh,
		syncInterval:   DefaultSyncInterval,
		syncPenalty:    DefaultSyncPenalty,
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

// WithIdentity sets the node's libp2p identity, which must be an ed25519
// key: the same key signs the node's records, so the author of a record and
// the peer id of its node are one key.
func WithIdentity(k crypto.PrivKey) Option {
	return func(o *options) error {
		if k == nil || k.Type() != crypto.Ed25519 {
			return errors.New("node: identity must be an ed25519 key")
		}
		o.identity = k
		return nil
	}
}

// WithDataDir stores the node's records under dir/store and reads the
// federation genesis from dir/genesis.cbor. Without a genesis file and
// without WithGenesis, the node founds a one-member dev federation and
// writes its genesis there.
func WithDataDir(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("node: data dir must not be empty")
		}
		o.dataDir = dir
		return nil
	}
}

// WithInMemory keeps the store in memory (pebble's in-memory filesystem),
// for tests and benchmarks. Everything is lost on Close.
func WithInMemory() Option {
	return func(o *options) error { o.inMemory = true; return nil }
}

// WithGenesis sets the federation the node belongs to. The genesis must be
// fully signed.
func WithGenesis(g *protocol.Genesis) Option {
	return func(o *options) error {
		if g == nil {
			return errors.New("node: genesis must not be nil")
		}
		if err := g.Verify(); err != nil {
			return fmt.Errorf("node: genesis: %w", err)
		}
		o.genesis = g
		return nil
	}
}

// WithListenAddrs sets the multiaddrs to listen on, e.g.
// "/ip4/127.0.0.1/tcp/0" and "/ip4/127.0.0.1/udp/0/quic-v1".
func WithListenAddrs(addrs []string) Option {
	return func(o *options) error {
		o.listen = o.listen[:0]
		for i, s := range addrs {
			a, err := multiaddr.NewMultiaddr(s)
			if err != nil {
				return fmt.Errorf("node: listen address %d %q: %w", i, s, err)
			}
			o.listen = append(o.listen, a)
		}
		return nil
	}
}

// WithBootstrap sets peers to connect to at start, as multiaddrs ending in
// /p2p/<peer id>. The node dials them again, with backoff (see
// WithBootstrapBackoff), whenever it has fewer peers than it wants
// (WithWantPeers), and they seed its DHT.
func WithBootstrap(addrs []string) Option {
	return func(o *options) error {
		for i, s := range addrs {
			ai, err := peer.AddrInfoFromString(s)
			if err != nil {
				return fmt.Errorf("node: bootstrap address %d %q: %w", i, s, err)
			}
			o.bootstrap = append(o.bootstrap, *ai)
		}
		return nil
	}
}

// WithObserver makes the node a read-only observer: it follows, verifies,
// stores and serves records but never signs or publishes any.
func WithObserver(observer bool) Option {
	return func(o *options) error { o.observer = observer; return nil }
}

// WithFollow sets the issue slugs whose topics the node joins at start.
func WithFollow(slugs []string) Option {
	return func(o *options) error {
		for _, s := range slugs {
			if !protocol.ValidSlug(s) {
				return fmt.Errorf("node: follow: invalid issue slug %q", s)
			}
		}
		o.follow = append(o.follow, slugs...)
		return nil
	}
}

// WithLogger sets the structured logger.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("node: logger must not be nil")
		}
		o.logger = l
		return nil
	}
}

// WithClock replaces time.Now, for tests that control time.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("node: clock must not be nil")
		}
		o.clock = now
		return nil
	}
}

// WithConnectionGater installs a libp2p connection gater, for example to
// partition a test network.
func WithConnectionGater(g connmgr.ConnectionGater) Option {
	return func(o *options) error { o.gater = g; return nil }
}

// WithRegistry registers the node's and libp2p's metrics on reg instead of
// a fresh registry of the node's own.
func WithRegistry(reg *prometheus.Registry) Option {
	return func(o *options) error {
		if reg == nil {
			return errors.New("node: registry must not be nil")
		}
		o.registry = reg
		return nil
	}
}

// WithPendingLimits bounds the records waiting for their causal past, by
// count and by bytes.
func WithPendingLimits(records, bytes int) Option {
	return func(o *options) error {
		if records < 1 || bytes < protocol.MaxRecordSize {
			return fmt.Errorf("node: pending limits: need records >= 1 and bytes >= %d", protocol.MaxRecordSize)
		}
		o.pendingRecords, o.pendingBytes = records, bytes
		return nil
	}
}

// WithStoreCache sets the store's block cache size, in bytes.
func WithStoreCache(bytes int64) Option {
	return func(o *options) error {
		if bytes < 1<<20 {
			return errors.New("node: store cache must be at least 1 MiB")
		}
		o.storeCache = bytes
		return nil
	}
}

// WithConnLimits sets the connection manager's low and high watermarks.
func WithConnLimits(low, high int) Option {
	return func(o *options) error {
		if low < 1 || high < low {
			return errors.New("node: connection limits: need 1 <= low <= high")
		}
		o.connLow, o.connHigh = low, high
		return nil
	}
}

// WithOrganisation sets the organisation name used when the node founds a
// dev federation.
func WithOrganisation(name string) Option {
	return func(o *options) error { o.org = name; return nil }
}

// WithSyncInterval sets how often the node syncs every joined topic with
// every connected peer (default DefaultSyncInterval); 0 disables periodic
// sync. Sync on connection and Node.Sync are not affected.
func WithSyncInterval(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return errors.New("node: sync interval must be >= 0")
		}
		o.syncInterval = d
		return nil
	}
}

// WithSyncPenalty sets how long the node refuses to sync from a peer that
// served a bad record (default DefaultSyncPenalty).
func WithSyncPenalty(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return errors.New("node: sync penalty must be > 0")
		}
		o.syncPenalty = d
		return nil
	}
}

// WithRecoverChain makes Publish first confirm, from connected peers, the
// node's own latest record on the topic, and fetch its chain up to it, so
// that a node whose store was lost does not fork its own chain by signing a
// second record at a seq it used before. While no peer answers, Publish
// fails with ErrChainUnconfirmed. The CLI sets it when the identity key
// exists but the store directory did not (a lost or wiped disk). It has no
// effect on a node of a one-member dev federation.
func WithRecoverChain(on bool) Option {
	return func(o *options) error { o.recoverChain = on; return nil }
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

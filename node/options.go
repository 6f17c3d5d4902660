package node

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// Defaults. Every default of the node is here, but those of its networking
// (discovery, NAT traversal, resources), in options_net.go.
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
)

// DefaultListenAddrs are the addresses a node listens on when none are
// given: loopback only, TCP and QUIC, on port 4001.
var DefaultListenAddrs = []string{"/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1"}

// Option configures a node. Options validate their input; New returns the
// first error.
type Option func(*options) error

type options struct {
	identity     crypto.PrivKey
	dataDir      string
	inMemory     bool
	genesis      *protocol.Genesis
	listen       []multiaddr.Multiaddr
	bootstrap    []peer.AddrInfo
	observer     bool
	follow       []string
	blocked      [][]byte // relaying keys blocked by the configuration (WithBlockedRelays)
	logger       *slog.Logger
	clock        func() time.Time
	gater        connmgr.ConnectionGater
	registry     *prometheus.Registry
	pending      PendingLimits
	connLow      int
	connHigh     int
	org          string
	syncInterval time.Duration
	syncFallback int // intervals between fallback rounds; < 0: none
	syncPenalty  time.Duration
	recoverChain bool
	storeCache   int64  // 0: the store's default
	storeFS      vfs.FS // nil: the OS file system (or memory, WithInMemory)
	netOptions          // options_net.go
	// checkpointInterval: see WithCheckpointInterval (checkpoint.go).
	checkpointInterval time.Duration
	syncLimits         SyncLimits

	hostOpts     []libp2p.Option    // WithHostOptions
	gossipTracer []pubsub.RawTracer // WithGossipTracer
}

func defaults() options {
	return options{
		logger:       slog.Default(),
		clock:        time.Now,
		pending:      DefaultPendingLimits(),
		connLow:      DefaultConnLow,
		connHigh:     DefaultConnHigh,
		syncInterval: DefaultSyncInterval,
		syncFallback: DefaultSyncFallbackRounds,
		syncPenalty:  DefaultSyncPenalty,
		netOptions:   netDefaults(),
		syncLimits:   DefaultSyncLimits(),

		checkpointInterval: DefaultCheckpointInterval,
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

// WithBlockedRelays blocks relaying keys by configuration (public.blocked):
// the node neither forwards nor shows their records on public topics
// (blocks.go), and Unblock cannot lift these blocks. Each key must be a
// 32-byte ed25519 public key.
func WithBlockedRelays(keys [][]byte) Option {
	return func(o *options) error {
		for i, k := range keys {
			if len(k) != ed25519.PublicKeySize {
				return fmt.Errorf("node: blocked relays[%d]: key is %d bytes, want %d", i, len(k), ed25519.PublicKeySize)
			}
			o.blocked = append(o.blocked, bytes.Clone(k))
		}
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
// count and by bytes; the per-peer and per-author quotas are lowered to
// records if they are above it.
func WithPendingLimits(records, bytes int) Option {
	return func(o *options) error {
		l := o.pending
		l.Records, l.Bytes = records, bytes
		l.PerPeer, l.PerAuthor = min(l.PerPeer, max(records, 1)), min(l.PerAuthor, max(records, 1))
		l.PerPeerStrangers = min(l.PerPeerStrangers, l.PerPeer)
		if err := l.validate(); err != nil {
			return err
		}
		o.pending = l
		return nil
	}
}

// WithPending sets every bound of the records waiting for their causal
// past (PendingLimits, pending.go).
func WithPending(l PendingLimits) Option {
	return func(o *options) error {
		if err := l.validate(); err != nil {
			return err
		}
		o.pending = l
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

// WithSyncInterval sets the period of the node's sync rounds (default
// DefaultSyncInterval): each round syncs the joined topics that changed
// (sync_schedule.go), and one round in DefaultSyncFallbackRounds (at the
// node's own phase) every joined topic with one peer, the peers in turn; 0
// disables periodic sync. Sync on
// connection, on follow, the pull-back and Node.Sync are not affected.
func WithSyncInterval(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return errors.New("node: sync interval must be >= 0")
		}
		o.syncInterval = d
		return nil
	}
}

// WithSyncFallback sets how many sync intervals pass between two fallback
// rounds, in which the node reconciles every joined topic, changed or not,
// with one connected peer, the peers in turn (default
// DefaultSyncFallbackRounds); 0 turns them off, which leaves a delivery
// that gossip lost, and that no sync after it repaired, missing until the
// topic changes again. Each node runs them at its own phase
// (sync_schedule.go).
func WithSyncFallback(rounds int) Option {
	return func(o *options) error {
		if rounds < 0 {
			return errors.New("node: sync fallback rounds must be >= 0")
		}
		o.syncFallback = rounds
		if rounds == 0 {
			o.syncFallback = -1
		}
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

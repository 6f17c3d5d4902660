package config

import (
	"fmt"
	"time"
)

// Roles a node can have (node.role).
const (
	// RoleMember is a member organisation's node: it signs and publishes
	// records with its identity key.
	RoleMember = "member"
	// RoleObserver is a read-only node: it follows, verifies, stores and
	// serves records but never signs any.
	RoleObserver = "observer"
)

// Config is a node's configuration, as read from config.toml. The zero value
// is not useful: start from [Default] (which [Load] does) so that keys left
// out of the file keep their defaults. Each field's TOML key is given in
// brackets; [Config.Validate] enforces the constraints documented here.
type Config struct {
	// Node is the [node] table: who this node is.
	Node Node `toml:"node"`
	// Network is the [network] table: libp2p addresses and connections.
	Network Network `toml:"network"`
	// API is the [api] table: the local HTTP API.
	API API `toml:"api"`
	// Log is the [log] table: the node's structured log on stderr.
	Log Log `toml:"log"`
	// Topics is the [topics] table: which issues the node follows.
	Topics Topics `toml:"topics"`
	// Comments is the [public] table: public comments this node relays.
	Comments Comments `toml:"public"`
	// Sync is the [sync] table: reconciliation with peers.
	Sync Sync `toml:"sync"`
	// Pending is the [pending] table: records waiting for their causal
	// past.
	Pending Pending `toml:"pending"`
	// Store is the [store] table: the on-disk store.
	Store Store `toml:"store"`
	// Metrics is the [metrics] table: Prometheus metrics.
	Metrics Metrics `toml:"metrics"`
}

// Node is the [node] table of the configuration.
type Node struct {
	// Role [node.role] is RoleMember ("member") or RoleObserver
	// ("observer"). Default DefaultRole.
	Role string `toml:"role"`
	// Name [node.name] is the organisation's display name; any text, may be
	// empty. Default DefaultName (empty).
	Name string `toml:"name"`
}

// Network is the [network] table of the configuration.
type Network struct {
	// Listen [network.listen] are the libp2p multiaddrs to listen on, for
	// example "/ip4/0.0.0.0/tcp/4001". Each must be a valid multiaddr; an
	// empty list means the node's own defaults. Default DefaultListenAddrs
	// (loopback only): operators set a public address to be reachable.
	Listen []string `toml:"listen"`
	// Bootstrap [network.bootstrap] are peers to dial at start, as
	// multiaddrs ending in /p2p/<peer id>. Default empty.
	Bootstrap []string `toml:"bootstrap"`
	// ConnLow [network.conn_low] is the connection manager's low watermark,
	// in connections: trimming stops at this many. Must be >= 1. Default
	// DefaultConnLow.
	ConnLow int `toml:"conn_low"`
	// ConnHigh [network.conn_high] is the connection manager's high
	// watermark, in connections: trimming starts above this many. Must be
	// >= ConnLow. Default DefaultConnHigh.
	ConnHigh int `toml:"conn_high"`
	// Announce [network.announce] are the addresses other peers are told
	// to dial, replacing the listen addresses in what the node advertises:
	// for a node behind a port forward or with a DNS name, e.g.
	// "/dns4/node.example.org/tcp/4001". Each must be a multiaddr with a
	// non-zero port, no wildcard IP and no /p2p/ part. Default empty (the
	// listen addresses, wildcards expanded to the interfaces' addresses).
	Announce []string `toml:"announce"`
	// Reachability [network.reachability] is "auto" (AutoNAT finds out),
	// "public" (the node is known to be dialable from the internet: its
	// DHT serves at once) or "private" (known not to be: it reserves relay
	// slots at once). Default DefaultReachability.
	Reachability string `toml:"reachability"`
	// RelayService [network.relay_service] reports whether the node offers
	// a circuit relay v2 service to private nodes while it is publicly
	// reachable (limits in docs/operations.md). Default
	// DefaultRelayService.
	RelayService bool `toml:"relay_service"`
	// NATPortMap [network.nat_port_map] reports whether the node asks the
	// local router by UPnP or NAT-PMP to forward its ports. Default
	// DefaultNATPortMap.
	NATPortMap bool `toml:"nat_port_map"`
	// DHT [network.dht] reports whether the node runs the federation's
	// private DHT to advertise itself and find peers. Default DefaultDHT.
	DHT bool `toml:"dht"`
	// MDNS [network.mdns] reports whether the node finds peers on the local
	// network by mDNS. Default DefaultMDNS.
	MDNS bool `toml:"mdns"`
	// WantPeers [network.want_peers] is how many connected peers the node
	// wants, in peers: below it, it keeps dialling its bootstrap peers
	// with backoff (1 s doubling to 1 min) and the peers it finds. Must be
	// >= 1. Default DefaultWantPeers.
	WantPeers int `toml:"want_peers"`
	// ResourceMemoryMB [network.resource_memory_mb] is the memory libp2p's
	// resource manager lets connections and streams use, in MiB; its
	// per-peer and per-protocol limits scale with it. Must be >= 64.
	// Default DefaultResourceMemoryMB.
	ResourceMemoryMB int `toml:"resource_memory_mb"`
	// ResourceFDs [network.resource_fds] is the number of file descriptors
	// the resource manager lets connections use. Must be >= 64. Default
	// DefaultResourceFDs.
	ResourceFDs int `toml:"resource_fds"`
}

// API is the [api] table of the configuration.
type API struct {
	// Listen [api.listen] is the host:port the HTTP API listens on. Must be
	// a valid host:port with a numeric port 1-65535 (not 0: the client
	// commands read this key to find the API); an empty host means all
	// interfaces. Default DefaultAPIListen (loopback only).
	Listen string `toml:"listen"`
}

// Log is the [log] table of the configuration.
type Log struct {
	// Level [log.level] is the lowest level logged: "debug", "info",
	// "warn" or "error". Default DefaultLogLevel.
	Level string `toml:"level"`
	// Format [log.format] is "text" (key=value lines) or "json" (one JSON
	// object per line). Default DefaultLogFormat.
	Format string `toml:"format"`
}

// Topics is the [topics] table of the configuration.
type Topics struct {
	// Follow [topics.follow] are the slugs of the issues whose topics the
	// node joins at start. Each must match [a-z0-9][a-z0-9-]{0,62}. Default
	// empty.
	Follow []string `toml:"follow"`
}

// Comments is the [public] table of the configuration.
type Comments struct {
	// Blocked [public.blocked] are relaying keys whose records on public
	// topics the node stores but neither forwards by gossip nor shows
	// (docs/protocol.md 8.9): each is an ed25519 public key as 64 hex
	// digits or a libp2p peer id ("12D3KooW..."). Keys blocked here
	// cannot be unblocked at runtime; "public block" adds runtime blocks,
	// kept in the store. Default empty.
	Blocked []string `toml:"blocked"`
}

// Sync is the [sync] table of the configuration.
type Sync struct {
	// Interval [sync.interval] is how often the node reconciles its records
	// with a peer, as a duration such as "30s" or "5m". Must be > 0.
	// Default DefaultSyncInterval.
	Interval Duration `toml:"interval"`
}

// Pending is the [pending] table of the configuration: the bounds of the
// records waiting for their causal past (docs/protocol.md 7.1). The bytes
// they may take in all are the node's default (64 MiB).
type Pending struct {
	// Records [pending.records] is how many records may wait in all.
	// Must be >= 1. Default DefaultPendingRecords.
	Records int `toml:"records"`
	// PerPeer [pending.per_peer] is how many records received from one
	// peer may wait. Must be in [1, pending.records]. Default
	// DefaultPendingPerPeer.
	PerPeer int `toml:"per_peer"`
	// PerPeerStrangers [pending.per_peer_strangers] is how many of one
	// peer's waiting records may be by keys the node knows as no member,
	// applicant or new key. Must be in [1, pending.per_peer]. Default
	// DefaultPendingPerPeerStrangers.
	PerPeerStrangers int `toml:"per_peer_strangers"`
	// PerAuthor [pending.per_author] is how many records signed by one key
	// may wait. Must be in [1, pending.records]. Default
	// DefaultPendingPerAuthor.
	PerAuthor int `toml:"per_author"`
	// TTL [pending.ttl] is how long a record may wait, as a duration.
	// Must be > 0. Default DefaultPendingTTL.
	TTL Duration `toml:"ttl"`
}

// Store is the [store] table of the configuration.
type Store struct {
	// CacheMB [store.cache_mb] is the store's block cache size, in MiB.
	// Must be >= MinCacheMB. Default DefaultCacheMB.
	CacheMB int `toml:"cache_mb"`
}

// Metrics is the [metrics] table of the configuration.
type Metrics struct {
	// Enabled [metrics.enabled] reports whether the node serves Prometheus
	// metrics. Default DefaultMetricsEnabled.
	Enabled bool `toml:"enabled"`
}

// Duration is a [time.Duration] that is written in TOML as a string in
// [time.ParseDuration] syntax, such as "30s" or "1h30m".
type Duration time.Duration

// Std returns d as a [time.Duration].
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String returns d in [time.Duration.String] form, e.g. "30s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText implements [encoding.TextMarshaler].
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements [encoding.TextUnmarshaler]. It accepts
// [time.ParseDuration] syntax; a number without a unit is an error.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("invalid duration %q: want a number with a unit, e.g. \"30s\" or \"5m\"", text)
	}
	*d = Duration(v)
	return nil
}

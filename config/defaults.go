package config

import "time"

// Every default of the configuration, and of the data directory, is here.
// The file written by WriteDefault takes its "Default:" comments and values
// from Default, so they cannot drift from this file.
const (
	// EnvDataDir is the environment variable that names the data directory
	// when no --data-dir flag is given.
	EnvDataDir = "CLEARINGHOUSE_DIR"
	// DefaultDirName is the data directory's name in the user's home
	// directory when neither the flag nor EnvDataDir is set.
	DefaultDirName = ".clearinghouse"

	// DefaultRole is the default of node.role.
	DefaultRole = RoleMember
	// DefaultName is the default of node.name: no display name.
	DefaultName = ""

	// DefaultConnLow is the default of network.conn_low, in connections.
	DefaultConnLow = 64
	// DefaultConnHigh is the default of network.conn_high, in connections.
	DefaultConnHigh = 128

	// DefaultReachability is the default of network.reachability.
	DefaultReachability = "auto"
	// DefaultRelayService is the default of network.relay_service.
	DefaultRelayService = true
	// DefaultNATPortMap is the default of network.nat_port_map.
	DefaultNATPortMap = false
	// DefaultDHT is the default of network.dht.
	DefaultDHT = true
	// DefaultMDNS is the default of network.mdns.
	DefaultMDNS = false
	// DefaultWantPeers is the default of network.want_peers, in peers.
	DefaultWantPeers = 8
	// DefaultResourceMemoryMB is the default of network.resource_memory_mb.
	DefaultResourceMemoryMB = 512
	// DefaultResourceFDs is the default of network.resource_fds.
	DefaultResourceFDs = 1024

	// DefaultAPIListen is the default of api.listen: loopback only.
	DefaultAPIListen = "127.0.0.1:5080"

	// DefaultLogLevel is the default of log.level.
	DefaultLogLevel = "info"
	// DefaultLogFormat is the default of log.format.
	DefaultLogFormat = "text"

	// DefaultSyncInterval is the default of sync.interval.
	DefaultSyncInterval = 30 * time.Second

	// DefaultPendingRecords is the default of pending.records (as
	// node.DefaultPendingRecords).
	DefaultPendingRecords = 10_000
	// DefaultPendingPerPeer is the default of pending.per_peer.
	DefaultPendingPerPeer = 5_000
	// DefaultPendingPerPeerStrangers is the default of
	// pending.per_peer_strangers.
	DefaultPendingPerPeerStrangers = 64
	// DefaultPendingPerAuthor is the default of pending.per_author.
	DefaultPendingPerAuthor = 5_000
	// DefaultPendingTTL is the default of pending.ttl.
	DefaultPendingTTL = 10 * time.Minute

	// DefaultCacheMB is the default of store.cache_mb, in MiB.
	DefaultCacheMB = 64
	// MinCacheMB is the smallest store.cache_mb accepted, in MiB.
	MinCacheMB = 8

	// DefaultMetricsEnabled is the default of metrics.enabled.
	DefaultMetricsEnabled = true

	// TokenBytes is the number of random bytes in a new API token, which is
	// written hex-encoded (twice as many characters).
	TokenBytes = 32
)

// DefaultListenAddrs returns the default of network.listen: TCP and QUIC on
// port 4001, loopback only, so that a freshly initialised node is not
// reachable from other machines until its operator sets a public address.
func DefaultListenAddrs() []string {
	return []string{"/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1"}
}

// PublicListenAddrs returns network.listen of the public profile
// (clearinghouse init --public): TCP and QUIC on port 4001 on every IPv4
// and IPv6 interface.
func PublicListenAddrs() []string {
	return []string{
		"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1",
		"/ip6/::/tcp/4001", "/ip6/::/udp/4001/quic-v1",
	}
}

// Public returns the configuration of the public profile: Default, but
// listening on every interface (PublicListenAddrs) and announcing the
// given addresses (which may be empty).
func Public(announce []string) Config {
	c := Default()
	c.Network.Listen = PublicListenAddrs()
	c.Network.Announce = append([]string{}, announce...)
	return c
}

// Default returns the default configuration. Each call returns fresh slices,
// so the caller may modify the result.
func Default() Config {
	return Config{
		Node: Node{
			Role: DefaultRole,
			Name: DefaultName,
		},
		Network: Network{
			Listen:    DefaultListenAddrs(),
			Bootstrap: []string{},
			ConnLow:   DefaultConnLow,
			ConnHigh:  DefaultConnHigh,
			Announce:  []string{},

			Reachability:     DefaultReachability,
			RelayService:     DefaultRelayService,
			NATPortMap:       DefaultNATPortMap,
			DHT:              DefaultDHT,
			MDNS:             DefaultMDNS,
			WantPeers:        DefaultWantPeers,
			ResourceMemoryMB: DefaultResourceMemoryMB,
			ResourceFDs:      DefaultResourceFDs,
		},
		API:      API{Listen: DefaultAPIListen},
		Log:      Log{Level: DefaultLogLevel, Format: DefaultLogFormat},
		Topics:   Topics{Follow: []string{}},
		Comments: Comments{Blocked: []string{}},
		Sync:     Sync{Interval: Duration(DefaultSyncInterval)},
		Pending: Pending{Records: DefaultPendingRecords, PerPeer: DefaultPendingPerPeer,
			PerPeerStrangers: DefaultPendingPerPeerStrangers, PerAuthor: DefaultPendingPerAuthor,
			TTL: Duration(DefaultPendingTTL)},
		Store:   Store{CacheMB: DefaultCacheMB},
		Metrics: Metrics{Enabled: DefaultMetricsEnabled},
	}
}

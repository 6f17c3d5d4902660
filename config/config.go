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
	// Sync is the [sync] table: reconciliation with peers.
	Sync Sync `toml:"sync"`
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

// Sync is the [sync] table of the configuration.
type Sync struct {
	// Interval [sync.interval] is how often the node reconciles its records
	// with a peer, as a duration such as "30s" or "5m". Must be > 0.
	// Default DefaultSyncInterval.
	Interval Duration `toml:"interval"`
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

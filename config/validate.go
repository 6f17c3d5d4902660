package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// Validate checks every constraint documented on [Config]. It reports all
// the problems it finds, not only the first: the result is nil or the
// [errors.Join] of one [*Error] per problem, in the order of the keys in
// the file written by [WriteDefault]. Each names its key path, e.g.
//
//	config: network.listen[1]: invalid multiaddr "/ip4/1.2.3": ...
func (c Config) Validate() error {
	var errs []error
	add := func(e *Error) { errs = append(errs, e) }

	switch c.Node.Role {
	case RoleMember, RoleObserver:
	default:
		add(keyError("node.role", "must be %q or %q, not %q", RoleMember, RoleObserver, c.Node.Role))
	}

	for i, s := range c.Network.Listen {
		if _, err := multiaddr.NewMultiaddr(s); err != nil {
			add(&Error{Key: fmt.Sprintf("network.listen[%d]", i), Err: fmt.Errorf("invalid multiaddr %q: %w", s, err)})
		}
	}
	for i, s := range c.Network.Bootstrap {
		if _, err := peer.AddrInfoFromString(s); err != nil {
			add(&Error{Key: fmt.Sprintf("network.bootstrap[%d]", i),
				Err: fmt.Errorf("invalid peer address %q (want a multiaddr ending in /p2p/<peer id>): %w", s, err)})
		}
	}
	if c.Network.ConnLow < 1 {
		add(keyError("network.conn_low", "must be >= 1, not %d", c.Network.ConnLow))
	}
	if c.Network.ConnHigh < c.Network.ConnLow {
		add(keyError("network.conn_high", "must be >= network.conn_low (%d), not %d", c.Network.ConnLow, c.Network.ConnHigh))
	}

	for i, s := range c.Network.Announce {
		if err := checkAnnounce(s); err != nil {
			add(&Error{Key: fmt.Sprintf("network.announce[%d]", i), Err: err})
		}
	}
	switch c.Network.Reachability {
	case "auto", "public", "private":
	default:
		add(keyError("network.reachability", `must be "auto", "public" or "private", not %q`, c.Network.Reachability))
	}
	if c.Network.WantPeers < 1 {
		add(keyError("network.want_peers", "must be >= 1, not %d", c.Network.WantPeers))
	}
	if c.Network.ResourceMemoryMB < 64 {
		add(keyError("network.resource_memory_mb", "must be >= 64, not %d", c.Network.ResourceMemoryMB))
	}
	if c.Network.ResourceFDs < 64 {
		add(keyError("network.resource_fds", "must be >= 64, not %d", c.Network.ResourceFDs))
	}

	if err := checkHostPort(c.API.Listen); err != nil {
		add(&Error{Key: "api.listen", Err: err})
	}

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add(keyError("log.level", `must be "debug", "info", "warn" or "error", not %q`, c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		add(keyError("log.format", `must be "text" or "json", not %q`, c.Log.Format))
	}

	for i, s := range c.Topics.Follow {
		if !protocol.ValidSlug(s) {
			add(keyError(fmt.Sprintf("topics.follow[%d]", i),
				"invalid issue slug %q: want 1 to 63 of a-z, 0-9 and '-', not starting with '-'", s))
		}
	}

	for i, k := range c.Comments.Blocked {
		if _, err := ParseRelayKey(k); err != nil {
			add(keyError(fmt.Sprintf("public.blocked[%d]", i), "%v", err))
		}
	}

	if c.Sync.Interval <= 0 {
		add(keyError("sync.interval", "must be > 0, not %s", c.Sync.Interval))
	}

	pd := c.Pending
	if pd.Records < 1 {
		add(keyError("pending.records", "must be >= 1, not %d", pd.Records))
	}
	if pd.PerPeer < 1 || pd.PerPeer > pd.Records {
		add(keyError("pending.per_peer", "must be in [1, pending.records], not %d", pd.PerPeer))
	}
	if pd.PerPeerStrangers < 1 || pd.PerPeerStrangers > pd.PerPeer {
		add(keyError("pending.per_peer_strangers", "must be in [1, pending.per_peer], not %d", pd.PerPeerStrangers))
	}
	if pd.PerAuthor < 1 || pd.PerAuthor > pd.Records {
		add(keyError("pending.per_author", "must be in [1, pending.records], not %d", pd.PerAuthor))
	}
	if pd.TTL <= 0 {
		add(keyError("pending.ttl", "must be > 0, not %s", pd.TTL))
	}

	if c.Store.CacheMB < MinCacheMB {
		add(keyError("store.cache_mb", "must be >= %d, not %d", MinCacheMB, c.Store.CacheMB))
	}

	return errors.Join(errs...)
}

// checkHostPort returns an error unless s is host:port with a numeric port
// other than 0.
func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		// net.AddrError's message repeats the address; keep only the reason.
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return fmt.Errorf("invalid host:port %q: %s", s, ae.Err)
		}
		return fmt.Errorf("invalid host:port %q: %w", s, err)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		// Port 0 would bind a port chosen at random, which the client
		// commands, reading this same key, could not find.
		return fmt.Errorf("invalid host:port %q: port must be a number from 1 to 65535 (clients find the API at this address, so it cannot be 0)", s)
	}
	return nil
}

// checkAnnounce returns an error unless s is an address another peer can
// dial: a valid multiaddr with a non-zero TCP or UDP port, no wildcard IP
// and no /p2p/ part.
func checkAnnounce(s string) error {
	a, err := multiaddr.NewMultiaddr(s)
	if err != nil {
		return fmt.Errorf("invalid multiaddr %q: %w", s, err)
	}
	if _, err := a.ValueForProtocol(multiaddr.P_P2P); err == nil {
		return fmt.Errorf("%q: must not contain /p2p/ (the node adds its peer id)", s)
	}
	port := ""
	for _, p := range []int{multiaddr.P_TCP, multiaddr.P_UDP} {
		if v, err := a.ValueForProtocol(p); err == nil {
			port = v
		}
	}
	if port == "" || port == "0" {
		return fmt.Errorf("%q: needs a non-zero tcp or udp port (others cannot dial port 0)", s)
	}
	for _, p := range []int{multiaddr.P_IP4, multiaddr.P_IP6} {
		if v, err := a.ValueForProtocol(p); err == nil {
			if ip := net.ParseIP(v); ip != nil && ip.IsUnspecified() {
				return fmt.Errorf("%q: must not be a wildcard address (announce the address others dial)", s)
			}
		}
	}
	return nil
}

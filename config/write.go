package config

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"

	"github.com/BurntSushi/toml"
)

// fileHeader opens the file written by WriteDefault.
const fileHeader = `# clearinghouse node configuration.
#
# Written by "clearinghouse init" from the built-in defaults. Every key is
# optional: a key left out (or commented out) takes the default given in its
# comment. A key that is not listed here is an error, so that a typo does not
# go unnoticed. Durations are strings such as "30s", "5m" or "1h30m".
`

// sectionDocs are the comments above each table in the file written by
// WriteDefault.
var sectionDocs = map[string]string{
	"node":    "Who this node is.",
	"network": "The libp2p host: addresses, peers to start from, connection limits.",
	"api":     "The HTTP JSON API and web view. Write calls need the bearer token in\napi.token, next to this file.",
	"log":     "The structured log, written to standard error.",
	"topics":  "The issues this node follows. The federation's index and members topics\nare always followed.",
	"public":  "Public comments (docs/protocol.md 8.9).",
	"sync":    "Reconciliation with peers, which fetches records that gossip missed.",
	"pending": "Records waiting for their causal past: only those that can still become\nvalid wait, within these bounds (docs/protocol.md, section 7.1).",
	"store":   "The on-disk record store (the store/ directory next to this file).",
	"metrics": "Prometheus metrics, libp2p's own and the node's.",
}

// keyDocs are the comments above each key in the file written by
// WriteDefault: meaning, unit and constraint. The default is appended from
// Default. A test checks that every key of Config has one.
var keyDocs = map[string]string{
	"node.role": `"member" signs and publishes records with the node's identity key;
"observer" only follows, verifies, stores and serves them, and never signs.
One of "member", "observer".`,
	"node.name": `The organisation's display name. Any text; may be empty.`,
	"network.listen": `Multiaddrs the node listens on, TCP and/or QUIC. The default listens on
loopback only, so no other machine can reach the node: set a public or LAN
address to join a federation, e.g. "/ip4/0.0.0.0/tcp/4001" and
"/ip4/0.0.0.0/udp/4001/quic-v1". Each must be a valid multiaddr; an empty
list means the default.`,
	"network.bootstrap": `Peers to connect to at start, as multiaddrs ending in /p2p/<peer id>, e.g.
"/ip4/192.0.2.7/tcp/4001/p2p/12D3KooW...". Get them from "clearinghouse id"
on the other node. Each must be a valid multiaddr with a /p2p/ peer id.`,
	"network.conn_low": `Connection manager low watermark, in connections: when trimming, the
node closes connections down to this many. Must be >= 1.`,
	"network.conn_high": `Connection manager high watermark, in connections: above this many, the
node starts trimming. Must be >= network.conn_low.`,
	"network.announce": `Addresses other peers are told to dial, instead of the listen addresses:
for a node behind a port forward or with a DNS name, e.g.
["/dns4/node.example.org/tcp/4001", "/dns4/node.example.org/udp/4001/quic-v1"].
Each needs a non-zero port, no wildcard IP and no /p2p/ part. Empty: the
listen addresses, wildcards expanded to the interfaces' addresses.`,
	"network.reachability": `"auto": AutoNAT finds out whether others can dial this node; "public": it
is known to be dialable (its DHT serves at once); "private": it is known
not to be (it reserves relay slots and hole-punches at once).`,
	"network.relay_service": `Offer a circuit relay v2 service to private nodes while this node is
publicly reachable (2 min and 1 MiB per relayed connection, 128
reservations). true or false.`,
	"network.nat_port_map": `Ask the local router by UPnP or NAT-PMP to forward the listen ports.
true or false.`,
	"network.dht": `Run the federation's private DHT, to advertise this node and find the
others (and the followers of each issue). true or false.`,
	"network.mdns": `Find peers of the federation on the local network by mDNS. true or false.`,
	"network.want_peers": `How many connected peers the node wants: below it, it keeps dialling
network.bootstrap (backoff 1 s doubling to 1 min) and the peers found in
the DHT. Must be >= 1.`,
	"network.resource_memory_mb": `Memory libp2p's resource manager lets connections and streams use, in
MiB; the per-peer and per-protocol limits scale with it. Must be >= 64.`,
	"network.resource_fds": `File descriptors the resource manager lets connections use. Must be
>= 64.`,
	"api.listen": `Address of the HTTP API, as host:port. The default is loopback only;
an empty host (":5080") listens on all interfaces. The port must be a
number from 1 to 65535 (not 0: the client commands find the API at this
address). Give each node on one machine its own port.`,
	"log.level":  `Lowest level logged. One of "debug", "info", "warn", "error".`,
	"log.format": `"text" (key=value lines) or "json" (one JSON object per line).`,
	"topics.follow": `Slugs of the issues to follow, e.g. ["privacy", "jurisdiction"]. A slug is
1 to 63 characters of a-z, 0-9 and '-', not starting with '-'.`,
	"public.blocked": `Relaying keys whose public comments and responses this node stores but
neither forwards nor shows, e.g. ["12D3KooW..."]: each a libp2p peer id
or an ed25519 public key as 64 hex digits. "public block" adds more at
runtime; the ones here cannot be unblocked without a restart.`,
	"sync.interval": `How often the node reconciles its records with a peer. A duration;
must be > 0.`,
	"pending.records": `How many records may wait for their causal past in all. Must be >= 1.`,
	"pending.per_peer": `How many records received from one peer may wait. Must be in
[1, pending.records].`,
	"pending.per_peer_strangers": `How many of one peer's waiting records may be by keys this node knows as
no member, applicant or new key (applications, public comments); above it
the peer is penalised. Must be in [1, pending.per_peer].`,
	"pending.per_author": `How many records signed by one key may wait. Must be in
[1, pending.records].`,
	"pending.ttl": `How long a record may wait for its past before it is dropped and its
sender penalised. A duration; must be > 0.`,
	"store.cache_mb":  fmt.Sprintf(`Size of the store's block cache, in MiB. Must be >= %d.`, MinCacheMB),
	"metrics.enabled": `Whether the node serves Prometheus metrics. true or false.`,
}

// WriteDefault writes the default configuration to path as a commented TOML
// file (mode 0644): each key with a comment giving its meaning, unit,
// constraint and default. It refuses to overwrite an existing file: the
// error then wraps fs.ErrExist. The directory must exist. Loading the file
// back gives [Default].
func WriteDefault(path string) error {
	return Write(path, Default())
}

// Write writes cfg to path as WriteDefault does, each key commented with
// its meaning and its default (which may differ from the value written, as
// in the public profile, [Public]). It refuses to overwrite an existing
// file: the error then wraps fs.ErrExist.
func Write(path string, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	data, err := render(cfg)
	if err != nil {
		return err
	}
	return writeNewFile(path, data, 0o644)
}

// render returns the file written by Write.
func render(c Config) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(fileHeader)
	def := reflect.ValueOf(Default())
	cfg := reflect.ValueOf(c)
	for i := range cfg.NumField() {
		section := tomlName(cfg.Type().Field(i))
		b.WriteString("\n")
		comment(&b, sectionDocs[section])
		fmt.Fprintf(&b, "[%s]\n", section)
		sv, dv := cfg.Field(i), def.Field(i)
		for j := range sv.NumField() {
			key := tomlName(sv.Type().Field(j))
			line, err := encodeKey(key, sv.Field(j).Interface())
			if err != nil {
				return nil, fmt.Errorf("config: render %s.%s: %w", section, key, err)
			}
			defLine, err := encodeKey(key, dv.Field(j).Interface())
			if err != nil {
				return nil, fmt.Errorf("config: render %s.%s: %w", section, key, err)
			}
			b.WriteString("\n")
			comment(&b, keyDocs[section+"."+key])
			comment(&b, "Default: "+strings.TrimSpace(strings.TrimPrefix(defLine, key+" = "))+".")
			b.WriteString(line)
		}
	}
	return b.Bytes(), nil
}

// comment writes text as TOML comment lines.
func comment(b *bytes.Buffer, text string) {
	if text == "" {
		return
	}
	for l := range strings.SplitSeq(text, "\n") {
		b.WriteString(strings.TrimRight("# "+l, " ") + "\n")
	}
}

// encodeKey returns the TOML line "key = value\n".
func encodeKey(key string, value any) (string, error) {
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(map[string]any{key: value}); err != nil {
		return "", err
	}
	return b.String(), nil
}

package config_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clearinghouse-net/clearinghouse/config"
)

// TestValidateNetwork: the keys of the internet deployment are checked,
// each error naming its key.
func TestValidateNetwork(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*config.Config)
		key    string
		want   string
	}{
		{"announce not a multiaddr", func(c *config.Config) { c.Network.Announce = []string{"node.example.org:4001"} }, "network.announce[0]", "invalid multiaddr"},
		{"announce port 0", func(c *config.Config) { c.Network.Announce = []string{"/dns4/node.example.org/tcp/0"} }, "network.announce[0]", "non-zero"},
		{"announce no port", func(c *config.Config) { c.Network.Announce = []string{"/ip4/192.0.2.1"} }, "network.announce[0]", "non-zero"},
		{"announce wildcard", func(c *config.Config) { c.Network.Announce = []string{"/ip6/::/udp/4001/quic-v1"} }, "network.announce[0]", "wildcard"},
		{"announce with peer id", func(c *config.Config) {
			c.Network.Announce = []string{"/ip4/192.0.2.1/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"}
		}, "network.announce[0]", "/p2p/"},
		{"reachability", func(c *config.Config) { c.Network.Reachability = "nat" }, "network.reachability", `not "nat"`},
		{"want_peers", func(c *config.Config) { c.Network.WantPeers = 0 }, "network.want_peers", "must be >= 1"},
		{"resource memory", func(c *config.Config) { c.Network.ResourceMemoryMB = 63 }, "network.resource_memory_mb", "must be >= 64"},
		{"resource fds", func(c *config.Config) { c.Network.ResourceFDs = 10 }, "network.resource_fds", "must be >= 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			tt.modify(&c)
			err := c.Validate()
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Key != tt.key || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error on %s saying %q", err, tt.key, tt.want)
			}
		})
	}
	c := config.Default()
	c.Network.Announce = []string{"/dns4/node.example.org/tcp/4001", "/ip4/192.0.2.1/udp/4001/quic-v1"}
	c.Network.Reachability = "private"
	if err := c.Validate(); err != nil {
		t.Fatalf("valid announce and reachability refused: %v", err)
	}
}

// TestWritePublic: the public profile round-trips through the file, with
// the defaults still given in the comments.
func TestWritePublic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	want := config.Public([]string{"/dns4/node.example.org/tcp/4001"})
	if err := config.Write(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.Network.Listen, " ") != strings.Join(config.PublicListenAddrs(), " ") ||
		strings.Join(got.Network.Announce, " ") != "/dns4/node.example.org/tcp/4001" {
		t.Fatalf("loaded network %+v, want the public profile", got.Network)
	}
	// Invalid values are not written.
	bad := config.Public([]string{"/ip4/0.0.0.0/tcp/4001"})
	if err := config.Write(filepath.Join(t.TempDir(), "config.toml"), bad); err == nil {
		t.Fatal("Write accepted an invalid configuration")
	}
}

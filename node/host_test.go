package node_test

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// TestResourceLimits: the node's host runs the resource manager with the
// limits of docs/operations.md: the sync protocol's streams scale from 256
// each way by 64 per GiB of memory, and WithResourceLimits changes them.
func TestResourceLimits(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []node.Option
		streams int
	}{
		{"default 512 MiB", nil, 256 + 64/2},
		{"2 GiB", []node.Option{node.WithResourceLimits(2<<30, 4096)}, 256 + 2*64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			net := testnet.New(t, 1, testnet.WithNodeOptions(func(int) []node.Option { return tc.opts }))
			nd := net.Nodes[0]
			rm := nd.Host().Network().ResourceManager()
			err := rm.ViewProtocol(protocol.SyncProtocol(nd.NetworkID()), func(s network.ProtocolScope) error {
				l := s.(rcmgr.ResourceScopeLimiter).Limit()
				if in, out := l.GetStreamLimit(network.DirInbound), l.GetStreamLimit(network.DirOutbound); in != tc.streams || out != tc.streams {
					t.Errorf("sync stream limits in %d out %d, want %d", in, out, tc.streams)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, err := node.New(t.Context(), node.WithResourceLimits(1<<20, 1024)); err == nil {
		t.Error("a 1 MiB resource budget was accepted")
	}
}

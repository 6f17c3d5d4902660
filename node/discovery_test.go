package node_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// noEdges is a topology without connections: the nodes must find each
// other themselves.
var noEdges = testnet.TopologyFunc(func(int) [][2]int { return nil })

// federation returns the genesis and keys of a federation of k members,
// from a testnet whose nodes are closed at once.
func federation(t *testing.T, k int) *testnet.Network {
	t.Helper()
	net, err := testnet.Start(context.Background(), k, testnet.WithTopology(noEdges), testnet.WithNodeOptions(func(int) []node.Option {
		return []node.Option{node.WithDHT(false)}
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := net.Close(); err != nil {
		t.Fatal(err)
	}
	return net
}

// TestBootstrapRetry: a node's only bootstrap peer is down when it starts;
// the node keeps dialling it with backoff, and once the peer comes up the
// node connects and catches up on the records the peer holds, without a
// restart.
func TestBootstrapRetry(t *testing.T) {
	ctx := testContext(t)
	fed := federation(t, 2)
	dirB := t.TempDir()
	startB := func(listen string) *node.Node {
		b, err := node.New(ctx, node.WithIdentity(fed.Keys[1]), node.WithGenesis(fed.Genesis), node.WithDataDir(dirB),
			node.WithListenAddrs([]string{listen}), node.WithFollow([]string{slug}), node.WithDHT(false),
			node.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// B runs once to hold records and get a port from the OS, then stops.
	b := startB("/ip4/127.0.0.1/tcp/0")
	var cids []cid.Cid
	for i := range 20 {
		r, err := b.Publish(ctx, protocol.KindStatement, topic, statement(i))
		if err != nil {
			t.Fatal(err)
		}
		cids = append(cids, r.CID)
	}
	addrB := b.Addrs()[0]
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	dials := make(chan error, 64)
	a, err := node.New(ctx, node.WithIdentity(fed.Keys[0]), node.WithGenesis(fed.Genesis), node.WithInMemory(),
		node.WithListenAddrs([]string{"/ip4/127.0.0.1/tcp/0"}), node.WithFollow([]string{slug}), node.WithDHT(false),
		node.WithBootstrap([]string{addrB.String()}), node.WithWantPeers(1),
		node.WithBootstrapBackoff(20*time.Millisecond, 200*time.Millisecond),
		node.WithLogger(slog.New(slog.DiscardHandler)),
		node.WithBootstrapHook(func(_ peer.ID, err error) {
			select {
			case dials <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	// Two failed dials: the node started without its peer and retried.
	for range 2 {
		select {
		case err := <-dials:
			if err == nil {
				t.Fatal("dial of a stopped bootstrap peer succeeded")
			}
		case <-ctx.Done():
			t.Fatal("no bootstrap dial")
		}
	}

	// B comes back on the same address.
	tr, _ := peer.SplitAddr(addrB)
	b = startB(tr.String())
	t.Cleanup(func() { _ = b.Close() })
	if err := a.WaitRecords(ctx, cids...); err != nil {
		t.Fatal(err)
	}
	if got := a.Host().Network().Connectedness(b.ID()); got != network.Connected {
		t.Fatalf("a to b: %v, want connected", got)
	}
	if n := counter(t, a, "clearinghouse_bootstrap_dials_total", "failed"); n < 2 {
		t.Errorf("failed bootstrap dials = %v, want >= 2", n)
	}
	if n := counter(t, a, "clearinghouse_bootstrap_dials_total", "ok"); n != 1 {
		t.Errorf("successful bootstrap dials = %v, want 1", n)
	}
}

// TestDHTDiscovery: four members on loopback, each knowing only node 0;
// through the federation's private DHT every node finds and connects to
// every other, and NetStatus reports the connections as direct and the
// peers as members.
func TestDHTDiscovery(t *testing.T) {
	ctx := testContext(t)
	const k = 4
	fed := federation(t, k)
	nodes := make([]*node.Node, k)
	for i := range k {
		opts := []node.Option{node.WithIdentity(fed.Keys[i]), node.WithGenesis(fed.Genesis), node.WithInMemory(),
			node.WithListenAddrs([]string{"/ip4/127.0.0.1/tcp/0"}), node.WithFollow([]string{slug}),
			// Loopback is not public, so AutoNAT would never make the
			// DHT serve: force it.
			node.WithReachability(node.ReachabilityPublic),
			node.WithWantPeers(k - 1), node.WithBootstrapBackoff(50*time.Millisecond, 500*time.Millisecond),
			node.WithLogger(slog.New(slog.DiscardHandler))}
		if i > 0 {
			opts = append(opts, node.WithBootstrap([]string{nodes[0].Addrs()[0].String()}))
		}
		nd, err := node.New(ctx, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nd.Close() })
		nodes[i] = nd
	}
	for i, nd := range nodes {
		if err := waitConnected(ctx, nd, k-1); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		st := nd.NetStatus()
		if st.Reachability != node.ReachabilityPublic {
			t.Errorf("node %d: reachability %q", i, st.Reachability)
		}
		for _, p := range st.Peers {
			if !p.Direct || !p.Member {
				t.Errorf("node %d: peer %s direct=%v member=%v, want both", i, p.ID, p.Direct, p.Member)
			}
			// Protection follows the peer's identification, which may
			// end after the connection is counted: wait for it.
			if !waitFor(ctx, func() bool { return nd.Host().ConnManager().IsProtected(p.ID, node.MemberTag) }) {
				t.Errorf("node %d: connection to member %s not protected from trimming", i, p.ID)
			}
		}
		for _, a := range st.Addrs {
			if v, err := a.ValueForProtocol(multiaddr.P_TCP); err == nil && v == "0" {
				t.Errorf("node %d: address with port 0: %s", i, a)
			}
		}
	}
}

// TestNonMemberNotProtected: a peer whose key is not a member's (an
// observer, a stranger) is connected like any other but not protected from
// the connection manager's trimming.
func TestNonMemberNotProtected(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 2, testnet.WithObservers(1))
	obs := net.Nodes[1]
	if err := waitConnected(ctx, net.Nodes[0], 1); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, p := range net.Nodes[0].NetStatus().Peers {
		if p.ID == obs.ID() {
			found = true
			if p.Member {
				t.Error("observer reported as a member")
			}
		}
	}
	if !found {
		t.Fatal("observer not in NetStatus")
	}
	if net.Nodes[0].Host().ConnManager().IsProtected(obs.ID(), node.MemberTag) {
		t.Error("connection to an observer is protected")
	}
	if !obs.Host().ConnManager().IsProtected(net.Nodes[0].ID(), node.MemberTag) {
		t.Error("observer does not protect its connection to the member")
	}
}

// waitConnected waits until nd is connected to at least k peers, on the
// host's connectedness events.
func waitConnected(ctx context.Context, nd *node.Node, k int) error {
	sub, err := nd.Host().EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return err
	}
	defer sub.Close()
	for len(nd.Host().Network().Peers()) < k {
		select {
		case <-sub.Out():
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return nil
}

// waitFor polls cond every 10 ms until it holds (true) or ctx ends (false).
func waitFor(ctx context.Context, cond func() bool) bool {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

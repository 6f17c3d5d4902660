// Package testnet starts many clearinghouse nodes on one machine, on
// loopback, connected in a chosen topology: in-process for tests and
// benchmarks. Later scenarios (partitions, floods, offline regions) build on
// the same Network.
package testnet

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// Topology says which nodes of a network dial which.
type Topology interface {
	// Edges returns the pairs (i, j), i < j, of nodes to connect among n.
	Edges(n int) [][2]int
}

// TopologyFunc adapts a function to a Topology.
type TopologyFunc func(n int) [][2]int

// Edges calls f.
func (f TopologyFunc) Edges(n int) [][2]int { return f(n) }

// All connects every node to every other.
var All Topology = TopologyFunc(func(n int) [][2]int {
	var out [][2]int
	for i := range n {
		for j := i + 1; j < n; j++ {
			out = append(out, [2]int{i, j})
		}
	}
	return out
})

// Ring connects node i to node i+1, and the last to the first.
var Ring Topology = TopologyFunc(func(n int) [][2]int {
	var out [][2]int
	for i := range n - 1 {
		out = append(out, [2]int{i, i + 1})
	}
	if n > 2 {
		out = append(out, [2]int{0, n - 1})
	}
	return out
})

// None connects nothing; the test connects nodes itself.
var None Topology = TopologyFunc(func(int) [][2]int { return nil })

// Sparse returns a connected random topology: a random spanning tree plus
// extra random edges until every node has about degree neighbours. The same
// seed gives the same graph.
func Sparse(degree int, seed uint64) Topology {
	return TopologyFunc(func(n int) [][2]int {
		r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		perm := r.Perm(n)
		seen := map[[2]int]bool{}
		deg := make([]int, n)
		var out [][2]int
		add := func(a, b int) {
			if a == b {
				return
			}
			if a > b {
				a, b = b, a
			}
			if !seen[[2]int{a, b}] {
				seen[[2]int{a, b}] = true
				deg[a]++
				deg[b]++
				out = append(out, [2]int{a, b})
			}
		}
		for i := 1; i < n; i++ {
			add(perm[i], perm[r.IntN(i)])
		}
		for tries := 0; tries < n*degree*4; tries++ {
			a, b := r.IntN(n), r.IntN(n)
			if deg[a] < degree && deg[b] < degree {
				add(a, b)
			}
		}
		return out
	})
}

// Option configures a Network.
type Option func(*options) error

type options struct {
	topology    Topology
	observers   int
	follow      []string
	dataDir     string
	nodeOpts    func(i int) []node.Option
	keySeed     byte
	logger      *slog.Logger
	partition   *Partition
	affiliation func(i int) (group, region string)
	rules       *protocol.Rules
}

// WithTopology sets how nodes are connected (default All).
func WithTopology(t Topology) Option {
	return func(o *options) error {
		if t == nil {
			return errors.New("testnet: nil topology")
		}
		o.topology = t
		return nil
	}
}

// WithObservers makes the last k nodes read-only observers; they are not
// founders of the federation.
func WithObservers(k int) Option {
	return func(o *options) error {
		if k < 0 {
			return errors.New("testnet: observers must be >= 0")
		}
		o.observers = k
		return nil
	}
}

// WithFollow makes every node follow the given issue slugs.
func WithFollow(slugs ...string) Option {
	return func(o *options) error { o.follow = append(o.follow, slugs...); return nil }
}

// WithDataDir keeps node i's data under dir/node-i on disk instead of in
// memory, so tests can restart a node on the same data.
func WithDataDir(dir string) Option {
	return func(o *options) error { o.dataDir = dir; return nil }
}

// WithNodeOptions adds options for node i, applied after the testnet's own.
func WithNodeOptions(f func(i int) []node.Option) Option {
	return func(o *options) error { o.nodeOpts = f; return nil }
}

// WithKeySeed changes the deterministic keys, so that two networks in one
// test are two different federations.
func WithKeySeed(b byte) Option {
	return func(o *options) error { o.keySeed = b; return nil }
}

// WithAffiliation sets the stakeholder group and region of founder i
// (default: the default groups and regions in turn, so five founders cover
// every group and every region).
func WithAffiliation(f func(i int) (group, region string)) Option {
	return func(o *options) error {
		if f == nil {
			return errors.New("testnet: nil affiliation")
		}
		o.affiliation = f
		return nil
	}
}

func defaultAffiliation(i int) (string, string) {
	g, r := protocol.DefaultGroups, protocol.DefaultRegions
	return g[i%len(g)], r[(i/len(g)+i)%len(r)]
}

// WithRules sets the federation's rules (default protocol.DefaultRules).
func WithRules(r protocol.Rules) Option {
	return func(o *options) error { o.rules = &r; return nil }
}

// WithLogger sends the nodes' logs to l (default: discarded), each with a
// "node" attribute holding its index.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("testnet: nil logger")
		}
		o.logger = l
		return nil
	}
}

// Network is a set of running nodes of one federation.
type Network struct {
	// Nodes are the running nodes; a restarted node replaces its entry.
	Nodes []*node.Node
	// Keys are the nodes' identities, by index.
	Keys []crypto.PrivKey
	// Genesis is the federation all nodes belong to: every non-observer
	// node is a founder.
	Genesis *protocol.Genesis

	opts   options
	mu     sync.Mutex
	closed bool
}

// Key returns the deterministic ed25519 identity of node i of a network
// made with key seed s.
func Key(s byte, i int) crypto.PrivKey {
	seed := make([]byte, ed25519.SeedSize)
	seed[0], seed[1], seed[2] = s, byte(i), byte(i>>8)
	seed[31] = 0xc1
	priv, _, err := crypto.KeyPairFromStdKey(ptr(ed25519.NewKeyFromSeed(seed)))
	if err != nil {
		panic(err) // ed25519 keys always convert
	}
	return priv
}

func ptr[T any](v T) *T { return &v }

// New starts n nodes on loopback with OS-assigned ports, founds a
// federation of the non-observers, connects them in the chosen topology and
// registers Close with tb.Cleanup. It fails the test on error.
func New(tb testing.TB, n int, opts ...Option) *Network {
	tb.Helper()
	net, err := Start(context.Background(), n, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := net.Close(); err != nil {
			tb.Errorf("testnet close: %v", err)
		}
	})
	return net
}

// Start is New without a testing.TB; the caller must call Close.
func Start(ctx context.Context, n int, opts ...Option) (_ *Network, err error) {
	o := options{topology: All, keySeed: 1, logger: slog.New(slog.DiscardHandler), affiliation: defaultAffiliation}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if n < 1 || o.observers >= n {
		return nil, fmt.Errorf("testnet: need at least one member among %d nodes (%d observers)", n, o.observers)
	}
	net := &Network{opts: o}
	defer func() {
		if err != nil {
			_ = net.Close()
		}
	}()
	var founders []protocol.Member
	for i := range n {
		k := Key(o.keySeed, i)
		net.Keys = append(net.Keys, k)
		if i < n-o.observers {
			group, region := o.affiliation(i)
			founders = append(founders, protocol.Member{
				Key: net.PublicKey(i), Org: fmt.Sprintf("Org %d", i),
				Group:  group,
				Region: region,
			})
		}
	}
	g := protocol.NewGenesis(fmt.Sprintf("testnet %d", o.keySeed), founders, genesisTime)
	if o.rules != nil {
		g.Rules = *o.rules
	}
	for i := range founders {
		if err := g.Sign(net.SigningKey(i)); err != nil {
			return nil, err
		}
	}
	net.Genesis = g
	for i := range n {
		nd, err := net.startNode(ctx, i)
		if err != nil {
			return nil, err
		}
		net.Nodes = append(net.Nodes, nd)
	}
	for _, e := range o.topology.Edges(n) {
		if err := net.Connect(ctx, e[0], e[1]); err != nil {
			return nil, err
		}
	}
	return net, nil
}

// SyncInterval is how often testnet nodes sync every joined topic with
// their peers (node.WithSyncInterval; WithNodeOptions may override it).
// It is much shorter than a real node's, so that a gossip message lost in
// a busy test run (gossip announces, sync guarantees) is repaired well
// within a test's deadline.
const SyncInterval = 2 * time.Second

// LoopbackOnly returns the node options that turn off what only a node on
// the internet needs: the private DHT, AutoNAT (each adds a dialing host
// with real sockets), the relay service and AutoRelay. On loopback, or on
// a simulated network, nodes are connected explicitly and reachability
// means nothing; the propagation benchmark and the simulation use it, so
// that they measure what the raw gossipsub baseline also does, and so that
// no real socket runs under the simulation's virtual clock.
func LoopbackOnly() []node.Option {
	return []node.Option{
		node.WithDHT(false),
		node.WithAutoNAT(false),
		node.WithRelayService(false),
		node.WithAutoRelay(false, node.DefaultRelayBootDelay),
	}
}

func (net *Network) startNode(ctx context.Context, i int) (*node.Node, error) {
	o := net.opts
	opts := []node.Option{
		node.WithLogger(o.logger.With("node", i)),
		node.WithIdentity(net.Keys[i]),
		node.WithGenesis(net.Genesis),
		node.WithListenAddrs([]string{"/ip4/127.0.0.1/tcp/0"}),
		node.WithObserver(i >= len(net.Keys)-o.observers),
		node.WithFollow(o.follow),
		node.WithSyncInterval(SyncInterval),
	}
	if o.dataDir != "" {
		opts = append(opts, node.WithDataDir(filepath.Join(o.dataDir, fmt.Sprintf("node-%d", i))))
	} else {
		opts = append(opts, node.WithInMemory())
	}
	if o.partition != nil {
		id, err := peer.IDFromPrivateKey(net.Keys[i])
		if err != nil {
			return nil, err
		}
		opts = append(opts, node.WithConnectionGater(gater{p: o.partition, self: id}))
	}
	if o.nodeOpts != nil {
		opts = append(opts, o.nodeOpts(i)...)
	}
	nd, err := node.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("testnet: node %d: %w", i, err)
	}
	return nd, nil
}

// Connect dials node j from node i.
func (net *Network) Connect(ctx context.Context, i, j int) error {
	if err := net.Nodes[i].Connect(ctx, net.Nodes[j].AddrInfo()); err != nil {
		return fmt.Errorf("testnet: connect %d -> %d: %w", i, j, err)
	}
	return nil
}

// Restart stops node i and starts it again on the same identity and (with
// WithDataDir) the same data, reconnecting it to the peers given.
func (net *Network) Restart(ctx context.Context, i int, peers ...int) error {
	if err := net.Nodes[i].Close(); err != nil {
		return err
	}
	nd, err := net.startNode(ctx, i)
	if err != nil {
		return err
	}
	net.Nodes[i] = nd
	for _, p := range peers {
		if err := net.Connect(ctx, i, p); err != nil {
			return err
		}
	}
	return nil
}

// WaitTopicMesh blocks until every node has each of its connected peers
// (up to gossipsub's mesh degree) in its gossipsub mesh of topic; all nodes
// must have joined it.
func (net *Network) WaitTopicMesh(ctx context.Context, topic string) error {
	for _, nd := range net.Nodes {
		want := 0
		for _, p := range nd.Host().Network().Peers() {
			if net.index(p) >= 0 {
				want++
			}
		}
		if err := nd.WaitMeshPeers(ctx, topic, min(want, meshDegreeLow)); err != nil {
			return err
		}
	}
	return nil
}

func (net *Network) index(p peer.ID) int {
	for i, nd := range net.Nodes {
		if nd.ID() == p {
			return i
		}
	}
	return -1
}

// Close stops every node.
func (net *Network) Close() error {
	net.mu.Lock()
	defer net.mu.Unlock()
	if net.closed {
		return nil
	}
	net.closed = true
	var errs []error
	for _, nd := range net.Nodes {
		errs = append(errs, nd.Close())
	}
	return errors.Join(errs...)
}

// genesisTime is the fixed creation time of testnet federations, so the
// same options give the same network id.
var genesisTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// meshDegreeLow is gossipsub's default D_low: a node with more topic peers
// may keep only this many in its mesh.
const meshDegreeLow = 5

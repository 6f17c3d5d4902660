package simulation_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/x/simlibp2p"
	"github.com/marcopolo/simnet"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

var (
	simNodes   = flag.Int("sim.nodes", 50, "nodes of the simulated network")
	simRecords = flag.Int("sim.records", 100, "records published")
	simRate    = flag.Float64("sim.rate", 10, "records per (virtual) second, network-wide")
	simDegree  = flag.Int("sim.degree", 8, "neighbours per node")
	simReport  = flag.String("sim.report", "", "file to append the figures to (markdown table rows)")
)

// Link model: every pair of nodes has a one-way latency between
// minLatency and maxLatency (fixed per pair, spread evenly), and every
// node an uplink and a downlink of linkBandwidth.
const (
	minLatency    = 25 * time.Millisecond
	maxLatency    = 150 * time.Millisecond
	linkBandwidth = 20 * simlibp2p.OneMbps
	textSize      = 1024
	topicSlug     = "sim"
)

// pairLatency is the one-way latency between two addresses, the same in
// both directions.
func pairLatency(p *simnet.Packet) time.Duration {
	a, b := p.From.String(), p.To.String()
	if a > b {
		a, b = b, a
	}
	h := fnv.New64a()
	h.Write([]byte(a + "|" + b))
	span := uint64(maxLatency - minLatency)
	return minLatency + time.Duration(h.Sum64()%(span+1))
}

func linkSettings() simnet.NodeBiDiLinkSettings {
	return simnet.NodeBiDiLinkSettings{
		Downlink: simnet.LinkSettings{BitsPerSecond: linkBandwidth},
		Uplink:   simnet.LinkSettings{BitsPerSecond: linkBandwidth},
	}
}

// propagation collects when each node got each record, in virtual time.
type propagation struct {
	mu      sync.Mutex
	start   map[string]time.Time
	arrived map[string][]time.Time
	viaSync int
	changed chan struct{} // signalled after each arrival
}

func newPropagation() *propagation {
	return &propagation{start: map[string]time.Time{}, arrived: map[string][]time.Time{}, changed: make(chan struct{}, 1)}
}

func (p *propagation) published(k string, t time.Time) {
	p.mu.Lock()
	p.start[k] = t
	p.mu.Unlock()
}

func (p *propagation) arrive(k string, viaSync bool) {
	p.mu.Lock()
	p.arrived[k] = append(p.arrived[k], time.Now())
	if viaSync {
		p.viaSync++
	}
	p.mu.Unlock()
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// waitComplete waits, arrival by arrival, until every published record
// reached n nodes, or limit (of virtual time) passes.
func (p *propagation) waitComplete(n int, limit time.Duration) bool {
	timeout := time.After(limit)
	for !p.complete(n) {
		select {
		case <-p.changed:
		case <-timeout:
			return false
		}
	}
	return true
}

func (p *propagation) complete(n int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k := range p.start {
		if len(p.arrived[k]) < n {
			return false
		}
	}
	return true
}

// figures returns the delivered share and the p50, p99 and max of the
// time from publish to the last node, over the records all nodes got.
func (p *propagation) figures(n int) (delivered float64, p50, p99, mx time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var lat []time.Duration
	got := 0
	for k, t0 := range p.start {
		ts := p.arrived[k]
		got += min(len(ts), n)
		if len(ts) >= n {
			lat = append(lat, slices.MaxFunc(ts, time.Time.Compare).Sub(t0))
		}
	}
	slices.Sort(lat)
	q := func(f float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[max(0, min(len(lat)-1, int(f*float64(len(lat))+0.999999)-1))]
	}
	return float64(got) / float64(len(p.start)*n), q(0.5), q(0.99), q(1)
}

// publishSchedule calls publish(i, n) for each record at the configured
// rate, on a random node, each on its own goroutine, and waits for them.
func publishSchedule(nodes int, publish func(i, n int)) {
	r := rand.New(rand.NewPCG(7, 7))
	interval := time.Duration(float64(time.Second) / *simRate)
	var wg sync.WaitGroup
	tick := time.NewTicker(interval) // the rate, in virtual time
	defer tick.Stop()
	for n := range *simRecords {
		i := r.IntN(nodes)
		wg.Go(func() { publish(i, n) })
		<-tick.C
	}
	wg.Wait()
}

func report(t *testing.T, name string, n int, p *propagation) {
	delivered, p50, p99, mx := p.figures(n)
	t.Logf("%s: %d nodes, %d records: delivered %.2f%%, via sync %d, p50 %v, p99 %v, max %v (virtual time)",
		name, n, *simRecords, 100*delivered, p.viaSync, p50, p99, mx)
	if *simReport != "" {
		f, err := os.OpenFile(*simReport, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "| %s | %d | %d | %.2f%% | %d | %d ms | %d ms | %d ms |\n", name, n, *simRecords, 100*delivered,
			p.viaSync, p50.Milliseconds(), p99.Milliseconds(), mx.Milliseconds())
		f.Close()
	}
	if delivered < 1 {
		t.Errorf("%s: delivered %.2f%% of (record, node) pairs, want 100%%", name, 100*delivered)
	}
}

// TestSimGossipsub is raw gossipsub on the simulated network: the same
// link model, topology, message size, rate and gossipsub options as the
// nodes of TestSimNodes, no validation, no store.
func TestSimGossipsub(t *testing.T) {
	n := *simNodes
	synctest.Test(t, func(t *testing.T) {
		sn, meta, err := simlibp2p.SimpleLibp2pNetwork([]simlibp2p.NodeLinkSettingsAndCount{
			{LinkSettings: linkSettings(), Count: n},
		}, pairLatency, simlibp2p.NetworkSettings{})
		if err != nil {
			t.Fatal(err)
		}
		sn.Start()
		defer sn.Close()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var topics []*pubsub.Topic
		p := newPropagation()
		var wg sync.WaitGroup
		for _, h := range meta.Nodes {
			defer h.Close()
			ps, err := pubsub.NewGossipSub(ctx, h, append(node.GossipOptions(),
				pubsub.WithMessageIdFn(func(m *pb.Message) string { s := sha256.Sum256(m.Data); return string(s[:]) }),
				pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
				pubsub.WithNoAuthor(),
			)...)
			if err != nil {
				t.Fatal(err)
			}
			tp, err := ps.Join("sim")
			if err != nil {
				t.Fatal(err)
			}
			if err := tp.SetScoreParams(node.GossipTopicScoreParams()); err != nil {
				t.Fatal(err)
			}
			sub, err := tp.Subscribe()
			if err != nil {
				t.Fatal(err)
			}
			topics = append(topics, tp)
			wg.Go(func() {
				for {
					m, err := sub.Next(ctx)
					if err != nil {
						return
					}
					p.arrive(string(m.Data[:8]), false)
				}
			})
		}
		for _, e := range testnet.Sparse(*simDegree, 1).Edges(n) {
			a, b := meta.Nodes[e[0]], meta.Nodes[e[1]]
			if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
				t.Fatalf("connect %d -> %d: %v", e[0], e[1], err)
			}
		}
		// Meshes form at the heartbeats after the subscriptions are known.
		for i, tp := range topics {
			waitTopicPeers(t, ctx, tp, len(meta.Nodes[i].Network().Peers()))
		}
		// Gossipsub grafts meshes only at its heartbeats: let three pass
		// (virtual time; there is no event to wait for on raw hosts).
		<-time.After(3 * node.GossipParams().HeartbeatInterval)
		size := recordSize(t)
		publishSchedule(n, func(i, k int) {
			data := make([]byte, size)
			binary.BigEndian.PutUint64(data, uint64(k))
			p.published(string(data[:8]), time.Now())
			if err := topics[i].Publish(ctx, data); err != nil {
				t.Errorf("publish: %v", err)
			}
		})
		p.waitComplete(n, time.Minute)
		report(t, "gossipsub", n, p)
		cancel()
		for _, tp := range topics {
			_ = tp.Close()
		}
		wg.Wait()
	})
}

// recordSize is the length of the records TestSimNodes publishes.
func recordSize(t *testing.T) int {
	raw, err := testnet.Key(9, 0).Raw()
	if err != nil {
		t.Fatal(err)
	}
	c := protocol.RecordCID([]byte("sim"))
	r, err := protocol.Build(raw, protocol.Draft{
		Network: c, Kind: protocol.KindStatement, Topic: protocol.IssueTopic(topicSlug), Seq: 2, Prev: c,
		Deps: []cid.Cid{protocol.RecordCID([]byte("a")), protocol.RecordCID([]byte("b")), protocol.RecordCID([]byte("c"))},
		Time: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Body: statement(1 << 20),
	})
	if err != nil {
		t.Fatal(err)
	}
	return len(r.Raw)
}

func statement(k int) *protocol.Statement {
	text := fmt.Sprintf("record %d ", k)
	for len(text) < textSize {
		text += "x"
	}
	return &protocol.Statement{Title: "simulation", Text: text}
}

// TestSimNodes is clearinghouse nodes (stores in memory) on the simulated
// network: records published at the configured rate must be stored by
// every node.
func TestSimNodes(t *testing.T) {
	n := *simNodes
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		topic := protocol.IssueTopic(topicSlug)
		net := startSimNodes(t, ctx, n, testnet.SyncInterval)
		p := newPropagation()
		var wg sync.WaitGroup
		for _, nd := range net.Nodes {
			sub := nd.Subscribe(func(e node.Event) bool { return e.Record.Env.Topic == topic })
			wg.Go(func() {
				defer sub.Close()
				for {
					select {
					case e, ok := <-sub.C:
						if !ok {
							return
						}
						p.arrive(e.Record.CID.KeyString(), e.Source == node.SourceSync)
					case <-ctx.Done():
						return
					}
				}
			})
		}
		connectSimNodes(t, ctx, net)
		// One publish at a time per node, as a member's client would,
		// waiting on a channel (a goroutine waiting for a mutex would stop
		// the virtual clock).
		turns := make([]chan struct{}, n)
		for i := range turns {
			turns[i] = make(chan struct{}, 1)
		}
		publishSchedule(n, func(i, k int) {
			turns[i] <- struct{}{}
			defer func() { <-turns[i] }()
			t0 := time.Now()
			rec, err := net.Nodes[i].Publish(ctx, protocol.KindStatement, topic, statement(k))
			if err != nil {
				t.Errorf("node %d: publish: %v", i, err)
				return
			}
			p.published(rec.CID.KeyString(), t0)
		})
		p.waitComplete(n, time.Minute)
		report(t, "clearinghouse", n, p)
		cancel()
		if err := net.Close(); err != nil {
			t.Error(err)
		}
		wg.Wait()
	})
}

// startSimNodes starts n clearinghouse nodes (stores in memory, following
// topicSlug, syncing every interval) on a new simulated network of the link
// model above, connects nothing, and stops it all at the end of the test.
// It must run inside a synctest bubble.
// extra are more options for every node.
func startSimNodes(t *testing.T, ctx context.Context, n int, interval time.Duration, extra ...node.Option) *testnet.Network {
	t.Helper()
	sn := &simnet.Simnet{LatencyFunc: pairLatency}
	sn.Start()
	t.Cleanup(sn.Close)
	// Virtual time starts in 2000; records must not predate the
	// federation's genesis (2026).
	start := time.Now()
	base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return base.Add(time.Since(start)) }
	net, err := testnet.Start(ctx, n,
		testnet.WithTopology(testnet.None),
		testnet.WithFollow(topicSlug),
		testnet.WithNodeOptions(func(i int) []node.Option {
			addr := fmt.Sprintf("/ip4/%s/udp/8000/quic-v1", simnet.IntToPublicIPv4(i))
			return append(append(testnet.LoopbackOnly(),
				node.WithListenAddrs([]string{addr}),
				node.WithClock(clock),
				node.WithSyncInterval(interval),
				node.WithHostOptions(
					simlibp2p.QUICSimnet(sn, linkSettings()),
					libp2p.DisableIdentifyAddressDiscovery(),
				),
			), extra...)
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := net.Close(); err != nil {
			t.Error(err)
		}
	})
	return net
}

// connectSimNodes connects the nodes in the random topology of the
// configured degree and waits for their gossipsub meshes.
func connectSimNodes(t *testing.T, ctx context.Context, net *testnet.Network) {
	t.Helper()
	for _, e := range testnet.Sparse(*simDegree, 1).Edges(len(net.Nodes)) {
		if err := net.Connect(ctx, e[0], e[1]); err != nil {
			t.Fatal(err)
		}
	}
	mctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := net.WaitTopicMesh(mctx, protocol.IssueTopic(topicSlug)); err != nil {
		t.Fatal(err)
	}
}

// waitTopicPeers waits for the join events of k peers on tp: the
// subscriptions of its connected peers.
func waitTopicPeers(t *testing.T, ctx context.Context, tp *pubsub.Topic, k int) {
	t.Helper()
	h, err := tp.EventHandler()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Cancel()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	peers := map[peer.ID]bool{}
	for len(peers) < k {
		ev, err := h.NextPeerEvent(ctx)
		if err != nil {
			t.Fatalf("topic peers: %d of %d known: %v", len(peers), k, err)
		}
		if ev.Type == pubsub.PeerJoin {
			peers[ev.Peer] = true
		} else {
			delete(peers, ev.Peer)
		}
	}
}

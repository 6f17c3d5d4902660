package testnet

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// rawHost is one raw gossipsub participant of the benchmark.
type rawHost struct {
	h     host.Host
	ps    *pubsub.PubSub
	topic *pubsub.Topic
	sub   *pubsub.Subscription
}

// rawMessageSize returns the length of the records the nodes publish with
// cfg: a statement of cfg.Size bytes of text with a prev and three deps.
func rawMessageSize(cfg BenchConfig) (int, error) {
	r, err := sampleRecord(cfg)
	if err != nil {
		return 0, err
	}
	return len(r.Raw), nil
}

// sampleRecord builds a record like the nodes' bench records: a statement
// of cfg.Size bytes of text, with a prev and three deps.
func sampleRecord(cfg BenchConfig) (*protocol.Record, error) {
	raw, err := Key(0xb0, 0).Raw()
	if err != nil {
		return nil, err
	}
	k := ed25519.PrivateKey(raw)
	c := protocol.RecordCID([]byte("bench"))
	r, err := protocol.Build(k, protocol.Draft{
		Network: c, Kind: protocol.KindStatement, Topic: protocol.IssueTopic(benchTopic),
		Seq: 2, Prev: c, Deps: []cid.Cid{protocol.RecordCID([]byte("a")), protocol.RecordCID([]byte("b")), protocol.RecordCID([]byte("c"))},
		Time: genesisTime, Body: benchBody(1<<20, cfg.Size),
	})
	if err != nil {
		return nil, fmt.Errorf("testnet: bench: sample record: %w", err)
	}
	return r, nil
}

// verifyCost is the CPU of one signature check of a bench record as the
// nodes check it (protocol.Record.Verify: the signing input, then the
// signature, the author's key already expanded): the raw ed25519
// baseline of the CPU floor (DiskResult.VerifyCPU).
func verifyCost(cfg BenchConfig) (time.Duration, error) {
	r, err := sampleRecord(cfg)
	if err != nil {
		return 0, err
	}
	const n = 200
	var failed error
	best := fastest(func() {
		for range n {
			if err := r.Verify(); err != nil {
				failed = err
			}
		}
	})
	if failed != nil {
		return 0, fmt.Errorf("testnet: bench: a valid record does not verify: %w", failed)
	}
	return best / n, nil
}

// fastest runs fn five times on the calling goroutine and returns the
// shortest run: the calibrations of the bench take the fastest, so that
// other load when a run starts inflates them as little as it can.
func fastest(fn func()) time.Duration {
	best := time.Duration(math.MaxInt64)
	for range 5 {
		t0 := time.Now()
		fn()
		best = min(best, time.Since(t0))
	}
	return best
}

// startRawHost starts a libp2p host with the options a node's host has
// (TCP and QUIC, the connection manager, no relay, metrics) and gossipsub
// with the nodes' gossip options, joined to one topic.
func startRawHost(ctx context.Context, i int, topic string, tm *trafficMeter, burn int) (*rawHost, error) {
	cm, err := connmgr.NewConnManager(node.DefaultConnLow, node.DefaultConnHigh)
	if err != nil {
		return nil, err
	}
	hostOpts := []libp2p.Option{
		libp2p.Identity(Key(0xb0, i)),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.ConnectionManager(cm),
		libp2p.DisableRelay(),
		libp2p.PrometheusRegisterer(prometheus.NewRegistry()),
	}
	psOpts := append(node.GossipOptions(),
		pubsub.WithMessageIdFn(func(m *pb.Message) string {
			s := sha256.Sum256(m.Data)
			return string(s[:])
		}),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
	)
	if tm.gossip != nil {
		hostOpts = append(hostOpts, libp2p.BandwidthReporter(tm.bw))
		psOpts = append(psOpts, pubsub.WithRawTracer(tm.gossip))
	}
	h, err := libp2p.New(hostOpts...)
	if err != nil {
		return nil, err
	}
	ps, err := pubsub.NewGossipSub(ctx, h, psOpts...)
	if err != nil {
		_ = h.Close()
		return nil, err
	}
	if burn > 0 {
		if err := ps.RegisterTopicValidator(topic, func(_ context.Context, _ peer.ID, m *pubsub.Message) bool {
			burnCPU(m.Data, burn)
			return true
		}); err != nil {
			_ = h.Close()
			return nil, err
		}
	}
	t, err := ps.Join(topic)
	if err == nil {
		err = t.SetScoreParams(node.GossipTopicScoreParams())
	}
	var sub *pubsub.Subscription
	if err == nil {
		sub, err = t.Subscribe()
	}
	if err != nil {
		_ = h.Close()
		return nil, err
	}
	return &rawHost{h: h, ps: ps, topic: t, sub: sub}, nil
}

// runRawBench is the gossipsub side of RunBench.
func runRawBench(ctx context.Context, cfg BenchConfig, log io.Writer) (res BenchResult, err error) {
	res.Name = "gossipsub"
	size, err := rawMessageSize(cfg)
	if err != nil {
		return res, err
	}
	rss0 := baselineRSS()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const topic = "clearinghouse-bench"
	hosts := make([]*rawHost, 0, cfg.Nodes)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		for _, h := range hosts {
			h.sub.Cancel()
			err = errors.Join(err, h.h.Close())
		}
		wg.Wait()
	}()
	tm := newTrafficMeter(cfg.Traffic)
	burn := 0
	if cfg.RawCPU > 0 {
		burn = burnRounds(cfg.RawCPU, size)
		fmt.Fprintf(log, "  extra CPU per delivery: %v (%d hashing rounds)\n", cfg.RawCPU, burn)
	}
	for i := range cfg.Nodes {
		h, err := startRawHost(ctx, i, topic, tm, burn)
		if err != nil {
			return res, fmt.Errorf("testnet: bench: raw host %d: %w", i, err)
		}
		hosts = append(hosts, h)
	}
	d := newDeliveryLog()
	for _, h := range hosts {
		wg.Go(func() {
			for {
				m, err := h.sub.Next(ctx)
				if err != nil {
					return
				}
				if len(m.Data) >= 8 {
					d.arrive(string(m.Data[:8]), time.Now(), false)
				}
			}
		})
	}
	edges := Sparse(cfg.Degree, cfg.Seed).Edges(cfg.Nodes)
	for _, e := range edges {
		a, b := hosts[e[0]].h, hosts[e[1]].h
		if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
			return res, fmt.Errorf("testnet: bench: connect %d -> %d: %w", e[0], e[1], err)
		}
	}
	if err := waitRawTopicPeers(ctx, hosts, topic); err != nil {
		return res, err
	}
	fmt.Fprintf(log, "  %d hosts connected (%d links)\n", len(hosts), len(edges))
	res.IdleCores = measureIdle(ctx, cfg.Idle)

	tm.begin(ctx)
	stop, err := startProfile(cfg, res.Name)
	if err != nil {
		return res, err
	}
	c0, m0 := processCPU(), startMachineLoad()
	var failed atomic.Int64
	publishLoop(ctx, cfg, func(i, n int) {
		data := make([]byte, size)
		binary.BigEndian.PutUint64(data, uint64(n))
		d.published(string(data[:8]), time.Now())
		if err := hosts[i].topic.Publish(ctx, data); err != nil {
			failed.Add(1)
		}
	})
	finishBench(ctx, cfg, d, &res, c0, rss0, failed.Load(), log)
	res.Steal, res.OtherCores = m0.end(processCPU() - c0)
	if err := stop(); err != nil {
		return res, err
	}
	res.Traffic = tm.end(ctx)
	return res, ctx.Err()
}

// waitRawTopicPeers waits until every host sees each of its connected
// peers on the topic, then for two gossipsub heartbeats, in which the
// meshes form.
func waitRawTopicPeers(ctx context.Context, hosts []*rawHost, topic string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for _, h := range hosts {
		for len(h.ps.ListPeers(topic)) < len(h.h.Network().Peers()) {
			select {
			case <-t.C:
			case <-ctx.Done():
				return fmt.Errorf("testnet: bench: waiting for topic peers: %w", ctx.Err())
			}
		}
	}
	select {
	case <-time.After(2 * node.GossipParams().HeartbeatInterval):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runNodeBench is the clearinghouse side of RunBench.
func runNodeBench(ctx context.Context, cfg BenchConfig, log io.Writer) (res BenchResult, err error) {
	res.Name = "clearinghouse"
	rss0 := baselineRSS()
	tm := newTrafficMeter(cfg.Traffic)
	opts := []Option{
		WithTopology(Sparse(cfg.Degree, cfg.Seed)),
		WithFollow(benchTopic),
		WithNodeOptions(func(int) []node.Option {
			o := append(LoopbackOnly(), node.WithSyncInterval(cfg.SyncInterval))
			if tm.gossip != nil {
				o = append(o, node.WithGossipTracer(tm.gossip), node.WithHostOptions(libp2p.BandwidthReporter(tm.bw)))
			}
			return o
		}),
	}
	if !cfg.InMemory {
		dir, remove, err := benchDir(cfg)
		if err != nil {
			return res, err
		}
		defer remove()
		opts = append(opts, WithDataDir(dir))
	}
	net, err := Start(ctx, cfg.Nodes, opts...)
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		err = errors.Join(err, net.Close())
		wg.Wait()
	}()
	topic := protocol.IssueTopic(benchTopic)
	d := newDeliveryLog()
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
					d.arrive(e.Record.CID.KeyString(), time.Now(), e.Source == node.SourceSync)
				case <-ctx.Done():
					return
				}
			}
		})
	}
	mctx, mcancel := context.WithTimeout(ctx, time.Minute)
	err = net.WaitTopicMesh(mctx, topic)
	mcancel()
	if err != nil {
		return res, err
	}
	fmt.Fprintf(log, "  %d nodes connected, meshes formed\n", len(net.Nodes))
	if cfg.Idle > 0 {
		// The syncs on connection end first.
		select {
		case <-time.After(cfg.SyncInterval + time.Second):
		case <-ctx.Done():
		}
	}
	res.IdleCores = measureIdle(ctx, cfg.Idle)

	// The histograms are read before the window opens and after it ends:
	// gathering 100 registries takes about 0.2 s of CPU, which is not the
	// nodes' work.
	h0, err := histogramTotals(net.Nodes)
	if err != nil {
		return res, err
	}
	tm.begin(ctx)
	stop, err := startProfile(cfg, res.Name)
	if err != nil {
		return res, err
	}
	c0, m0 := processCPU(), startMachineLoad()
	var failed atomic.Int64
	publishLoop(ctx, cfg, func(i, n int) {
		t0 := time.Now()
		rec, err := net.Nodes[i].Publish(ctx, protocol.KindStatement, topic, benchBody(n, cfg.Size))
		if err != nil {
			if failed.Add(1) == 1 {
				fmt.Fprintf(log, "  publish failed: %v\n", err)
			}
			return
		}
		d.published(rec.CID.KeyString(), t0)
	})
	finishBench(ctx, cfg, d, &res, c0, rss0, failed.Load(), log)
	res.Steal, res.OtherCores = m0.end(processCPU() - c0)
	h1, err := histogramTotals(net.Nodes)
	if err != nil {
		return res, err
	}
	res.Hop = h1[benchForward].since(h0[benchForward])
	res.Stored = h1[benchIngest].since(h0[benchIngest])
	res.StoredP50 = h1[benchIngest].quantile(h0[benchIngest], 0.50)
	res.StoredP99 = h1[benchIngest].quantile(h0[benchIngest], 0.99)
	if err := stop(); err != nil {
		return res, err
	}
	res.Traffic = tm.end(ctx)
	return res, ctx.Err()
}

// finishBench waits for the deliveries of a run and fills res with its
// figures: the propagation percentiles, CPU per delivery (c0 is the
// process CPU when publishing began) and RSS growth per node (rss0 before
// the hosts started); it logs the failed publishes.
func finishBench(ctx context.Context, cfg BenchConfig, d *deliveryLog, res *BenchResult, c0 time.Duration, rss0 uint64, failed int64, log io.Writer) {
	waitDelivered(ctx, cfg, d)
	cpu := processCPU() - c0
	d.result(res, cfg.Nodes)
	if res.Deliveries > 0 {
		res.CPUPerDelivery = cpu / time.Duration(res.Deliveries)
	}
	if rss := processRSS(); rss > rss0 {
		res.RSSPerNode = (rss - rss0) / uint64(cfg.Nodes)
	}
	if failed > 0 {
		fmt.Fprintf(log, "  %d publishes failed\n", failed)
	}
}

// startProfile starts the CPU profile of one side's publishing window, if
// cfg asks for one, and returns the function that stops it and closes its
// file.
func startProfile(cfg BenchConfig, side string) (stop func() error, err error) {
	if cfg.CPUProfile == "" {
		return func() error { return nil }, nil
	}
	name := cfg.CPUProfile + "-" + side + ".pprof"
	f, err := os.Create(name)
	if err != nil {
		return nil, fmt.Errorf("testnet: bench: cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("testnet: bench: cpu profile %s: %w", name, err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("testnet: bench: cpu profile %s: %w", name, err)
		}
		return nil
	}, nil
}

// machineLoad is the machine's CPU counters at the start of a publishing
// window.
type machineLoad struct {
	busy, steal, all uint64
	at               time.Time
	ok               bool
}

func startMachineLoad() machineLoad {
	busy, steal, all, ok := machineCPU()
	return machineLoad{busy: busy, steal: steal, all: all, at: time.Now(), ok: ok}
}

// end returns the steal share of the machine's CPU time since m, and the
// cores that processes other than this one (which used own) kept busy;
// -1 for both if not measured.
func (m machineLoad) end(own time.Duration) (steal, other float64) {
	busy, st, all, ok := machineCPU()
	wall := time.Since(m.at)
	if !m.ok || !ok || all <= m.all || wall <= 0 {
		return -1, -1
	}
	steal = float64(st-m.steal) / float64(all-m.all)
	other = (float64(time.Duration(busy-m.busy)*clockTick) - float64(own)) / float64(wall)
	return steal, max(other, 0)
}

// histTotals is the sum and count of a histogram's observations, and its
// cumulative bucket counts by upper bound (seconds), ascending.
type histTotals struct {
	sum     float64 // seconds
	count   uint64
	uppers  []float64
	buckets []uint64
}

// quantile estimates the q-quantile of the observations between t0 and t
// from the buckets, interpolating linearly within the bucket that holds
// it, as Prometheus's histogram_quantile does (zero if none; the largest
// finite bound if it falls in the last, unbounded bucket).
func (t histTotals) quantile(t0 histTotals, q float64) time.Duration {
	if t.count <= t0.count || len(t.buckets) == 0 {
		return 0
	}
	n := float64(t.count - t0.count)
	rank := q * n
	var below, lower float64
	for i, upper := range t.uppers {
		c := float64(t.buckets[i])
		if i < len(t0.buckets) {
			c -= float64(t0.buckets[i])
		}
		if c >= rank {
			if c == below {
				return time.Duration(upper * float64(time.Second))
			}
			return time.Duration((lower + (upper-lower)*(rank-below)/(c-below)) * float64(time.Second))
		}
		below, lower = c, upper
	}
	return time.Duration(lower * float64(time.Second))
}

// since is the mean observation between t0 and t (zero if none).
func (t histTotals) since(t0 histTotals) time.Duration {
	if t.count <= t0.count {
		return 0
	}
	return time.Duration((t.sum - t0.sum) / float64(t.count-t0.count) * float64(time.Second))
}

// The node histograms the bench reads.
const (
	benchForward = "clearinghouse_gossip_forward_seconds"
	benchIngest  = "clearinghouse_ingest_seconds"
)

// histogramTotals adds up the bench's node histograms over nodes, by name.
func histogramTotals(nodes []*node.Node) (map[string]histTotals, error) {
	out := map[string]histTotals{}
	for _, nd := range nodes {
		mfs, err := nd.Registry().Gather()
		if err != nil {
			return nil, fmt.Errorf("testnet: bench: metrics: %w", err)
		}
		for _, mf := range mfs {
			name := mf.GetName()
			if name != benchForward && name != benchIngest {
				continue
			}
			t := out[name]
			for _, m := range mf.GetMetric() {
				h := m.GetHistogram()
				t.sum += h.GetSampleSum()
				t.count += h.GetSampleCount()
				for i, b := range h.GetBucket() {
					if i == len(t.buckets) {
						t.uppers = append(t.uppers, b.GetUpperBound())
						t.buckets = append(t.buckets, 0)
					}
					t.buckets[i] += b.GetCumulativeCount()
				}
			}
			out[name] = t
		}
	}
	return out, nil
}

// burnCPU hashes data rounds times: the raw side's stand-in for the
// nodes' work per delivery (BenchConfig.RawCPU). The result feeds the
// next round, so none of it can be skipped.
func burnCPU(data []byte, rounds int) [32]byte {
	h := sha256.Sum256(data)
	buf := make([]byte, 0, len(h)+len(data))
	for range rounds {
		buf = append(append(buf[:0], h[:]...), data...)
		h = sha256.Sum256(buf)
	}
	return h
}

// burnRounds is the number of burnCPU rounds over a message of size bytes
// that takes about d of CPU, calibrated on the calling goroutine.
func burnRounds(d time.Duration, size int) int {
	data := make([]byte, size)
	const trial = 500
	per := max(fastest(func() { burnCPU(data, trial) })/trial, time.Nanosecond)
	return max(1, int(d/per))
}

package testnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// BenchConfig sizes a propagation benchmark (RunBench). The zero value of a
// field means its default.
type BenchConfig struct {
	// Nodes is the number of nodes (default 50).
	Nodes int
	// Degree is the number of neighbours each node is connected to, in a
	// random connected topology (Sparse; default 8).
	Degree int
	// Size is the length of a record's text, in bytes (default 1024). Raw
	// gossipsub messages are as long as the whole signed record.
	Size int
	// Rate is the number of records published per second, network-wide,
	// each by a node chosen at random (default 10).
	Rate float64
	// Duration is how long records are published (default 20 s;
	// negative: none, only the idle CPU is measured).
	Duration time.Duration
	// Idle is how long the idle CPU of the connected nodes is measured,
	// before the first record (default 10 s; negative: not measured).
	Idle time.Duration
	// Settle bounds the wait, after the last record, for every node to
	// hold every record (default 30 s); what is missing then counts as not
	// delivered.
	Settle time.Duration
	// InMemory keeps the clearinghouse nodes' stores in memory instead of
	// on disk.
	InMemory bool
	// Dir holds the nodes' data directories (default: a temporary
	// directory, removed afterwards).
	Dir string
	// SyncInterval is the nodes' periodic sync interval (default
	// SyncInterval, the testnet's).
	SyncInterval time.Duration
	// Seed chooses the topology and the publishers (default 1).
	Seed uint64
	// Traffic counts what each side sends while records flow (gossipsub
	// RPCs by topic and kind, stream bytes by protocol; BenchResult.Traffic).
	// The counting costs both sides some CPU, so it is off by default.
	Traffic bool
	// CPUProfile, if not empty, is a path prefix: each side writes a CPU
	// profile of its publishing window (from the first publish until every
	// record is delivered or the settle time ends) to CPUProfile plus
	// "-gossipsub.pprof" and "-clearinghouse.pprof".
	CPUProfile string
	// RawCPU, if positive, gives the raw gossipsub side about this much
	// extra CPU work per delivery: a validator on each host hashes the
	// message in a loop of a length calibrated when the run starts. With
	// it near the nodes' extra CPU per delivery, the baseline does the
	// nodes' amount of work with none of their mechanisms but a gossipsub
	// validator: what it then measures is the latency that CPU alone
	// costs on this machine.
	RawCPU time.Duration
}

func (c *BenchConfig) defaults() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Nodes, 50)
	def(&c.Degree, 8)
	def(&c.Size, 1024)
	if c.Rate == 0 {
		c.Rate = 10
	}
	if c.Duration == 0 {
		c.Duration = 20 * time.Second
	}
	if c.Idle == 0 {
		c.Idle = 10 * time.Second
	}
	if c.Settle == 0 {
		c.Settle = 30 * time.Second
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = SyncInterval
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	switch {
	case c.Nodes < 2:
		return fmt.Errorf("testnet: bench: %d nodes, need at least 2", c.Nodes)
	case c.Degree < 1:
		return fmt.Errorf("testnet: bench: degree %d, need at least 1", c.Degree)
	case c.Size < 1 || c.Size > 32<<10:
		return fmt.Errorf("testnet: bench: size %d, want 1 to %d", c.Size, 32<<10)
	case c.Rate < 0 || c.Rate > 10_000:
		return fmt.Errorf("testnet: bench: rate %g, want 0 to 10000 records/s", c.Rate)
	case c.RawCPU < 0 || c.RawCPU > time.Second:
		return fmt.Errorf("testnet: bench: raw CPU %v per delivery, want 0 to 1s", c.RawCPU)
	case c.Settle < 0 || c.SyncInterval < 0:
		return errors.New("testnet: bench: durations must not be negative")
	}
	return nil
}

// BenchResult is what one side of a benchmark measured.
type BenchResult struct {
	// Name is "gossipsub" or "clearinghouse".
	Name string
	// Records is the number of records published.
	Records int
	// Deliveries counts (record, node) pairs where the node held the
	// record by the end, publisher included; Expected is Records * nodes.
	Deliveries, Expected int
	// P50, P99 and Max are the time from the start of a publish to the
	// moment the last node held the record (durably stored, for
	// clearinghouse nodes; delivered to the subscriber, for gossipsub),
	// over the records every node received.
	P50, P99, Max time.Duration
	// ViaSync counts deliveries that came by sync instead of gossip.
	ViaSync int
	// CPUPerDelivery is the process CPU time spent while records were
	// published and delivered, per delivery.
	CPUPerDelivery time.Duration
	// Hop is the mean time a gossiped record spent in a node before
	// gossipsub could forward it (clearinghouse_gossip_forward_seconds:
	// signature check, the apply loop's checks, durable write queued),
	// over the publishing window; zero for gossipsub, which has no
	// validator. Milliseconds here, where the check itself costs about
	// 0.1 ms of CPU, mean the process is short of CPU.
	Hop time.Duration
	// Stored is the mean time from a node's receipt of a record to its
	// durable store and announcement (clearinghouse_ingest_seconds), over
	// the publishing window: the last node's share of "on all" after the
	// record reached it. Zero for gossipsub.
	Stored time.Duration
	// StoredP50 and StoredP99 are its quantiles, estimated from the
	// histogram's buckets (which grow by 2.5x: a coarse estimate).
	StoredP50, StoredP99 time.Duration
	// RSSPerNode is the growth of the process's resident memory from
	// before the nodes started to the end of the run, per node.
	RSSPerNode uint64
	// IdleCores is the CPU the connected, idle nodes used together, in
	// cores (CPU seconds per second); negative if not measured.
	IdleCores float64
	// Traffic is what the side sent while records were published and
	// delivered, if BenchConfig.Traffic (else nil).
	Traffic *Traffic
	// Steal is the share of the machine's CPU time the hypervisor gave
	// to other guests while records were published and delivered, and
	// OtherCores the CPU other processes of this machine used meanwhile,
	// in cores; both negative if not measured (not Linux). The side
	// that needs more CPU suffers more from either: read the ratios of a
	// run with both low.
	Steal, OtherCores float64
	// Timeline splits the publishing window into equal windows by
	// publish time: a p50 that grows from window to window is a queue
	// that grows, a spike in one window is a burst of other work.
	Timeline []BenchWindow
}

// BenchWindow is the propagation of the records published in one window
// of a run.
type BenchWindow struct {
	Start      time.Duration // from the first publish
	Records    int           // published in the window
	Incomplete int           // of those, not on every node by the end
	P50, Max   time.Duration // publish -> on all, of the others
}

// FormatTimeline writes the timelines of both sides of a run side by
// side.
func FormatTimeline(w io.Writer, raw, ch BenchResult) {
	if len(raw.Timeline) == 0 || len(raw.Timeline) != len(ch.Timeline) {
		return
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }
	fmt.Fprintf(w, "%-10s %8s %24s %24s\n", "published", "records", "gossipsub p50 / max ms", "clearinghouse p50 / max")
	for i, a := range raw.Timeline {
		b := ch.Timeline[i]
		cell := func(x BenchWindow) string {
			s := ms(x.P50) + " / " + ms(x.Max)
			if x.Incomplete > 0 {
				s += fmt.Sprintf(" (%d short)", x.Incomplete)
			}
			return s
		}
		fmt.Fprintf(w, "%-10s %8d %24s %24s\n", "+"+a.Start.Round(100*time.Millisecond).String(), b.Records, cell(a), cell(b))
	}
}

// DeliveryRatio returns Deliveries / Expected (1 when nothing was expected).
func (r BenchResult) DeliveryRatio() float64 {
	if r.Expected == 0 {
		return 1
	}
	return float64(r.Deliveries) / float64(r.Expected)
}

// RunBench measures propagation on one machine: first raw gossipsub hosts
// (same number, topology, message size, rate and gossipsub options as the
// nodes, no validation, no store), then clearinghouse nodes, each started,
// measured and stopped in turn. Progress goes to log (may be nil).
func RunBench(ctx context.Context, cfg BenchConfig, log io.Writer) (raw, ch BenchResult, err error) {
	if err := cfg.defaults(); err != nil {
		return raw, ch, err
	}
	if log == nil {
		log = io.Discard
	}
	fmt.Fprintf(log, "raw gossipsub: %d hosts, degree %d\n", cfg.Nodes, cfg.Degree)
	if raw, err = runRawBench(ctx, cfg, log); err != nil {
		return raw, ch, err
	}
	store := "on disk"
	if cfg.InMemory {
		store = "in memory"
	}
	fmt.Fprintf(log, "clearinghouse: %d nodes, degree %d, stores %s\n", cfg.Nodes, cfg.Degree, store)
	ch, err = runNodeBench(ctx, cfg, log)
	return raw, ch, err
}

// benchTopic is the issue the benchmark's records are published on.
const benchTopic = "bench"

// benchBody returns the statement the benchmark publishes, of size bytes of
// text; n makes it unique.
func benchBody(n, size int) *protocol.Statement {
	head := fmt.Sprintf("record %d ", n)
	text := head
	if size > len(head) {
		text += strings.Repeat("x", size-len(head))
	}
	return &protocol.Statement{Title: "benchmark", Text: text}
}

// deliveryLog collects when each node received each record.
type deliveryLog struct {
	mu      sync.Mutex
	start   map[string]time.Time // record key -> publish start
	arrived map[string][]time.Time
	viaSync int
}

func newDeliveryLog() *deliveryLog {
	return &deliveryLog{start: map[string]time.Time{}, arrived: map[string][]time.Time{}}
}

func (d *deliveryLog) published(key string, t time.Time) {
	d.mu.Lock()
	d.start[key] = t
	d.mu.Unlock()
}

func (d *deliveryLog) arrive(key string, t time.Time, viaSync bool) {
	d.mu.Lock()
	d.arrived[key] = append(d.arrived[key], t)
	if viaSync {
		d.viaSync++
	}
	d.mu.Unlock()
}

// complete reports whether every published record reached all nodes.
func (d *deliveryLog) complete(nodes int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k := range d.start {
		if len(d.arrived[k]) < nodes {
			return false
		}
	}
	return true
}

// result fills the delivery figures of r.
func (d *deliveryLog) result(r *BenchResult, nodes int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r.Records = len(d.start)
	r.Expected = r.Records * nodes
	r.ViaSync = d.viaSync
	var lat []time.Duration
	for k, t0 := range d.start {
		ts := d.arrived[k]
		r.Deliveries += min(len(ts), nodes)
		if len(ts) < nodes {
			continue
		}
		lat = append(lat, slices.MaxFunc(ts, time.Time.Compare).Sub(t0))
	}
	r.P50, r.P99, r.Max = percentile(lat, 0.50), percentile(lat, 0.99), percentile(lat, 1)
	r.Timeline = d.timeline(nodes, timelineWindows)
}

// timelineWindows is how many windows BenchResult.Timeline splits a run
// into.
const timelineWindows = 10

// timeline splits the publishing window into n windows of equal length by
// publish time and returns the propagation figures of each.
func (d *deliveryLog) timeline(nodes, n int) []BenchWindow {
	if len(d.start) == 0 {
		return nil
	}
	var first, last time.Time
	for _, t0 := range d.start {
		if first.IsZero() || t0.Before(first) {
			first = t0
		}
		if t0.After(last) {
			last = t0
		}
	}
	width := last.Sub(first)/time.Duration(n) + 1
	lat := make([][]time.Duration, n)
	out := make([]BenchWindow, n)
	for k, t0 := range d.start {
		i := int(t0.Sub(first) / width)
		out[i].Records++
		if ts := d.arrived[k]; len(ts) >= nodes {
			lat[i] = append(lat[i], slices.MaxFunc(ts, time.Time.Compare).Sub(t0))
		}
	}
	for i := range out {
		out[i].Start = time.Duration(i) * width
		out[i].P50, out[i].Max = percentile(lat[i], 0.5), percentile(lat[i], 1)
		out[i].Incomplete = out[i].Records - len(lat[i])
	}
	return out
}

// percentile returns the q-quantile of ds (nearest rank), 0 if empty.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(q*float64(len(ds))+0.999999) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

// publishLoop calls publish(i, n) for the n-th record at cfg.Rate per
// second for cfg.Duration, on a node i chosen at random, each call on its
// own goroutine (a node publishes one record at a time; the schedule does
// not wait for it). It returns once every call has returned.
func publishLoop(ctx context.Context, cfg BenchConfig, publish func(i, n int)) {
	if cfg.Rate <= 0 || cfg.Duration <= 0 {
		return
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	total := int(cfg.Rate * cfg.Duration.Seconds())
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	t := time.NewTicker(interval)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for n := range total {
		i := r.IntN(cfg.Nodes)
		wg.Go(func() { publish(i, n) })
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// waitDelivered waits until every record reached every node, at most
// cfg.Settle.
func waitDelivered(ctx context.Context, cfg BenchConfig, d *deliveryLog) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Settle)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !d.complete(cfg.Nodes) {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// measureIdle returns the cores the process uses over d, or -1 if d <= 0.
func measureIdle(ctx context.Context, d time.Duration) float64 {
	if d <= 0 {
		return -1
	}
	c0, t0 := processCPU(), time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	return (processCPU() - c0).Seconds() / time.Since(t0).Seconds()
}

// baselineRSS frees what the previous run left and returns the resident
// memory before a run.
func baselineRSS() uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	return processRSS()
}

// FormatBench writes the figures of the two sides and their ratios.
func FormatBench(w io.Writer, raw, ch BenchResult) {
	ratio := func(a, b time.Duration) string {
		if b <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx", float64(a)/float64(b))
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
	idle := func(c float64) string {
		if c < 0 {
			return "-"
		}
		return fmt.Sprintf("%.3f cores", c)
	}
	share := func(x float64) string {
		if x < 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f%%", 100*x)
	}
	cores := func(x float64) string {
		if x < 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f cores", x)
	}
	msOrDash := func(d time.Duration) string {
		if d <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
	rows := [][4]string{
		{"", "gossipsub", "clearinghouse", "ratio"},
		{"records published", fmt.Sprint(raw.Records), fmt.Sprint(ch.Records), ""},
		{"publish -> on all, p50", ms(raw.P50), ms(ch.P50), ratio(ch.P50, raw.P50)},
		{"publish -> on all, p99", ms(raw.P99), ms(ch.P99), ratio(ch.P99, raw.P99)},
		{"publish -> on all, max", ms(raw.Max), ms(ch.Max), ratio(ch.Max, raw.Max)},
		{"delivery", fmt.Sprintf("%.2f%%", 100*raw.DeliveryRatio()), fmt.Sprintf("%.2f%%", 100*ch.DeliveryRatio()), ""},
		{"deliveries via sync", fmt.Sprint(raw.ViaSync), fmt.Sprint(ch.ViaSync), ""},
		{"CPU per delivery", fmt.Sprintf("%.1f µs", float64(raw.CPUPerDelivery)/1e3), fmt.Sprintf("%.1f µs", float64(ch.CPUPerDelivery)/1e3), ratio(ch.CPUPerDelivery, raw.CPUPerDelivery)},
		{"hop: in node, mean", msOrDash(raw.Hop), msOrDash(ch.Hop), ""},
		{"receipt -> stored, mean", msOrDash(raw.Stored), msOrDash(ch.Stored), ""},
		{"receipt -> stored, p50", msOrDash(raw.StoredP50), msOrDash(ch.StoredP50), ""},
		{"receipt -> stored, p99", msOrDash(raw.StoredP99), msOrDash(ch.StoredP99), ""},
		{"RSS per node", fmt.Sprintf("%.1f MiB", float64(raw.RSSPerNode)/(1<<20)), fmt.Sprintf("%.1f MiB", float64(ch.RSSPerNode)/(1<<20)), ""},
		{"idle CPU, all nodes", idle(raw.IdleCores), idle(ch.IdleCores), ""},
		{"machine: steal", share(raw.Steal), share(ch.Steal), ""},
		{"machine: other processes", cores(raw.OtherCores), cores(ch.OtherCores), ""},
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%-26s %16s %16s %8s\n", r[0], r[1], r[2], r[3])
	}
}

// benchDir returns the directory for on-disk stores and a function that
// removes it if it was created here.
func benchDir(cfg BenchConfig) (string, func(), error) {
	if cfg.Dir != "" {
		return cfg.Dir, func() {}, nil
	}
	d, err := os.MkdirTemp("", "clearinghouse-bench-")
	if err != nil {
		return "", nil, fmt.Errorf("testnet: bench: %w", err)
	}
	return d, func() { _ = os.RemoveAll(d) }, nil
}

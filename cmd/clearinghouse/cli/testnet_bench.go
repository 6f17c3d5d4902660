package cli

import (
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/clearinghouse-net/clearinghouse/testnet"
)

func newTestnetBenchCommand(a *app) *cobra.Command {
	var (
		cfg      testnet.BenchConfig
		runs     int
		disk     bool
		timeline bool
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure record propagation against raw gossipsub, in this process",
		Long: `Bench measures how fast records cross a network of nodes on loopback,
next to raw gossipsub on the same machine. Each run starts N raw gossipsub
hosts (same libp2p and gossipsub options as the nodes, connected in the same
random topology of the given degree, no validation, no store), measures their
idle CPU, publishes records of the given size at the given rate from random
hosts, and stops them; then it does the same with N clearinghouse nodes of
one federation (stores on disk unless --in-memory).

For each side it prints the time from the start of a publish until every
node holds the record (durably stored, for nodes), as p50, p99 and max; the
share of (record, node) deliveries made; the deliveries made by sync instead
of gossip; the CPU per delivery; for nodes, the mean time a gossiped
record spent in a node before it could be forwarded (its share of a
hop) and the time from a node's receipt of a record to its durable
store (mean, and p50 and p99 estimated from the histogram's buckets);
the resident memory per node; the CPU
of the N connected, idle nodes; and, while records flowed, the share of the
machine's CPU the hypervisor gave to other guests (steal) and the cores
other processes used. With --runs > 1 it also prints the median
of each figure over the runs. The machine's other load shows in the
figures: compare the ratio, not the absolute values, and distrust a run
whose steal or other load is high (the side that needs more CPU suffers
more).

With --disk, each run then also writes every record, at the same rate, to N
plain pebble databases on disk at once, each with a synced commit (no
network, no validation): the synced commit latency of this disk under the
nodes' write load, and the time until a record is durable in all N, the
floor under the nodes' "on all" that the disk alone sets. It also prints
the CPU floor per delivery: raw gossipsub's, plus one ed25519 signature
check and one synced pebble write (each measured in the same run), the
least CPU a node that checks and durably stores every record it forwards
can spend, and the nodes' CPU per delivery as a multiple of it. Where all
N share a few cores, the latency ratio follows the CPU ratio, so the floor
over raw gossipsub bounds how close to raw gossipsub any such node can
come on this machine.

With --timeline, each run also prints the propagation of the records
published in each tenth of the run (p50 and max of publish -> on all): a
p50 that grows from window to window is a queue that grows, a spike in one
window a burst of other work (for example a round of sync sessions).

With --raw-cpu D, each raw gossipsub host also spends about D of CPU on
every message it receives or publishes (a validator that hashes it, in a
loop calibrated when the run starts). Set to the nodes' CPU per delivery
less raw gossipsub's, it shows how much of the nodes' latency the CPU
alone explains on this machine, where all N hosts share its cores.

With --cpuprofile PREFIX, each side writes a CPU profile of its publishing
window (go tool pprof reads it); with --runs > 1, of the last run.

With --traffic, each run also prints what each side sent while records were
published and delivered, per record: gossipsub messages and bytes by topic
and kind (publish, IHAVE, IWANT, IDONTWANT, GRAFT, PRUNE, subscriptions),
gossipsub RPCs and those dropped, and the bytes written to streams of each
protocol (gossipsub, sync, identify, ...).`,
		Example: `  clearinghouse testnet bench
  clearinghouse testnet bench --nodes 100 --rate 10 --duration 60s --runs 3
  clearinghouse testnet bench --nodes 100 --rate 35 --in-memory --idle -1s
  clearinghouse testnet bench --nodes 100 --rate 10 --duration 30s --runs 3 --disk
  clearinghouse testnet bench --nodes 100 --rate 10 --duration 40s --idle 0 --timeline --cpuprofile /tmp/bench
  clearinghouse testnet bench --nodes 100 --rate 10 --duration 30s --idle 0 --in-memory --raw-cpu 400us`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runs < 1 || runs > 100 {
				return &usageError{fmt.Errorf("--runs %d: want 1 to 100", runs)}
			}
			if cfg.Nodes < 2 || cfg.Nodes > 2000 {
				return &usageError{fmt.Errorf("--nodes %d: want 2 to 2000", cfg.Nodes)}
			}
			if cfg.Degree < 1 || cfg.Size < 1 || cfg.Rate < 0 || cfg.Duration < 0 || cfg.Settle < 0 || cfg.SyncInterval <= 0 {
				return &usageError{fmt.Errorf("--degree and --size must be at least 1, --sync-interval above 0, --rate, --duration and --settle not negative")}
			}
			if cfg.Idle == 0 {
				cfg.Idle = -1 // 0 on the command line: not measured
			}
			if cfg.Rate == 0 || cfg.Duration == 0 {
				cfg.Duration = -1 // no records: the idle CPU only
			}
			if disk && (cfg.InMemory || cfg.Duration < 0) {
				return &usageError{fmt.Errorf("--disk needs stores on disk and records (--rate and --duration above 0)")}
			}
			var raws, chs []testnet.BenchResult
			var disks []testnet.DiskResult
			for r := range runs {
				if runs > 1 {
					fmt.Fprintf(a.stderr, "run %d of %d\n", r+1, runs)
				}
				raw, ch, err := testnet.RunBench(cmd.Context(), cfg, a.stderr)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "run %d: %d nodes, degree %d, %d-byte text, %g records/s for %s, stores %s\n",
					r+1, cfg.Nodes, cfg.Degree, cfg.Size, cfg.Rate, cfg.Duration, storeKind(cfg.InMemory))
				testnet.FormatBench(a.stdout, raw, ch)
				if timeline {
					fmt.Fprintln(a.stdout)
					testnet.FormatTimeline(a.stdout, raw, ch)
				}
				testnet.FormatTraffic(a.stdout, raw, ch)
				if disk {
					d, err := testnet.RunDiskBench(cmd.Context(), cfg, a.stderr)
					if err != nil {
						return err
					}
					testnet.FormatDisk(a.stdout, d, raw, ch)
					disks = append(disks, d)
				}
				fmt.Fprintln(a.stdout)
				raws, chs = append(raws, raw), append(chs, ch)
			}
			if runs > 1 {
				fmt.Fprintf(a.stdout, "median of %d runs\n", runs)
				testnet.FormatBench(a.stdout, medianResult(raws), medianResult(chs))
				p99 := make([]float64, runs)
				for i := range runs {
					p99[i] = float64(chs[i].P99) / float64(max(raws[i].P99, 1))
				}
				slices.Sort(p99)
				fmt.Fprintf(a.stdout, "median of the per-run p99 ratios: %.2fx\n", p99[runs/2])
				if disk {
					testnet.FormatDisk(a.stdout, testnet.MedianDisk(disks), medianResult(raws), medianResult(chs))
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Nodes, "nodes", 50, "number of nodes (and of raw gossipsub hosts)")
	f.IntVar(&cfg.Degree, "degree", 8, "neighbours per node in the random topology")
	f.IntVar(&cfg.Size, "size", 1024, "bytes of text per record")
	f.Float64Var(&cfg.Rate, "rate", 10, "records per second, network-wide (0: none, idle CPU only)")
	f.DurationVar(&cfg.Duration, "duration", 20*time.Second, "how long records are published (0: none, idle CPU only)")
	f.DurationVar(&cfg.Idle, "idle", 10*time.Second, "how long the idle CPU is measured before publishing (0: not measured)")
	f.DurationVar(&cfg.Settle, "settle", 30*time.Second, "how long to wait after the last record for every node to hold every record")
	f.DurationVar(&cfg.SyncInterval, "sync-interval", testnet.SyncInterval, "the nodes' periodic sync interval")
	f.BoolVar(&cfg.InMemory, "in-memory", false, "keep the nodes' stores in memory instead of on disk")
	f.StringVar(&cfg.Dir, "dir", "", "directory for the nodes' on-disk stores (default: a temporary directory, removed afterwards)")
	f.Uint64Var(&cfg.Seed, "seed", 1, "seed of the topology and of the choice of publishers")
	f.IntVar(&runs, "runs", 1, "number of runs")
	f.BoolVar(&cfg.Traffic, "traffic", false, "also count what each side sends while records flow: gossipsub messages and bytes by topic and kind, stream bytes by protocol (costs both sides some CPU)")
	f.BoolVar(&timeline, "timeline", false, "also print the propagation of the records published in each tenth of the run, for both sides")
	f.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of each side's publishing window to `PREFIX`-gossipsub.pprof and PREFIX-clearinghouse.pprof (go tool pprof reads them)")
	f.DurationVar(&cfg.RawCPU, "raw-cpu", 0, "give each raw gossipsub host about this much extra CPU per delivery (a validator that hashes the message; for example the nodes' CPU per delivery less raw gossipsub's): how much latency that CPU alone costs on this machine")
	f.BoolVar(&disk, "disk", false, "also measure N plain pebble databases writing every record with a synced commit at the same rate (the disk's floor)")
	return cmd
}

func storeKind(inMemory bool) string {
	if inMemory {
		return "in memory"
	}
	return "on disk"
}

// medianResult returns, figure by figure, the median of rs.
func medianResult(rs []testnet.BenchResult) testnet.BenchResult {
	med := func(f func(testnet.BenchResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	dur := func(f func(testnet.BenchResult) time.Duration) time.Duration {
		return time.Duration(med(func(r testnet.BenchResult) float64 { return float64(f(r)) }))
	}
	out := testnet.BenchResult{Name: rs[0].Name}
	out.Records = int(med(func(r testnet.BenchResult) float64 { return float64(r.Records) }))
	out.Expected = int(med(func(r testnet.BenchResult) float64 { return float64(r.Expected) }))
	// The delivery ratio's median, expressed against Expected.
	ratio := med(func(r testnet.BenchResult) float64 { return r.DeliveryRatio() })
	out.Deliveries = int(ratio*float64(out.Expected) + 0.5)
	out.P50 = dur(func(r testnet.BenchResult) time.Duration { return r.P50 })
	out.P99 = dur(func(r testnet.BenchResult) time.Duration { return r.P99 })
	out.Max = dur(func(r testnet.BenchResult) time.Duration { return r.Max })
	out.ViaSync = int(med(func(r testnet.BenchResult) float64 { return float64(r.ViaSync) }))
	out.CPUPerDelivery = dur(func(r testnet.BenchResult) time.Duration { return r.CPUPerDelivery })
	out.Hop = dur(func(r testnet.BenchResult) time.Duration { return r.Hop })
	out.Stored = dur(func(r testnet.BenchResult) time.Duration { return r.Stored })
	out.StoredP50 = dur(func(r testnet.BenchResult) time.Duration { return r.StoredP50 })
	out.StoredP99 = dur(func(r testnet.BenchResult) time.Duration { return r.StoredP99 })
	out.RSSPerNode = uint64(med(func(r testnet.BenchResult) float64 { return float64(r.RSSPerNode) }))
	out.IdleCores = med(func(r testnet.BenchResult) float64 { return r.IdleCores })
	out.Steal = med(func(r testnet.BenchResult) float64 { return r.Steal })
	out.OtherCores = med(func(r testnet.BenchResult) float64 { return r.OtherCores })
	return out
}

package testnet

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// DiskResult is what the raw pebble side of a benchmark measured: the
// share of "durably stored on all nodes" that the disk alone imposes.
type DiskResult struct {
	// DBs is the number of pebble databases, one per node.
	DBs int
	// Records is the number of records written (each to every database).
	Records int
	// CommitP50, CommitP99 and CommitMax are the latencies of the single
	// synced writes, one per record per database.
	CommitP50, CommitP99, CommitMax time.Duration
	// P50, P99 and Max are, per record, the time from the start of its
	// writes until every database holds it durably.
	P50, P99, Max time.Duration
	// CPUPerWrite is the process CPU per synced write (one record to one
	// database), while all the databases write.
	CPUPerWrite time.Duration
	// VerifyCPU is the CPU of one ed25519 signature check of a bench
	// record, as the nodes check it (verifyCost), on one core with nothing
	// else running in the process.
	VerifyCPU time.Duration
}

// RunDiskBench measures the disk under the nodes' write load without the
// nodes: cfg.Nodes pebble databases on disk (the store's memtable size and
// format), and at cfg.Rate records a second for cfg.Duration, each record
// (as long as a node's record) written to every database at once with a
// synced commit, as each node's store writes it. It returns the commit
// latencies and the time until a record is durable in all databases: the
// floor under the nodes' "stored on all" on this disk, with no network,
// no validation and no waiting between hops. (The nodes write a record one
// hop after another, so their commits overlap less than these; the floor
// is a worst case of contention at the same total rate.)
func RunDiskBench(ctx context.Context, cfg BenchConfig, log io.Writer) (res DiskResult, err error) {
	if err := cfg.defaults(); err != nil {
		return res, err
	}
	if log == nil {
		log = io.Discard
	}
	res.DBs = cfg.Nodes
	size, err := rawMessageSize(cfg)
	if err != nil {
		return res, err
	}
	dir, remove, err := benchDir(cfg)
	if err != nil {
		return res, err
	}
	defer remove()
	dbs := make([]*pebble.DB, 0, cfg.Nodes)
	defer func() {
		for _, db := range dbs {
			err = errors.Join(err, db.Close())
		}
	}()
	for i := range cfg.Nodes {
		db, err := pebble.Open(filepath.Join(dir, fmt.Sprintf("pebble-%03d", i)), &pebble.Options{
			FormatMajorVersion: pebble.FormatNewest,
			MemTableSize:       64 << 20, // as store.Open
			Logger:             quietPebble{},
		})
		if err != nil {
			return res, fmt.Errorf("testnet: bench: pebble: %w", err)
		}
		dbs = append(dbs, db)
	}
	// One write each first: a fresh database's first synced commit also
	// creates its WAL, which the nodes did before their first record.
	for _, db := range dbs {
		if err := syncedSet(db, []byte("warm"), nil); err != nil {
			return res, fmt.Errorf("testnet: bench: pebble write: %w", err)
		}
	}
	fmt.Fprintf(log, "raw pebble: %d databases on disk, %d-byte records\n", cfg.Nodes, size)
	var (
		mu      sync.Mutex
		commits []time.Duration
		onAll   []time.Duration
		failed  error
	)
	value := make([]byte, size)
	_, _ = rand.Read(value)
	if res.VerifyCPU, err = verifyCost(cfg); err != nil {
		return res, err
	}
	c0 := processCPU()
	publishLoop(ctx, cfg, func(_, n int) {
		key := binary.BigEndian.AppendUint64([]byte("r"), uint64(n))
		t0 := time.Now()
		lat := make([]time.Duration, len(dbs))
		var wg sync.WaitGroup
		var errs []error
		var emu sync.Mutex
		for i, db := range dbs {
			wg.Go(func() {
				s := time.Now()
				err := syncedSet(db, key, value)
				lat[i] = time.Since(s)
				if err != nil {
					emu.Lock()
					errs = append(errs, err)
					emu.Unlock()
				}
			})
		}
		wg.Wait()
		all := time.Since(t0)
		mu.Lock()
		defer mu.Unlock()
		if len(errs) > 0 {
			failed = errors.Join(failed, errs[0])
			return
		}
		commits = append(commits, lat...)
		onAll = append(onAll, all)
	})
	if failed != nil {
		return res, fmt.Errorf("testnet: bench: pebble write: %w", failed)
	}
	cpu := processCPU() - c0
	res.Records = len(onAll)
	if w := len(commits); w > 0 {
		res.CPUPerWrite = cpu / time.Duration(w)
	}
	res.CommitP50, res.CommitP99, res.CommitMax = percentile(commits, 0.50), percentile(commits, 0.99), percentile(commits, 1)
	res.P50, res.P99, res.Max = percentile(onAll, 0.50), percentile(onAll, 0.99), percentile(onAll, 1)
	return res, ctx.Err()
}

// FormatDisk writes the figures of the raw pebble side next to the nodes'
// p99 of the same run, and the floor of CPU per delivery: raw gossipsub's
// (gs) plus one signature check plus one synced write, the least any node
// that checks and durably stores every record it forwards spends, next to
// the nodes' (ch).
func FormatDisk(w io.Writer, d DiskResult, gs, ch BenchResult) {
	ms := func(x time.Duration) string { return fmt.Sprintf("%.1f ms", float64(x)/float64(time.Millisecond)) }
	fmt.Fprintf(w, "raw pebble, %d DBs, %d records: synced commit p50 %s, p99 %s, max %s\n",
		d.DBs, d.Records, ms(d.CommitP50), ms(d.CommitP99), ms(d.CommitMax))
	fmt.Fprintf(w, "raw pebble, durable on all: p50 %s, p99 %s, max %s", ms(d.P50), ms(d.P99), ms(d.Max))
	if d.P99 > 0 && ch.P99 > 0 {
		fmt.Fprintf(w, " (clearinghouse p99 is %.2fx it)", float64(ch.P99)/float64(d.P99))
	}
	fmt.Fprintln(w)
	f := d.Floor(gs)
	fmt.Fprintf(w, "CPU floor per delivery: gossipsub %s + ed25519 verify %s + pebble synced write %s = %s",
		us(gs.CPUPerDelivery), us(d.VerifyCPU), us(d.CPUPerWrite), us(f))
	if gs.CPUPerDelivery > 0 {
		fmt.Fprintf(w, " (%.2fx gossipsub)", float64(f)/float64(gs.CPUPerDelivery))
	}
	if f > 0 && ch.CPUPerDelivery > 0 {
		fmt.Fprintf(w, "; clearinghouse %s is %.2fx the floor", us(ch.CPUPerDelivery), float64(ch.CPUPerDelivery)/float64(f))
	}
	fmt.Fprintln(w)
}

// Floor is the least CPU per delivery of a node that forwards as raw
// gossipsub does (gs) and checks and durably writes every record: gs's
// CPU per delivery, one signature check and one synced write.
func (d DiskResult) Floor(gs BenchResult) time.Duration {
	return gs.CPUPerDelivery + d.VerifyCPU + d.CPUPerWrite
}

func us(x time.Duration) string { return fmt.Sprintf("%.1f µs", float64(x)/float64(time.Microsecond)) }

// MedianDisk returns, figure by figure, the median of ds.
func MedianDisk(ds []DiskResult) DiskResult {
	med := func(f func(DiskResult) time.Duration) time.Duration {
		v := make([]time.Duration, len(ds))
		for i, d := range ds {
			v[i] = f(d)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	out := ds[0]
	out.CommitP50 = med(func(d DiskResult) time.Duration { return d.CommitP50 })
	out.CommitP99 = med(func(d DiskResult) time.Duration { return d.CommitP99 })
	out.CommitMax = med(func(d DiskResult) time.Duration { return d.CommitMax })
	out.P50 = med(func(d DiskResult) time.Duration { return d.P50 })
	out.P99 = med(func(d DiskResult) time.Duration { return d.P99 })
	out.Max = med(func(d DiskResult) time.Duration { return d.Max })
	out.CPUPerWrite = med(func(d DiskResult) time.Duration { return d.CPUPerWrite })
	out.VerifyCPU = med(func(d DiskResult) time.Duration { return d.VerifyCPU })
	return out
}

// syncedSet writes key with a synced commit; a failed write, which pebble
// reports through its logger's Fatalf (quietPebble panics), is an error.
func syncedSet(db *pebble.DB, key, value []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return db.Set(key, value, pebble.Sync)
}

// quietPebble drops pebble's informational logs; a fatal error panics, for
// syncedSet to return.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

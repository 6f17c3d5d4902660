package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

func newHTTPFaultCommand(a *app) *cobra.Command {
	var (
		streams, idle, slow, probes int
		perProcess                  int
		maxP99                      time.Duration
		maxRSS, rate                int
		dir, bin                    string
	)
	cmd := &cobra.Command{
		Use:   "http",
		Short: "Flood a node's HTTP API with non-reading event streams, idle connections and slow bodies",
		Long: `Http starts a node process (this binary, or --binary) and opens against its API
--streams event streams (GET /api/v1/events) that never read, --idle
connections that never send a request, and --slow POST requests that send one
byte of a 100 KB body and stall, while one client publishes --rate records a
second so that the streams have something to send and to fall behind on. It then probes GET
/api/v1/status --probes times, one after the other, and reports their
latency, the node's resident memory (VmRSS, and VmHWM, the peak) and what the
server dropped.

It fails if a probe fails, the p99 latency exceeds --max-p99, or the node's
peak RSS exceeds --max-rss MiB. Each connection takes a file descriptor on
both sides: the connections are opened and held by client processes (this
binary again), at most --per-process each, so that their number is not bound
by one process's open files limit; each raises its soft limit to the hard one,
and so does the harness, whose limit the node inherits. The node closes
connections over its cap (4,096), so it needs about that many.`,
		Example: `  clearinghouse testnet fault http
  clearinghouse testnet fault http --streams 2000 --idle 20000 --slow 100
  clearinghouse testnet fault http --idle 20000 --per-process 5000`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if streams < 0 || idle < 0 || slow < 0 || probes < 1 || rate < 0 || perProcess < 1 {
				return &usageError{errors.New("want --streams, --idle, --slow, --rate >= 0 and --probes, --per-process >= 1")}
			}
			b, dir, cleanup, err := faultNodeFiles(bin, dir, "clearinghouse-faulthttp-")
			if err != nil {
				return err
			}
			defer cleanup()
			return httpFault(cmd.Context(), a.stdout, b, dir, streams, idle, slow, perProcess, probes, rate, maxP99, maxRSS)
		},
	}
	cmd.Flags().IntVar(&streams, "streams", 2000, "event streams that never read")
	cmd.Flags().IntVar(&idle, "idle", 15000, "connections that never send a request")
	cmd.Flags().IntVar(&slow, "slow", 100, "requests whose body stalls")
	cmd.Flags().IntVar(&perProcess, "per-process", 10000, "connections per client process")
	cmd.Flags().IntVar(&probes, "probes", 200, "GET /status probes")
	cmd.Flags().IntVar(&rate, "rate", 50, "records published per second during the probes (0: none)")
	cmd.Flags().DurationVar(&maxP99, "max-p99", 100*time.Millisecond, "largest acceptable p99 of the probes")
	cmd.Flags().IntVar(&maxRSS, "max-rss", 256, "largest acceptable peak RSS of the node, MiB")
	cmd.Flags().StringVar(&dir, "dir", "", "data directory of the node (default: a temporary one, removed after)")
	cmd.Flags().StringVar(&bin, "binary", "", "clearinghouse binary to run, node and client processes (default: this one)")
	return cmd
}

// raiseFileLimit raises the soft limit of open files to the hard one.
func raiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	l.Cur = l.Max
	return l.Cur, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
}

// procMemory returns VmRSS and VmHWM of pid, in KiB.
func procMemory(pid int) (rss, hwm int, err error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.Lines(string(raw)) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "VmRSS:":
			rss = v
		case "VmHWM:":
			hwm = v
		}
	}
	return rss, hwm, nil
}

// fdTableSize returns FDSize of pid: the slots of its file descriptor
// table, which grows (by powers of two) to hold the highest descriptor it
// opens and never shrinks, so it bounds the files it ever had open at once.
func fdTableSize(pid int) (int, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "FDSize:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, errors.New("no FDSize in /proc/PID/status")
}

// openFiles returns the number of open files of pid. (Listing 4,000
// descriptors takes about 4 ms of CPU.)
func openFiles(pid int) (int, error) {
	d, err := os.Open(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	return len(names), err
}

// metricValue returns the sum of the samples of a metric in /metrics whose
// line contains label.
func metricValue(ctx context.Context, cl *http.Client, base, name, label string) float64 {
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	resp, err := cl.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name) && strings.Contains(line, label) {
			v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			sum += v
		}
	}
	return sum
}

// clientFileSlack is the open files a client process needs besides its
// connections.
const clientFileSlack = 256

func httpFault(ctx context.Context, out io.Writer, bin, dir string, streams, idle, slow, perProcess, probes, rate int, maxP99 time.Duration, maxRSS int) error {
	limit, err := raiseFileLimit()
	if err != nil {
		return fmt.Errorf("raise the open files limit: %w", err)
	}
	// The client processes hold the connections, at most perProcess each;
	// the node holds at most its cap (4,096 by default).
	if per := min(perProcess, streams+idle+slow); uint64(per)+clientFileSlack > limit {
		return &usageError{fmt.Errorf("%d connections per client process need about %d open files, the limit is %d (lower --per-process)", per, uint64(per)+clientFileSlack, limit)}
	}
	token, err := prepareFaultDir(dir, faultIssues(1))
	if err != nil {
		return err
	}
	f := &faultNode{bin: bin, dir: dir, token: token}
	if err := f.start(ctx); err != nil {
		return err
	}
	defer f.kill()
	pid := f.cmd.Process.Pid
	addr := strings.TrimPrefix(f.api, "http://")
	rss0, _, _ := procMemory(pid)

	// The node's open files, sampled from before the first connection to
	// after the last probe (every 100 ms, so that the sampling takes a few
	// per cent of a core): it closes connections over its cap at once, so
	// they stay near the cap however many the clients open. Its fd table
	// size bounds them between the samples.
	var maxFiles atomic.Int64
	sctx, stopSampler := context.WithCancel(ctx)
	var sampler sync.WaitGroup
	sampler.Go(func() {
		every := time.NewTicker(100 * time.Millisecond)
		defer every.Stop()
		for {
			if n, err := openFiles(pid); err == nil && int64(n) > maxFiles.Load() {
				maxFiles.Store(int64(n))
			}
			select {
			case <-every.C:
			case <-sctx.Done():
				return
			}
		}
	})
	defer func() {
		stopSampler()
		sampler.Wait()
	}()

	begin := time.Now()
	plans := planClients(addr, token, streams, slow, idle, perProcess)
	clients, dialFailed, err := startClients(ctx, bin, plans)
	if err != nil {
		return err
	}
	defer stopClients(clients)
	opened := time.Since(begin)

	// One writer gives the streams something to fall behind on.
	wctx, stopWriter := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stopWriter()
		wg.Wait()
	}()
	published, refused := 0, 0
	var firstErr error
	wg.Go(func() {
		if rate == 0 {
			return
		}
		cl := &http.Client{Timeout: 10 * time.Second}
		every := time.NewTicker(time.Second / time.Duration(rate))
		defer every.Stop()
		for i := 0; wctx.Err() == nil; i++ {
			select {
			case <-every.C:
			case <-wctx.Done():
				return
			}
			if _, err := f.publish(wctx, cl, protocol.IssueTopic("fault"), i); err == nil {
				published++
			} else if wctx.Err() == nil {
				refused++
				if firstErr == nil {
					firstErr = err
				}
			}
		}
	})
	// Probes are paced, one every 10 ms, so that the load runs meanwhile.
	pace := time.NewTicker(10 * time.Millisecond)
	defer pace.Stop()
	cl := &http.Client{Timeout: 5 * time.Second}
	var lat []time.Duration
	failed := 0
	for range probes {
		select {
		case <-pace.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		start := time.Now()
		req, _ := http.NewRequestWithContext(ctx, "GET", f.api+"/api/v1/status", nil)
		resp, err := cl.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		if err != nil {
			failed++
			continue
		}
		lat = append(lat, time.Since(start))
	}
	stopWriter()
	wg.Wait()
	stopSampler()
	sampler.Wait()
	rss, hwm, err := procMemory(pid)
	if err != nil {
		return err
	}
	fdSize, err := fdTableSize(pid)
	if err != nil {
		return err
	}
	behind := metricValue(ctx, cl, f.api, "clearinghouse_api_event_streams_dropped_total", `reason="behind"`)
	capped := metricValue(ctx, cl, f.api, "clearinghouse_api_event_streams_dropped_total", `reason="cap"`)
	shed := metricValue(ctx, cl, f.api, "clearinghouse_api_conns_dropped_total", "")
	slices.Sort(lat)
	pct := func(p int) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, len(lat)*p/100)]
	}
	fmt.Fprintf(out, "opened %d streams, %d slow bodies, %d idle connections in %v (%d failed to open)\n",
		streams, slow, idle, opened.Round(time.Millisecond), dialFailed)
	fmt.Fprintf(out, "published %d records during the probes (%d/s asked), %d refused", published, rate, refused)
	if firstErr != nil {
		fmt.Fprintf(out, " (first: %v)", firstErr)
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "status probes: %d ok, %d failed; p50 %v, p99 %v, max %v\n",
		len(lat), failed, pct(50).Round(10*time.Microsecond), pct(99).Round(10*time.Microsecond), pct(100).Round(10*time.Microsecond))
	fmt.Fprintf(out, "node RSS: %d MiB before, %d MiB after, peak %d MiB\n", rss0>>10, rss>>10, hwm>>10)
	fmt.Fprintf(out, "node open files: at most %d (sampled every 100 ms), fd table %d slots; connections held by %d client processes\n", maxFiles.Load(), fdSize, len(clients))
	fmt.Fprintf(out, "server dropped: %.0f streams behind, %.0f streams over the cap, %.0f connections over the cap\n", behind, capped, shed)
	var fails []string
	if failed > 0 {
		fails = append(fails, fmt.Sprintf("%d probes failed", failed))
	}
	if p := pct(99); p > maxP99 {
		fails = append(fails, fmt.Sprintf("p99 %v > %v", p, maxP99))
	}
	if hwm>>10 > maxRSS {
		fails = append(fails, fmt.Sprintf("peak RSS %d MiB > %d MiB", hwm>>10, maxRSS))
	}
	if len(fails) > 0 {
		return fmt.Errorf("%w: %s", ErrFaultFailed, strings.Join(fails, "; "))
	}
	return nil
}

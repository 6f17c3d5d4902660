package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/clearinghouse-net/clearinghouse/config"
	"github.com/clearinghouse-net/clearinghouse/internal/testports"
	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// The fault harness: scenarios that attack real nodes the way the
// hardening review did (issue 17) and print the figures that decide them.
// docs/operations.md, "Fault harness", describes each.

// ErrFaultFailed is returned by a fault scenario whose deciding figures
// are out of bounds (records lost, a deadline missed).
var ErrFaultFailed = errors.New("fault scenario failed")

func newFaultCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fault",
		Short: "Run fault and attack scenarios against real nodes",
		Long: `Fault runs one scenario of the project's fault harness against real nodes on
loopback and prints the figures that decide it. It exits with status 1 if the
scenario fails (records lost, a bound exceeded).

  killnine   kill -9 a node process under API write load, N cycles; every
             acknowledged record must be found after the restart
  http       event streams that never read, idle connections and slow bodies
             against a node process; GET /status must keep answering
  sync       a partition heal with a stalling and a fake-id sync peer
             connected; the sets must converge and both peers be penalised
  pending    a flood of non-members' records naming dependencies nobody
             has; the pending set must stay bounded, an honest out-of-order
             record be stored, the flooders graylisted, and nothing that
             can never complete survive a restart`,
		Example: `  clearinghouse testnet fault killnine --cycles 20
  clearinghouse testnet fault http --streams 2000 --idle 15000
  clearinghouse testnet fault sync
  clearinghouse testnet fault pending --records 100000`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newKillNineCommand(a), newHTTPFaultCommand(a), newSyncFaultCommand(a), newPendingFaultCommand(a), newHTTPClientsCommand(a))
	return cmd
}

// faultNode is a node process of the fault harness: the real binary, run
// on a data directory of a one-member development federation.
type faultNode struct {
	bin, dir string
	token    string
	cmd      *exec.Cmd
	api      string // http://host:port
	exited   chan error
	log      *os.File
}

// faultIssues names the n issues a fault node follows: fault, fault-2, ...
func faultIssues(n int) []string {
	issues := []string{"fault"}
	for i := 2; i <= n; i++ {
		issues = append(issues, fmt.Sprintf("fault-%d", i))
	}
	return issues
}

// prepareFaultDir makes dir the data directory of a node that listens on
// free loopback ports and follows issues (on its first use only), and
// returns its API token.
func prepareFaultDir(dir string, issues []string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	dd := config.DataDir{Path: dir}
	if _, err := os.Stat(dd.ConfigPath()); errors.Is(err, os.ErrNotExist) {
		// The API needs a fixed port (clients find it in the config, and
		// the node is restarted on it after every kill): a free one below
		// the ephemeral range, so no port-0 listener takes it meanwhile.
		port, err := testports.Free(1)
		if err != nil {
			return "", err
		}
		cfg := "# A node of the fault harness (clearinghouse testnet fault).\n" +
			fmt.Sprintf("[api]\nlisten = \"127.0.0.1:%d\"\n\n", port) +
			"[network]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\n\n" +
			fmt.Sprintf("[topics]\nfollow = [\"%s\"]\n\n[log]\nlevel = \"warn\"\n", strings.Join(issues, `", "`))
		if err := os.WriteFile(dd.ConfigPath(), []byte(cfg), 0o644); err != nil {
			return "", err
		}
	}
	if _, err := config.Init(dir); err != nil {
		return "", err
	}
	return config.LoadToken(dd.TokenPath())
}

// start runs the node process and waits until its API address is printed.
func (f *faultNode) start(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(f.dir, "fault-node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(f.bin, "--data-dir", f.dir, "run")
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", f.bin, err)
	}
	f.cmd, f.log, f.exited = cmd, logf, make(chan error, 1)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "api: "); ok {
				select {
				case addr <- a:
				default:
				}
			}
		}
		f.exited <- cmd.Wait()
	}()
	t := time.NewTimer(60 * time.Second)
	defer t.Stop()
	select {
	case f.api = <-addr:
		return nil
	case err := <-f.exited:
		f.exited <- err
		return fmt.Errorf("node exited before serving its API: %v (log: %s)", err, logf.Name())
	case <-t.C:
		f.kill()
		return errors.New("node did not print its API address within 60 s")
	case <-ctx.Done():
		f.kill()
		return ctx.Err()
	}
}

// kill sends SIGKILL to the node's pid and waits for it to exit.
func (f *faultNode) kill() {
	if f.cmd == nil {
		return
	}
	_ = syscall.Kill(f.cmd.Process.Pid, syscall.SIGKILL)
	<-f.exited
	f.log.Close()
	f.cmd = nil
}

// stop sends SIGTERM to the node's pid and waits for it to exit, or
// kills it after 30 s.
func (f *faultNode) stop() {
	if f.cmd == nil {
		return
	}
	_ = syscall.Kill(f.cmd.Process.Pid, syscall.SIGTERM)
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case <-f.exited:
	case <-t.C:
		_ = syscall.Kill(f.cmd.Process.Pid, syscall.SIGKILL)
		<-f.exited
	}
	f.log.Close()
	f.cmd = nil
}

// faultBinary returns the binary to run: --binary, else this executable.
func faultBinary(flag string) (string, error) {
	if flag != "" {
		return filepath.Abs(flag)
	}
	return os.Executable()
}

// publish posts one statement and returns its CID.
func (f *faultNode) publish(ctx context.Context, cl *http.Client, topic string, i int) (string, error) {
	body, _ := json.Marshal(map[string]any{"kind": protocol.KindStatement, "topic": topic,
		"body": map[string]any{"title": fmt.Sprintf("fault statement %d", i), "text": "Written under kill -9."}})
	req, err := http.NewRequestWithContext(ctx, "POST", f.api+"/api/v1/records", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+f.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := cl.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(raw))
	}
	var v struct {
		CID string `json:"cid"`
	}
	if err := json.Unmarshal(raw, &v); err != nil || v.CID == "" {
		return "", fmt.Errorf("201 without a CID: %s", raw)
	}
	return v.CID, nil
}

// has reports whether the node serves the record c.
func (f *faultNode) has(ctx context.Context, cl *http.Client, c string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", f.api+"/api/v1/records/"+c, nil)
	if err != nil {
		return false, err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("GET record %s: status %d", c, resp.StatusCode)
}

func newKillNineCommand(a *app) *cobra.Command {
	var (
		cycles, writers  int
		issues           int
		minLoad, maxLoad time.Duration
		dir, bin         string
		seed             uint64
	)
	cmd := &cobra.Command{
		Use:   "killnine",
		Short: "Kill -9 a node under API write load, N cycles; count acknowledged records lost",
		Long: `Killnine starts a node process (this binary, or --binary) on a data directory
of its own, publishes statements through POST /api/v1/records from --writers
concurrent clients, and a random time between --min-load and --max-load after
the cycle's first acknowledged record kills the process with SIGKILL (by pid).
The wait for that first record is part of the start (the first write to an
issue loads that issue's history, see docs/operations.md) and is printed per
cycle as "first write"; a cycle with no acknowledged record within 2 minutes
fails the run. It restarts the node on the same
data directory and checks that every record acknowledged with 201 in the cycle
before is served, and repeats for --cycles cycles. At the end it restarts the
node once more and checks every record acknowledged in the whole run.

It prints one line per cycle and a summary; it fails if any acknowledged
record is lost.`,
		Example: `  clearinghouse testnet fault killnine --cycles 20
  clearinghouse testnet fault killnine --cycles 1000 --issues 50 --dir /tmp/ch-kill9`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cycles < 1 || writers < 1 || issues < 1 || minLoad <= 0 || maxLoad < minLoad {
				return &usageError{errors.New("want --cycles >= 1, --writers >= 1, --issues >= 1 and 0 < --min-load <= --max-load")}
			}
			b, dir, cleanup, err := faultNodeFiles(bin, dir, "clearinghouse-killnine-")
			if err != nil {
				return err
			}
			defer cleanup()
			return killNine(cmd.Context(), a.stdout, b, dir, cycles, writers, issues, minLoad, maxLoad, seed)
		},
	}
	cmd.Flags().IntVar(&cycles, "cycles", 20, "kill -9 cycles")
	cmd.Flags().IntVar(&writers, "writers", 4, "concurrent API clients publishing")
	cmd.Flags().IntVar(&issues, "issues", 1, "issues the cycles write to in turn (fault, fault-2, ...): the first write of a cycle loads its issue's history, so long runs spread it")
	cmd.Flags().DurationVar(&minLoad, "min-load", 200*time.Millisecond, "least write load before a kill")
	cmd.Flags().DurationVar(&maxLoad, "max-load", 800*time.Millisecond, "most write load before a kill")
	cmd.Flags().StringVar(&dir, "dir", "", "data directory of the node (default: a temporary one, removed after)")
	cmd.Flags().StringVar(&bin, "binary", "", "clearinghouse binary to run (default: this one)")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "seed of the random load times")
	return cmd
}

// faultNodeFiles returns the binary a scenario's node runs (bin, or this
// one) and its data directory: dir, or a temporary one named by prefix
// that cleanup removes.
func faultNodeFiles(bin, dir, prefix string) (binary, dataDir string, cleanup func(), err error) {
	if binary, err = faultBinary(bin); err != nil {
		return "", "", nil, err
	}
	if dir != "" {
		return binary, dir, func() {}, nil
	}
	if dir, err = os.MkdirTemp("", prefix); err != nil {
		return "", "", nil, err
	}
	return binary, dir, func() { _ = os.RemoveAll(dir) }, nil
}

// firstWriteLimit bounds the wait for a cycle's first acknowledged record.
const firstWriteLimit = 2 * time.Minute

// killNine runs the kill -9 scenario.
func killNine(ctx context.Context, out io.Writer, bin, dir string, cycles, writers, issues int, minLoad, maxLoad time.Duration, seed uint64) error {
	names := faultIssues(issues)
	token, err := prepareFaultDir(dir, names)
	if err != nil {
		return err
	}
	f := &faultNode{bin: bin, dir: dir, token: token}
	defer f.kill()
	rng := rand.New(rand.NewPCG(seed, 0))
	cl := &http.Client{Timeout: 30 * time.Second}
	var all, prev []string
	var lost []string
	var firstWrites []time.Duration
	errorsSeen := 0
	start := time.Now()
	check := func(cids []string) (found int, err error) {
		for _, c := range cids {
			ok, err := f.has(ctx, cl, c)
			if err != nil {
				return found, err
			}
			if ok {
				found++
			} else {
				lost = append(lost, c)
			}
		}
		return found, nil
	}
	for cycle := 1; cycle <= cycles; cycle++ {
		if err := f.start(ctx); err != nil {
			return fmt.Errorf("cycle %d: %w", cycle, err)
		}
		found, err := check(prev)
		if err != nil {
			return fmt.Errorf("cycle %d: %w", cycle, err)
		}
		load := minLoad + time.Duration(rng.Int64N(int64(maxLoad-minLoad)+1))
		topic := protocol.IssueTopic(names[(cycle-1)%len(names)])
		var (
			mu       sync.Mutex
			acked    []string
			wg       sync.WaitGroup
			killed   atomic.Bool
			firstAck = make(chan struct{})
			ackOnce  sync.Once
		)
		started := time.Now()
		wctx, cancel := context.WithCancel(ctx)
		for w := range writers {
			wg.Go(func() {
				for i := 0; wctx.Err() == nil; i++ {
					c, err := f.publish(wctx, cl, topic, cycle*1_000_000+w*100_000+i)
					if err != nil {
						// After the kill every request fails; before it, a
						// refusal is counted but does not stop the load.
						if killed.Load() {
							return
						}
						mu.Lock()
						errorsSeen++
						mu.Unlock()
						continue
					}
					mu.Lock()
					acked = append(acked, c)
					mu.Unlock()
					ackOnce.Do(func() { close(firstAck) })
				}
			})
		}
		// The load runs from the first acknowledged record, so that every
		// cycle kills the node under write load however long the start is.
		var firstWrite time.Duration
		noAck := time.NewTimer(firstWriteLimit)
		select {
		case <-firstAck:
			firstWrite = time.Since(started)
			noAck.Stop()
			timer := time.NewTimer(load)
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
		case <-noAck.C:
			killed.Store(true)
			f.kill()
			cancel()
			wg.Wait()
			return fmt.Errorf("%w: cycle %d: no record acknowledged within %v of the start (%d requests refused)",
				ErrFaultFailed, cycle, firstWriteLimit, errorsSeen)
		case <-ctx.Done():
		}
		killed.Store(true)
		f.kill() // requests in flight now fail: not acknowledged
		cancel()
		wg.Wait()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		firstWrites = append(firstWrites, firstWrite)
		fmt.Fprintf(out, "cycle %d: first write %v, load %v, acknowledged %d; found %d of the %d acknowledged in the cycle before\n",
			cycle, firstWrite.Round(time.Millisecond), load.Round(time.Millisecond), len(acked), found, len(prev))
		all = append(all, acked...)
		prev = acked
	}
	// The last cycle's records, then every record of the run.
	if err := f.start(ctx); err != nil {
		return err
	}
	lost = nil
	found, err := check(all)
	if err != nil {
		return err
	}
	f.stop()
	fmt.Fprintf(out, "killnine: %d cycles in %v, %d acknowledged, %d found, %d lost (requests refused before a kill: %d)\n",
		cycles, time.Since(start).Round(time.Millisecond), len(all), found, len(lost), errorsSeen)
	slices.Sort(firstWrites)
	fmt.Fprintf(out, "first write after a start: median %v, max %v\n",
		firstWrites[len(firstWrites)/2].Round(time.Millisecond), firstWrites[len(firstWrites)-1].Round(time.Millisecond))
	if len(lost) > 0 {
		return fmt.Errorf("%w: %d acknowledged records lost, first %s", ErrFaultFailed, len(lost), lost[0])
	}
	if len(all) == 0 {
		return fmt.Errorf("%w: no record was acknowledged", ErrFaultFailed)
	}
	return nil
}

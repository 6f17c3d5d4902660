package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// The client side of `testnet fault http` runs in child processes: each
// connection takes a file descriptor, and one process's RLIMIT_NOFILE
// (20,000 hard on the development machine, not raisable) is below the
// full figures. The harness re-executes its own binary with the hidden
// command `testnet fault http-clients` once per --per-process connections;
// a child reads its plan as one JSON line on stdin, opens the connections,
// answers with one JSON line on stdout, and holds them until its stdin
// ends: when the harness closes it, or exits in any way, even by SIGKILL.

// clientPlan is what one client process opens against addr, in this
// order: streams, slow bodies, idle connections.
type clientPlan struct {
	Addr    string `json:"addr"`
	Token   string `json:"token"`
	Streams int    `json:"streams"`
	Slow    int    `json:"slow"`
	Idle    int    `json:"idle"`
}

func (p clientPlan) conns() int { return p.Streams + p.Slow + p.Idle }

// clientReport is a client process's answer once its connections are
// open: how many failed to open, or why it could not start.
type clientReport struct {
	Failed int    `json:"failed"`
	Err    string `json:"err,omitempty"`
}

// planClients splits the connections over processes of at most per
// connections each, in the order they are opened: streams first, then the
// slow bodies, then the idle connections.
func planClients(addr, token string, streams, slow, idle, per int) []clientPlan {
	var plans []clientPlan
	left := []*int{&streams, &slow, &idle}
	for streams+slow+idle > 0 {
		p := clientPlan{Addr: addr, Token: token}
		room := per
		for i, n := range []*int{&p.Streams, &p.Slow, &p.Idle} {
			take := min(room, *left[i])
			*n, *left[i], room = take, *left[i]-take, room-take
		}
		plans = append(plans, p)
	}
	return plans
}

// clientProc is one running client process.
type clientProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	exited chan error // receives cmd.Wait's result once
}

// startClients starts one client process per plan, one after the other
// (so the connections open in the plans' order), and returns them with
// the number of connections that failed to open. On error the processes
// already started are stopped. The caller must call stopClients.
func startClients(ctx context.Context, bin string, plans []clientPlan) ([]*clientProc, int, error) {
	var procs []*clientProc
	failed := 0
	for i, p := range plans {
		c, rep, err := startClient(ctx, bin, p)
		if err != nil {
			stopClients(procs)
			return nil, 0, fmt.Errorf("client process %d of %d: %w", i+1, len(plans), err)
		}
		procs = append(procs, c)
		failed += rep.Failed
	}
	return procs, failed, nil
}

func startClient(ctx context.Context, bin string, p clientPlan) (*clientProc, clientReport, error) {
	cmd := exec.Command(bin, "testnet", "fault", "http-clients")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, clientReport{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, clientReport{}, err
	}
	if err := cmd.Start(); err != nil {
		return nil, clientReport{}, fmt.Errorf("start %s: %w", bin, err)
	}
	c := &clientProc{cmd: cmd, stdin: stdin, exited: make(chan error, 1)}
	reports := make(chan clientReport, 1)
	go func() {
		var rep clientReport
		line, err := bufio.NewReader(stdout).ReadBytes('\n')
		if err == nil {
			err = json.Unmarshal(line, &rep)
		}
		if err != nil {
			rep.Err = fmt.Sprintf("no report: %v", err)
		}
		reports <- rep
		// Nothing more is written; drain so the child never blocks.
		_, _ = io.Copy(io.Discard, stdout)
		c.exited <- cmd.Wait()
	}()
	plan, _ := json.Marshal(p)
	if _, err := stdin.Write(append(plan, '\n')); err != nil {
		stopClients([]*clientProc{c})
		return nil, clientReport{}, fmt.Errorf("send the plan: %w", err)
	}
	select {
	case rep := <-reports:
		if rep.Err != "" {
			stopClients([]*clientProc{c})
			return nil, rep, errors.New(rep.Err)
		}
		return c, rep, nil
	case <-ctx.Done():
		stopClients([]*clientProc{c})
		return nil, clientReport{}, ctx.Err()
	}
}

// stopClients closes the client processes' stdin, which makes them close
// their connections and exit, and kills by pid any that has not exited
// within 10 s. It waits for all of them.
func stopClients(procs []*clientProc) {
	for _, c := range procs {
		c.stdin.Close()
	}
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for _, c := range procs {
		select {
		case <-c.exited:
			continue
		case <-deadline.C:
		}
		_ = syscall.Kill(c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.exited
	}
}

func newHTTPClientsCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "http-clients",
		Short: "Open and hold the connections of one client process of the http scenario",
		Long: `Http-clients is a client process of ` + "`testnet fault http`" + `, which starts it; it
is not meant to be run by hand. It reads one JSON line from stdin (addr,
token, and the counts streams, slow, idle), opens that many event streams that
never read, POST bodies that stall and idle connections against addr, prints
one JSON line (failed: how many did not open; err: why it could not start) and
holds the connections until stdin ends.`,
		Example: `  echo '{"addr":"127.0.0.1:8080","idle":100}' | clearinghouse testnet fault http-clients`,
		Hidden:  true,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return httpClients(cmd.Context(), cmd.InOrStdin(), a.stdout)
		},
	}
}

// httpClients is a client process of the http scenario: it reads a
// clientPlan line from in, opens its connections, writes a clientReport
// line to out, and holds the connections until in ends or ctx is done.
func httpClients(ctx context.Context, in io.Reader, out io.Writer) error {
	report := func(r clientReport) error {
		raw, _ := json.Marshal(r)
		_, err := out.Write(append(raw, '\n'))
		return err
	}
	r := bufio.NewReader(in)
	line, err := r.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("read the plan: %w", err)
	}
	var p clientPlan
	if err := json.Unmarshal(line, &p); err != nil {
		return report(clientReport{Err: fmt.Sprintf("bad plan: %v", err)})
	}
	limit, err := raiseFileLimit()
	if err != nil {
		return report(clientReport{Err: fmt.Sprintf("raise the open files limit: %v", err)})
	}
	if need := uint64(p.conns()) + clientFileSlack; need > limit {
		return report(clientReport{Err: fmt.Sprintf("%d connections need about %d open files, the limit is %d", p.conns(), need, limit)})
	}

	conns := make([]net.Conn, 0, p.conns())
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	dialer := net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	open := func(req string) error {
		c, err := dialer.DialContext(ctx, "tcp", p.Addr)
		if err != nil {
			return err
		}
		conns = append(conns, c)
		if req != "" {
			_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, err = c.Write([]byte(req))
		}
		return err
	}
	failed := 0
	for range p.Streams {
		if open("GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n") != nil {
			failed++
		}
	}
	for range p.Slow {
		if open("POST /api/v1/records HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+p.Token+"\r\nContent-Length: 100000\r\n\r\n{") != nil {
			failed++
		}
	}
	for range p.Idle {
		if open("") != nil {
			failed++
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := report(clientReport{Failed: failed}); err != nil {
		return err
	}
	held := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, r)
		close(held)
	}()
	select {
	case <-held:
	case <-ctx.Done():
	}
	return nil
}

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// killNineCycles is how many kill -9 cycles CI runs (issue 17, acceptance
// 6); `clearinghouse testnet fault killnine --cycles 1000` runs the long
// campaign on demand.
const killNineCycles = 20

// TestFaultKillNine builds the real binary and runs its kill -9 harness as
// a subprocess: the harness starts a node process, writes through the API,
// kills the node by pid with SIGKILL, restarts it, and must find every
// record it was acknowledged.
func TestFaultKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills node processes")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "clearinghouse")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.CommandContext(ctx, bin, "testnet", "fault", "killnine",
		"--cycles", strconv.Itoa(killNineCycles), "--dir", filepath.Join(dir, "node"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("killnine: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	m := regexp.MustCompile(`killnine: (\d+) cycles in \S+, (\d+) acknowledged, (\d+) found, (\d+) lost`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no summary line:\n%s", out)
	}
	cycles, _ := strconv.Atoi(string(m[1]))
	acked, _ := strconv.Atoi(string(m[2]))
	found, _ := strconv.Atoi(string(m[3]))
	lost, _ := strconv.Atoi(string(m[4]))
	if cycles != killNineCycles || acked < killNineCycles || found != acked || lost != 0 {
		t.Fatalf("cycles %d, acknowledged %d, found %d, lost %d", cycles, acked, found, lost)
	}
	// No node process crashed on the way back from a kill.
	logs, err := os.ReadFile(filepath.Join(dir, "node", "fault-node.log"))
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`(?m)^(panic|fatal error):`).Match(logs) {
		t.Fatalf("a node process crashed:\n%s", logs)
	}
}

// TestFaultHTTPClientProcesses builds the real binary and runs its http
// harness reduced, with the connections split over three client
// processes (--per-process 200 of 500): every connection opens, the
// probes answer, the node's open files stay bounded, and no client or
// node process is left once the harness exits.
func TestFaultHTTPClientProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs node and client processes")
	}
	bin := buildBinary(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "testnet", "fault", "http", "--streams", "50", "--slow", "10",
		"--idle", "440", "--per-process", "200", "--probes", "50", "--rate", "20")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("http: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	for _, want := range []string{
		`opened 50 streams, 10 slow bodies, 440 idle connections in \S+ \(0 failed to open\)`,
		`status probes: 50 ok, 0 failed`,
		`connections held by 3 client processes`,
	} {
		if !regexp.MustCompile(want).Match(out) {
			t.Errorf("report lacks %q", want)
		}
	}
	m := regexp.MustCompile(`node open files: at most (\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no open files line")
	}
	// 500 connections under the cap of 4,096: the node holds them all,
	// plus its own files (store, listeners, libp2p), not more.
	if n, _ := strconv.Atoi(string(m[1])); n < 500 || n > 500+256 {
		t.Errorf("node open files at most %d, want 500..756", n)
	}
	if left := processesOf(t, bin); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
}

// TestFaultHTTPInterrupt interrupts the http harness (SIGINT, as Ctrl-C
// does, to the harness's pid alone) once its second client process runs:
// it stops its client processes and its node, and leaves none behind.
func TestFaultHTTPInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs node and client processes")
	}
	bin := buildBinary(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "testnet", "fault", "http", "--streams", "0", "--slow", "0",
		"--idle", "2000", "--per-process", "500", "--probes", "100000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Wait until the second client process is started: the first has
	// opened its connections.
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for clients := 0; clients < 2; {
		select {
		case err := <-exited:
			t.Fatalf("harness exited before its second client process: %v", err)
		case <-poll.C:
		}
		clients = 0
		for _, args := range processesOf(t, bin) {
			if strings.Contains(args, "http-clients") {
				clients++
			}
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err == nil {
		t.Fatal("interrupted harness exited with status 0")
	}
	if left := processesOf(t, bin); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
}

// buildBinary builds the command into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "clearinghouse")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// processesOf returns the command lines of the running processes whose
// program is bin, keyed by pid.
func processesOf(t *testing.T, bin string) map[int]string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	procs := map[int]string{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue // exited meanwhile
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if args[0] == bin {
			procs[pid] = strings.Join(args, " ")
		}
	}
	return procs
}

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clearinghouse-net/clearinghouse/internal/testports"
)

// TestReadmeTour runs the five-minute tour of README.md exactly as written
// (the shell block between the tour markers), with two substitutions that
// keep it off shared resources: its data directory becomes a temporary one
// and the API ports are free ones. It builds the real binary and drives a
// real testnet process, as a newcomer would.
func TestReadmeTour(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a testnet process")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "<!-- tour:begin -->\n```sh\n")
	if !ok {
		t.Fatal("README.md has no tour block")
	}
	script, _, ok := strings.Cut(rest, "```\n<!-- tour:end -->")
	if !ok {
		t.Fatal("README.md tour block is not closed")
	}
	dir := t.TempDir()
	port := freePorts(t, 4)
	script = strings.ReplaceAll(script, "/tmp/ch-tour", dir)
	script = strings.Replace(script, "testnet --dir "+dir, fmt.Sprintf("testnet --dir %s --api-port %d", dir, port), 1)
	script = strings.ReplaceAll(script, "./bin/clearinghouse", filepath.Join(dir, "bin", "clearinghouse"))
	script = strings.ReplaceAll(script, "-o bin/clearinghouse", "-o "+filepath.Join(dir, "bin", "clearinghouse"))

	// The tour runs twice on the same directory, as a newcomer who tries
	// it again would: the second run continues the first testnet.
	for run := 1; run <= 2; run++ {
		out := runTour(t, root, dir, script, run)
		for _, want := range []string{"ready", "issue privacy", "process.notice", "process.stage",
			"process.feedback", "process.endorse", "stage:   consultation", "P1 stakeholder groups",
			"P4 no group or region decides alone", "node 0 and node 3: identical audits", "genesis"} {
			if !strings.Contains(out, want) {
				t.Fatalf("tour run %d output lacks %q:\n%s", run, want, out)
			}
		}
		if want := map[int]string{1: "opened issue privacy", 2: "issue privacy is already open"}[run]; !strings.Contains(out, want) {
			t.Fatalf("tour run %d output lacks %q:\n%s", run, want, out)
		}
	}
}

// runTour runs the tour script in bash and returns its output.
func runTour(t *testing.T, root, dir, script string, run int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", "set -euo pipefail\n"+script)
	cmd.Dir = root
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Output goes to a file, not a pipe: a process the tour leaves behind
	// must not keep Run waiting for the pipe to close.
	logPath := filepath.Join(dir, fmt.Sprintf("tour-%d.log", run))
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	err = cmd.Run()
	// Whatever happened, nothing the tour started may outlive the test.
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	raw, _ := os.ReadFile(logPath)
	if err != nil {
		t.Fatalf("tour run %d failed: %v\n%s", run, err, raw)
	}
	return string(raw)
}

// freePorts returns a port p such that p .. p+n-1 are free on loopback
// (see testports.Free).
func freePorts(t *testing.T, n int) int {
	t.Helper()
	p, err := testports.Free(n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMain runs the tour with the default ports held busy, as they are
// while a node or another tour runs on this machine: the tour must not
// depend on them.
func TestMain(m *testing.M) {
	release := testports.Hold()
	code := m.Run()
	release()
	os.Exit(code)
}

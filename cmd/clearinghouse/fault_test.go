package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
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

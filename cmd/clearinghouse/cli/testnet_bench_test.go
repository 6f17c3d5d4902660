package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTestnetBench runs the benchmark command on a tiny network and checks
// that it prints both sides with their ratio, all records delivered.
func TestTestnetBench(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 6 hosts and 3 nodes")
	}
	prof := filepath.Join(t.TempDir(), "bench")
	r := runCLI(t, "testnet", "bench", "--nodes", "3", "--degree", "2", "--rate", "20", "--duration", "500ms",
		"--idle", "200ms", "--in-memory", "--size", "100", "--timeline", "--cpuprofile", prof).mustSucceed(t)
	for _, side := range []string{"gossipsub", "clearinghouse"} {
		if fi, err := os.Stat(prof + "-" + side + ".pprof"); err != nil || fi.Size() == 0 {
			t.Errorf("CPU profile of %s: %v", side, err)
		}
	}
	for _, want := range []string{"gossipsub", "clearinghouse", "publish -> on all, p99", "idle CPU, all nodes", "hop: in node, mean", "receipt -> stored, mean", "clearinghouse p50 / max", "+0s", "machine: steal"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if got := strings.Count(r.stdout, "100.00%"); got != 2 {
		t.Errorf("want 100.00%% delivery on both sides, output:\n%s", r.stdout)
	}
}

// TestTestnetBenchFlags: sizes out of range are usage errors.
func TestTestnetBenchFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--runs", "0"},
		{"--nodes", "1"},
		{"--size", "0"},
		{"--rate", "-1"},
		{"--degree", "0"},
		{"--sync-interval", "0s"},
		{"--disk", "--in-memory"},
		{"--disk", "--rate", "0"},
	} {
		r := runCLI(t, append([]string{"testnet", "bench"}, args...)...)
		if r.code == 0 {
			t.Errorf("%v: exit 0, want an error", args)
		}
	}
}

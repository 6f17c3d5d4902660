package cli

import (
	"regexp"
	"strings"
	"testing"
)

// TestFaultSync runs the sync attack scenario in process, with budgets
// short enough for a test: the sets converge and both hostile peers are
// penalised on every node, and the report says so.
func TestFaultSync(t *testing.T) {
	r := runCLI(t, "testnet", "fault", "sync", "--records", "20", "--request-timeout", "1s",
		"--session-budget", "3s", "--fake-ids", "20000").mustSucceed(t)
	for _, want := range []string{
		`every node holds every record \S+ after the heal`,
		`stalling peer: penalised on every node`,
		`fake-ids peer: penalised on every node .* [1-9]\d* ids claimed`,
		`penalties over all nodes: stall \d+, session-budget \d+, fake-ids [1-9]`,
	} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("report lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestFaultPending runs the pending-flood scenario in process, reduced
// (2,000 records from two hostile peers): the report shows the bound
// held, the honest record stored, both flooders graylisted and nothing
// past the TTL kept across a restart.
func TestFaultPending(t *testing.T) {
	r := runCLI(t, "testnet", "fault", "pending", "--records", "2000", "--peers", "2").mustSucceed(t)
	for _, want := range []string{
		`honest record gossiped before its parent: stored`,
		`hostile peer 0: gossip score -\d+ \(graylist threshold -1000\)`,
		`hostile peer 1: gossip score -\d+ \(graylist threshold -1000\)`,
		`pending: at most \d+ records waiting .*; bound 129 `,
		`refusals: unknown-author [1-9]`,
		`after a restart past the pending TTL \(10m0s\): nothing`,
	} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("report lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestFaultUsage: bad scenario flags are usage errors: exit 2 with the
// command's usage.
func TestFaultUsage(t *testing.T) {
	for _, args := range [][]string{
		{"testnet", "fault", "killnine", "--cycles", "0"},
		{"testnet", "fault", "sync", "--attack", "nonsense"},
		{"testnet", "fault", "http", "--probes", "0"},
		{"testnet", "fault", "pending", "--peers", "0"},
	} {
		if r := runCLI(t, args...); r.code != 2 || !strings.Contains(r.stderr, "Usage:") {
			t.Errorf("%v: exit %d, want 2 with the usage:\n%s", args, r.code, r.stderr)
		}
	}
}

package cli

import (
	"regexp"
	"slices"
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
		{"testnet", "fault", "http", "--per-process", "0"},
		{"testnet", "fault", "pending", "--peers", "0"},
	} {
		if r := runCLI(t, args...); r.code != 2 || !strings.Contains(r.stderr, "Usage:") {
			t.Errorf("%v: exit %d, want 2 with the usage:\n%s", args, r.code, r.stderr)
		}
	}
}

// TestPlanClients: the http scenario's connections are split over client
// processes of at most --per-process each, in the order they are opened
// (streams, slow bodies, idle), none lost and none empty.
func TestPlanClients(t *testing.T) {
	for _, tc := range []struct {
		streams, slow, idle, per int
		want                     [][3]int
	}{
		{2000, 100, 20000, 10000, [][3]int{{2000, 100, 7900}, {0, 0, 10000}, {0, 0, 2100}}},
		{50, 10, 440, 200, [][3]int{{50, 10, 140}, {0, 0, 200}, {0, 0, 100}}},
		{300, 0, 0, 100, [][3]int{{100, 0, 0}, {100, 0, 0}, {100, 0, 0}}},
		{10, 20, 0, 15, [][3]int{{10, 5, 0}, {0, 15, 0}}},
		{1, 1, 1, 10000, [][3]int{{1, 1, 1}}},
		{0, 0, 0, 10, nil},
	} {
		plans := planClients("127.0.0.1:1", "tok", tc.streams, tc.slow, tc.idle, tc.per)
		var got [][3]int
		for _, p := range plans {
			if p.Addr != "127.0.0.1:1" || p.Token != "tok" {
				t.Errorf("plan %+v lost the address or token", p)
			}
			got = append(got, [3]int{p.Streams, p.Slow, p.Idle})
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("planClients(%d, %d, %d, per %d) = %v, want %v", tc.streams, tc.slow, tc.idle, tc.per, got, tc.want)
		}
	}
}

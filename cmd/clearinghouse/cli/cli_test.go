package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/clearinghouse-net/clearinghouse/config"
)

// result is what a command printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

// runCLI runs the command line in-process through Main.
func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Main(t.Context(), args, &stdout, &stderr)
	return result{stdout.String(), stderr.String(), code}
}

// mustSucceed fails the test unless r has exit status 0.
func (r result) mustSucceed(t *testing.T) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	return r
}

// field returns the value after "name: " on the first such line of out.
func field(t *testing.T, out, name string) string {
	t.Helper()
	for line := range strings.SplitSeq(out, "\n") {
		if v, ok := strings.CutPrefix(line, name+": "); ok {
			return v
		}
	}
	t.Fatalf("no %q line in output:\n%s", name, out)
	return ""
}

var peerIDPattern = regexp.MustCompile(`^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$`)

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	dd := config.DataDir{Path: dir}

	r := runCLI(t, "--data-dir", dir, "init").mustSucceed(t)
	if got := field(t, r.stdout, "data directory"); got != dir {
		t.Errorf("data directory %q, want %q", got, dir)
	}
	id := field(t, r.stdout, "peer id")
	if !peerIDPattern.MatchString(id) {
		t.Errorf("peer id %q is not an ed25519 peer id", id)
	}
	for _, p := range []string{dd.ConfigPath(), dd.KeyPath(), dd.TokenPath()} {
		if !strings.Contains(r.stdout, "created: "+p+"\n") {
			t.Errorf("output does not list %s:\n%s", p, r.stdout)
		}
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
	}

	r = runCLI(t, "--data-dir", dir, "init").mustSucceed(t)
	if !strings.Contains(r.stdout, "already exists") || strings.Contains(r.stdout, "created:") {
		t.Errorf("second init output:\n%s", r.stdout)
	}
	if got := field(t, r.stdout, "peer id"); got != id {
		t.Errorf("second init: peer id %s, want the same %s", got, id)
	}
}

func TestInitFromEnvironment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "env-node")
	t.Setenv(config.EnvDataDir, dir)
	runCLI(t, "init").mustSucceed(t)
	if _, err := os.Stat(config.DataDir{Path: dir}.KeyPath()); err != nil {
		t.Fatal(err)
	}
}

func TestVersion(t *testing.T) {
	want := regexp.MustCompile(`^clearinghouse ` + regexp.QuoteMeta(Version) + ` \(go[0-9][^ ,)]*(, [0-9a-f]{1,12}(-dirty)?)?\)\n$`)
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := runCLI(t, args...).mustSucceed(t)
		if !want.MatchString(r.stdout) {
			t.Errorf("%v printed %q, want %s", args, r.stdout, want)
		}
	}
}

func TestID(t *testing.T) {
	dir := t.TempDir()
	id := field(t, runCLI(t, "--data-dir", dir, "init").mustSucceed(t).stdout, "peer id")

	r := runCLI(t, "--data-dir", dir, "id").mustSucceed(t)
	if got := field(t, r.stdout, "peer id"); got != id {
		t.Errorf("peer id %q, want %q", got, id)
	}
	var addrs []string
	for line := range strings.SplitSeq(r.stdout, "\n") {
		if a, ok := strings.CutPrefix(line, "address: "); ok {
			addrs = append(addrs, a)
		}
	}
	var want []string
	for _, a := range config.DefaultListenAddrs() {
		want = append(want, a+"/p2p/"+id)
	}
	if strings.Join(addrs, " ") != strings.Join(want, " ") {
		t.Errorf("addresses %q, want %q", addrs, want)
	}

	r = runCLI(t, "--data-dir", dir, "id", "--json").mustSucceed(t)
	var got struct {
		ID    string   `json:"id"`
		Addrs []string `json:"addrs"`
	}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decode %q: %v", r.stdout, err)
	}
	if got.ID != id || strings.Join(got.Addrs, " ") != strings.Join(want, " ") {
		t.Errorf("id --json = %+v, want id %s addrs %q", got, id, want)
	}
}

func TestIDFollowsConfig(t *testing.T) {
	dir := t.TempDir()
	runCLI(t, "--data-dir", dir, "init").mustSucceed(t)
	path := config.DataDir{Path: dir}.ConfigPath()
	if err := os.WriteFile(path, []byte("[network]\nlisten = [\"/ip4/192.0.2.1/tcp/9000\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "--data-dir", dir, "id").mustSucceed(t)
	id := field(t, r.stdout, "peer id")
	if got := field(t, r.stdout, "address"); got != "/ip4/192.0.2.1/tcp/9000/p2p/"+id {
		t.Errorf("address %q", got)
	}
}

func TestIDWithoutDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	r := runCLI(t, "--data-dir", dir, "id")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	want := "clearinghouse: data directory " + dir + " does not exist; create it with: clearinghouse --data-dir " + dir + " init\n"
	if r.stderr != want {
		t.Errorf("stderr %q, want %q", r.stderr, want)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Error("id created the data directory")
	}
}

func TestInsecureKeyRefused(t *testing.T) {
	dir := t.TempDir()
	runCLI(t, "--data-dir", dir, "init").mustSucceed(t)
	key := config.DataDir{Path: dir}.KeyPath()
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"id", "run"} {
		r := runCLI(t, "--data-dir", dir, cmd)
		if r.code != 1 || !strings.Contains(r.stderr, "chmod 600 "+key) {
			t.Errorf("%s: exit %d, stderr %q; want 1 and the chmod fix", cmd, r.code, r.stderr)
		}
	}
}

func TestRunMalformedConfig(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"syntax", "[network]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"\nconn_low = 2\n", ":3:1: network.listen: "},
		{"unknown key", "[network]\nlistn = []\n", `:2: unknown key "network.listn"`},
		{"wrong type", "[store]\ncache_mb = \"big\"\n", ":2: store.cache_mb: incompatible types"},
		{"invalid value", "[sync]\ninterval = \"-1s\"\n", ":2: sync.interval: must be > 0"},
		{"api port 0", "[api]\nlisten = \"127.0.0.1:0\"\n", ":2: api.listen: invalid host:port \"127.0.0.1:0\": port must be a number from 1 to 65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			runCLI(t, "--data-dir", dir, "init").mustSucceed(t)
			path := config.DataDir{Path: dir}.ConfigPath()
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			started := false
			var stdout, stderr bytes.Buffer
			a := &app{stdout: &stdout, stderr: &stderr, start: func(context.Context, nodeParams) (runningNode, error) {
				started = true
				return nil, nil
			}}
			code := execute(t.Context(), newRoot(a), []string{"--data-dir", dir, "run"}, &stderr)
			if code != 1 {
				t.Fatalf("exit %d, want 1", code)
			}
			if want := "clearinghouse: config: " + path + tt.want; !strings.HasPrefix(stderr.String(), want) {
				t.Errorf("stderr %q, want it to start with %q", stderr.String(), want)
			}
			if strings.Contains(stderr.String(), "Usage:") {
				t.Error("a config error shows the usage")
			}
			if started {
				t.Error("the node was started")
			}
		})
	}
}

func TestUsageOnCommandLineErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"init", "--bogus"}, "clearinghouse: unknown flag: --bogus\n"},
		{[]string{"--bogus"}, "clearinghouse: unknown flag: --bogus\n"},
		{[]string{"id", "--json=maybe"}, `clearinghouse: invalid argument "maybe" for "--json"`},
		{[]string{"frobnicate"}, "clearinghouse: unknown command \"frobnicate\"\n"},
		{[]string{"versoin"}, `clearinghouse: unknown command "versoin" (did you mean "version"?)` + "\n"},
		{[]string{"version", "extra"}, "clearinghouse: clearinghouse version takes no arguments, got \"extra\"\n"},
		{[]string{"run", "--listen", "127.0.0.1:4001"}, `clearinghouse: --listen "127.0.0.1:4001": invalid multiaddr`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			args := append([]string{"--data-dir", t.TempDir()}, tt.args...)
			r := runCLI(t, args...)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want %d", r.code, exitUsage)
			}
			if !strings.HasPrefix(r.stderr, tt.want) {
				t.Errorf("stderr does not start with %q:\n%s", tt.want, r.stderr)
			}
			if !strings.Contains(r.stderr, "Usage:") {
				t.Errorf("stderr shows no usage:\n%s", r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
		})
	}
}

func TestNoArgumentsPrintsHelp(t *testing.T) {
	r := runCLI(t).mustSucceed(t)
	for _, want := range []string{"Usage:", "Available Commands:", "init", "run", "--data-dir"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("help lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestCommandsDocumented(t *testing.T) {
	var check func(c *cobra.Command)
	check = func(c *cobra.Command) {
		switch c.Name() {
		case "help", "completion": // cobra's own
			return
		}
		if c.Short == "" || c.Long == "" || c.Example == "" {
			t.Errorf("%q lacks Short, Long or Example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			check(sub)
		}
	}
	check(NewRootCommand(&bytes.Buffer{}, &bytes.Buffer{}))
}

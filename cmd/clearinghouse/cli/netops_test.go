package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clearinghouse-net/clearinghouse/config"
	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// addressLines returns the values of the "address: " lines of out.
func addressLines(out string) []string {
	var addrs []string
	for line := range strings.SplitSeq(out, "\n") {
		if a, ok := strings.CutPrefix(line, "address: "); ok {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// TestInitPublic: init --public writes the public profile (all interfaces,
// TCP and QUIC, announce addresses), and id prints dialable addresses:
// the announced ones, or the interface addresses, never a wildcard.
func TestInitPublic(t *testing.T) {
	dir := t.TempDir()
	runCLI(t, "--data-dir", dir, "init", "--public", "--announce", "/dns4/node.example.org/tcp/4001").mustSucceed(t)
	cfg, err := config.Load(config.DataDir{Path: dir}.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Network.Listen, " ") != strings.Join(config.PublicListenAddrs(), " ") {
		t.Errorf("listen %q, want the public profile", cfg.Network.Listen)
	}
	r := runCLI(t, "--data-dir", dir, "id").mustSucceed(t)
	id := field(t, r.stdout, "peer id")
	if got := addressLines(r.stdout); len(got) != 1 || got[0] != "/dns4/node.example.org/tcp/4001/p2p/"+id {
		t.Errorf("addresses %q, want the announced one", got)
	}

	dir = t.TempDir()
	runCLI(t, "--data-dir", dir, "init", "--public").mustSucceed(t)
	r = runCLI(t, "--data-dir", dir, "id").mustSucceed(t)
	id = field(t, r.stdout, "peer id")
	got := addressLines(r.stdout)
	if !strings.Contains(strings.Join(got, " "), "/ip4/127.0.0.1/tcp/4001/p2p/"+id) {
		t.Errorf("addresses %q lack the loopback interface's", got)
	}
	for _, a := range got {
		if strings.Contains(a, "/0.0.0.0/") || strings.Contains(a, "/ip6/::/") {
			t.Errorf("wildcard address printed: %s", a)
		}
	}

	for _, tc := range []struct{ args, want string }{
		{"--announce /ip4/192.0.2.1/tcp/4001", "--announce needs --public"},
		{"--public --announce /ip4/0.0.0.0/tcp/4001", "wildcard"},
		{"--public --announce /ip4/192.0.2.1/tcp/0", "non-zero"},
	} {
		r := runCLI(t, append([]string{"--data-dir", t.TempDir(), "init"}, strings.Fields(tc.args)...)...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("init %s: exit %d, stderr %q; want an error saying %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

// TestIDPortZero: a listen address with port 0 is not printed (nobody can
// dial port 0); a note on stderr says where the bound port is shown.
func TestIDPortZero(t *testing.T) {
	dir := t.TempDir()
	runCLI(t, "--data-dir", dir, "init").mustSucceed(t)
	path := config.DataDir{Path: dir}.ConfigPath()
	if err := os.WriteFile(path, []byte("[network]\nlisten = [\"/ip4/127.0.0.1/tcp/0\", \"/ip4/192.0.2.1/udp/4001/quic-v1\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "--data-dir", dir, "id").mustSucceed(t)
	id := field(t, r.stdout, "peer id")
	if got := addressLines(r.stdout); len(got) != 1 || got[0] != "/ip4/192.0.2.1/udp/4001/quic-v1/p2p/"+id {
		t.Errorf("addresses %q", got)
	}
	if !strings.Contains(r.stderr, "clearinghouse status") {
		t.Errorf("stderr %q has no note about the port chosen at start", r.stderr)
	}
}

// refusedURL returns the URL of a loopback port nobody listens on.
func refusedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

// TestBackupRestore: backup through a running node's API, restore into a
// new data directory (refused a second time without --force), and backup
// again from the stopped store.
func TestBackupRestore(t *testing.T) {
	e := newAPIEnv(t, testnet.WithDataDir(t.TempDir()))
	for i := range 5 {
		if _, err := e.net.Nodes[0].Publish(t.Context(), protocol.KindStatement, protocol.IssueTopic("privacy"),
			&protocol.Statement{Title: fmt.Sprintf("statement %d", i), Text: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := e.net.Nodes[0].Store().Stats()
	if err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "b1")
	r := e.run(t, "backup", "--out", out).mustSucceed(t)
	if got := field(t, r.stdout, "backup"); got != out {
		t.Errorf("backup dir %q, want %q", got, out)
	}
	info, err := node.ReadBackup(out)
	if err != nil {
		t.Fatal(err)
	}
	if info.Records != st.Records || info.Peer != e.net.Nodes[0].ID().String() {
		t.Errorf("manifest %+v, want %d records of %s", info, st.Records, e.net.Nodes[0].ID())
	}
	if r := e.run(t, "backup", "--out", out); r.code == 0 || !strings.Contains(r.stderr, "not empty") {
		t.Errorf("backup into a full directory: exit %d, stderr %q", r.code, r.stderr)
	}

	dd := config.DataDir{Path: filepath.Join(t.TempDir(), "restored")}
	runCLI(t, "--data-dir", dd.Path, "restore", "--from", out).mustSucceed(t)
	for _, p := range []string{dd.StorePath(), filepath.Join(dd.Path, node.GenesisFile), filepath.Join(dd.Path, node.RestoredMarker)} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("restore did not write %s: %v", p, err)
		}
	}
	if r := runCLI(t, "--data-dir", dd.Path, "restore", "--from", out); r.code == 0 || !strings.Contains(r.stderr, "--force") {
		t.Errorf("restore over a store: exit %d, stderr %q", r.code, r.stderr)
	}
	runCLI(t, "--data-dir", dd.Path, "restore", "--from", out, "--force").mustSucceed(t)

	// No node runs on the restored directory: backup reads the store.
	out2 := filepath.Join(t.TempDir(), "b2")
	runCLI(t, "--data-dir", dd.Path, "--api", refusedURL(t), "--token", testToken, "backup", "--out", out2).mustSucceed(t)
	info2, err := node.ReadBackup(out2)
	if err != nil {
		t.Fatal(err)
	}
	if info2.Records != info.Records || info2.Network != info.Network {
		t.Errorf("offline backup %+v, want the records and network of %+v", info2, info)
	}
}

// TestStatusNet: status says the node's reachability, its relays, and for
// each peer whether the connection is direct or relayed.
func TestStatusNet(t *testing.T) {
	e := newAPIEnv(t)
	r := e.run(t, "status").mustSucceed(t)
	wantContains(t, r.stdout, "reachability: unknown", "relays:      none",
		"peer:        "+e.net.Nodes[1].ID().String()+" direct member /ip4/127.0.0.1/tcp/")
}

// TestRunAfterRestore: the run after a restore confirms the node's chain
// with its peers (its store may lack its latest records), and clears the
// marker so that later runs do not.
func TestRunAfterRestore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	runCLI(t, "--data-dir", dir, "init").mustSucceed(t)
	dd := config.DataDir{Path: dir}
	if err := os.MkdirAll(dd.StorePath(), 0o700); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, node.RestoredMarker)
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		ctx, cancel := context.WithCancel(t.Context())
		n, wait, _, stderr := runFake(t, ctx, "--data-dir", dir, "run")
		cancel()
		if code := wait(); code != 0 {
			t.Fatalf("run %d: exit %d; stderr:\n%s", i, code, stderr)
		}
		if n.params.recoverChain != want {
			t.Errorf("run %d: recoverChain = %v, want %v", i, n.params.recoverChain, want)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the restore marker is still there")
	}
}

package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clearinghouse-net/clearinghouse/config"
)

// TestTestnetCommand runs `testnet` in-process on free ports: its banner
// says where the web view is, how to try a client command and how to stop
// it; node 0 answers on its data directory; an interrupt stops it.
func TestTestnetCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tn")
	port, err := freePortRun(2)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	stdout := &notifyingBuffer{want: "ready\n", ready: ready}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	result := make(chan int, 1)
	go func() {
		result <- execute(ctx, NewRootCommand(stdout, io.Discard),
			[]string{"testnet", "--nodes", "2", "--dir", dir, "--api-port", fmt.Sprint(port)}, io.Discard)
	}()
	select {
	case <-ready:
	case code := <-result:
		t.Fatalf("testnet ended with %d before it was ready:\n%s", code, stdout.String())
	}
	n0 := filepath.Join(dir, "node-0")
	r := runCLI(t, "--data-dir", n0, "status").mustSucceed(t)
	wantContains(t, r.stdout, "role:        member")
	r = runCLI(t, "--data-dir", n0, "issue", "open", "privacy", "--title", "Privacy").mustSucceed(t)
	wantContains(t, r.stdout, "opened issue privacy: bafy")
	// Again: already open, which is no error (the tour runs again).
	r = runCLI(t, "--data-dir", n0, "issue", "open", "privacy", "--title", "Privacy").mustSucceed(t)
	wantContains(t, r.stdout, "issue privacy is already open: bafy", "(opened by Org 0, ")
	cancel()
	if code := <-result; code != 0 {
		t.Fatalf("exit %d", code)
	}
	out := stdout.String()
	wantContains(t, out,
		fmt.Sprintf("web: every api address above is also the node's web view: open http://127.0.0.1:%d/ in a browser\n", port),
		"try: clearinghouse --data-dir "+n0+" status\n",
		fmt.Sprintf("stop: Ctrl-C, or kill %d (the data directories stay", os.Getpid()))
}

// TestTestnetFailedStartCleansUp: a testnet that cannot start (an API
// port is busy) says which and leaves no directory behind; one that
// existed before stays.
func TestTestnetFailedStartCleansUp(t *testing.T) {
	port, err := freePortRun(2)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := filepath.Join(t.TempDir(), "tn")
	r := runCLI(t, "testnet", "--nodes", "2", "--dir", dir, "--api-port", fmt.Sprint(port))
	if r.code != exitError {
		t.Fatalf("exit %d", r.code)
	}
	wantContains(t, r.stderr, fmt.Sprintf("testnet: node 1 API on 127.0.0.1:%d: address already in use", port+1), "--api-port")
	if _, err := os.Stat(dir); err == nil {
		t.Fatal("the failed testnet left its directory behind")
	}
	if r.stdout != "" {
		t.Fatalf("stdout %q", r.stdout)
	}

	// A directory that existed keeps what it had; the node directories
	// made by the failed start go. Here the start fails at node 1, whose
	// directory is a file.
	l.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"keep", "node-1"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r = runCLI(t, "testnet", "--nodes", "2", "--dir", dir, "--api-port", fmt.Sprint(port))
	if r.code != exitError || !strings.Contains(r.stderr, "testnet: node 1: ") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "keep")); err != nil {
		t.Fatalf("the existing directory lost its content: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node-0")); err == nil {
		t.Fatal("the failed testnet left node-0 behind")
	}
}

// TestHintsKeepDataDir: the next: lines of init work as printed, for the
// data directory they were given.
func TestHintsKeepDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my node")
	r := runCLI(t, "--data-dir", dir, "init").mustSucceed(t)
	wantContains(t, r.stdout, "next: edit "+filepath.Join(dir, "config.toml")+", then run: clearinghouse --data-dir '"+dir+"' run\n")
	// Through $CLEARINGHOUSE_DIR, which stays set in the shell: as given.
	env := filepath.Join(t.TempDir(), "env")
	t.Setenv(config.EnvDataDir, env)
	r = runCLI(t, "init").mustSucceed(t)
	wantContains(t, r.stdout, "then run: clearinghouse run\n")
}

package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"github.com/multiformats/go-multihash"

	"github.com/clearinghouse-net/clearinghouse/config"
	"github.com/clearinghouse-net/clearinghouse/node"
)

// fakeNode stands in for a started node.
type fakeNode struct {
	id     peer.ID
	params nodeParams
	done   chan struct{}

	mu     sync.Mutex
	closed bool
}

func (n *fakeNode) ID() peer.ID { return n.id }

func (n *fakeNode) Addrs() []multiaddr.Multiaddr {
	var out []multiaddr.Multiaddr
	for _, s := range n.params.config.Network.Listen {
		out = append(out, multiaddr.StringCast(s+"/p2p/"+n.id.String()))
	}
	return out
}

func (n *fakeNode) NetworkID() cid.Cid {
	h, _ := multihash.Sum([]byte("genesis"), multihash.SHA2_256, -1)
	return cid.NewCidV1(cid.DagCBOR, h)
}

func (n *fakeNode) Done() <-chan struct{} { return n.done }

func (n *fakeNode) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	return nil
}

// runFake runs `run` with args against a fake node in the background. It
// returns once the node has been started, with the node, a function that
// waits for the command to end, and the command's output buffers (to be
// read only after wait).
func runFake(t *testing.T, ctx context.Context, args ...string) (n *fakeNode, wait func() int, stdout, stderr *bytes.Buffer) {
	t.Helper()
	stdout, stderr = &bytes.Buffer{}, &bytes.Buffer{}
	started := make(chan *fakeNode, 1)
	a := &app{stdout: stdout, stderr: stderr, start: func(_ context.Context, p nodeParams) (runningNode, error) {
		id, err := peer.IDFromPrivateKey(p.identity)
		if err != nil {
			return nil, err
		}
		n := &fakeNode{id: id, params: p, done: make(chan struct{})}
		started <- n
		return n, nil
	}}
	result := make(chan int, 1)
	go func() { result <- execute(ctx, newRoot(a), args, stderr) }()
	select {
	case n = <-started:
	case code := <-result:
		t.Fatalf("run ended with %d before starting the node:\n%s", code, stderr)
	}
	return n, func() int { return <-result }, stdout, stderr
}

func TestRunUntilSignal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fresh")
	ctx, cancel := context.WithCancel(t.Context())
	n, wait, stdout, stderr := runFake(t, ctx, "--data-dir", dir, "run")
	cancel() // as SIGINT does
	if code := wait(); code != 0 {
		t.Fatalf("exit %d, want 0; stderr:\n%s", code, stderr)
	}

	// The missing data directory was created, and that was logged.
	if _, err := os.Stat(config.DataDir{Path: dir}.KeyPath()); err != nil {
		t.Fatal(err)
	}
	logs := stderr.String()
	for _, want := range []string{"msg=\"initialised data directory\"", "msg=\"shutting down\""} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}

	// The banner.
	want := "peer id: " + n.id.String() + "\n" +
		"network: " + n.NetworkID().String() + "\n"
	for _, a := range config.DefaultListenAddrs() {
		want += "listening on: " + a + "/p2p/" + n.id.String() + "\n"
	}
	if stdout.String() != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}

	// What the node was given.
	if n.params.dataDir.Path != dir || n.params.config.Node.Role != config.RoleMember || n.params.logger == nil {
		t.Errorf("node params %+v", n.params)
	}
	if !n.closed {
		t.Error("the node was not closed")
	}
}

func TestRunFlagsOverrideConfig(t *testing.T) {
	dir := t.TempDir()
	runCLI(t, "--data-dir", dir, "init").mustSucceed(t)
	cfgPath := config.DataDir{Path: dir}.ConfigPath()
	content := "[node]\nrole = \"member\"\n[topics]\nfollow = [\"privacy\"]\n[log]\nformat = \"json\"\nlevel = \"debug\"\n"
	if err := os.WriteFile(cfgPath, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	n, wait, _, stderr := runFake(t, ctx, "--data-dir", dir, "run", "--observer",
		"--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip4/127.0.0.1/udp/0/quic-v1")
	cancel()
	if code := wait(); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	c := n.params.config
	if c.Node.Role != config.RoleObserver {
		t.Errorf("role %q, want observer", c.Node.Role)
	}
	if got := strings.Join(c.Network.Listen, " "); got != "/ip4/127.0.0.1/tcp/0 /ip4/127.0.0.1/udp/0/quic-v1" {
		t.Errorf("listen %q", got)
	}
	if got := strings.Join(c.Topics.Follow, " "); got != "privacy" {
		t.Errorf("follow %q", got)
	}
	// JSON logs, as configured.
	if !strings.Contains(stderr.String(), `"msg":"shutting down"`) {
		t.Errorf("log is not JSON:\n%s", stderr)
	}
}

func TestRunObserverFalseForcesMember(t *testing.T) {
	dir := t.TempDir()
	runCLI(t, "--data-dir", dir, "init").mustSucceed(t)
	if err := os.WriteFile(config.DataDir{Path: dir}.ConfigPath(), []byte("[node]\nrole = \"observer\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	n, wait, _, _ := runFake(t, ctx, "--data-dir", dir, "run", "--observer=false")
	cancel()
	wait()
	if n.params.config.Node.Role != config.RoleMember {
		t.Errorf("role %q, want member", n.params.config.Node.Role)
	}
}

func TestRunNodeStopsByItself(t *testing.T) {
	n, wait, _, stderr := runFake(t, t.Context(), "--data-dir", t.TempDir(), "run")
	close(n.done)
	if code := wait(); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "clearinghouse: node stopped unexpectedly\n") {
		t.Errorf("stderr:\n%s", stderr)
	}
	if !n.closed {
		t.Error("the node was not closed")
	}
}

func TestRunStartError(t *testing.T) {
	var stdout, stderr bytes.Buffer
	a := &app{stdout: &stdout, stderr: &stderr, start: func(context.Context, nodeParams) (runningNode, error) {
		return nil, errors.New("node: start libp2p host: address in use")
	}}
	code := execute(t.Context(), newRoot(a), []string{"--data-dir", t.TempDir(), "run"}, &stderr)
	if code != 1 || !strings.HasSuffix(stderr.String(), "clearinghouse: node: start libp2p host: address in use\n") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout %q, want nothing", stdout.String())
	}
}

func TestRunDoesNotReplaceALostKey(t *testing.T) {
	dir := t.TempDir()
	dd := config.DataDir{Path: dir}
	if err := config.WriteDefault(dd.ConfigPath()); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "--data-dir", dir, "run")
	if r.code != 1 || !strings.Contains(r.stderr, dd.KeyPath()) {
		t.Fatalf("exit %d, stderr %q; want 1 and an error naming %s", r.code, r.stderr, dd.KeyPath())
	}
	if _, err := os.Stat(dd.KeyPath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("run created a new key: %v", err)
	}
}

// notifyingBuffer is a buffer that closes ready once its content contains
// want. It is written by one goroutine and read after that one has ended.
type notifyingBuffer struct {
	bytes.Buffer
	want  string
	ready chan struct{}
}

func (b *notifyingBuffer) Write(p []byte) (int, error) {
	n, err := b.Buffer.Write(p)
	if b.ready != nil && strings.Contains(b.String(), b.want) {
		close(b.ready)
		b.ready = nil
	}
	return n, err
}

// TestRunRealNode starts a real node in-process on free loopback ports and
// stops it as SIGINT does.
func TestRunRealNode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	ready := make(chan struct{})
	stdout := &notifyingBuffer{want: "listening on: ", ready: ready}
	var stderr bytes.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	result := make(chan int, 1)
	go func() {
		result <- execute(ctx, NewRootCommand(stdout, &stderr),
			[]string{"--data-dir", dir, "run", "--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip4/127.0.0.1/udp/0/quic-v1",
				"--api-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t))}, &stderr)
	}()
	select {
	case <-ready:
	case code := <-result:
		t.Fatalf("run ended with %d before listening:\n%s", code, stderr.String())
	}
	cancel()
	if code := <-result; code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}

	out := stdout.String()
	id := field(t, out, "peer id")
	if !peerIDPattern.MatchString(id) {
		t.Errorf("peer id %q", id)
	}
	if field(t, out, "network") == "" {
		t.Error("no network id")
	}
	if n := strings.Count(out, "listening on: "); n != 2 {
		t.Errorf("%d listen addresses, want 2:\n%s", n, out)
	}
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if a, ok := strings.CutPrefix(line, "listening on: "); ok && (strings.Contains(a, "/tcp/0/") || !strings.HasSuffix(a, "/p2p/"+id)) {
			t.Errorf("address %q: want a bound port and /p2p/%s", a, id)
		}
	}
	dd := config.DataDir{Path: dir}
	for _, p := range []string{dd.GenesisPath(), dd.StorePath()} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("node did not create %s: %v", p, err)
		}
	}
	if !strings.Contains(stderr.String(), `msg="shutting down"`) {
		t.Errorf("no shutdown log:\n%s", stderr.String())
	}
	// The first run founded a dev federation and said so; a restart
	// says nothing of it, nor of a lost store.
	if !strings.Contains(stderr.String(), "no genesis given") {
		t.Errorf("the founding run did not say it founded a dev federation:\n%s", stderr.String())
	}
	ready = make(chan struct{})
	stdout = &notifyingBuffer{want: "listening on: ", ready: ready}
	stderr.Reset()
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	go func() {
		result <- execute(ctx, NewRootCommand(stdout, &stderr),
			[]string{"--data-dir", dir, "run", "--listen", "/ip4/127.0.0.1/tcp/0", "--api-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t))}, &stderr)
	}()
	select {
	case <-ready:
	case code := <-result:
		t.Fatalf("second run ended with %d before listening:\n%s", code, stderr.String())
	}
	cancel()
	if code := <-result; code != 0 {
		t.Fatalf("second run: exit %d; stderr:\n%s", code, stderr.String())
	}
	for _, spurious := range []string{"no genesis given", "identity key without a store", "level=WARN"} {
		if strings.Contains(stderr.String(), spurious) {
			t.Errorf("a restart logs %q:\n%s", spurious, stderr.String())
		}
	}
}

// TestRunRecoverChainRule: the node is told to recover its chain heads
// from peers exactly when the identity key existed before the run and the
// store directory did not.
func TestRunRecoverChainRule(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  bool
	}{
		{"fresh data directory", func(*testing.T, string) {}, false},
		{"init, never run", func(t *testing.T, dir string) {
			runCLI(t, "--data-dir", dir, "init").mustSucceed(t)
		}, false},
		{"key, store lost", func(t *testing.T, dir string) {
			runCLI(t, "--data-dir", dir, "init").mustSucceed(t)
			if err := os.RemoveAll(config.DataDir{Path: dir}.StorePath()); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"key and store", func(t *testing.T, dir string) {
			runCLI(t, "--data-dir", dir, "init").mustSucceed(t)
			if err := os.MkdirAll(config.DataDir{Path: dir}.StorePath(), 0o700); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "node")
			tc.setup(t, dir)
			ctx, cancel := context.WithCancel(t.Context())
			n, wait, _, stderr := runFake(t, ctx, "--data-dir", dir, "run")
			cancel()
			if code := wait(); code != 0 {
				t.Fatalf("exit %d; stderr:\n%s", code, stderr)
			}
			if n.params.recoverChain != tc.want {
				t.Fatalf("recoverChain = %v, want %v", n.params.recoverChain, tc.want)
			}
		})
	}
}

// syncingNode is a fake node that reports sync progress.
type syncingNode struct {
	*fakeNode
	mu     sync.Mutex
	status []node.TopicSync
}

func (n *syncingNode) Topics() []string { return []string{"index", "members"} }

func (n *syncingNode) SyncStatus() []node.TopicSync {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.status)
}

// TestRunLogsFirstCatchUp: run logs once when every joined topic has
// been synced with a peer, and not before.
func TestRunLogsFirstCatchUp(t *testing.T) {
	poll := catchUpPoll
	catchUpPoll = time.Millisecond
	t.Cleanup(func() { catchUpPoll = poll })
	logs := &notifyingBuffer{want: "first catch-up done", ready: make(chan struct{})}
	ready := logs.ready
	started := make(chan *syncingNode, 1)
	a := &app{stdout: io.Discard, stderr: logs, start: func(_ context.Context, p nodeParams) (runningNode, error) {
		id, _ := peer.IDFromPrivateKey(p.identity)
		n := &syncingNode{fakeNode: &fakeNode{id: id, params: p, done: make(chan struct{})},
			status: []node.TopicSync{{Topic: "index", Peer: id, Last: time.Now(), Fetched: 3}}}
		started <- n
		return n, nil
	}}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	result := make(chan int, 1)
	go func() { result <- execute(ctx, newRoot(a), []string{"--data-dir", t.TempDir(), "run"}, io.Discard) }()
	n := <-started
	// Only one of two topics synced: nothing is logged; then both.
	n.mu.Lock()
	n.status = append(n.status, node.TopicSync{Topic: "members", Peer: n.id, Last: time.Now(), Fetched: 2})
	n.mu.Unlock()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Fatal("no catch-up log")
	}
	cancel()
	if code := <-result; code != 0 {
		t.Fatalf("exit %d", code)
	}
	if out := logs.String(); !strings.Contains(out, "topics=2 peers=1 fetched=5") || !strings.Contains(out, "no bootstrap peers") {
		t.Fatalf("log:\n%s", out)
	}
}

// TestPendingDefaultsAgree: the [pending] defaults of the config file are
// the node's.
func TestPendingDefaultsAgree(t *testing.T) {
	c, n := config.Default().Pending, node.DefaultPendingLimits()
	got := node.PendingLimits{Records: c.Records, Bytes: n.Bytes, PerPeer: c.PerPeer, PerPeerStrangers: c.PerPeerStrangers,
		PerAuthor: c.PerAuthor, TTL: c.TTL.Std()}
	if got != n {
		t.Fatalf("config defaults %+v, node defaults %+v", got, n)
	}
}

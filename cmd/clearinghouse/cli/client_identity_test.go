package cli

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/clearinghouse-net/clearinghouse/config"
	"github.com/clearinghouse-net/clearinghouse/node/api"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// recorder is an HTTP handler that notes every request before passing it
// on: method, path and whether it carried a bearer token.
type recorder struct {
	h    http.Handler
	mu   sync.Mutex
	reqs []string
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	line := r.Method + " " + r.URL.Path
	if r.Header.Get("Authorization") != "" {
		line += " (token)"
	}
	rc.reqs = append(rc.reqs, line)
	rc.mu.Unlock()
	rc.h.ServeHTTP(w, r)
}

// take returns the requests seen since the last call.
func (rc *recorder) take() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	r := rc.reqs
	rc.reqs = nil
	return r
}

// nodeDir makes a data directory for the identity key (a fresh one if
// nil) whose api.listen is hostport, and returns it with its peer id.
func nodeDir(t *testing.T, key crypto.PrivKey, hostport string) (string, peer.ID) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "node")
	dd := config.DataDir{Path: dir}
	if key != nil {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		raw, err := crypto.MarshalPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dd.KeyPath(), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	runCLI(t, "--data-dir", dir, "init").mustSucceed(t)
	if err := os.WriteFile(dd.ConfigPath(), []byte("[api]\nlisten = \""+hostport+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id, err := peerID(dd)
	if err != nil {
		t.Fatal(err)
	}
	return dir, id
}

// TestClientChecksItsNode: a client command acts for the node of its data
// directory only. With the directory of a stopped node, of a missing
// directory, or of a node whose API port another node took, it exits 1
// naming the data directory and the peer ids involved, and it sends no
// token (nor anything but GET /status) to whatever answers.
func TestClientChecksItsNode(t *testing.T) {
	net0 := testnet.New(t, 1)
	srv, err := api.New(net0.Nodes[0], api.WithToken(testToken))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{h: srv.Handler()}
	ts := httptest.NewServer(rec)
	t.Cleanup(func() { _ = srv.Close(); ts.Close() })
	other := net0.Nodes[0].ID()
	hostport := strings.TrimPrefix(ts.URL, "http://")

	// A port nothing listens on: one the kernel gave and took back.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	t.Run("port taken by another node", func(t *testing.T) {
		dir, id := nodeDir(t, nil, hostport)
		for _, args := range [][]string{{"status"}, {"issue", "open", "privacy", "--title", "Privacy"}, {"watch", "--once"}} {
			r := runCLI(t, append([]string{"--data-dir", dir}, args...)...)
			if r.code != exitError || r.stdout != "" {
				t.Fatalf("%v: exit %d, stdout %q", args, r.code, r.stdout)
			}
			wantContains(t, r.stderr, "data directory "+dir, "peer id "+id.String(), "is peer id "+other.String(),
				"api.listen in "+config.DataDir{Path: dir}.ConfigPath())
			if got := rec.take(); strings.Join(got, ",") != "GET /api/v1/status" {
				t.Fatalf("%v: the node got %q, want only GET /api/v1/status", args, got)
			}
		}
		// --api names the node to read from: reads need no check, but a
		// write that would send the directory's token is checked.
		runCLI(t, "--data-dir", dir, "--api", ts.URL, "members").mustSucceed(t)
		rec.take()
		r := runCLI(t, "--data-dir", dir, "--api", ts.URL, "issue", "open", "privacy", "--title", "Privacy")
		if r.code != exitError || !strings.Contains(r.stderr, "not the node of data directory "+dir) {
			t.Fatalf("write through --api with another directory's token: exit %d, stderr %q", r.code, r.stderr)
		}
		if got := rec.take(); strings.Join(got, ",") != "GET /api/v1/status" {
			t.Fatalf("the node got %q, want only GET /api/v1/status", got)
		}
	})

	t.Run("stopped node", func(t *testing.T) {
		dir, id := nodeDir(t, nil, closed)
		r := runCLI(t, "--data-dir", dir, "issue", "follow", "privacy")
		if r.code != exitError {
			t.Fatalf("exit %d", r.code)
		}
		wantContains(t, r.stderr, "the node of data directory "+dir+" (peer id "+id.String()+") does not answer at http://"+closed,
			"connection refused", "--data-dir "+dir+" run")
	})

	t.Run("missing directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "nope")
		r := runCLI(t, "--data-dir", dir, "status")
		if r.code != exitError {
			t.Fatalf("exit %d", r.code)
		}
		wantContains(t, r.stderr, "data directory "+dir+" does not exist", "nothing was sent", "--data-dir "+dir+" init")
		r = runCLI(t, "--data-dir", dir, "--api", ts.URL, "issue", "open", "privacy", "--title", "Privacy")
		if r.code != exitError {
			t.Fatalf("exit %d", r.code)
		}
		wantContains(t, r.stderr, "data directory "+dir+" does not exist", "nothing was sent")
		if got := rec.take(); len(got) != 0 {
			t.Fatalf("the node got %q, want nothing", got)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Fatal("a client command created the data directory")
		}
	})

	t.Run("its own node", func(t *testing.T) {
		dir, id := nodeDir(t, net0.Keys[0], hostport)
		if id != other {
			t.Fatalf("peer id %s, want %s", id, other)
		}
		// The node was given testToken, the directory has its own: write
		// the node's into it.
		if err := os.WriteFile(config.DataDir{Path: dir}.TokenPath(), []byte(testToken+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		runCLI(t, "--data-dir", dir, "issue", "open", "privacy", "--title", "Privacy").mustSucceed(t)
		if got := strings.Join(rec.take(), ","); got != "GET /api/v1/status,GET /api/v1/issues,POST /api/v1/records (token)" {
			t.Fatalf("requests %q", got)
		}
	})
}

// TestStatusWaitsForDataDir: status --wait waits for a data directory that
// a starting node has not written yet, then for the node to answer.
func TestStatusWaitsForDataDir(t *testing.T) {
	net0 := testnet.New(t, 1)
	srv, err := api.New(net0.Nodes[0], api.WithToken(testToken))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { _ = srv.Close(); ts.Close() })
	dir := filepath.Join(t.TempDir(), "later")
	done := make(chan result, 1)
	go func() {
		var stdout, stderr strings.Builder
		code := Main(t.Context(), []string{"--data-dir", dir, "status", "--wait", "60s"}, &stdout, &stderr)
		done <- result{stdout.String(), stderr.String(), code}
	}()
	// The directory appears while status waits (usually: status may also
	// find it at once, which must work as well).
	src, _ := nodeDir(t, net0.Keys[0], strings.TrimPrefix(ts.URL, "http://"))
	if err := os.Rename(src, dir); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.code != 0 || !strings.Contains(r.stdout, "peer id:     "+net0.Nodes[0].ID().String()) {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

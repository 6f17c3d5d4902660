package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-net/clearinghouse/config"
)

// TestRunServesAPI runs a real node and uses its API through the address
// printed in the banner: a client command reads, another writes with the
// data directory's token.
func TestRunServesAPI(t *testing.T) {
	dir := t.TempDir()
	runCLI(t, "--data-dir", dir, "init").mustSucceed(t)
	cfg := fmt.Sprintf("[api]\nlisten = \"127.0.0.1:%d\"\n[network]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\n", freePort(t))
	if err := os.WriteFile(config.DataDir{Path: dir}.ConfigPath(), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	rctx, stop := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		code := Main(rctx, []string{"--data-dir", dir, "run"}, pw, io.Discard)
		pw.Close()
		done <- code
	}()
	var url string
	lines := bufio.NewScanner(pr)
	for url == "" && lines.Scan() {
		if v, ok := strings.CutPrefix(lines.Text(), "api: "); ok {
			url = v
		}
	}
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("no api line in the banner (got %q)", url)
	}
	if !lines.Scan() || lines.Text() != "web: "+url+"/ (the node's web view: open it in a browser)" {
		t.Fatalf("no web line after the api line (got %q)", lines.Text())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()

	// Without --api: the client reads api.listen and checks the peer id.
	r := runCLI(t, "--data-dir", dir, "status").mustSucceed(t)
	if !strings.Contains(r.stdout, "role:        member") {
		t.Fatalf("status:\n%s", r.stdout)
	}
	r = runCLI(t, "--data-dir", dir, "issue", "open", "privacy", "--title", "Privacy").mustSucceed(t)
	if !strings.Contains(r.stdout, "opened issue privacy") {
		t.Fatalf("issue open:\n%s", r.stdout)
	}
	stop()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("run exit %d", code)
		}
	case <-ctx.Done():
		t.Fatal("run did not stop")
	}
}

package cli

import (
	"bytes"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWebScreenshots: the command writes a PNG of each main page at 1280
// and 390 px (full page, so at least as tall as the viewport). Like the
// browser tests of node/api it needs chromium: without it, it fails in CI
// and is skipped elsewhere.
func TestWebScreenshots(t *testing.T) {
	if _, err := exec.LookPath("chromium"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no chromium on PATH (.ci/run installs it)")
		}
		t.Skip("no chromium on PATH: skipping the screenshot test")
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := Main(t.Context(), []string{"web", "screenshots", "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	files := strings.Fields(stdout.String())
	if len(files) != 11 {
		t.Fatalf("wrote %d files: %v", len(files), files)
	}
	for _, page := range []string{"issues", "issue", "process", "record", "federation"} {
		for _, w := range []int{1280, 390} {
			f, err := os.Open(filepath.Join(out, page+"-"+map[int]string{1280: "1280", 390: "390"}[w]+".png"))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := png.DecodeConfig(f)
			f.Close()
			if err != nil || cfg.Width != w || cfg.Height < 700 {
				t.Fatalf("%s at %d px: %v %v", page, w, cfg, err)
			}
		}
	}
}

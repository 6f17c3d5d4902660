package deploy

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// need skips the test, or fails it when CI=true, unless the command name
// is installed.
func need(t *testing.T, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err == nil {
		return
	}
	msg := name + " not found (Debian package " + pkg + ")"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI must install it")
	}
	t.Skip(msg)
}

// build runs the build command of the container recipe, `make build`, from
// the repository root, writing the binary to dir, and returns its path.
func build(t *testing.T, dir string) string {
	t.Helper()
	need(t, "make", "make")
	bin := filepath.Join(dir, "clearinghouse")
	cmd := exec.Command("make", "build", "BIN="+bin)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	return bin
}

// TestSystemdUnit: the unit passes systemd-analyze verify without a
// warning. Verify checks that ExecStart's program exists and is
// executable, so the copy verified runs this test's own executable in its
// place; nothing else is changed.
func TestSystemdUnit(t *testing.T) {
	need(t, "systemd-analyze", "systemd")
	unit, err := os.ReadFile("clearinghouse.service")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const execStart = "ExecStart=/usr/local/bin/clearinghouse run"
	if bytes.Count(unit, []byte(execStart)) != 1 {
		t.Fatalf("unit has not exactly one %q line", execStart)
	}
	path := filepath.Join(t.TempDir(), "clearinghouse.service")
	if err := os.WriteFile(path, bytes.Replace(unit, []byte(execStart), []byte("ExecStart="+self+" run"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, want := range []string{"User=clearinghouse", "StateDirectory=clearinghouse", "Environment=CLEARINGHOUSE_DIR=/var/lib/clearinghouse", "NoNewPrivileges=yes"} {
		if !bytes.Contains(unit, []byte(want)) {
			t.Errorf("unit lacks %s", want)
		}
	}
}

// TestContainerRecipe: the recipe builds with `make build` (the same
// command as the project's build, so the same binary), runs it as a
// non-root user with the data directory on a volume; and that command
// builds a static binary that runs. No container runtime is needed.
func TestContainerRecipe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	recipe, err := os.ReadFile("Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	r := string(recipe)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^RUN make build BIN=/out/clearinghouse$`),
		regexp.MustCompile(`(?m)^COPY --from=build /out/clearinghouse /usr/local/bin/clearinghouse$`),
		regexp.MustCompile(`(?m)^USER nonroot:nonroot$`),
		regexp.MustCompile(`(?m)^ENV CLEARINGHOUSE_DIR=/data$`),
		regexp.MustCompile(`(?m)^VOLUME \["/data"\]$`),
		regexp.MustCompile(`(?m)^COPY --from=build --chown=65532:65532 /out/data /data$`),
	} {
		if !want.MatchString(r) {
			t.Errorf("Containerfile has no line matching %s", want)
		}
	}
	// The Makefile's build target is the static build.
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mk), "CGO_ENABLED=0 go build -trimpath -o $(BIN) ./cmd/clearinghouse") {
		t.Error("Makefile build target is not the static build the recipe relies on")
	}

	bin := build(t, t.TempDir())
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a dynamic loader (PT_INTERP): not static")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("the binary links shared libraries %v (%v)", libs, err)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "clearinghouse") {
		t.Fatalf("%s version: %v: %s", bin, err, out)
	}
}

// TestGrafanaDashboard: the dashboard is valid JSON and every metric it
// charts is one the node exports (listed in docs/operations.md).
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	ops, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	metric := regexp.MustCompile(`\b(clearinghouse|libp2p)_[a-z0-9_]+`)
	if len(d.Panels) == 0 {
		t.Fatal("no panels")
	}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, m := range metric.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_count"), "_sum")
				if !strings.Contains(string(ops), base) {
					t.Errorf("panel %q charts %s, which docs/operations.md does not list", p.Title, base)
				}
			}
		}
	}
}

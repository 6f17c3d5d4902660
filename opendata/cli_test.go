package opendata_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	car "github.com/ipld/go-car/v2"

	"github.com/clearinghouse-net/clearinghouse/config"
	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/opendata"
)

// TestCLISeedObserver: the operator's path. `export` writes a CARv2 file
// from a member's API; `init --genesis` and `import` seed a new observer's
// data directory from it; the observer, started from that directory,
// serves the members' audit. A second import stores nothing; an import
// into a data directory without a genesis is refused.
func TestCLISeedObserver(t *testing.T) {
	f := federation(t)
	dir := t.TempDir()
	archive := filepath.Join(dir, "fed.car")
	code, out, errs := runCLI(t, "--api", f.api.URL, "export", "-o", archive)
	if code != 0 {
		t.Fatalf("export: exit %d\n%s\n%s", code, out, errs)
	}
	r, err := car.OpenReader(archive)
	if err != nil {
		t.Fatal(err)
	}
	if r.Version != 2 || !r.Header.HasIndex() {
		t.Fatalf("export wrote CARv%d, index %v", r.Version, r.Header.HasIndex())
	}
	r.Close()
	if !strings.Contains(errs, "as CARv2") {
		t.Fatalf("no summary on stderr: %s", errs)
	}

	genesis := filepath.Join(dir, "genesis.cbor")
	enc, err := f.net.Genesis.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(genesis, enc, 0o644); err != nil {
		t.Fatal(err)
	}
	obsDir := filepath.Join(dir, "observer")
	if code, out, errs := runCLI(t, "--data-dir", obsDir, "init", "--genesis", genesis); code != 0 {
		t.Fatalf("init: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = runCLI(t, "--data-dir", obsDir, "import", archive)
	if code != 0 || !strings.Contains(out, "0 refused") {
		t.Fatalf("import: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = runCLI(t, "--data-dir", obsDir, "import", "--json", "-q", archive)
	if code != 0 || !strings.Contains(out, `"stored": 0`) {
		t.Fatalf("second import: exit %d\n%s", code, out)
	}

	// A record the node refuses: listed with its CID and reason, exit 1.
	bs, roots := blocks(t, f.car)
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	intruder := statement(t, f, stranger, "issue/archive-f",
		time.UnixMilli(f.fp.Charter.Env.Time).Add(time.Hour), f.fp.Charter.CID)
	bad := filepath.Join(dir, "bad.car")
	writeCAR(t, bad, roots, append(bs, opendata.Block{CID: intruder.CID, Data: intruder.Raw}))
	code, out, errs = runCLI(t, "--data-dir", obsDir, "import", "-q", bad)
	if code != 1 || !strings.Contains(out, "1 refused") ||
		!strings.Contains(out, "refused "+intruder.CID.String()+" not-member: ") || !strings.Contains(errs, "refused") {
		t.Fatalf("import of a bad archive: exit %d\n%s\n%s", code, out, errs)
	}

	// The observer, started from its data directory.
	key, err := config.LoadIdentity(config.DataDir{Path: obsDir}.KeyPath())
	if err != nil {
		t.Fatal(err)
	}
	obs, err := node.New(context.Background(), append(opendata.OfflineNodeOptions(),
		node.WithIdentity(key), node.WithDataDir(obsDir), node.WithObserver(true))...)
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Close()
	if got, want := auditJSON(t, obs, f.fp.Charter.CID), auditJSON(t, f.net.Nodes[0], f.fp.Charter.CID); !bytes.Equal(got, want) {
		t.Fatalf("the seeded observer's audit differs:\n%s\n%s", got, want)
	}

	// No genesis, no import.
	bare := filepath.Join(dir, "bare")
	if code, _, _ := runCLI(t, "--data-dir", bare, "init"); code != 0 {
		t.Fatal("init failed")
	}
	code, _, errs = runCLI(t, "--data-dir", bare, "import", archive)
	if code == 0 || !strings.Contains(errs, "genesis") {
		t.Fatalf("import without genesis: exit %d: %s", code, errs)
	}
}

// TestCLIExportForms: a process as CARv1 on standard output, every table
// as CSV into a directory, one table as JSON Lines; bad flag combinations
// are usage errors.
func TestCLIExportForms(t *testing.T) {
	f := federation(t)
	dir := t.TempDir()
	code, out, errs := runCLI(t, "--api", f.api.URL, "export", "-q", "--process", f.fp.Charter.CID.String())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	cr, err := opendata.NewCARReader(strings.NewReader(out))
	if err != nil || cr.Version() != 1 || len(cr.Roots()) != 2 || !cr.Roots()[1].Equals(f.fp.Charter.CID) {
		t.Fatalf("stdout is not the process CARv1: %v", err)
	}
	if errs != "" {
		t.Fatalf("-q still wrote: %s", errs)
	}

	tables := filepath.Join(dir, "tables")
	if code, _, errs := runCLI(t, "--api", f.api.URL, "export", "--format", "csv", "-o", tables); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, name := range opendata.Tables() {
		b, err := os.ReadFile(filepath.Join(tables, name+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := opendata.Columns(name)
		if !strings.HasPrefix(string(b), cols[0].Name+","+cols[1].Name+",") {
			t.Fatalf("%s.csv starts %q", name, b[:min(len(b), 40)])
		}
	}
	code, out, _ = runCLI(t, "--api", f.api.URL, "export", "--format", "jsonl", "--table", "decisions")
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, f.fp.Decision.CID.String()) {
		t.Fatalf("exit %d: %s", code, out)
	}

	for _, args := range [][]string{
		{"export", "--car-version", "2"},                          // CARv2 needs a file
		{"export", "--car-version", "3", "-o", "x.car"},           // no such version
		{"export", "--format", "xml"},                             // no such format
		{"export", "--format", "csv"},                             // every table needs -o DIR
		{"export", "--format", "csv", "--topic", "index"},         // --topic is for CARs
		{"export", "--table", "feedback"},                         // --table is for flat formats
		{"export", "--format", "jsonl", "--table", "nope"},        // no such table
		{"export", "--topic", "issue/none", "-o", dir + "/n.car"}, // no such topic
	} {
		code, _, errs := runCLI(t, append([]string{"--api", f.api.URL}, args...)...)
		if code == 0 || errs == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
}

// TestCLIExportCut: a stream the server cuts (as the API does when an
// export fails midway) is an error, and leaves no file behind that could
// pass for a whole archive.
func TestCLIExportCut(t *testing.T) {
	f := federation(t)
	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", opendata.MediaCAR)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(f.car[:len(f.car)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}))
	defer cut.Close()
	for _, version := range []string{"1", "2"} {
		path := filepath.Join(t.TempDir(), "cut.car")
		code, _, errs := runCLI(t, "--api", cut.URL, "export", "--car-version", version, "-o", path)
		if code == 0 || !strings.Contains(errs, "cut short") {
			t.Fatalf("CARv%s: exit %d: %s", version, code, errs)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("CARv%s: the cut archive was left at %s (%v)", version, path, err)
		}
	}
}

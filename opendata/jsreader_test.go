package opendata_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/clearinghouse-net/clearinghouse/opendata"
	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// jsDir holds the JavaScript reader and, once `npm ci` has run there (as
// .ci/run does), its IPLD libraries.
var jsDir = filepath.Join("testdata", "js")

// requireNode returns the path of node, or skips the test with the reason
// (fails it in CI, where .ci/run installs node and the packages).
func requireNode(t *testing.T) string {
	t.Helper()
	miss := func(msg string) {
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	bin, err := exec.LookPath("node")
	if err != nil {
		miss("node is not installed (apt-get install nodejs npm); .ci/run installs it")
	}
	if _, err := os.Stat(filepath.Join(jsDir, "node_modules", "@ipld", "car")); err != nil {
		miss("the npm packages are not installed: run `npm ci --prefix opendata/testdata/js` (.ci/run does)")
	}
	return bin
}

// jsResult is what readcar.mjs prints.
type jsResult struct {
	Version    int              `json:"version"`
	Roots      []string         `json:"roots"`
	CIDs       []string         `json:"cids"`
	Mismatches []map[string]any `json:"mismatches"`
	Kinds      map[string]int   `json:"kinds"`
}

// TestIndependentReader: the JavaScript IPLD libraries (@ipld/car,
// @ipld/dag-cbor, multiformats) read the exported CARv1 and CARv2, decode
// every block, find it canonical, and recompute every CID; all match, and
// they see the same roots and blocks as the Go reader.
func TestIndependentReader(t *testing.T) {
	bin := requireNode(t)
	f := federation(t)
	dir := t.TempDir()
	v1 := filepath.Join(dir, "v1.car")
	if err := os.WriteFile(v1, f.car, 0o644); err != nil {
		t.Fatal(err)
	}
	v2 := filepath.Join(dir, "v2.car")
	file, err := os.Create(v2)
	if err != nil {
		t.Fatal(err)
	}
	src := f.net.Nodes[0]
	roots, _ := opendata.Roots(src.Genesis(), opendata.Selection{})
	w, err := opendata.NewCARv2File(file, roots)
	if err != nil {
		t.Fatal(err)
	}
	if err := opendata.ExportCAR(testContext(t), w.Writer(), src.Store(), src.Genesis(), opendata.Selection{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	file.Close()

	bs, goRoots := blocks(t, f.car)
	var want []string
	for _, b := range bs {
		want = append(want, b.CID.String())
	}
	for _, path := range []string{v1, v2} {
		cmd := exec.CommandContext(testContext(t), bin, filepath.Join(jsDir, "readcar.mjs"), path)
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("%s: node: %v\n%s", path, err, stderr)
		}
		var res jsResult
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("%s: %v: %s", path, err, out)
		}
		if len(res.Mismatches) > 0 {
			t.Fatalf("%s: the JavaScript reader disagrees: %v", path, res.Mismatches)
		}
		if len(res.Roots) != 1 || res.Roots[0] != goRoots[0].String() {
			t.Fatalf("%s: roots %v, want %v", path, res.Roots, goRoots)
		}
		if !slices.Equal(res.CIDs, want) {
			t.Fatalf("%s: blocks %v\nwant %v", path, res.CIDs, want)
		}
		if res.Kinds["genesis"] != 1 || res.Kinds[protocol.KindCharter] != 1 || res.Kinds[protocol.KindEndorse] != 3 {
			t.Fatalf("%s: kinds %v", path, res.Kinds)
		}
	}
}

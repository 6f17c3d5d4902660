package gov_test

import (
	"bytes"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clearinghouse-net/clearinghouse/protocol/gov"
)

var scenarioOrders = flag.Int("orders", 0, "random delivery orders per golden scenario in TestScenarioOrders (0: 100, or 20 with -short; the acceptance run uses 10000)")

// TestScenarioOrders checks that every golden scenario's audits are
// byte-identical (JSON) over many random delivery orders of its records,
// each with a random quarter of them delivered twice, derived with
// [gov.Derive]. The full acceptance count is
//
//	go test ./protocol/gov -run TestScenarioOrders -orders 10000
func TestScenarioOrders(t *testing.T) {
	orders := *scenarioOrders
	if orders == 0 {
		orders = 100
		if testing.Short() {
			orders = 20
		}
	}
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios in testdata: %v", err)
	}
	for i, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txt")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			s := &script{t: t, w: newWorld(t, "privacy"), last: genesisTime}
			for _, line := range strings.Split(strings.TrimRight(string(src), "\n"), "\n") {
				line = strings.TrimSpace(line)
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				f, err := tokenize(line)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.run(f); err != nil {
					t.Fatalf("%s: %v", line, err)
				}
			}
			w := s.w
			if w.genesis == nil || len(w.issue.Processes()) == 0 {
				t.Skip("no process")
			}
			want := audits(t, w, w.issue)
			rng := rand.New(rand.NewPCG(uint64(i), 11))
			for range orders {
				recs := slices.Clone(w.all)
				for range len(recs)/4 + 1 {
					recs = append(recs, w.all[rng.IntN(len(w.all))])
				}
				rng.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
				is, _, err := gov.Derive(w.genesis, w.slug, recs, w.rosterAt)
				if err != nil {
					t.Fatal(err)
				}
				is.SetMembers(w.roster)
				if got := audits(t, w, is); !bytes.Equal(got, want) {
					t.Fatalf("delivery order changed the audit:\n%s\nwant:\n%s", w.rename(string(got)), w.rename(string(want)))
				}
			}
		})
	}
}

// audits returns the canonical audit JSON of every process of is, one a
// line, in the order of the processes in w's issue.
func audits(t *testing.T, w *world, is *gov.Issue) []byte {
	t.Helper()
	var out []byte
	for _, p := range w.issue.Processes() {
		q, ok := is.Process(p.CID())
		if !ok {
			t.Fatalf("process %s missing", w.rename(p.CID().String()))
		}
		js, err := q.Audit(nil).JSON()
		if err != nil {
			t.Fatal(err)
		}
		out = append(append(out, js...), '\n')
	}
	return out
}

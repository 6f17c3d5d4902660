package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/clearinghouse-net/clearinghouse/opendata"
)

func newVerifyCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify FILE|DIR",
		Short: "Check CAR archives offline and print the audit of every process",
		Long: `Verify a CAR archive (or every *.car file of a directory, taken together
as one set, in name order) offline: no node, no network, no data directory.

The first block must be the federation's genesis, named by the first root;
its founders' signatures are checked. Then every block is checked as a node
checks a record it receives: the block's hash against its CID, the strict
and canonical DAG-CBOR encoding, the signature, the links and the author's
chain, the causal past being present, and the record's validity in its
causal past (membership and the governance rules). verify runs these checks
on a private observer that accepts and dials no connection and keeps the
records in memory, so its memory grows with the archives.

It prints one line per failure ("FAIL <cid> <reason>: <detail>"), a
summary, and for every process the archive holds its canonical P1-P4 audit
as JSON on one line: the same bytes as any node holding the same records
serves at GET /api/v1/processes/{cid}/audit.

Exit status: 0 when everything verified; 1 when any block failed or a file
could not be read.`,
		Example: `  clearinghouse verify federation.car
  clearinghouse verify archive/
  clearinghouse verify --json process.car`,
		Args: exactArgs(1, "a FILE or a DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.verify(cmd.Context(), args[0], asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON, audits included")
	return cmd
}

// verifyJSON is the --json form of a verify report.
type verifyJSON struct {
	OK         bool               `json:"ok"`
	Files      []string           `json:"files"`
	Network    string             `json:"network"`
	Federation string             `json:"federation"`
	Blocks     int                `json:"blocks"`
	Valid      int                `json:"valid"`
	Failures   []opendata.Failure `json:"failures"`
	Errors     []string           `json:"errors"`
	Audits     []auditJSON        `json:"audits"`
}

type auditJSON struct {
	Process string          `json:"process"`
	Title   string          `json:"title"`
	Audit   json.RawMessage `json:"audit"`
}

func (a *app) verify(ctx context.Context, target string, asJSON bool) error {
	paths, err := archives(target)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	rep, err := opendata.Verify(ctx, paths, log)
	if err != nil {
		return err
	}
	if asJSON {
		v := verifyJSON{OK: rep.OK(), Files: rep.Files, Network: rep.Network.String(), Federation: rep.Federation,
			Blocks: rep.Import.Blocks, Valid: rep.Import.Stored, Failures: rep.Import.Failures, Errors: rep.Errors,
			Audits: []auditJSON{}}
		if v.Failures == nil {
			v.Failures = []opendata.Failure{}
		}
		if v.Errors == nil {
			v.Errors = []string{}
		}
		for _, au := range rep.Audits {
			v.Audits = append(v.Audits, auditJSON{Process: au.Process.String(), Title: au.Title, Audit: au.JSON})
		}
		printReport(a.stdout, v)
	} else {
		w := a.stdout
		for _, f := range rep.Import.Failures {
			fmt.Fprintf(w, "FAIL %s\n", f)
		}
		for _, e := range rep.Errors {
			fmt.Fprintf(w, "ERROR %s\n", e)
		}
		fmt.Fprintf(w, "federation %q, network %s\n", rep.Federation, rep.Network)
		fmt.Fprintf(w, "%d file(s), %d blocks: %d records valid, %d failed\n",
			len(rep.Files), rep.Import.Blocks, rep.Import.Stored, len(rep.Import.Failures))
		for _, au := range rep.Audits {
			fmt.Fprintf(w, "audit of process %s %q:\n%s\n", au.Process, au.Title, au.JSON)
		}
		if rep.OK() {
			fmt.Fprintln(w, "OK: everything verified")
		}
	}
	if !rep.OK() {
		return fmt.Errorf("%s: %d failures, %d unreadable: %w", target, len(rep.Import.Failures), len(rep.Errors), errRefused)
	}
	return nil
}

// archives returns target, or the *.car files of the directory target in
// name order.
func archives(target string) ([]string, error) {
	st, err := os.Stat(target)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{target}, nil
	}
	paths, err := filepath.Glob(filepath.Join(target, "*.car"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s: no *.car file in the directory", target)
	}
	slices.Sort(paths)
	return paths, nil
}

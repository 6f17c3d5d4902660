package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/clearinghouse-net/clearinghouse/node/api"
	"github.com/clearinghouse-net/clearinghouse/opendata"
)

// exportFlags are the flags of the export command.
type exportFlags struct {
	topic, process string
	out            string
	carVersion     int
	format         string
	table          string
	quiet          bool
}

func newExportCommand(a *app) *cobra.Command {
	var f exportFlags
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export records as a CAR archive or as flat tables",
		Long: `Export the records a running node holds, through its HTTP API.

As a CAR archive (the default, --format car): the whole federation, one
topic (--topic) or one process (--process), each with the causal past of
what it selects, the genesis first and every record after its causal past
(docs/protocol.md section 12). Any IPLD tool reads it; 'clearinghouse
verify' checks it offline and 'clearinghouse import' loads it into a node.
A file is written as CARv2 (with an index) unless --car-version 1; standard
output (-o - or no -o) gets a CARv1 stream.

As flat tables for analysts (--format jsonl or csv): issues, processes,
proposals, feedback, endorsements, decisions and members, one table per
file, every row with the CID of its record (docs/opendata.md). --table
writes one table to -o FILE or standard output; without --table every
table is written to the directory -o DIR as <table>.<format>.

Progress goes to standard error.`,
		Example: `  clearinghouse export -o federation.car
  clearinghouse export --process bafyrei... -o process.car
  clearinghouse export --topic issue/privacy --car-version 1 > privacy.car
  clearinghouse export --format csv -o tables/
  clearinghouse export --format jsonl --table feedback`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if f.format == "car" {
				return a.exportCAR(cmd.Context(), c, f)
			}
			return a.exportTables(cmd.Context(), c, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.topic, "topic", "", "export one record topic (index, members, issue/<slug>) and its causal past")
	fl.StringVar(&f.process, "process", "", "export one process (charter CID), its records and their causal past")
	fl.StringVarP(&f.out, "output", "o", "", "output file (a directory for all tables); - or none for standard output")
	fl.IntVar(&f.carVersion, "car-version", 0, "CAR version of a file: 2 (default, indexed) or 1")
	fl.StringVar(&f.format, "format", "car", "car, jsonl or csv")
	fl.StringVar(&f.table, "table", "", "with --format jsonl|csv: one table ("+strings.Join(opendata.Tables(), ", ")+")")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress on standard error")
	documentClient(cmd, false)
	return cmd
}

// exportCAR streams a CARv1 from the API and writes it as a CARv1 or CARv2.
// A file it could not finish is removed: a cut CARv1 would look whole.
func (a *app) exportCAR(ctx context.Context, c *apiClient, f exportFlags) (err error) {
	if f.table != "" {
		return &usageError{errors.New("--table applies to --format jsonl or csv")}
	}
	toStdout := f.out == "" || f.out == "-"
	version := f.carVersion
	switch {
	case version == 0 && toStdout:
		version = 1
	case version == 0:
		version = 2
	case version != 1 && version != 2:
		return &usageError{fmt.Errorf("--car-version %d: want 1 or 2", version)}
	case version == 2 && toStdout:
		return &usageError{errors.New("a CARv2 needs a file (-o FILE): its header is written last")}
	}
	q := url.Values{}
	if f.topic != "" {
		q.Set("topic", f.topic)
	}
	if f.process != "" {
		q.Set("process", f.process)
	}
	resp, err := c.stream(ctx, "/export/car?"+q.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	cr, err := opendata.NewCARReader(resp.Body)
	if err != nil {
		return err
	}
	total, _ := strconv.Atoi(resp.Header.Get(api.HeaderBlocks))
	progress := a.progress(f.quiet, "exported", total)

	var (
		cw     *opendata.CARWriter
		v2     *opendata.CARv2File
		file   *os.File
		target = "standard output"
	)
	if toStdout {
		if cw, err = opendata.NewCARWriter(a.stdout, cr.Roots()); err != nil {
			return err
		}
	} else {
		target = f.out
		if file, err = os.Create(f.out); err != nil {
			return err
		}
		defer func() {
			file.Close()
			if err != nil {
				os.Remove(f.out)
			}
		}()
		if version == 2 {
			if v2, err = opendata.NewCARv2File(file, cr.Roots()); err != nil {
				return err
			}
			cw = v2.Writer()
		} else if cw, err = opendata.NewCARWriter(file, cr.Roots()); err != nil {
			return err
		}
	}
	for {
		b, err := cr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("export cut short after %d blocks: %w", cw.Blocks(), err)
		}
		if !b.HashOK() {
			return fmt.Errorf("the node sent block %s whose bytes do not hash to it", b.CID)
		}
		if err := cw.Put(b.CID, b.Data); err != nil {
			return err
		}
		if cw.Blocks()%1000 == 0 {
			progress(cw.Blocks(), cw.Size())
		}
	}
	if v2 != nil {
		err = v2.Finish()
	} else {
		err = cw.Flush()
	}
	if err == nil && file != nil {
		err = file.Close()
	}
	if err != nil {
		return err
	}
	if !f.quiet {
		fmt.Fprintf(a.stderr, "wrote %d blocks (%d bytes of CARv1 payload) to %s as CARv%d; roots %v\n",
			cw.Blocks(), cw.Size(), target, version, cr.Roots())
	}
	return nil
}

// exportTables writes one table or every table.
func (a *app) exportTables(ctx context.Context, c *apiClient, f exportFlags) error {
	if f.format != opendata.FormatJSONL && f.format != opendata.FormatCSV {
		return &usageError{fmt.Errorf("--format %q: want car, jsonl or csv", f.format)}
	}
	if f.topic != "" || f.process != "" || f.carVersion != 0 {
		return &usageError{errors.New("--topic, --process and --car-version apply to --format car")}
	}
	one := func(table string, w io.Writer) (int64, error) {
		resp, err := c.stream(ctx, "/export/tables/"+url.PathEscape(table)+"?format="+f.format)
		if err != nil {
			return 0, fmt.Errorf("table %s: %w", table, err)
		}
		defer resp.Body.Close()
		n, err := io.Copy(w, resp.Body)
		if err != nil {
			return n, fmt.Errorf("table %s cut short: %w", table, err)
		}
		return n, nil
	}
	if f.table != "" {
		if f.out == "" || f.out == "-" {
			_, err := one(f.table, a.stdout)
			return err
		}
		return writeFile(f.out, func(w io.Writer) error { _, err := one(f.table, w); return err })
	}
	if f.out == "" || f.out == "-" {
		return &usageError{errors.New("every table needs a directory (-o DIR); or choose one with --table")}
	}
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return err
	}
	for _, t := range opendata.Tables() {
		path := filepath.Join(f.out, t+"."+f.format)
		var n int64
		if err := writeFile(path, func(w io.Writer) (err error) { n, err = one(t, w); return err }); err != nil {
			return err
		}
		if !f.quiet {
			fmt.Fprintf(a.stderr, "wrote %s (%d bytes)\n", path, n)
		}
	}
	return nil
}

// writeFile creates path and fills it with fill.
func writeFile(path string, fill func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		f.Close()
		os.Remove(path) // a cut table would look whole
		return err
	}
	return f.Close()
}

// progress returns a function that reports progress on stderr, unless
// quiet; total is the number of blocks expected, 0 if unknown.
func (a *app) progress(quiet bool, verb string, total int) func(blocks int, bytes int64) {
	if quiet {
		return func(int, int64) {}
	}
	return func(blocks int, bytes int64) {
		if total > 0 {
			fmt.Fprintf(a.stderr, "%s %d of %d blocks (%d%%, %.1f MB)\n", verb, blocks, total, blocks*100/total, float64(bytes)/1e6)
			return
		}
		fmt.Fprintf(a.stderr, "%s %d blocks (%.1f MB)\n", verb, blocks, float64(bytes)/1e6)
	}
}

// stream sends a GET under /api/v1 and returns a 200 answer; the caller
// must close its body.
func (c *apiClient) stream(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+api.Prefix+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the node API at %s: %w", c.base, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, apiError(resp.StatusCode, b)
	}
	return resp, nil
}

// openDataCommands returns export, import and verify.
func openDataCommands(a *app) []*cobra.Command {
	return []*cobra.Command{newExportCommand(a), newImportCommand(a), newVerifyCommand(a)}
}

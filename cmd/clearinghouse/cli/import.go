package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/clearinghouse-net/clearinghouse/config"
	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/opendata"
)

func newImportCommand(a *app) *cobra.Command {
	var (
		asJSON, quiet bool
	)
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Verify the records of a CAR archive and store the valid ones",
		Long: `Import a CAR archive (CARv1 or CARv2, as 'clearinghouse export' writes) into
the node of the data directory. The node must be stopped: import opens its
store, with its genesis and identity, on a private node that accepts and
dials no connection.

Every record goes through the node's ingest path, as a record received by
gossip or sync does: encoding, signature, chain links, membership and the
governance rules of its causal past are checked, and only valid records are
stored. So an observer can be seeded from a file, and a file can never put
into a node anything a peer could not. The archive must be of the node's
federation (its first root is the network id).

Each record not stored is listed with its CID and the reason.

Exit status: 0 when every record was stored or already held; 1 when some
were refused (the valid ones are stored all the same) or on any error.`,
		Example: `  clearinghouse --data-dir /srv/observer init --genesis genesis.cbor
  clearinghouse --data-dir /srv/observer import federation.car
  clearinghouse --data-dir /srv/observer run --observer`,
		Args: exactArgs(1, "the archive FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.importFile(cmd.Context(), args[0], asJSON, quiet)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress on standard error")
	return cmd
}

// errRefused is returned by import and verify when some records were
// refused; the report has already been printed.
var errRefused = errors.New("some records were refused")

func (a *app) importFile(ctx context.Context, path string, asJSON, quiet bool) error {
	dd, err := a.resolveDataDir()
	if err != nil {
		return err
	}
	cfg, err := config.Load(dd.ConfigPath())
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no node in %s: run 'clearinghouse init' first (with --genesis FILE: the federation to import into)", dd.Path)
	}
	if err != nil {
		return err
	}
	if _, err := os.Stat(dd.GenesisPath()); err != nil {
		return fmt.Errorf("%s: an import needs the federation's genesis in the data directory (clearinghouse init --genesis FILE): %w", dd.GenesisPath(), err)
	}
	key, err := config.LoadIdentity(dd.KeyPath())
	if err != nil {
		return err
	}
	logger, err := newLogger(a.stderr, config.Log{Level: "warn", Format: cfg.Log.Format})
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	cr, err := opendata.NewCARReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	opts := append(opendata.OfflineNodeOptions(),
		node.WithIdentity(key),
		node.WithDataDir(dd.Path),
		node.WithObserver(cfg.Node.Role == config.RoleObserver),
		node.WithLogger(logger),
		node.WithStoreCache(int64(cfg.Store.CacheMB)<<20),
	)
	n, err := node.New(ctx, opts...)
	if err != nil {
		return fmt.Errorf("open the node of %s (is it running? stop it first): %w", dd.Path, err)
	}
	var p func(opendata.Progress)
	if !quiet {
		pr := a.progress(false, "read", 0)
		p = func(x opendata.Progress) { pr(x.Blocks, x.Bytes) }
	}
	rep, ierr := opendata.Import(ctx, n, cr, p)
	if err := n.Close(); err != nil {
		ierr = errors.Join(ierr, fmt.Errorf("close node: %w", err))
	}
	if rep != nil {
		if asJSON {
			printReport(a.stdout, rep)
		} else {
			fmt.Fprintf(a.stdout, "%s: CARv%d, %d blocks: %d records stored, %d already held, %d refused\n",
				path, rep.Version, rep.Blocks, rep.Stored, rep.Held, len(rep.Failures))
			for _, fl := range rep.Failures {
				fmt.Fprintf(a.stdout, "refused %s\n", fl)
			}
		}
	}
	if ierr != nil {
		return ierr
	}
	if len(rep.Failures) > 0 {
		return fmt.Errorf("%s: %d of %d blocks: %w", path, len(rep.Failures), rep.Blocks, errRefused)
	}
	return nil
}

// printReport prints v as indented JSON.
func printReport(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/clearinghouse-net/clearinghouse/config"
	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/node/api"
	"github.com/clearinghouse-net/clearinghouse/store"
)

func newBackupCommand(a *app) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "backup --out DIR",
		Short: "Write a consistent backup of the node's store",
		Long: `Write a consistent backup of the node's store to DIR, which must not exist or
be empty: a pebble checkpoint of the store (store/), the federation's genesis
(genesis.cbor) and a manifest (backup.json: network id, peer id, store format
version, record count, time).

If the node is running, the backup is taken by the node itself through the
HTTP API (POST /api/v1/backup, with the token), while it keeps running:
every record it acknowledged before the backup began is in it. DIR is then a
path on the node's machine. If the node is not running, backup opens the
store directly.

The backup holds no secret: back up identity.key (and api.token) apart,
offline. Bring a backup back with: clearinghouse restore --from DIR.`,
		Example: `  clearinghouse backup --out /var/backups/clearinghouse/$(date +%F)`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return &usageError{errors.New("--out DIR is required")}
			}
			dir, err := filepath.Abs(out)
			if err != nil {
				return err
			}
			info, err := a.backup(cmd.Context(), dir)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "backup: %s\nrecords: %d\nstore format: %d\nnetwork: %s\n", info.Dir, info.Records, info.FormatVersion, info.Network)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write the backup to (must not exist or be empty)")
	return cmd
}

// backup takes a backup through the running node's API, or from the store
// directly if no node answers.
func (a *app) backup(ctx context.Context, dir string) (node.BackupInfo, error) {
	var info node.BackupInfo
	c, err := a.client()
	if err != nil {
		return info, err
	}
	b, err := c.do(ctx, http.MethodPost, "/backup", api.BackupRequest{Dir: dir})
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &info); err != nil {
			return info, fmt.Errorf("decode answer of /backup: %w", err)
		}
		return info, nil
	case !isConnRefused(err):
		return info, err
	}
	// No node is running: read the store directly.
	dd, err := a.resolveDataDir()
	if err != nil {
		return info, err
	}
	if err := a.requireDataDir(dd); err != nil {
		return info, err
	}
	g, err := os.ReadFile(filepath.Join(dd.Path, node.GenesisFile))
	if err != nil {
		return info, fmt.Errorf("no node answers and the data directory has no genesis: %w", err)
	}
	if _, err := os.Stat(dd.StorePath()); err != nil {
		return info, fmt.Errorf("no node answers and the data directory has no store: %w", err)
	}
	log := slog.New(slog.DiscardHandler)
	st, err := store.Open(dd.StorePath(), store.WithLogger(log))
	if err != nil {
		return info, fmt.Errorf("no node answers and the store does not open (is a node running with another api.listen?): %w", err)
	}
	defer st.Close()
	peer := ""
	if id, err := peerID(dd); err == nil {
		peer = id.String()
	}
	return node.BackupStore(st, g, peer, dir, log)
}

func newRestoreCommand(a *app) *cobra.Command {
	var (
		from  string
		force bool
	)
	cmd := &cobra.Command{
		Use:   "restore --from DIR",
		Short: "Bring back a backup into the data directory (node stopped)",
		Long: `Copy the backup in DIR (made by clearinghouse backup) into the data directory:
the store, and the genesis if the data directory has none. The node must be
stopped. A data directory that already has a store is refused unless --force
is given; the old store is then kept aside as store.replaced-<time>. A
backup of another federation, or one whose store format is newer than this
build reads, is refused.

The backup may lack the node's latest records. So the next run first
confirms the node's own chain with its peers before it publishes (it catches
up by sync, as after a lost disk). Restore identity.key from your own
offline copy if the machine is new.`,
		Example: `  clearinghouse restore --from /var/backups/clearinghouse/2026-12-01
  clearinghouse restore --from /var/backups/clearinghouse/2026-12-01 --force`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return &usageError{errors.New("--from DIR is required")}
			}
			dd, err := a.resolveDataDir()
			if err != nil {
				return err
			}
			info, err := node.Restore(from, dd.Path, force, slog.New(slog.DiscardHandler))
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "restored: %s -> %s\nrecords: %d (backup of %s)\n", from, dd.StorePath(), info.Records, info.Time.Format("2006-01-02 15:04:05Z"))
			if _, err := os.Stat(dd.KeyPath()); errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintf(a.stdout, "note: %s does not exist: restore the node's identity key there (or run init for a new identity)\n", dd.KeyPath())
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the backup directory")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing store (kept aside as store.replaced-<time>)")
	return cmd
}

// restoredMarker reports whether restore left its marker in dd: the next
// run must confirm the node's chain with peers (node.WithRecoverChain).
func restoredMarker(dd config.DataDir) bool {
	_, err := os.Stat(filepath.Join(dd.Path, node.RestoredMarker))
	return err == nil
}

// clearRestoredMarker removes restore's marker once a node runs on the
// restored store.
func clearRestoredMarker(dd config.DataDir) error {
	err := os.Remove(filepath.Join(dd.Path, node.RestoredMarker))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

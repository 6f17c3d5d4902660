package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/store"
)

// A backup is a directory with three entries:
//
//	store/        a pebble checkpoint of the node's store
//	genesis.cbor  the federation's genesis
//	backup.json   BackupInfo
//
// It holds no secret: the identity key and the API token are not in it
// (back them up apart, offline).
const (
	// BackupManifest is the name of a backup's BackupInfo file.
	BackupManifest = "backup.json"
	backupStore    = "store"
)

// ErrBackupTarget is returned by Backup and BackupStore when the target
// directory exists and is not empty.
var ErrBackupTarget = errors.New("node: backup directory exists and is not empty")

// ErrRestoreTarget is returned by Restore when the data directory already
// has a store and force was not given, or has the genesis of another
// federation.
var ErrRestoreTarget = errors.New("node: cannot restore over the data directory")

// BackupInfo describes a backup; it is written as backup.json.
type BackupInfo struct {
	// Dir is the backup directory.
	Dir string `json:"dir"`
	// Network is the federation's network id.
	Network string `json:"network"`
	// Peer is the peer id of the node backed up ("" when taken offline
	// without the key).
	Peer string `json:"peer,omitempty"`
	// FormatVersion is the store's format version (store.FormatVersion of
	// the build that took it).
	FormatVersion int `json:"formatVersion"`
	// Records and LastArrival are the backed-up store's totals.
	Records     uint64 `json:"records"`
	LastArrival uint64 `json:"lastArrival"`
	// Time is when the backup was taken, UTC.
	Time time.Time `json:"time"`
}

// Backup writes a consistent backup of the running node to dir, which must
// not exist or be empty: every record acknowledged (stored) before Backup
// was called is in it. The node keeps running and accepting records.
func (n *Node) Backup(dir string) (BackupInfo, error) {
	g, err := n.genesis.Encode()
	if err != nil {
		return BackupInfo{}, err
	}
	return BackupStore(n.store, g, n.ID().String(), dir, n.log)
}

// BackupStore writes a backup of st, a store of the federation of the
// encoded genesis g, to dir (see Node.Backup). peer may be empty. It is
// the offline form of Node.Backup, for a store whose node is not running.
func BackupStore(st *store.Store, g []byte, peer, dir string, log *slog.Logger) (BackupInfo, error) {
	gen, err := protocol.DecodeGenesis(g)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("node: backup: genesis: %w", err)
	}
	network, err := gen.NetworkID()
	if err != nil {
		return BackupInfo{}, fmt.Errorf("node: backup: genesis: %w", err)
	}
	if err := emptyDir(dir); err != nil {
		return BackupInfo{}, err
	}
	info := BackupInfo{Dir: dir, Network: network.String(), Peer: peer, FormatVersion: store.FormatVersion,
		Time: time.Now().UTC().Truncate(time.Second)}
	start := time.Now()
	if err := st.Checkpoint(filepath.Join(dir, backupStore)); err != nil {
		return BackupInfo{}, fmt.Errorf("node: backup: %w", err)
	}
	// Open the copy: it checks the copy's totals against its arrival
	// index and gives the totals of what was backed up.
	cp, err := store.Open(filepath.Join(dir, backupStore), store.WithLogger(log))
	if err != nil {
		return BackupInfo{}, fmt.Errorf("node: backup: the checkpoint does not open: %w", err)
	}
	stats, err := cp.Stats()
	if cerr := cp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return BackupInfo{}, fmt.Errorf("node: backup: %w", err)
	}
	info.Records, info.LastArrival = stats.Records, stats.LastArrival
	if err := writeFileAtomic(filepath.Join(dir, GenesisFile), g, 0o644); err != nil {
		return BackupInfo{}, fmt.Errorf("node: backup: %w", err)
	}
	m, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return BackupInfo{}, err
	}
	if err := writeFileAtomic(filepath.Join(dir, BackupManifest), append(m, '\n'), 0o644); err != nil {
		return BackupInfo{}, fmt.Errorf("node: backup: %w", err)
	}
	log.Info("backup written", "dir", dir, "records", info.Records, "took", time.Since(start))
	return info, nil
}

// emptyDir creates dir (mode 0700) or checks that it is empty.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("node: backup: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("node: backup: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("%w: %s", ErrBackupTarget, dir)
	}
	return nil
}

// ReadBackup reads and checks the manifest of the backup in dir.
func ReadBackup(dir string) (BackupInfo, error) {
	var info BackupInfo
	b, err := os.ReadFile(filepath.Join(dir, BackupManifest))
	if err != nil {
		return info, fmt.Errorf("node: %s is not a backup: %w", dir, err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("node: %s: %w", filepath.Join(dir, BackupManifest), err)
	}
	if info.FormatVersion > store.FormatVersion {
		return info, fmt.Errorf("%w: the backup in %q has store format version %d; this build reads versions up to %d: restore it with a newer clearinghouse",
			store.ErrNewerFormat, dir, info.FormatVersion, store.FormatVersion)
	}
	return info, nil
}

// Restore copies the backup in backupDir into the data directory dataDir of
// a node that is not running: the store, and the genesis if dataDir has
// none. A dataDir that already has a store is refused unless force is set;
// then the old store is kept, renamed to store.replaced-<time>. A genesis
// of another federation is always refused. The next start of the node
// must confirm its own chain with peers before it publishes (the backup
// may miss its latest records): the CLI does that on seeing
// RestoredMarker.
func Restore(backupDir, dataDir string, force bool, log *slog.Logger) (BackupInfo, error) {
	info, err := ReadBackup(backupDir)
	if err != nil {
		return info, err
	}
	// The backup's store must open (format version, totals).
	src := filepath.Join(backupDir, backupStore)
	s, err := store.Open(src, store.WithLogger(log))
	if err != nil {
		return info, fmt.Errorf("node: restore: %w", err)
	}
	if err := s.Close(); err != nil {
		return info, err
	}
	g, err := os.ReadFile(filepath.Join(backupDir, GenesisFile))
	if err != nil {
		return info, fmt.Errorf("node: restore: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return info, fmt.Errorf("node: restore: %w", err)
	}
	if have, err := os.ReadFile(filepath.Join(dataDir, GenesisFile)); err == nil && string(have) != string(g) {
		return info, fmt.Errorf("%w: %s holds the genesis of another federation than the backup's (%s)", ErrRestoreTarget, dataDir, info.Network)
	}
	dst := filepath.Join(dataDir, backupStore)
	if _, err := os.Stat(dst); err == nil {
		if !force {
			return info, fmt.Errorf("%w: %s already has a store (stop the node and use --force to replace it; the old one is kept aside)", ErrRestoreTarget, dataDir)
		}
		// Opening it proves no node is running on it (pebble's lock).
		old, err := store.Open(dst, store.WithLogger(log))
		if err != nil {
			return info, fmt.Errorf("node: restore: the current store does not open (is the node still running?): %w", err)
		}
		if err := old.Close(); err != nil {
			return info, err
		}
		aside := dst + ".replaced-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(dst, aside); err != nil {
			return info, fmt.Errorf("node: restore: %w", err)
		}
		log.Info("current store kept aside", "dir", aside)
	}
	tmp := dst + ".restoring"
	if err := os.RemoveAll(tmp); err != nil {
		return info, err
	}
	if err := copyTree(src, tmp); err != nil {
		return info, fmt.Errorf("node: restore: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return info, fmt.Errorf("node: restore: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dataDir, GenesisFile), g, 0o644); err != nil {
		return info, fmt.Errorf("node: restore: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dataDir, RestoredMarker), nil, 0o600); err != nil {
		return info, fmt.Errorf("node: restore: %w", err)
	}
	log.Info("backup restored", "from", backupDir, "to", dataDir, "records", info.Records)
	return info, nil
}

// RestoredMarker is the file Restore leaves in the data directory: the
// store may lack the node's own latest records, so the next run starts
// with WithRecoverChain and removes the marker.
const RestoredMarker = "restored"

// copyTree copies the regular files of directory src (no subdirectories:
// a pebble directory is flat) into a new directory dst, syncing each.
func copyTree(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			return fmt.Errorf("%s: unexpected entry %s in a store directory", src, e.Name())
		}
		if err := copyFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	d, err := os.Open(dst)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Names of the files in a data directory.
const (
	// ConfigFile is the configuration file.
	ConfigFile = "config.toml"
	// IdentityFile holds the node's libp2p private key.
	IdentityFile = "identity.key"
	// GenesisFile holds the federation's genesis record.
	GenesisFile = "genesis.cbor"
	// TokenFile holds the HTTP API bearer token.
	TokenFile = "api.token"
	// StoreDir is the directory of the pebble store.
	StoreDir = "store"
)

// Modes of the files Init creates.
const (
	dirMode    fs.FileMode = 0o700
	configMode fs.FileMode = 0o644
	secretMode fs.FileMode = 0o600
)

// DataDir is a node's data directory. Its methods return the paths of the
// files in it; they do not touch the file system.
type DataDir struct {
	// Path is the directory, absolute when it came from ResolveDataDir.
	Path string
}

// ConfigPath returns the path of the configuration file.
func (d DataDir) ConfigPath() string { return filepath.Join(d.Path, ConfigFile) }

// KeyPath returns the path of the identity key file.
func (d DataDir) KeyPath() string { return filepath.Join(d.Path, IdentityFile) }

// GenesisPath returns the path of the federation genesis file.
func (d DataDir) GenesisPath() string { return filepath.Join(d.Path, GenesisFile) }

// TokenPath returns the path of the API token file.
func (d DataDir) TokenPath() string { return filepath.Join(d.Path, TokenFile) }

// StorePath returns the path of the store directory.
func (d DataDir) StorePath() string { return filepath.Join(d.Path, StoreDir) }

// ResolveDataDir returns the data directory as an absolute path: flag if it
// is not empty, else the EnvDataDir environment variable if set and not
// empty, else DefaultDirName in the user's home directory. It does not check
// that the directory exists.
func ResolveDataDir(flag string) (string, error) {
	dir := flag
	if dir == "" {
		dir = os.Getenv(EnvDataDir)
	}
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("config: no data directory given (--data-dir or %s) and no home directory: %w", EnvDataDir, err)
		}
		dir = filepath.Join(home, DefaultDirName)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("config: data directory %s: %w", dir, err)
	}
	return abs, nil
}

// Init creates the data directory dir (mode 0700, with its parents) and the
// files a node needs that are missing: config.toml (the commented defaults,
// see WriteDefault), identity.key (a new ed25519 key) and api.token (a new
// random token). It is idempotent: files that exist are left alone, and an
// existing key is never overwritten. It reports created=false if all the
// files existed. See InitFiles for which files it made.
func Init(dir string) (created bool, err error) {
	made, err := InitFiles(dir)
	return len(made) > 0, err
}

// InitFiles is Init, returning the paths of the files it created, in the
// order config, key, token; the result is empty if all of them existed. On
// error, the files created before it are returned too.
func InitFiles(dir string) (made []string, err error) {
	return InitFilesWith(dir, Default())
}

// InitFilesWith is InitFiles writing cfg (such as the public profile,
// [Public]) as the configuration file if there is none yet.
func InitFilesWith(dir string, cfg Config) (made []string, err error) {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fileOpError("create data directory", dir, err)
	}
	dd := DataDir{Path: dir}
	steps := []struct {
		path   string
		create func(string) error
	}{
		{dd.ConfigPath(), func(p string) error { return Write(p, cfg) }},
		{dd.KeyPath(), writeNewIdentity},
		{dd.TokenPath(), writeNewToken},
	}
	for _, s := range steps {
		if _, err := os.Lstat(s.path); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return made, fileOpError("stat", s.path, err)
		}
		switch err := s.create(s.path); {
		case errors.Is(err, fs.ErrExist):
			// Created concurrently by someone else: leave it alone.
		case err != nil:
			return made, err
		default:
			made = append(made, s.path)
		}
	}
	if len(made) > 0 {
		if err := syncDir(dir); err != nil {
			return made, err
		}
	}
	return made, nil
}

// writeNewFile creates path with data and mode, refusing to overwrite an
// existing file (the error then wraps fs.ErrExist). The data is synced to
// disk before it returns; a file left half-written by an error is removed.
func writeNewFile(path string, data []byte, mode fs.FileMode) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fileOpError("create", path, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(path)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fileOpError("write", path, err)
	}
	if err := f.Sync(); err != nil {
		return fileOpError("sync", path, err)
	}
	if err := f.Close(); err != nil {
		return fileOpError("close", path, err)
	}
	return nil
}

// syncDir makes the entries created in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fileOpError("open", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fileOpError("sync", dir, err)
	}
	return nil
}

package store

import (
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Option configures a Store at Open. Each option validates its argument and
// Open fails with the option's error if it is out of range.
type Option func(*options) error

// options holds the configuration Open reads. Defaults are in defaults.go.
type options struct {
	// inMemory selects pebble's in-memory file system; the directory is
	// then ignored. Default false.
	inMemory bool
	// logger receives the store's own logs and pebble's, the latter at
	// debug level. Default slog.Default().
	logger *slog.Logger
	// maxBatch is the most entries written by one group commit (one
	// fsync). Must be in [1, 65536]. Default 512.
	maxBatch int
	// cacheSize is the size of pebble's block cache in bytes. Must be > 0.
	// Default 32 MiB.
	cacheSize int64
	// fs, if set, is the file system pebble uses instead of the OS or
	// in-memory one (see WithFS).
	fs vfs.FS
}

// WithInMemory keeps the whole store in memory (pebble's vfs.NewMem). Nothing
// survives Close. It is meant for tests; the directory given to Open may be
// empty.
func WithInMemory() Option {
	return func(o *options) error {
		o.inMemory = true
		return nil
	}
}

// WithLogger sets the logger of the store. Pebble's own messages are routed
// to it at debug level, pebble errors at error level. The default is
// slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return fmt.Errorf("store: logger: must not be nil")
		}
		o.logger = l
		return nil
	}
}

// WithMaxBatch sets the most entries one group commit writes with a single
// fsync. n must be between 1 and 65536; the default is 512. Smaller values
// bound the latency of one commit, larger ones let more concurrent writers
// share an fsync.
func WithMaxBatch(n int) Option {
	return func(o *options) error {
		if n < 1 || n > maxMaxBatch {
			return fmt.Errorf("store: max batch: must be in [1, %d], got %d", maxMaxBatch, n)
		}
		o.maxBatch = n
		return nil
	}
}

// WithCacheSize sets the size in bytes of pebble's block cache. It must be
// positive; the default is 32 MiB.
func WithCacheSize(bytes int64) Option {
	return func(o *options) error {
		if bytes <= 0 {
			return fmt.Errorf("store: cache size: must be > 0, got %d", bytes)
		}
		o.cacheSize = bytes
		return nil
	}
}

// WithFS makes the store use fs instead of the OS file system (or the
// in-memory one of WithInMemory): tests use it to simulate crashes, restarts
// and failing disks (pebble's vfs.NewCrashableMem, vfs/errorfs). fs must not
// be nil.
func WithFS(fs vfs.FS) Option {
	return func(o *options) error {
		if fs == nil {
			return fmt.Errorf("store: fs: must not be nil")
		}
		o.fs = fs
		return nil
	}
}

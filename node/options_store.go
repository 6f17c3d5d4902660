package node

import (
	"errors"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// WithStoreFS makes the node's store use fs as its file system (the store
// directory is then a path in fs): tests use it to make durable writes fail
// (pebble's vfs/errorfs) and to restart a node on the same in-memory files.
// It takes precedence over WithInMemory, which such a node still needs
// unless it has a data directory. fs must not be nil.
func WithStoreFS(fs vfs.FS) Option {
	return func(o *options) error {
		if fs == nil {
			return errors.New("node: store fs: must not be nil")
		}
		o.storeFS = fs
		return nil
	}
}

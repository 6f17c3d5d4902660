//go:build !unix

package cli

// lockDataDir does nothing where flock is missing: the store's own lock
// still keeps a second node off the data directory.
func lockDataDir(string) (unlock func(), err error) { return func() {}, nil }

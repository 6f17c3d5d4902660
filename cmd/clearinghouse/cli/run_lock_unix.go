//go:build unix

package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFile is the file in a data directory that a running node holds
// locked, with its process id in it.
const lockFile = "run.lock"

// lockDataDir takes the data directory dir for this process: it locks
// dir/run.lock and writes this process's id into it. The lock ends with
// the process, or when unlock is called. If another process holds it, the
// error says which.
func lockDataDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			raw, _ := os.ReadFile(path)
			who := "another process"
			if pid, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil {
				who = "process " + strconv.Itoa(pid)
				if pid == os.Getpid() {
					who += " (this one)"
				}
			}
			return nil, fmt.Errorf("data directory %s is in use by %s, a node running on it; stop that one first, or give this node its own --data-dir", dir, who)
		}
		return nil, fmt.Errorf("lock data directory %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}

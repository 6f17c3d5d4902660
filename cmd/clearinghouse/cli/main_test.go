package cli

import (
	"os"
	"testing"

	"github.com/clearinghouse-net/clearinghouse/internal/testports"
)

// TestMain runs the tests with the default ports held busy (see package
// testports), as they are while a node or the README's testnet runs on
// this machine: a test that binds or dials one of them fails here too.
// The hints the commands print name the program "clearinghouse", not
// the test binary.
func TestMain(m *testing.M) {
	release := testports.Hold()
	progName = func() string { return "clearinghouse" }
	code := m.Run()
	release()
	os.Exit(code)
}

// freePort returns a free loopback port for an api.listen.
func freePort(t *testing.T) int {
	t.Helper()
	p, err := testports.Free(1)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// freePortRun returns p such that p .. p+n-1 are free loopback ports.
func freePortRun(n int) (int, error) { return testports.Free(n) }

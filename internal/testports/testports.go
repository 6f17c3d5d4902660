// Package testports keeps the tests of the command line off the ports a
// running clearinghouse uses by default, and finds free ones for them.
//
// A test never depends on a fixed port: a test package calls Hold in its
// TestMain, so that the default ports (the API's 127.0.0.1:5080 and the
// next ones that `clearinghouse testnet` uses, the libp2p port 4001) are
// busy for as long as its tests run, as they are while a node or the
// README's tour testnet runs on the machine. A test that would bind or
// dial one of them fails in every run, not only on a busy machine. Tests
// that need a port they can name before binding (a data directory's
// api.listen, testnet --api-port) take one from Free.
package testports

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
)

// Defaults are the ports a clearinghouse listens on by default, on
// 127.0.0.1: node i of `clearinghouse testnet` serves its API on 5080+i,
// a node run with the default config on 5080 and libp2p on 4001 (TCP and
// QUIC).
var Defaults = struct {
	TCP, UDP []int
}{
	TCP: []int{5080, 5081, 5082, 5083, 4001},
	UDP: []int{4001},
}

// Hold binds every default port on 127.0.0.1 that is free, and returns a
// function that releases them. A port that is already taken (a node
// running on this machine) is busy anyway and is skipped.
func Hold() (release func()) {
	var held []interface{ Close() error }
	for _, p := range Defaults.TCP {
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			held = append(held, l)
		}
	}
	for _, p := range Defaults.UDP {
		if c, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			held = append(held, c)
		}
	}
	return func() {
		for _, h := range held {
			_ = h.Close()
		}
	}
}

// ErrNoFreePorts is returned by Free when it finds no run of free ports.
var ErrNoFreePorts = errors.New("testports: no run of free ports found")

// Free returns a port p such that p .. p+n-1 are free TCP ports on
// 127.0.0.1 now. It looks below the ephemeral ranges (Linux from 32768,
// others from 49152) and above the default ports: ports given to
// listeners on port 0, such as the libp2p hosts of tests running in
// parallel, come from those ranges, and one of them could take the port
// between this check and the test's own listen.
func Free(n int) (int, error) {
	for range 200 {
		base := 20000 + rand.IntN(12000-n)
		ok := true
		var held []net.Listener
		for i := range n {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				break
			}
			held = append(held, l)
		}
		for _, l := range held {
			_ = l.Close()
		}
		if ok {
			return base, nil
		}
	}
	return 0, ErrNoFreePorts
}

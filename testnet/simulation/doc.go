// Package simulation runs clearinghouse nodes, and raw gossipsub hosts for
// comparison, on go-libp2p's simulated network (x/simlibp2p) under
// testing/synctest: hundreds of nodes in one process, each link with its
// own latency and a bandwidth limit, and propagation measured in virtual
// time, so the figures do not depend on the machine's load. It has only
// tests: `go test ./testnet/simulation` runs a reduced network; `make sim`
// the full one (see docs/benchmarks.md, "Simulated network").
package simulation

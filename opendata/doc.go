// Package opendata gets a federation's records out of a node and back in,
// in forms that need no clearinghouse node to read: CAR archives of the
// signed DAG-CBOR records (CARv2 with an index, or CARv1 for streams),
// flat tables for analysts (JSON Lines and CSV), and an offline verifier.
//
// It sits beside the HTTP API, on top of package node: export reads the
// store (causally closed, so its arrival order is a causal order) and the
// derived state; import hands every record to [node.Node.Ingest], the path
// gossip and sync use, so a file can never put into a node anything a peer
// could not; verify does the same into a private in-memory observer that
// dials no one, and prints each process's canonical audit as that node
// computes it. The archive format (roots, block order) is specified in
// docs/protocol.md section 12; the tables in docs/opendata.md.
package opendata

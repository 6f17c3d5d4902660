// Package protocol defines what a clearinghouse record is and what makes it
// valid: the signed envelope, its deterministic DAG-CBOR encoding, its CID,
// the ed25519 signature over a domain-separated encoding, the record kinds and
// their body schemas, the federation genesis, topic names and protocol ids.
//
// The package is pure: it performs no I/O, starts no goroutines and never
// reads a clock (the current time is always passed in). Everything that a
// node needs from its surroundings, such as what it has already stored, is
// given to the functions here as arguments. That keeps every rule testable
// with tables and fuzzing, and guarantees that two nodes given the same
// inputs reach the same verdict.
//
// Data flows one way through a node: network or API, then [Decode] and
// [Record.Verify] here, then the store, then derived state. Nothing in this
// package imports the node or the store.
//
// The sync wire format (syncwire.go) is here too: its messages and their
// framing over a reader or writer the caller owns; the streams themselves
// belong to the node.
//
// The byte-level specification is docs/protocol.md; the test vectors there
// are checked by this package's tests.
package protocol

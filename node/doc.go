// Package node is a running clearinghouse peer: a libp2p host, gossipsub
// with one topic per record topic and a validator on each, the ingest
// pipeline (verify, then store durably, then notify), local publishing, and
// the node's metrics.
//
// A node is built by [New] from explicit options and stopped by
// [Node.Close]. Its components are wired in one place, New, in the order
// their dependencies need; every goroutine it starts ends in Close.
//
// Records reach the node from gossip (the topic validator ingests them and
// accepts them for forwarding only once they are durably stored) or from
// local [Node.Publish] calls (built, signed, ingested, then gossiped). A
// record whose causal past (prev and deps) is not yet stored waits in a
// bounded pending set and is applied when its past arrives, so the store
// only ever holds causally complete records.
//
// Every ingest path hands its records to GOMAXPROCS verifier goroutines
// (verify.go), which validate whatever is queued together and check the
// signatures in batches (protocol.ValidateBatch); one apply loop
// (ingest.go), the store's only writer, then checks each record against
// the store and the derived state and writes them in group commits.
//
// Sync (sync.go) guarantees what gossip only announces: on every connection,
// periodically, on following a topic, on a gossip gap and on [Node.Sync],
// the node reconciles each joined topic's record set with its peers
// (range-based reconciliation from the protocol package), fetches what it
// lacks by CID in pipelined batches, and ingests the records through the
// same validation as gossip, on the verifier pool (ingestMany). It also
// serves the same protocol to its peers, observers included.
//
// The host (host.go) listens on TCP and QUIC, announces the addresses
// others can dial (WithAnnounce), learns its reachability with AutoNAT,
// offers a limited circuit relay v2 service while public, and while private
// reserves relay slots and upgrades relayed connections by DCUtR hole
// punching. Its connection manager protects members' connections; its
// resource manager bounds every protocol. Discovery (discovery.go) dials
// the bootstrap peers with backoff while the node has fewer peers than it
// wants, and advertises and finds peers in a Kademlia DHT private to the
// federation, on rendezvous keys of the network and of each followed issue.
// Backups (backup.go) are pebble checkpoints of the running store.
package node

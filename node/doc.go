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
// accepts them for forwarding once they have passed every check and their
// durable write is queued, forward.go), from sync,
// or from local [Node.Publish] calls. A record whose causal past (prev and
// deps) is not yet stored waits in a bounded pending set and is applied when
// its past arrives, so the store only ever holds causally complete records.
// A gossip record that waits is not forwarded then (its validation is
// ignored); the node gossips it itself once it is stored.
//
// # One ingest path, one owner
//
// Every path (gossip, sync, API, pending records at start) goes through
// ingestMany (Ingest is a batch of one): GOMAXPROCS verifier goroutines
// (verify.go) validate whatever is queued together and check the
// signatures in batches (protocol.ValidateBatch); then one apply loop
// (ingest.go) takes every queued record. The apply loop is the store's only
// writer (it alone holds the store's Writer handle) and the only owner of
// the derived state (fedState: membership through
// protocol.MembershipEngine, the index and issues through protocol/gov; the
// node adds no rule of its own). It alone decides whether a record is
// already held, waiting or in conflict with its author's chain
// (heldVerdict), and it alone owns the node's chain position: Publish hands
// it a draft, which it builds and signs on its own chain head, so no caller
// can make the node sign two records at one seq, and a caller that goes
// away does not release anything.
//
// The order for each batch is: verify; check against the store and the
// loop's working state, applying the valid records to it; durable write
// (group commit, pipelined: the loop checks the next batch while the
// previous one syncs); then, once the write is durable, the completion
// goroutine publishes the snapshot of the state that includes the batch,
// answers the callers, sends the events and hands the node's own records
// to gossip. Readers ([Node.Members], [Node.MemberSet], [Node.Issues],
// [Node.Processes], [Node.Process]) load that immutable snapshot without
// locks and never see a record before it is durable; [Node.Audit] and
// [Node.AuditLocal] are computed by the loop itself once everything it has
// accepted is durable. A failed durable write stops the node ([Node.Err]
// wraps [ErrStopped]): the working state is then ahead of the store, and
// the next start rebuilds it from the store.
//
// A start does not replay the whole store (lazy.go): the state is built
// from the members and index topics, and each other topic is loaded from
// the store, in its arrival order, when the apply loop first needs it (a
// record on it or linking into it, a read of one of its processes; a
// reader of an issue not loaded yet waits for the loop to load it and
// publish the snapshot that includes it).
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

// Package store is a node's durable, content-addressed record store: the
// exact signed bytes of every record, keyed by CID, plus the indexes the rest
// of the node reads (by topic, kind, author chain, arrival order and the
// current heads of each topic's causal DAG), all on one pebble database.
//
// The store sits between verification and derived state: a node's ingest
// pipeline verifies a record (package protocol), then calls [Store.Put], then
// applies it to derived state. The store imports no other package of this
// project and never parses a record; it knows a record only through the
// [Entry] the caller fills in. It does check that the bytes it keeps hash to
// their CID, both when writing ([Store.Put]) and when reading ([Store.Get],
// [Store.GetMany]), so a damaged disk cannot hand a node bytes that differ
// from what was signed. The node relies on that read check: it decodes the
// records it reads back without re-checking their canonical encoding
// (protocol.DecodeTrusted), since only records it validated were written.
//
// # Durability and group commit
//
// [Store.Put] returns only after the record and all its index entries are on
// stable storage. One committer goroutine owns all writes: it takes every
// pending Put from a queue (up to the configured maximum batch), writes them
// into a single pebble batch, commits that batch with one fsync, and then
// answers every waiting caller. Concurrent writers therefore share fsyncs.
// Every index is written in the same batch as the block it describes, so the
// indexes are never behind the blocks and are never rebuilt at Open.
//
// # Key layout
//
// Every key starts with a one-byte prefix naming its index. Numbers are
// big-endian uint64 so that byte order is numeric order. Topic and kind
// strings never contain 0x00, which therefore terminates them inside keys.
// Author keys are always 32 bytes (an ed25519 public key).
//
//	0x00                                  format version (one byte, FormatVersion; format.go)
//	0x01 | cid                            block: the exact record bytes
//	0x02 | cid                            meta: encoded Meta (see below)
//	0x03 | arrival                        arrival index: encoded Meta
//	0x04 | topic | 0x00 | arrival         topic index: encoded Meta
//	0x05 | kind  | 0x00 | arrival         kind index: encoded Meta
//	0x06 | author | topic | 0x00 | seq    chain index: encoded Meta
//	0x07 | topic | 0x00 | cid             topic heads: empty value
//	0x08 | topic                          topic counter: records | last arrival
//	0x09                                  totals: records | data bytes | last arrival
//	0x0a | cid                            pending area: raw record waiting for its past
//	0x0b | slug                           follow list: an issue followed at runtime
//	0x0c | author                         block list: a relaying key blocked at runtime
//	0x0d | author | topic | 0x00 | seq | cid  fork index: a record stored (Entry.Fork) at a
//	                                      chain slot another record holds: encoded Meta
//
// Here cid is the binary CID (cid.Cid.Bytes), arrival and seq are 8-byte
// big-endian numbers. The index values repeat the encoded Meta rather than
// only the CID, so that range reads ([Store.TopicRecords], [Store.Since],
// [Store.ByKind], [Store.Chain]) are one sequential scan with no point lookup
// per result; a Meta is roughly 100 bytes against records of several hundred.
//
// An encoded Meta is: a version byte (1); uvarint length and CID bytes;
// arrival, first-seen, claimed time and seq as 8-byte big-endian numbers (the
// two times as two's-complement int64); uvarint size; then uvarint length and
// bytes of author, topic and kind. The counters under 0x08 and 0x09 are
// 8-byte big-endian numbers.
//
// At Open the store reads the schema key, the totals key and the last key of
// the arrival index (one reverse seek), and checks that the last two agree.
// It does no other reads: nothing is counted or rebuilt by scanning.
//
// Two caches spare the hot paths pebble reads, both filled on demand and
// bounded (chaintop.go): the highest seq stored per recently used chain, so
// that the writer's duplicate and chain-slot checks of a record that
// extends its chain read nothing ([Writer.ChainAt]; it may lag a commit
// that has not returned yet, which only the writer can account for); and
// the heads of recently asked-for topics, whose index range fills with
// deletion tombstones until compaction, updated with each commit so that
// [Store.Heads] never lags what pebble readers see.
//
// Tests use the same code on pebble's in-memory file system ([WithInMemory]).
package store

package store

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// AuthorSize is the length in bytes of an author key (an ed25519 public key).
const AuthorSize = 32

// Entry is one record as the store sees it. The store does not parse Data;
// the caller fills in the other fields from the verified record.
type Entry struct {
	// CID is the record's CIDv1, codec dag-cbor (0x71), multihash sha2-256
	// over Data.
	CID cid.Cid
	// Data is the exact signed DAG-CBOR bytes of the record.
	Data []byte
	// Topic is the record topic, e.g. "index", "members", "issue/privacy".
	// It is not empty and never contains 0x00.
	Topic string
	// Kind is the record kind, e.g. "statement". It is not empty and never
	// contains 0x00.
	Kind string
	// Author is the author's 32-byte ed25519 public key.
	Author []byte
	// Seq is the per-author-per-topic sequence number, starting at 1.
	Seq uint64
	// Prev is the author's previous record on the topic, cid.Undef when
	// Seq == 1.
	Prev cid.Cid
	// Deps are the records this one answers or relies on, including the
	// topic heads the author had seen.
	Deps []cid.Cid
	// Time is the claimed time in unix milliseconds.
	Time int64
	// Fork reports whether the record may be stored although its author
	// already has another record at its chain slot (Author, Topic, Seq):
	// the caller has verified both and keeps an equivocation. The record
	// then goes to the fork index, not the chain index, which keeps the
	// slot's first record; every other index holds it as usual. Without
	// Fork such a record is refused with ErrChainConflict.
	Fork bool
}

// Meta is what the store recorded when it accepted an entry.
type Meta struct {
	// CID, Topic, Kind, Author, Seq and Time are copied from the Entry.
	CID         cid.Cid
	Topic, Kind string
	Author      []byte
	Seq         uint64
	Time        int64
	// Arrival is the global arrival number: 1-based, strictly increasing
	// in commit order, persisted, without gaps.
	Arrival uint64
	// FirstSeen is the unix millisecond time this node first stored the
	// record, as given to Put (the store reads no clock).
	FirstSeen int64
	// Size is len(Data).
	Size int
}

// TopicStat is the per-topic summary returned by Topics.
type TopicStat struct {
	// Topic is the topic name.
	Topic string
	// Records is the number of records stored on the topic.
	Records uint64
	// LastArrival is the Arrival of the topic's newest record.
	LastArrival uint64
}

// Stats is the store-wide summary returned by Stats.
type Stats struct {
	// Records is the number of records stored.
	Records uint64
	// Bytes is the total size of all records' Data.
	Bytes uint64
	// LastArrival is the Arrival of the newest record, 0 if the store is
	// empty. The next record stored gets LastArrival+1.
	LastArrival uint64
}

// validate checks the preconditions the store relies on (not the protocol's
// rules, which the caller has already checked) and that Data hashes to CID.
func (e *Entry) validate() error {
	if !e.CID.Defined() {
		return fmt.Errorf("%w: cid: undefined", ErrInvalid)
	}
	if e.CID.Version() != 1 || e.CID.Type() != cid.DagCBOR {
		return fmt.Errorf("%w: cid %s: want CIDv1 dag-cbor", ErrInvalid, e.CID)
	}
	if err := validName("topic", e.Topic); err != nil {
		return err
	}
	if err := validName("kind", e.Kind); err != nil {
		return err
	}
	if err := validAuthor(e.Author); err != nil {
		return err
	}
	if e.Seq == 0 {
		return fmt.Errorf("%w: seq: must be >= 1", ErrInvalid)
	}
	return verifyBlock(e.CID, e.Data)
}

// clone returns a deep copy of e, so that a caller who abandons Put (its
// context ended) may reuse its buffers while the committer still holds the
// entry.
func (e *Entry) clone() Entry {
	c := *e
	c.Data = bytes.Clone(e.Data)
	c.Author = bytes.Clone(e.Author)
	c.Deps = slices.Clone(e.Deps)
	return c
}

// validName checks a topic or kind string.
func validName(field, s string) error {
	if s == "" {
		return fmt.Errorf("%w: %s: empty", ErrInvalid, field)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%w: %s %q: contains 0x00", ErrInvalid, field, s)
	}
	return nil
}

// validAuthor checks an author key.
func validAuthor(a []byte) error {
	if len(a) != AuthorSize {
		return fmt.Errorf("%w: author: want %d bytes, got %d", ErrInvalid, AuthorSize, len(a))
	}
	return nil
}

// verifyBlock reports, as ErrCorrupt, whether data does not hash to c. Only
// sha2-256 multihashes are supported.
func verifyBlock(c cid.Cid, data []byte) error {
	dec, err := mh.Decode(c.Hash())
	if err != nil {
		return fmt.Errorf("%w: cid %s: bad multihash: %w", ErrInvalid, c, err)
	}
	if dec.Code != mh.SHA2_256 || len(dec.Digest) != sha256.Size {
		return fmt.Errorf("%w: cid %s: want sha2-256 multihash", ErrInvalid, c)
	}
	sum := sha256.Sum256(data)
	if !bytes.Equal(sum[:], dec.Digest) {
		return fmt.Errorf("%w: block %s: data does not hash to its cid", ErrCorrupt, c)
	}
	return nil
}

package store

import "errors"

var (
	// ErrNotFound is returned by Get, Meta and ChainAt when the store holds
	// no such record.
	ErrNotFound = errors.New("store: not found")

	// ErrExists is returned by Put when a record with the same CID is
	// already stored; Put then also returns the stored Meta. It is not a
	// failure: the record is durable.
	ErrExists = errors.New("store: already stored")

	// ErrChainConflict is returned by Put when the author already has a
	// different record at the same topic and sequence number (a fork of
	// the author's hash chain). Nothing is stored in that case.
	ErrChainConflict = errors.New("store: chain conflict")

	// ErrCorrupt is returned by Put when an entry's data does not hash to
	// its CID, and by every read when stored bytes do not match their CID
	// or an index value cannot be decoded.
	ErrCorrupt = errors.New("store: corrupt")

	// ErrInvalid is returned by Put and the lookups when an argument breaks
	// the store's preconditions: a CID that is not CIDv1 dag-cbor
	// sha2-256, an author that is not 32 bytes, an empty topic or kind or
	// one containing 0x00, or a sequence number of 0.
	ErrInvalid = errors.New("store: invalid argument")

	// ErrIncompatible is returned by Open when the directory holds a store
	// written with an on-disk format this version does not understand.
	ErrIncompatible = errors.New("store: incompatible on-disk format")

	// ErrWriteFailed is returned by Put, PutBatch and EnqueueBatch's wait
	// when a commit could not be made durable (the disk failed: pebble
	// cannot continue after a failed WAL write), and by every later write:
	// the store takes no more writes until it is closed and opened again,
	// which recovers what was durable.
	ErrWriteFailed = errors.New("store: durable write failed")

	// ErrClosed is returned by every method called after Close, and by Put
	// when Close began before the entry was queued.
	ErrClosed = errors.New("store: closed")
)

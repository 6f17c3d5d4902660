package protocol

import "time"

// Protocol limits. They are part of the protocol: a record that exceeds one
// is invalid on every node, so changing a limit is a protocol version change.
const (
	// Version is the envelope version this package encodes and accepts.
	Version = 1

	// MaxRecordSize is the largest encoded signed record, in bytes.
	MaxRecordSize = 64 << 10

	// MaxGossipFrame is the largest gossipsub RPC frame a node reads, in
	// bytes: gossipsub's own default (1 MiB), which every implementation
	// uses, well above MaxRecordSize. A message of a frame within it whose
	// data is above MaxRecordSize is refused as oversize like any other
	// invalid record, and the stream goes on; a frame above it makes
	// gossipsub reset the stream (the sender's later messages are lost
	// until it opens a new one), so a node never sends one.
	MaxGossipFrame = 1 << 20

	// MaxBodySize is the largest encoded record body, in bytes. Larger
	// documents are separate content-addressed blobs referenced by CID.
	MaxBodySize = 48 << 10

	// MaxDeps is the largest number of CIDs in a record's deps.
	MaxDeps = 64

	// MaxTopicLen is the longest topic name, in bytes.
	MaxTopicLen = 96

	// MaxKindLen is the longest kind name, in bytes.
	MaxKindLen = 48

	// MaxClockSkew is how far in the future a record's claimed time may lie
	// before the record is ignored until then.
	MaxClockSkew = 2 * time.Minute

	// maxNesting bounds CBOR nesting depth during decoding.
	maxNesting = 16

	// maxElements bounds array elements and map pairs during decoding.
	maxElements = 4096
)

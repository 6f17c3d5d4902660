package protocol

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/fxamacker/cbor/v2"
)

// The sync wire format. A sync stream carries requests from the stream's
// opener and responses from the other side, strictly in order: the n-th
// response answers the n-th request, and the opener may send several
// requests before it reads the first response (pipelining). Every message
// is one frame: a uvarint length followed by that many bytes of DAG-CBOR.
// See docs/protocol.md, "Sync protocol".

// Sync limits. They are part of the sync wire protocol.
const (
	// SyncMaxFrame is the largest frame body, in bytes.
	SyncMaxFrame = 4 << 20
	// SyncMaxFetch is the largest number of CIDs one fetch request names.
	SyncMaxFetch = 1024
	// SyncMaxFetchRecords is the largest number of records one fetch
	// response carries; the requester asks again for the rest.
	SyncMaxFetchRecords = 256
	// SyncMaxFetchBytes bounds the record bytes of one fetch response: a
	// responder stops adding records before it would exceed it.
	SyncMaxFetchBytes = SyncMaxFrame - 64<<10
)

// Sync message types.
const (
	// SyncReconcile carries reconciliation ranges of a topic (request and
	// response).
	SyncReconcile = 1
	// SyncFetch asks for records by CID; the response carries their bytes.
	SyncFetch = 2
	// SyncChainHead asks for the highest seq an author has on a topic.
	SyncChainHead = 3
)

// SyncRequest is a message from the opener of a sync stream.
type SyncRequest struct {
	// Type is SyncReconcile, SyncFetch or SyncChainHead.
	Type int `cbor:"type"`
	// Topic is the record topic the request is about.
	Topic string `cbor:"topic"`
	// Ranges is the reconciliation message (SyncReconcile).
	Ranges []Range `cbor:"ranges"`
	// CIDs are the binary CIDs of the records wanted (SyncFetch), at most
	// SyncMaxFetch.
	CIDs [][]byte `cbor:"cids"`
	// Author is the 32-byte author key whose chain head is asked for
	// (SyncChainHead).
	Author []byte `cbor:"author"`
}

// SyncResponse is the answer to one SyncRequest.
type SyncResponse struct {
	// Type repeats the request's type.
	Type int `cbor:"type"`
	// Error is empty on success; otherwise the request was refused and the
	// responder closes the stream.
	Error string `cbor:"error"`
	// Ranges is the responder's reconciliation message (SyncReconcile).
	Ranges []Range `cbor:"ranges"`
	// Records are the exact stored bytes of the records found, in request
	// order (SyncFetch).
	Records [][]byte `cbor:"records"`
	// Served is how many of the requested CIDs, from the first, the
	// responder looked at (found or not); the requester asks again for
	// CIDs[Served:] (SyncFetch).
	Served int `cbor:"served"`
	// Seq and Head are the author's highest seq on the topic and its
	// binary CID, 0 and empty if the responder holds none (SyncChainHead).
	Seq  uint64 `cbor:"seq"`
	Head []byte `cbor:"head"`
}

// ErrBadMessage is returned by Unmarshal and ReadFrame when a sync message
// does not decode strictly.
var ErrBadMessage = errors.New("protocol: malformed sync message")

// ErrFrameTooLarge is returned by ReadFrame and WriteFrame when a frame
// exceeds SyncMaxFrame.
var ErrFrameTooLarge = errors.New("protocol: sync frame too large")

// syncDecMode decodes sync messages: the record profile's strictness, with
// array limits raised to what a SyncMaxFrame frame can hold.
var syncDecMode cbor.DecMode

func init() {
	var err error
	syncDecMode, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   maxNesting,
		MaxArrayElements:  1 << 20,
		MaxMapPairs:       64,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
		UTF8:              cbor.UTF8RejectInvalid,
		IntDec:            cbor.IntDecConvertSignedOrFail,
		BinaryUnmarshaler: cbor.BinaryUnmarshalerNone,
		TextUnmarshaler:   cbor.TextUnmarshalerNone,
	}.DecMode()
	if err != nil {
		panic("protocol: sync cbor decoder options: " + err.Error())
	}
}

// Unmarshal decodes a sync message strictly: definite lengths, no tags,
// no duplicate or unknown map keys, valid UTF-8. Unlike record decoding it
// does not require the canonical encoding.
func Unmarshal(data []byte, v any) error {
	if err := syncDecMode.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	return nil
}

// WriteFrame encodes v with Marshal and writes it as one frame.
func WriteFrame(w io.Writer, v any) error {
	body, err := Marshal(v)
	if err != nil {
		return err
	}
	if len(body) > SyncMaxFrame {
		return fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, len(body))
	}
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(body)))
	if _, err := w.Write(append(hdr[:n:n], body...)); err != nil {
		return err
	}
	return nil
}

// ReadFrame reads one frame and decodes it into v with Unmarshal.
func ReadFrame(r *bufio.Reader, v any) error {
	size, err := binary.ReadUvarint(r)
	if err != nil {
		return err
	}
	if size > SyncMaxFrame {
		return fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, size)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(r, body); err != nil {
		return err
	}
	return Unmarshal(body, v)
}

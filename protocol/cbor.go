package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// The DAG-CBOR profile used for every record: deterministic encoding with
// map keys sorted length-first then bytewise (RFC 7049 canonical, as the
// DAG-CBOR spec requires), definite lengths only, no tags other than 42
// (CID links), no floats in any schema, strict decoding of known fields.
var (
	encMode cbor.UserBufferEncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.EncOptions{
		Sort:          cbor.SortLengthFirst,
		ShortestFloat: cbor.ShortestFloatNone,
		IndefLength:   cbor.IndefLengthForbidden,
		NilContainers: cbor.NilContainerAsEmpty,
		TagsMd:        cbor.TagsAllowed,
		String:        cbor.StringToTextString,
		FieldName:     cbor.FieldNameToTextString,
	}.UserBufferEncMode()
	if err != nil {
		panic("protocol: cbor encoder options: " + err.Error())
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsAllowed,
		MaxNestedLevels:   maxNesting,
		MaxArrayElements:  maxElements,
		MaxMapPairs:       maxElements,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
		UTF8:              cbor.UTF8RejectInvalid,
		IntDec:            cbor.IntDecConvertSignedOrFail,
		BinaryUnmarshaler: cbor.BinaryUnmarshalerNone,
		TextUnmarshaler:   cbor.TextUnmarshalerNone,
	}.DecMode()
	if err != nil {
		panic("protocol: cbor decoder options: " + err.Error())
	}
}

// Marshal encodes v in the DAG-CBOR profile of this protocol.
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// unmarshalCanonical decodes data into v strictly and then requires that v
// re-encodes to exactly data: there is one encoding per value, so no two
// byte strings (and no two CIDs) can carry the same record.
func unmarshalCanonical(data []byte, v any) error {
	if err := unmarshalStrict(data, v); err != nil {
		return err
	}
	// Re-encoded into a reused buffer: every record a node receives
	// passes here, and the copy Marshal returns was garbage at once.
	buf := reencodeBufs.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledReencode {
			buf.Reset()
			reencodeBufs.Put(buf)
		}
	}()
	buf.Reset()
	if err := encMode.MarshalToBuffer(v, buf); err != nil {
		return Errorf(ReasonBadEncoding, "re-encode: %v", err)
	}
	if again := buf.Bytes(); !bytes.Equal(again, data) {
		return Errorf(ReasonNonCanonical, "encoding is not canonical DAG-CBOR (%d bytes, canonical form is %d bytes)", len(data), len(again))
	}
	return nil
}

// reencodeBufs holds the buffers unmarshalCanonical re-encodes into; one
// grown beyond maxPooledReencode (a large record) is left to the garbage
// collector rather than kept.
var reencodeBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledReencode = 64 << 10

// unmarshalStrict decodes data into v with the strict decoder options
// (no duplicate keys, no unknown fields, valid UTF-8, no indefinite
// lengths) but does not check that data is the canonical encoding.
func unmarshalStrict(data []byte, v any) error {
	if err := decMode.Unmarshal(data, v); err != nil {
		return Errorf(ReasonBadEncoding, "%v", err)
	}
	return nil
}

// cidTag is the CBOR tag DAG-CBOR uses for CID links.
const cidTag = 42

// Link is a DAG-CBOR link: a CID encoded as CBOR tag 42 over the byte
// string 0x00 followed by the binary CID.
type Link struct {
	cid.Cid
}

// LinkTo returns a Link to c.
func LinkTo(c cid.Cid) Link { return Link{c} }

// MarshalCBOR encodes l as tag 42.
func (l Link) MarshalCBOR() ([]byte, error) {
	if !l.Defined() {
		return nil, errors.New("protocol: cannot encode an undefined CID link")
	}
	b := l.Bytes()
	content := make([]byte, 0, len(b)+1)
	content = append(content, 0x00)
	content = append(content, b...)
	bstr, err := encMode.Marshal(content)
	if err != nil {
		return nil, err
	}
	// RawTag writes the tag head itself, without a reflective walk of a
	// cbor.Tag value: links are on every record's hot path.
	return cbor.RawTag{Number: cidTag, Content: bstr}.MarshalCBOR()
}

// UnmarshalCBOR decodes tag 42 into l.
func (l *Link) UnmarshalCBOR(data []byte) error {
	// The canonical form, which every valid record uses, is read without
	// the generic decoder: data is exactly one well-formed data item (the
	// decoder has checked that), so if it starts with the one-byte tag 42
	// head and a byte string head whose length runs to the end of data,
	// it is that tag over that byte string. Any other form goes the
	// generic way below, which gives the same result for the same item.
	if len(data) > 4 && data[0] == 0xd8 && data[1] == cidTag {
		var content []byte
		switch h := data[2]; {
		case h >= 0x40 && h < 0x40+24 && int(h-0x40) == len(data)-3:
			content = data[3:]
		case h == 0x58 && int(data[3]) == len(data)-4:
			content = data[4:]
		}
		if content != nil {
			return l.setContent(content)
		}
	}
	// One pass: the tag and its content, which must be a byte string.
	var tag cbor.Tag
	if err := decMode.Unmarshal(data, &tag); err != nil {
		return err
	}
	if tag.Number != cidTag {
		return fmt.Errorf("protocol: link: tag %d, want %d", tag.Number, cidTag)
	}
	content, ok := tag.Content.([]byte)
	if !ok {
		return fmt.Errorf("protocol: link: tag %d content is %T, want a byte string", cidTag, tag.Content)
	}
	return l.setContent(content)
}

// setContent sets l from the content of a tag 42: 0x00 then a binary CID.
func (l *Link) setContent(content []byte) error {
	if len(content) < 2 || content[0] != 0x00 {
		return errors.New("protocol: link: CID bytes must start with the 0x00 multibase prefix")
	}
	c, err := cid.Cast(content[1:])
	if err != nil {
		return fmt.Errorf("protocol: link: %w", err)
	}
	l.Cid = c
	return nil
}

// RecordCID returns the CID of an encoded record: CIDv1, codec dag-cbor,
// multihash sha2-256 over the full signed bytes.
func RecordCID(data []byte) cid.Cid {
	sum, err := mh.Sum(data, mh.SHA2_256, -1)
	if err != nil {
		// sha2-256 is always registered; Sum fails only for unknown codes.
		panic("protocol: sha2-256 multihash: " + err.Error())
	}
	return cid.NewCidV1(cid.DagCBOR, sum)
}

// IsRecordCID reports whether c has the shape of a record CID: version 1,
// codec dag-cbor, multihash sha2-256 of 32 bytes.
func IsRecordCID(c cid.Cid) bool {
	if !c.Defined() || c.Version() != 1 || c.Type() != cid.DagCBOR {
		return false
	}
	p := c.Prefix()
	return p.MhType == mh.SHA2_256 && p.MhLength == 32
}

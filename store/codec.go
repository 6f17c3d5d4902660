package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/ipfs/go-cid"
)

// metaV1 is the version byte of an encoded Meta.
const metaV1 byte = 1

// errShort is the cause of every truncated-value decoding error.
var errShort = errors.New("value truncated")

// encodeMeta encodes m as documented in doc.go.
func encodeMeta(m *Meta) []byte {
	c := m.CID.Bytes()
	n := 1 + 3*binary.MaxVarintLen64 + len(c) + 4*8 + len(m.Author) + len(m.Topic) + len(m.Kind) + binary.MaxVarintLen64
	b := make([]byte, 0, n)
	b = append(b, metaV1)
	b = binary.AppendUvarint(b, uint64(len(c)))
	b = append(b, c...)
	b = binary.BigEndian.AppendUint64(b, m.Arrival)
	b = binary.BigEndian.AppendUint64(b, uint64(m.FirstSeen))
	b = binary.BigEndian.AppendUint64(b, uint64(m.Time))
	b = binary.BigEndian.AppendUint64(b, m.Seq)
	b = binary.AppendUvarint(b, uint64(m.Size))
	b = binary.AppendUvarint(b, uint64(len(m.Author)))
	b = append(b, m.Author...)
	b = binary.AppendUvarint(b, uint64(len(m.Topic)))
	b = append(b, m.Topic...)
	b = binary.AppendUvarint(b, uint64(len(m.Kind)))
	b = append(b, m.Kind...)
	return b
}

// decoder reads fixed and length-prefixed fields, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) u64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.err = errShort
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes returns a length-prefixed field, aliasing the input.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errShort
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// decodeMeta decodes a value written by encodeMeta. The result does not alias
// b. Errors wrap ErrCorrupt.
func decodeMeta(b []byte) (Meta, error) {
	if len(b) == 0 || b[0] != metaV1 {
		return Meta{}, fmt.Errorf("%w: meta: unknown encoding", ErrCorrupt)
	}
	d := decoder{b: b[1:]}
	cb := d.bytes()
	var m Meta
	m.Arrival = d.u64()
	m.FirstSeen = int64(d.u64())
	m.Time = int64(d.u64())
	m.Seq = d.u64()
	size := d.uvarint()
	author := d.bytes()
	topic := d.bytes()
	kind := d.bytes()
	if d.err == nil && len(d.b) != 0 {
		d.err = errors.New("trailing bytes")
	}
	if d.err == nil && size > math.MaxInt {
		d.err = errors.New("size out of range")
	}
	if d.err != nil {
		return Meta{}, fmt.Errorf("%w: meta: %w", ErrCorrupt, d.err)
	}
	c, err := cid.Cast(cb)
	if err != nil {
		return Meta{}, fmt.Errorf("%w: meta: cid: %w", ErrCorrupt, err)
	}
	m.CID = c
	m.Size = int(size)
	m.Author = append([]byte(nil), author...)
	m.Topic = string(topic)
	m.Kind = string(kind)
	return m, nil
}

// topicStat is the value under a topic counter key.
type topicStat struct {
	records, lastArrival uint64
}

func (t topicStat) encode() []byte {
	b := make([]byte, 0, 16)
	b = binary.BigEndian.AppendUint64(b, t.records)
	return binary.BigEndian.AppendUint64(b, t.lastArrival)
}

func decodeTopicStat(b []byte) (topicStat, error) {
	if len(b) != 16 {
		return topicStat{}, fmt.Errorf("%w: topic counter: want 16 bytes, got %d", ErrCorrupt, len(b))
	}
	return topicStat{
		records:     binary.BigEndian.Uint64(b),
		lastArrival: binary.BigEndian.Uint64(b[8:]),
	}, nil
}

func (s Stats) encode() []byte {
	b := make([]byte, 0, 24)
	b = binary.BigEndian.AppendUint64(b, s.Records)
	b = binary.BigEndian.AppendUint64(b, s.Bytes)
	return binary.BigEndian.AppendUint64(b, s.LastArrival)
}

func decodeStats(b []byte) (Stats, error) {
	if len(b) != 24 {
		return Stats{}, fmt.Errorf("%w: totals: want 24 bytes, got %d", ErrCorrupt, len(b))
	}
	return Stats{
		Records:     binary.BigEndian.Uint64(b),
		Bytes:       binary.BigEndian.Uint64(b[8:]),
		LastArrival: binary.BigEndian.Uint64(b[16:]),
	}, nil
}

package opendata

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ipfs/go-cid"
	car "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/index"
	"github.com/multiformats/go-multicodec"
)

// MediaCAR is the media type of a CAR archive (a CARv1 stream over HTTP).
const MediaCAR = "application/vnd.ipld.car"

// Limits of the CAR reader. A section holds one record (at most
// protocol.MaxRecordSize bytes) or the genesis, plus its CID.
const (
	maxCARHeader  = 64 << 10
	maxCARSection = 1 << 20
)

// ErrNotCAR is returned by ReadCAR when the input is not a CARv1 or CARv2
// file.
var ErrNotCAR = errors.New("opendata: not a CAR file")

// CARWriter writes a CARv1 stream: the header, then one section per block.
// It keeps nothing per block, so its memory does not grow with the archive.
// Create it with NewCARWriter; the caller must call Flush at the end.
type CARWriter struct {
	bw     *bufio.Writer
	n      int64 // bytes written, header included
	blocks int
}

// NewCARWriter writes the header of a CARv1 with the given roots to w and
// returns a writer for its blocks.
func NewCARWriter(w io.Writer, roots []cid.Cid) (*CARWriter, error) {
	cw := &CARWriter{bw: bufio.NewWriterSize(w, 64<<10)}
	if err := cw.section(carHeader(roots)); err != nil {
		return nil, fmt.Errorf("opendata: write CAR header: %w", err)
	}
	return cw, nil
}

// carHeader encodes the CARv1 header {roots: [...], version: 1} as
// canonical DAG-CBOR ("roots" sorts before "version": shorter key first).
func carHeader(roots []cid.Cid) []byte {
	var b []byte
	b = append(b, 0xa2)
	b = cborText(b, "roots")
	b = cborHead(b, 4, uint64(len(roots)))
	for _, r := range roots {
		cb := r.Bytes()
		b = append(b, 0xd8, 0x2a) // tag 42
		b = cborHead(b, 2, uint64(len(cb)+1))
		b = append(b, 0x00)
		b = append(b, cb...)
	}
	b = cborText(b, "version")
	return append(b, 0x01)
}

func cborHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= 0xff:
		return append(b, m|24, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(n))
	case n <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, m|27), n)
}

func cborText(b []byte, s string) []byte { return append(cborHead(b, 3, uint64(len(s))), s...) }

// section writes uvarint(len(parts)) followed by the parts.
func (cw *CARWriter) section(parts ...[]byte) error {
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	var hdr [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(hdr[:], uint64(size))
	if _, err := cw.bw.Write(hdr[:k]); err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := cw.bw.Write(p); err != nil {
			return err
		}
	}
	cw.n += int64(k + size)
	return nil
}

// Put appends a block. The caller is responsible for c matching data.
func (cw *CARWriter) Put(c cid.Cid, data []byte) error {
	if err := cw.section(c.Bytes(), data); err != nil {
		return fmt.Errorf("opendata: write block %s: %w", c, err)
	}
	cw.blocks++
	return nil
}

// Flush writes out what is buffered.
func (cw *CARWriter) Flush() error {
	if err := cw.bw.Flush(); err != nil {
		return fmt.Errorf("opendata: write CAR: %w", err)
	}
	return nil
}

// Size returns the number of bytes written so far (buffered ones included).
func (cw *CARWriter) Size() int64 { return cw.n }

// Blocks returns the number of blocks written so far.
func (cw *CARWriter) Blocks() int { return cw.blocks }

// CARv2File writes a CARv2 file: the CARv1 payload is streamed into f
// after room for the CARv2 pragma and header (blocks go to Writer); Finish
// then reads the payload back to build a sorted multihash index, which
// holds every block's digest in memory, appends it and writes the header.
// Until Finish the file starts with zeros, so a file left unfinished is no
// CAR at all rather than a CAR that looks whole.
type CARv2File struct {
	f  *os.File
	cw *CARWriter
}

// NewCARv2File starts a CARv2 in f, which must be empty and open for
// reading and writing.
func NewCARv2File(f *os.File, roots []cid.Cid) (*CARv2File, error) {
	off := int64(car.PragmaSize + car.HeaderSize)
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, fmt.Errorf("opendata: %w", err)
	}
	cw, err := NewCARWriter(f, roots)
	if err != nil {
		return nil, err
	}
	return &CARv2File{f: f, cw: cw}, nil
}

// Writer returns the writer of the CARv1 payload.
func (v *CARv2File) Writer() *CARWriter { return v.cw }

// Finish flushes the payload, appends the index and writes the CARv2
// header. It does not close f.
func (v *CARv2File) Finish() error {
	if err := v.cw.Flush(); err != nil {
		return err
	}
	off := int64(car.PragmaSize + car.HeaderSize)
	size := v.cw.Size()
	idx, err := index.New(multicodec.CarMultihashIndexSorted)
	if err != nil {
		return fmt.Errorf("opendata: CAR index: %w", err)
	}
	if err := car.LoadIndex(idx, io.NewSectionReader(v.f, off, size)); err != nil {
		return fmt.Errorf("opendata: CAR index: %w", err)
	}
	if _, err := v.f.Seek(off+size, io.SeekStart); err != nil {
		return fmt.Errorf("opendata: %w", err)
	}
	bw := bufio.NewWriter(v.f)
	if _, err := index.WriteTo(idx, bw); err != nil {
		return fmt.Errorf("opendata: write CAR index: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("opendata: write CAR index: %w", err)
	}
	var hdr bytes.Buffer
	hdr.Write(car.Pragma)
	h := car.NewHeader(uint64(size))
	if _, err := h.WriteTo(&hdr); err != nil {
		return fmt.Errorf("opendata: CARv2 header: %w", err)
	}
	if _, err := v.f.WriteAt(hdr.Bytes(), 0); err != nil {
		return fmt.Errorf("opendata: write CARv2 header: %w", err)
	}
	return nil
}

// Block is one section of a CAR as read: the CID it is filed under and the
// bytes, not yet checked against each other.
type Block struct {
	CID  cid.Cid
	Data []byte
}

// HashOK reports whether b's bytes hash to its CID.
func (b Block) HashOK() bool {
	c, err := b.CID.Prefix().Sum(b.Data)
	return err == nil && c.Equals(b.CID)
}

// CARReader reads the blocks of a CARv1 or CARv2 stream in file order.
type CARReader struct {
	br *car.BlockReader
}

// NewCARReader reads the header of a CAR from r (CARv1 or CARv2; a CARv2's
// index is not read, so r need not be seekable).
func NewCARReader(r io.Reader) (*CARReader, error) {
	br, err := car.NewBlockReader(bufio.NewReaderSize(r, 64<<10),
		car.WithTrustedCAR(true), // hashes are checked by the caller, to report them
		car.MaxAllowedHeaderSize(maxCARHeader),
		car.MaxAllowedSectionSize(maxCARSection))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotCAR, err)
	}
	return &CARReader{br: br}, nil
}

// Version returns the CAR version, 1 or 2.
func (cr *CARReader) Version() uint64 { return cr.br.Version }

// Roots returns the CAR's roots.
func (cr *CARReader) Roots() []cid.Cid { return cr.br.Roots }

// Next returns the next block, or io.EOF after the last one.
func (cr *CARReader) Next() (Block, error) {
	b, err := cr.br.Next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return Block{}, io.EOF
		}
		return Block{}, fmt.Errorf("opendata: read CAR: %w", err)
	}
	return Block{CID: b.Cid(), Data: b.RawData()}, nil
}

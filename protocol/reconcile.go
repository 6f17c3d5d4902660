package protocol

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sort"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// Range-based set reconciliation, after Aljoscha Meyer's range-based set
// reconciliation and Nostr's negentropy. Two peers hold sets of records of
// a topic; each record is an [Item] (claimed time, 32-byte id = the sha2-256
// digest of its CID). Items are ordered by (time, id). The initiator sends
// the fingerprint of its whole set; the responder answers each range it
// receives with "skip" (same fingerprint), its id list (few items) or a
// split into ReconcileFanout sub-ranges with fingerprints; the initiator
// echoes the fingerprints of sub-ranges that differ, and so on. Round trips
// grow with log(n / difference), and only the initiator learns what it
// lacks (each side initiates its own pull).

// Reconciliation parameters. They are part of the sync wire protocol.
const (
	// ReconcileFanout is how many sub-ranges a differing range splits into.
	ReconcileFanout = 16
	// ReconcileIDListMax is the largest range answered with an id list
	// instead of a split.
	ReconcileIDListMax = 64
	// ReconcileMaxRanges bounds the ranges of one reconcile message; more
	// are carried over to the next round.
	ReconcileMaxRanges = 8192
)

// Item is one record as reconciliation sees it.
type Item struct {
	Time int64
	ID   [32]byte
}

// ItemOf returns the item of a record CID with the given claimed time. It
// fails for CIDs that are not record CIDs.
func ItemOf(c cid.Cid, time int64) (Item, error) {
	if !IsRecordCID(c) {
		return Item{}, fmt.Errorf("protocol: %s is not a record CID", c)
	}
	d, err := mh.Decode(c.Hash())
	if err != nil {
		return Item{}, err
	}
	it := Item{Time: time}
	copy(it.ID[:], d.Digest)
	return it, nil
}

// CID returns the record CID of the item.
func (it Item) CID() cid.Cid {
	h, _ := mh.Encode(it.ID[:], mh.SHA2_256)
	return cid.NewCidV1(cid.DagCBOR, h)
}

func (it Item) less(b Bound) bool {
	if it.Time != b.Time {
		return it.Time < b.Time
	}
	return bytes.Compare(it.ID[:], b.ID) < 0
}

// Bound is the exclusive upper end of a range: every item ordered before
// (Time, ID) is below it. ID may be a prefix shorter than 32 bytes.
type Bound struct {
	Time int64  `cbor:"t"`
	ID   []byte `cbor:"id"`
}

// Infinity is the bound above every item.
var Infinity = Bound{Time: math.MaxInt64}

// Fingerprint summarises the items of a range: the first 16 bytes of
// sha2-256 over (the sum of their ids as 256-bit little-endian integers
// modulo 2^256, then the count as uvarint).
type Fingerprint [16]byte

// Range modes.
const (
	ModeSkip        = 0 // the ranges agree; nothing to do
	ModeFingerprint = 1 // Fingerprint holds the sender's fingerprint of the range
	ModeIDList      = 2 // IDs holds every id of the sender in the range
)

// Range is one entry of a reconcile message. Ranges of a message are
// contiguous: each starts where the previous one ended (the first at the
// lowest possible item).
type Range struct {
	Upper Bound    `cbor:"upper"`
	Mode  int      `cbor:"mode"`
	FP    []byte   `cbor:"fp"`
	IDs   [][]byte `cbor:"ids"`
}

// ItemSet is a sorted set of items with prefix sums for fast fingerprints.
type ItemSet struct {
	items []Item
	sums  [][4]uint64 // sums[i] = sum of ids of items[:i]
}

// NewItemSet sorts items (removing duplicates) and indexes them.
func NewItemSet(items []Item) *ItemSet {
	slices.SortFunc(items, compareItems)
	items = slices.Compact(items)
	s := &ItemSet{items: items, sums: make([][4]uint64, len(items)+1)}
	for i, it := range items {
		s.sums[i+1] = add256(s.sums[i], it.ID)
	}
	return s
}

// With returns the set with items added, as NewItemSet of both would; s
// is not changed (sets are shared by concurrent sessions). Adding k items
// to a set of n costs O(n + k log k) in memory copies, with no hashing
// below the first new item: a node keeps a topic's set up to date this way
// as records arrive, instead of reading the topic again.
func (s *ItemSet) With(items []Item) *ItemSet {
	if len(items) == 0 {
		return s
	}
	add := slices.Clone(items)
	slices.SortFunc(add, compareItems)
	add = slices.Compact(add)
	add = slices.DeleteFunc(add, func(it Item) bool {
		_, found := slices.BinarySearchFunc(s.items, it, compareItems)
		return found
	})
	if len(add) == 0 {
		return s
	}
	merged := make([]Item, 0, len(s.items)+len(add))
	first := -1 // index in merged of the first added item
	i, j := 0, 0
	for i < len(s.items) || j < len(add) {
		if j == len(add) || (i < len(s.items) && compareItems(s.items[i], add[j]) < 0) {
			merged = append(merged, s.items[i])
			i++
			continue
		}
		if first < 0 {
			first = len(merged)
		}
		merged = append(merged, add[j])
		j++
	}
	sums := make([][4]uint64, len(merged)+1)
	copy(sums, s.sums[:first+1])
	for k := first; k < len(merged); k++ {
		sums[k+1] = add256(sums[k], merged[k].ID)
	}
	return &ItemSet{items: merged, sums: sums}
}

func compareItems(a, b Item) int {
	if a.Time != b.Time {
		if a.Time < b.Time {
			return -1
		}
		return 1
	}
	return bytes.Compare(a.ID[:], b.ID[:])
}

// Len returns the number of items.
func (s *ItemSet) Len() int { return len(s.items) }

// Has reports whether the set holds an item with the given id.
func (s *ItemSet) index(b Bound) int {
	return sort.Search(len(s.items), func(i int) bool { return !s.items[i].less(b) })
}

func add256(a [4]uint64, id [32]byte) [4]uint64 {
	var carry uint64
	for i := range 4 {
		a[i], carry = bits.Add64(a[i], binary.LittleEndian.Uint64(id[i*8:]), carry)
	}
	return a
}

func sub256(a, b [4]uint64) [4]uint64 {
	var borrow uint64
	for i := range 4 {
		a[i], borrow = bits.Sub64(a[i], b[i], borrow)
	}
	return a
}

func (s *ItemSet) fingerprint(lo, hi int) Fingerprint {
	sum := sub256(s.sums[hi], s.sums[lo])
	var buf [32 + binary.MaxVarintLen64]byte
	for i := range 4 {
		binary.LittleEndian.PutUint64(buf[i*8:], sum[i])
	}
	n := binary.PutUvarint(buf[32:], uint64(hi-lo))
	h := sha256.Sum256(buf[:32+n])
	var fp Fingerprint
	copy(fp[:], h[:16])
	return fp
}

// Initiate returns the first message of a reconciliation: one range over
// everything with the set's fingerprint.
func (s *ItemSet) Initiate() []Range {
	fp := s.fingerprint(0, len(s.items))
	return []Range{{Upper: Infinity, Mode: ModeFingerprint, FP: fp[:]}}
}

// InitiateBelow is Initiate for the items whose time is below t only: one
// range up to (t, no id) with the fingerprint of those items, then a skip
// of everything from t on. The responder answers only about the first
// range, so records claimed at t or later are left out of the whole
// reconciliation on both sides. A node uses it to leave the records still
// crossing the network by gossip out of a periodic sync.
func (s *ItemSet) InitiateBelow(t int64) []Range {
	if t == math.MaxInt64 {
		return s.Initiate()
	}
	b := Bound{Time: t}
	fp := s.fingerprint(0, s.index(b))
	return []Range{{Upper: b, Mode: ModeFingerprint, FP: fp[:]}, {Upper: Infinity, Mode: ModeSkip}}
}

// Respond answers a message as the responder: skip where fingerprints
// agree, the id list of small ranges, a split of large ones. It returns an
// error for a malformed message (ranges out of order, bad modes).
func (s *ItemSet) Respond(msg []Range) ([]Range, error) {
	var out []Range
	lo := 0
	var prev *Bound
	for i := range msg {
		r := &msg[i]
		if err := checkRange(r, prev); err != nil {
			return nil, err
		}
		prev = &r.Upper
		hi := s.index(r.Upper)
		if hi < lo {
			hi = lo
		}
		switch r.Mode {
		case ModeSkip:
		case ModeFingerprint:
			fp := s.fingerprint(lo, hi)
			switch {
			case bytes.Equal(fp[:], r.FP):
				out = appendSkip(out, r.Upper)
			case hi-lo <= ReconcileIDListMax:
				out = append(out, Range{Upper: r.Upper, Mode: ModeIDList, IDs: s.ids(lo, hi)})
			default:
				out = append(out, s.split(lo, hi, r.Upper)...)
			}
		case ModeIDList:
			// The responder learns nothing it needs from the initiator's
			// ids in a pull; it acknowledges the range.
			out = appendSkip(out, r.Upper)
		}
		lo = hi
	}
	return out, nil
}

// Continue processes a response as the initiator: it returns the ids the
// responder holds that this set lacks, and the next message (nil when the
// reconciliation is complete).
func (s *ItemSet) Continue(msg []Range) (need [][32]byte, next []Range, err error) {
	need, _, next, err = s.ContinueBounds(msg)
	return need, next, err
}

// ContinueBounds is Continue that also returns, for each id needed, the
// upper bound of the range it was listed in. Ranges are disjoint and a
// range lists its ids in (time, id) order, so sorting the ids needed over
// all the messages of a reconciliation by bound (stably) puts them in the
// responder's (time, id) order: parents, which are older, come first.
func (s *ItemSet) ContinueBounds(msg []Range) (need [][32]byte, uppers []Bound, next []Range, err error) {
	lo := 0
	var prev *Bound
	for i := range msg {
		r := &msg[i]
		if err := checkRange(r, prev); err != nil {
			return nil, nil, nil, err
		}
		prev = &r.Upper
		hi := s.index(r.Upper)
		if hi < lo {
			hi = lo
		}
		switch r.Mode {
		case ModeSkip:
			next = appendSkip(next, r.Upper)
		case ModeIDList:
			mine := map[[32]byte]bool{}
			for _, it := range s.items[lo:hi] {
				mine[it.ID] = true
			}
			for _, id := range r.IDs {
				var k [32]byte
				copy(k[:], id)
				if !mine[k] {
					need = append(need, k)
					uppers = append(uppers, r.Upper)
				}
			}
			next = appendSkip(next, r.Upper)
		case ModeFingerprint:
			fp := s.fingerprint(lo, hi)
			if bytes.Equal(fp[:], r.FP) {
				next = appendSkip(next, r.Upper)
			} else {
				next = append(next, Range{Upper: r.Upper, Mode: ModeFingerprint, FP: fp[:]})
			}
		}
		lo = hi
	}
	if !slices.ContainsFunc(next, func(r Range) bool { return r.Mode != ModeSkip }) {
		next = nil
	}
	return need, uppers, next, nil
}

// CompareBounds orders bounds as ranges are ordered: by time, then id.
func CompareBounds(a, b Bound) int { return compareBound(a, b) }

func checkRange(r *Range, prev *Bound) error {
	switch r.Mode {
	case ModeSkip, ModeIDList:
	case ModeFingerprint:
		if len(r.FP) != len(Fingerprint{}) {
			return fmt.Errorf("protocol: reconcile: fingerprint of %d bytes", len(r.FP))
		}
	default:
		return fmt.Errorf("protocol: reconcile: unknown range mode %d", r.Mode)
	}
	if len(r.Upper.ID) > 32 {
		return fmt.Errorf("protocol: reconcile: bound id longer than 32 bytes")
	}
	for _, id := range r.IDs {
		if len(id) != 32 {
			return fmt.Errorf("protocol: reconcile: id of %d bytes", len(id))
		}
	}
	if prev != nil && compareBound(*prev, r.Upper) >= 0 {
		return fmt.Errorf("protocol: reconcile: ranges out of order")
	}
	return nil
}

func compareBound(a, b Bound) int {
	if a.Time != b.Time {
		if a.Time < b.Time {
			return -1
		}
		return 1
	}
	return bytes.Compare(a.ID, b.ID)
}

// appendSkip appends a skip range, merging it with a preceding skip.
func appendSkip(out []Range, upper Bound) []Range {
	if n := len(out); n > 0 && out[n-1].Mode == ModeSkip {
		out[n-1].Upper = upper
		return out
	}
	return append(out, Range{Upper: upper, Mode: ModeSkip})
}

func (s *ItemSet) ids(lo, hi int) [][]byte {
	out := make([][]byte, 0, hi-lo)
	for _, it := range s.items[lo:hi] {
		out = append(out, slices.Clone(it.ID[:]))
	}
	return out
}

// split divides items[lo:hi] into ReconcileFanout ranges with fingerprints,
// the last ending at upper.
func (s *ItemSet) split(lo, hi int, upper Bound) []Range {
	n := hi - lo
	out := make([]Range, 0, ReconcileFanout)
	start := lo
	for k := 1; k <= ReconcileFanout; k++ {
		end := lo + n*k/ReconcileFanout
		var b Bound
		if k == ReconcileFanout {
			b, end = upper, hi
		} else {
			b = minimalBound(s.items[end-1], s.items[end])
		}
		fp := s.fingerprint(start, end)
		out = append(out, Range{Upper: b, Mode: ModeFingerprint, FP: fp[:]})
		start = end
	}
	return out
}

// minimalBound returns the shortest bound above prev and at most next.
func minimalBound(prev, next Item) Bound {
	if prev.Time != next.Time {
		return Bound{Time: next.Time}
	}
	i := 0
	for i < 32 && prev.ID[i] == next.ID[i] {
		i++
	}
	return Bound{Time: next.Time, ID: slices.Clone(next.ID[:i+1])}
}

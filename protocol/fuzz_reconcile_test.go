package protocol

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
)

// fuzzSet is a small item set for FuzzReconcile.
func fuzzSet(n int) *ItemSet {
	items := make([]Item, n)
	for i := range items {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(i))
		items[i] = Item{Time: int64(i % 7), ID: sha256.Sum256(b[:])}
	}
	return NewItemSet(items)
}

// FuzzReconcile feeds a peer's reconcile message, as any peer can send it,
// to both sides of reconciliation: neither panics, a message either is
// refused or answered, and every id needed has its bound. (An id the set
// holds, listed by the peer in another range, is needed again: the node's
// fetch skips what is stored, so a peer gains nothing by it.)
func FuzzReconcile(f *testing.F) {
	set := fuzzSet(300)
	for _, msg := range [][]Range{
		set.Initiate(),
		{{Upper: Infinity, Mode: ModeIDList, IDs: [][]byte{make([]byte, 32)}}},
		{{Upper: Bound{Time: 3, ID: []byte{1}}, Mode: ModeSkip}, {Upper: Infinity, Mode: ModeFingerprint, FP: make([]byte, 16)}},
	} {
		b, err := Marshal(SyncResponse{Type: SyncReconcile, Ranges: msg})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var resp SyncResponse
		if Unmarshal(data, &resp) != nil {
			return
		}
		need, uppers, _, err := set.ContinueBounds(resp.Ranges)
		if err == nil {
			if len(need) != len(uppers) {
				t.Fatalf("%d ids needed with %d bounds", len(need), len(uppers))
			}
		}
		_, _ = set.Respond(resp.Ranges)
	})
}

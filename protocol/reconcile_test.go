package protocol_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

func randomItems(r *rand.Rand, n int) []protocol.Item {
	out := make([]protocol.Item, n)
	for i := range out {
		out[i].Time = r.Int64N(1 << 40)
		for j := range out[i].ID {
			out[i].ID[j] = byte(r.Uint32())
		}
	}
	return out
}

// reconcile runs a pull of a from b and returns what a found it lacks and
// the number of round trips.
func reconcile(t testing.TB, a, b *protocol.ItemSet) (map[[32]byte]bool, int) {
	return reconcileFrom(t, a, b, a.Initiate())
}

// reconcileFrom is reconcile starting with msg.
func reconcileFrom(t testing.TB, a, b *protocol.ItemSet, msg []protocol.Range) (map[[32]byte]bool, int) {
	need := map[[32]byte]bool{}
	rounds := 0
	for msg != nil {
		rounds++
		if rounds > 50 {
			t.Fatal("reconciliation does not terminate")
		}
		resp, err := b.Respond(msg)
		if err != nil {
			t.Fatal(err)
		}
		var ids [][32]byte
		ids, msg, err = a.Continue(resp)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if need[id] {
				t.Fatalf("id %x reported twice", id[:4])
			}
			need[id] = true
		}
	}
	return need, rounds
}

func TestReconcile(t *testing.T) {
	tests := []struct {
		name                 string
		common, onlyA, onlyB int
		maxRounds            int
	}{
		{"equal", 1000, 0, 0, 1},
		{"both empty", 0, 0, 0, 1},
		{"a empty", 0, 0, 500, 3},
		{"b empty", 0, 300, 0, 1},
		{"few missing", 10_000, 5, 7, 5},
		{"1000 of 100000", 99_000, 0, 1000, 8},
		{"disjoint", 0, 2000, 2000, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			common := randomItems(r, tt.common)
			onlyA := randomItems(r, tt.onlyA)
			onlyB := randomItems(r, tt.onlyB)
			a := protocol.NewItemSet(append(append([]protocol.Item{}, common...), onlyA...))
			b := protocol.NewItemSet(append(append([]protocol.Item{}, common...), onlyB...))
			need, rounds := reconcile(t, a, b)
			if len(need) != len(onlyB) {
				t.Fatalf("found %d missing, want %d", len(need), len(onlyB))
			}
			for _, it := range onlyB {
				if !need[it.ID] {
					t.Fatalf("missed %x", it.ID[:4])
				}
			}
			if rounds > tt.maxRounds {
				t.Fatalf("%d round trips, want at most %d", rounds, tt.maxRounds)
			}
			t.Logf("%d round trips", rounds)
		})
	}
}

// TestReconcileBelow: a reconciliation started with InitiateBelow(t)
// finds exactly the missing items claimed before t, whatever each side
// holds from t on, and ends in one round trip when those agree.
func TestReconcileBelow(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	common := randomItems(r, 5000)
	onlyA := randomItems(r, 40)
	onlyB := randomItems(r, 300)
	a := protocol.NewItemSet(append(slices.Clone(common), onlyA...))
	b := protocol.NewItemSet(append(slices.Clone(common), onlyB...))
	for _, below := range []int64{math.MinInt64, 0, 1 << 20, 1 << 30, 1 << 40, math.MaxInt64} {
		need, _ := reconcileFrom(t, a, b, a.InitiateBelow(below))
		want := 0
		for _, it := range onlyB {
			if it.Time < below || below == math.MaxInt64 {
				want++
				if !need[it.ID] {
					t.Fatalf("below %d: missed %x (time %d)", below, it.ID[:4], it.Time)
				}
			}
		}
		if len(need) != want {
			t.Fatalf("below %d: found %d missing, want %d", below, len(need), want)
		}
	}
	// Differences only from t on: one round trip, nothing needed.
	var late []protocol.Item
	for _, it := range onlyB {
		late = append(late, protocol.Item{Time: math.MaxInt64 - 1, ID: it.ID})
	}
	only := protocol.NewItemSet(slices.Clone(common))
	c := protocol.NewItemSet(append(slices.Clone(common), late...))
	need, rounds := reconcileFrom(t, only, c, only.InitiateBelow(math.MaxInt64-1))
	if len(need) != 0 || rounds != 1 {
		t.Fatalf("differences above the bound: %d needed in %d round trips, want none in 1", len(need), rounds)
	}
}

// TestItemSetWith: a set grown by With answers every reconciliation as
// the set built at once from all its items, duplicates and items older
// than the newest included, and the set it grew from is unchanged.
func TestItemSetWith(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	all := randomItems(r, 3000)
	base := protocol.NewItemSet(slices.Clone(all[:1000]))
	before := base.Initiate()[0].FP
	grown := base
	for lo := 1000; lo < len(all); lo += 250 {
		batch := slices.Clone(all[lo : lo+250])
		// Some again, and one twice in the batch.
		batch = append(batch, all[r.IntN(lo)], batch[0])
		grown = grown.With(batch)
	}
	want := protocol.NewItemSet(slices.Clone(all))
	if grown.Len() != want.Len() {
		t.Fatalf("grown set holds %d items, want %d", grown.Len(), want.Len())
	}
	if got := base.Initiate()[0].FP; !slices.Equal(got, before) || base.Len() != 1000 {
		t.Fatal("With changed the set it was called on")
	}
	// Every range of the full set has the same fingerprint in both: no
	// round trip of a reconciliation between them finds a difference.
	if need, rounds := reconcile(t, grown, want); len(need) != 0 || rounds != 1 {
		t.Fatalf("grown against built: %d needed in %d round trips, want none in 1", len(need), rounds)
	}
	for _, below := range []int64{1 << 20, 1 << 38, 1 << 39} {
		a, b := grown.InitiateBelow(below), want.InitiateBelow(below)
		if !slices.Equal(a[0].FP, b[0].FP) {
			t.Fatalf("fingerprints below %d differ", below)
		}
	}
	// A set that lacks some finds exactly those against the grown one.
	part := protocol.NewItemSet(slices.Clone(all[:2900]))
	if need, _ := reconcile(t, part, grown); len(need) != 100 {
		t.Fatalf("found %d missing, want 100", len(need))
	}
	if same := grown.With(all[:10]); same != grown {
		t.Fatal("With of items held made a new set")
	}
}

func TestReconcileRejectsMalformed(t *testing.T) {
	s := protocol.NewItemSet(randomItems(rand.New(rand.NewPCG(3, 4)), 10))
	bad := [][]protocol.Range{
		{{Upper: protocol.Infinity, Mode: 9}},
		{{Upper: protocol.Infinity, Mode: protocol.ModeFingerprint, FP: []byte{1}}},
		{{Upper: protocol.Infinity, Mode: protocol.ModeSkip}, {Upper: protocol.Bound{Time: 1}, Mode: protocol.ModeSkip}},
		{{Upper: protocol.Infinity, Mode: protocol.ModeIDList, IDs: [][]byte{{1, 2}}}},
	}
	for i, msg := range bad {
		if _, err := s.Respond(msg); err == nil {
			t.Errorf("message %d accepted by Respond", i)
		}
		if _, _, err := s.Continue(msg); err == nil {
			t.Errorf("message %d accepted by Continue", i)
		}
	}
}

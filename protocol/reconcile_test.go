package protocol_test

import (
	"math/rand/v2"
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
	need := map[[32]byte]bool{}
	msg := a.Initiate()
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

package protocol_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// causalShuffle returns recs in a random causal order (each record after
// the records it links to that are in recs), as a node that buffers
// records until their past has arrived would apply a random delivery.
func causalShuffle(rng *rand.Rand, recs []*protocol.Record) []*protocol.Record {
	in := map[cid.Cid]bool{}
	for _, r := range recs {
		in[r.CID] = true
	}
	todo := slices.Clone(recs)
	rng.Shuffle(len(todo), func(i, j int) { todo[i], todo[j] = todo[j], todo[i] })
	done := map[cid.Cid]bool{}
	var out []*protocol.Record
	for len(todo) > 0 {
		rest := todo[:0]
		for _, r := range todo {
			if done[r.CID] {
				continue
			}
			if slices.ContainsFunc(r.Links(), func(c cid.Cid) bool { return in[c] && !done[c] }) {
				rest = append(rest, r)
				continue
			}
			done[r.CID] = true
			out = append(out, r)
		}
		todo = rest
	}
	return out
}

// TestMembershipEngineAgrees: on random federations fed in random causal
// orders, the incremental engine's verdict on every members-topic record is
// CheckMembership's over the record's causal past, the roster it gives for
// every other record is DeriveMembers over that record's causal past, a
// non-member's record on another topic is refused (OpenToNonMembers), and
// its final membership is DeriveMembers over the whole set.
func TestMembershipEngineAgrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(2026, 10))
	orders := 10
	if testing.Short() {
		orders = 2
	}
	f := randomFederation(t, rng, 160)
	byCID := map[cid.Cid]*protocol.Record{}
	for _, r := range f.all {
		byCID[r.CID] = r
	}
	past := func(r *protocol.Record) []*protocol.Record {
		var out []*protocol.Record
		seen := map[cid.Cid]bool{}
		stack := r.Links()
		for len(stack) > 0 {
			c := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[c] || byCID[c] == nil {
				continue
			}
			seen[c] = true
			out = append(out, byCID[c])
			stack = append(stack, byCID[c].Links()...)
		}
		return out
	}
	want := canonical(t, f.derive())
	rosters := map[cid.Cid]string{} // other-topic record -> canonical roster of its past
	refused := 0
	for k := range orders {
		e, err := protocol.NewMembershipEngine(f.g)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range causalShuffle(rng, f.all) {
			err := e.Check(r)
			if r.Env.Topic == protocol.TopicMembers {
				if got, want := protocol.ReasonOf(err), protocol.ReasonOf(protocol.CheckMembership(f.g, r, f.all)); got != want {
					t.Fatalf("order %d: %s %s: engine says %q, CheckMembership %q", k, r.Env.Kind, r.CID, got, want)
				}
			} else {
				roster, ok := rosters[r.CID]
				if !ok {
					roster = canonical(t, protocol.DeriveMembers(f.g, past(r)))
					rosters[r.CID] = roster
				}
				if got := canonical(t, e.RosterAt(r)); got != roster {
					t.Fatalf("order %d: roster of %s differs from DeriveMembers over its past", k, r.CID)
				}
				member := protocol.DeriveMembers(f.g, past(r)).IsMember(r.Env.Author)
				if (err == nil) != (member || protocol.OpenToNonMembers(r.Env.Topic, r.Env.Kind)) {
					t.Fatalf("order %d: %s by a member=%v: engine says %v", k, r.CID, member, err)
				}
				if err != nil {
					refused++
				}
			}
			// Every record is added, valid or not, as gov.Derive sees a
			// set that holds invalid records.
			e.Add(r)
		}
		if got := canonical(t, e.Members()); got != want {
			t.Fatalf("order %d: the engine's members differ from DeriveMembers", k)
		}
	}
	if refused == 0 {
		t.Fatal("no record of a non-member was refused: the federation is degenerate")
	}
}

func TestOpenToNonMembers(t *testing.T) {
	for _, kind := range protocol.Kinds() {
		for _, topic := range []string{protocol.TopicIndex, protocol.TopicMembers, protocol.IssueTopic("x")} {
			want := kind == protocol.KindMemberApply && topic == protocol.TopicMembers
			if got := protocol.OpenToNonMembers(topic, kind); got != want {
				t.Errorf("OpenToNonMembers(%q, %q) = %v", topic, kind, got)
			}
		}
	}
}

package protocol_test

import (
	"crypto/ed25519"
	"math/rand/v2"
	"testing"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// growingFederation publishes n members-topic records the way a live
// federation would: in rounds of width concurrent records, each depending
// on the heads of the previous round. Each round's records apply, endorse
// pending applications (two endorsers from different groups, one of them
// from the applicant's group and one from its region, admit), or
// rotate a member's key. It returns the federation and how many applicants
// it expects to be admitted.
func growingFederation(tb testing.TB, rng *rand.Rand, n, width int) (*fed, int) {
	tb.Helper()
	type member struct {
		key           ed25519.PrivateKey
		group, region string
		since         int // first round in which records may rely on the membership
	}
	var founders []founder
	var members []*member
	for i := range 10 {
		k := randKey(rng)
		g, r := protocol.DefaultGroups[i%5], protocol.DefaultRegions[(i/2)%5]
		founders = append(founders, founder{k, g, r})
		members = append(members, &member{key: k, group: g, region: r})
	}
	f := newFed(tb, protocol.DefaultRules, founders...)
	type pending struct {
		app      *protocol.Record
		m        *member
		round    int
		endorsed []*member
	}
	var queue []*pending
	var heads []*protocol.Record
	admitted := 0
	for round := 0; len(f.all) < n; round++ {
		var next []*protocol.Record
		busy := map[*member]bool{} // one record per author per round: no forks
		for range width {
			if len(f.all) >= n {
				break
			}
			var p *pending
			if len(queue) > 0 && queue[0].round < round {
				p = queue[0]
			}
			switch {
			case p != nil:
				// An endorser that is a member in the past of this round,
				// from a group the application does not have yet; the
				// second is from the applicant's region if the first is
				// not.
				var e *member
				for range 40 {
					c := members[rng.IntN(len(members))]
					if c.since <= round && !busy[c] && (len(p.endorsed) == 0 && c.group == p.m.group ||
						len(p.endorsed) == 1 && c.group != p.endorsed[0].group && (p.endorsed[0].region == p.m.region || c.region == p.m.region)) {
						e = c
						break
					}
				}
				if e == nil {
					continue
				}
				busy[e] = true
				next = append(next, f.endorse(e.key, p.app, heads...))
				if p.endorsed = append(p.endorsed, e); len(p.endorsed) == 2 {
					queue = queue[1:]
					p.m.since = round + 1
					members = append(members, p.m)
					admitted++
				}
			case rng.IntN(20) == 0:
				m := members[rng.IntN(len(members))]
				if m.since > round || busy[m] {
					continue
				}
				busy[m] = true
				nk := randKey(rng)
				next = append(next, f.publish(m.key, protocol.TopicMembers, protocol.KindMemberRotate, &protocol.MemberRotate{NewKey: pub(nk)}, heads...))
				m.key, m.since = nk, round+1
			default:
				m := &member{key: randKey(rng), group: protocol.DefaultGroups[rng.IntN(5)], region: protocol.DefaultRegions[rng.IntN(5)], since: 1 << 30}
				app := f.apply(m.key, m.group, m.region, heads...)
				next = append(next, app)
				queue = append(queue, &pending{app: app, m: m, round: round})
			}
		}
		if len(next) > 0 {
			heads = next
		}
	}
	return f, admitted
}

func TestGrowingFederation(t *testing.T) {
	f, admitted := growingFederation(t, rand.New(rand.NewPCG(1, 0)), 600, 4)
	set := f.derive()
	if set.Len() != 10+admitted {
		t.Fatalf("%d members, want %d", set.Len(), 10+admitted)
	}
	for _, r := range f.all {
		if _, err := set.Verdict(r.CID); err != nil {
			t.Fatalf("%s did not count: %v", r.Env.Kind, err)
		}
	}
}

// BenchmarkDeriveMembers folds 2,000 members-topic records published in
// rounds of four concurrent records.
func BenchmarkDeriveMembers(b *testing.B) {
	f, _ := growingFederation(b, rand.New(rand.NewPCG(1, 0)), 2000, 4)
	b.ReportAllocs()
	for b.Loop() {
		protocol.DeriveMembers(f.g, f.all)
	}
}

// BenchmarkCheckMembership checks the last of 2,000 members-topic records
// against its causal past, as a node would for a new record without a
// cache.
func BenchmarkCheckMembership(b *testing.B) {
	f, _ := growingFederation(b, rand.New(rand.NewPCG(1, 0)), 2000, 4)
	last := f.all[len(f.all)-1]
	b.ReportAllocs()
	for b.Loop() {
		if err := protocol.CheckMembership(f.g, last, f.all); err != nil {
			b.Fatal(err)
		}
	}
}

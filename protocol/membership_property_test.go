package protocol_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// randKey returns a key drawn from rng.
func randKey(rng *rand.Rand) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(rng.Uint32())
	}
	return ed25519.NewKeyFromSeed(seed)
}

// randomFederation builds a federation of six founders in three groups and
// three regions, then publishes steps random membership records: many
// endorsements (some by non-members, some repeated), applications (some
// repeated), rotations, revocations, suspensions, withdrawals, forks with
// their evidence, and issue statements. Each record depends on its author's
// previous record on the topic and on up to three random earlier records,
// so the DAG is full of concurrency.
func randomFederation(tb testing.TB, rng *rand.Rand, steps int) *fed {
	tb.Helper()
	groups, regions := protocol.DefaultGroups[:3], protocol.DefaultRegions[:3]
	// cur holds the latest key of six founders, then of twelve applicants;
	// keys holds every key ever made, including two outsiders.
	var founders []founder
	var cur, keys []ed25519.PrivateKey
	for i := range 18 {
		k := randKey(rng)
		if i < 6 {
			founders = append(founders, founder{k, groups[i%3], regions[(i/2)%3]})
		}
		cur = append(cur, k)
	}
	keys = append(append(keys, cur...), randKey(rng), randKey(rng))
	f := newFed(tb, protocol.DefaultRules, founders...)
	shared := randKey(rng) // a replacement several voters agree on
	applied := map[int]bool{}
	var apps []*protocol.Record
	// deps picks up to three earlier records, mostly recent ones, so that
	// some records see most of the past and others are far behind.
	deps := func() []*protocol.Record {
		var ds []*protocol.Record
		for range rng.IntN(4) {
			n := len(f.all)
			switch {
			case n == 0:
			case rng.IntN(3) > 0:
				ds = append(ds, f.all[n-1-rng.IntN(min(n, 5))])
			default:
				ds = append(ds, f.all[rng.IntN(n)])
			}
		}
		return ds
	}
	slot := func() int {
		if rng.IntN(3) > 0 {
			return rng.IntN(6)
		}
		return 6 + rng.IntN(12)
	}
	author := func() ed25519.PrivateKey {
		if rng.IntN(10) == 0 {
			return keys[rng.IntN(len(keys))] // any key: old, outsider, ...
		}
		return cur[slot()]
	}
	for step := range steps {
		switch x := rng.IntN(100); {
		case x < 15:
			i := 6 + rng.IntN(12)
			if applied[i] && rng.IntN(4) > 0 {
				continue
			}
			applied[i] = true
			apps = append(apps, f.apply(cur[i], groups[rng.IntN(3)], regions[rng.IntN(3)], deps()...))
		case x < 70:
			if len(apps) == 0 {
				continue
			}
			f.endorse(author(), apps[rng.IntN(len(apps))], deps()...)
		case x < 73:
			i, nk := slot(), randKey(rng)
			keys = append(keys, nk)
			f.publish(cur[i], protocol.TopicMembers, protocol.KindMemberRotate, &protocol.MemberRotate{NewKey: pub(nk)}, deps()...)
			cur[i] = nk
		case x < 80:
			b := &protocol.MemberRevoke{Key: pub(author()), Reason: "lost"}
			if rng.IntN(2) == 0 {
				b.Replacement = pub(shared)
			}
			if !bytes.Equal(b.Key, b.Replacement) {
				f.publish(author(), protocol.TopicMembers, protocol.KindMemberRevoke, b, deps()...)
			}
		case x < 84:
			f.publish(author(), protocol.TopicMembers, protocol.KindMemberSuspend, &protocol.MemberSuspend{Key: pub(author()), Reason: "spam"}, deps()...)
		case x < 85:
			f.publish(author(), protocol.TopicMembers, protocol.KindMemberWithdraw, &protocol.MemberWithdraw{}, deps()...)
		case x < 88:
			k, topic := author(), protocol.IssueTopic(fmt.Sprintf("fork-%d", step))
			a, b := signed(tb, k, f.net, topic, 1, "one"), signed(tb, k, f.net, topic, 1, "two")
			f.all = append(f.all, a, b)
			body, err := protocol.NewEquivocation(a, b)
			if err != nil {
				tb.Fatal(err)
			}
			f.publish(author(), protocol.TopicMembers, protocol.KindMemberEquivocation, body, deps()...)
		default:
			f.statement(author(), deps()...)
		}
	}
	return f
}

// canonical returns a canonical encoding of everything a member set says.
func canonical(tb testing.TB, s *protocol.MemberSet) string {
	tb.Helper()
	b, err := protocol.Marshal(map[string]any{
		"members": s.Members(), "former": s.Former(), "groups": s.Groups(), "regions": s.Regions(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// TestDeriveMembersOrderIndependent checks, on random federations, that
// DeriveMembers gives byte-identical results whatever the order of the
// records and however many duplicates they hold; that it agrees with the
// naive fold of the specification; and that each record's verdict is what
// CheckMembership says given the record's causal past alone.
func TestDeriveMembersOrderIndependent(t *testing.T) {
	const seed = 20260102
	feds, shuffles := 3, 1000
	if testing.Short() {
		feds, shuffles = 1, 100
	}
	rng := rand.New(rand.NewPCG(seed, 0))
	for n := range feds {
		f := randomFederation(t, rng, 220)
		set := f.derive()
		want := canonical(t, set)
		if naive := canonical(t, protocol.DeriveMembersNaive(f.g, f.all)); naive != want {
			t.Fatalf("seed %d, federation %d: DeriveMembers differs from the naive fold", seed, n)
		}
		counted, rejected := 0, 0
		for _, r := range f.all {
			if r.Env.Topic != protocol.TopicMembers {
				continue
			}
			_, err := set.Verdict(r.CID)
			if err == nil {
				counted++
			} else {
				rejected++
			}
			if got, want := protocol.ReasonOf(protocol.CheckMembership(f.g, r, f.all)), protocol.ReasonOf(err); got != want {
				t.Fatalf("seed %d, federation %d: %s %s: CheckMembership says %q, DeriveMembers %q", seed, n, r.Env.Kind, r.CID, got, want)
			}
		}
		if set.Len() <= 6 || counted < 20 || rejected < 20 {
			t.Fatalf("seed %d, federation %d: degenerate federation: %d members, %d records counted, %d rejected", seed, n, set.Len(), counted, rejected)
		}
		t.Logf("federation %d: %d records, %d members, %d former, %d members-topic records counted, %d rejected",
			n, len(f.all), set.Len(), len(set.Former()), counted, rejected)
		for i := range shuffles {
			recs := append([]*protocol.Record(nil), f.all...)
			for range rng.IntN(len(recs)/4 + 1) {
				recs = append(recs, f.all[rng.IntN(len(f.all))])
			}
			rng.Shuffle(len(recs), func(a, b int) { recs[a], recs[b] = recs[b], recs[a] })
			if got := canonical(t, protocol.DeriveMembers(f.g, recs)); got != want {
				t.Fatalf("seed %d, federation %d, shuffle %d: the member set depends on the order of the records", seed, n, i)
			}
		}
	}
}

// TestDeriveMembersSubsets checks that the members of every causally
// closed prefix of a random federation are what a fold of the prefix
// alone gives, in any order: adding records never changes how the records
// already held were judged.
func TestDeriveMembersSubsets(t *testing.T) {
	const seed = 7
	rng := rand.New(rand.NewPCG(seed, 0))
	f := randomFederation(t, rng, 150)
	full := f.derive()
	for cut := 0; cut <= len(f.all); cut += 10 {
		prefix := f.all[:cut] // publication order is a causal order
		sub := protocol.DeriveMembers(f.g, prefix)
		for _, r := range prefix {
			if r.Env.Topic != protocol.TopicMembers {
				continue
			}
			_, a := sub.Verdict(r.CID)
			_, b := full.Verdict(r.CID)
			if protocol.ReasonOf(a) != protocol.ReasonOf(b) {
				t.Fatalf("seed %d, cut %d: %s judged %q in the prefix, %q in the whole set", seed, cut, r.CID, protocol.ReasonOf(a), protocol.ReasonOf(b))
			}
		}
	}
}

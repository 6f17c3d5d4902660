package protocol_test

import (
	"bytes"
	"testing"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// memberSeeds builds a small federation holding a valid record of every
// membership kind, adds each record and a few near-misses to the corpus,
// and returns the federation.
func memberSeeds(f *testing.F) *fed {
	fd := stdFed(f, protocol.DefaultRules)
	privacy := protocol.IssueTopic("privacy")
	app := fd.apply(appX, "technical-academic", "eastern-europe")
	e1 := fd.endorse(gov1, app)
	fd.endorse(civ, app, e1)
	fd.publish(gov2, protocol.TopicMembers, protocol.KindMemberRotate, &protocol.MemberRotate{NewKey: pub(fixedKey(130))})
	fd.publish(civ, protocol.TopicMembers, protocol.KindMemberRevoke, &protocol.MemberRevoke{Key: pub(priv), Reason: "lost", Replacement: pub(fixedKey(131))})
	fd.publish(gov1, protocol.TopicMembers, protocol.KindMemberRevoke, &protocol.MemberRevoke{Key: pub(priv), Reason: "compromised"})
	fd.publish(gov1, protocol.TopicMembers, protocol.KindMemberSuspend, &protocol.MemberSuspend{Key: pub(priv), Reason: "spam"})
	fd.publish(priv, protocol.TopicMembers, protocol.KindMemberWithdraw, &protocol.MemberWithdraw{Statement: "Goodbye."})
	a, b := signed(f, gov1, fd.net, privacy, 1, "one"), signed(f, gov1, fd.net, privacy, 1, "two")
	body, err := protocol.NewEquivocation(a, b)
	if err != nil {
		f.Fatal(err)
	}
	ev := fd.publish(civ, protocol.TopicMembers, protocol.KindMemberEquivocation, body)
	fd.statement(appX, fd.all...)
	for _, r := range fd.all {
		f.Add(r.Raw)
	}
	f.Add(ev.Raw[:len(ev.Raw)-1])
	f.Add(bytes.Replace(app.Raw, []byte("eastern-europe"), []byte("eastern-europa"), 1)) // bad signature, still decodes
	f.Add(bytes.Replace(e1.Raw, []byte("\xd8\x2a"), []byte("\xd8\x2b"), 1))              // a tag that is not a link
	return fd
}

// FuzzDecodeMembers is FuzzDecode seeded with membership records: Decode
// never panics, and what it accepts is canonical; accepted equivocation
// evidence always holds two verified, equivocating records.
func FuzzDecodeMembers(f *testing.F) {
	memberSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := protocol.Decode(raw)
		if err != nil {
			if protocol.ReasonOf(err) == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		again, err := protocol.Marshal(&r.Env)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, raw) {
			t.Fatal("accepted a non-canonical encoding")
		}
		if q, ok := r.Body.(*protocol.MemberEquivocation); ok {
			a, b, err := q.Records()
			if err != nil || !protocol.Equivocates(a, b) || a.Verify() != nil || b.Verify() != nil {
				t.Fatalf("accepted bogus evidence: %v", err)
			}
		}
	})
}

// FuzzMembership checks that CheckMembership and DeriveMembers never panic
// on any decodable record added to a federation's records, that they agree,
// and that CheckMembership only returns protocol errors.
func FuzzMembership(f *testing.F) {
	fd := memberSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := protocol.Decode(raw)
		if err != nil {
			return
		}
		cerr := protocol.CheckMembership(fd.g, r, fd.all)
		if cerr != nil && protocol.ReasonOf(cerr) == "" {
			t.Fatalf("error without a reason: %v", cerr)
		}
		set := protocol.DeriveMembers(fd.g, append([]*protocol.Record{r}, fd.all...))
		if r.Env.Topic != protocol.TopicMembers {
			return
		}
		known, derr := set.Verdict(r.CID)
		if !known {
			t.Fatal("no verdict for a members-topic record")
		}
		if protocol.ReasonOf(derr) != protocol.ReasonOf(cerr) {
			t.Fatalf("CheckMembership says %v, DeriveMembers %v", cerr, derr)
		}
	})
}

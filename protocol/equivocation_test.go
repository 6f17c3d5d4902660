package protocol_test

import (
	"bytes"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// signed builds a statement at an explicit seq, outside a fed's chains.
func signed(t testing.TB, key ed25519.PrivateKey, net cid.Cid, topic string, seq uint64, text string) *protocol.Record {
	t.Helper()
	prev := cid.Undef
	if seq > 1 {
		prev = protocol.RecordCID([]byte(text)) // any record CID will do
	}
	r, err := protocol.Build(key, protocol.Draft{
		Network: net, Kind: protocol.KindStatement, Topic: topic, Seq: seq, Prev: prev,
		Time: vectorTime, Body: &protocol.Statement{Title: "Fork", Text: text},
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestEquivocates(t *testing.T) {
	net := devNetwork(t, fixedKey(1))
	other := devNetwork(t, fixedKey(2))
	privacy, access := protocol.IssueTopic("privacy"), protocol.IssueTopic("access")
	a := signed(t, gov1, net, privacy, 1, "one")
	tests := []struct {
		name string
		b    *protocol.Record
		want bool
	}{
		{"fork", signed(t, gov1, net, privacy, 1, "two"), true},
		{"same record", a, false},
		{"same record decoded again", signed(t, gov1, net, privacy, 1, "one"), false},
		{"other author", signed(t, gov2, net, privacy, 1, "two"), false},
		{"other topic", signed(t, gov1, net, access, 1, "two"), false},
		{"other seq", signed(t, gov1, net, privacy, 2, "two"), false},
		{"other network", signed(t, gov1, other, privacy, 1, "two"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := protocol.Equivocates(a, tt.b); got != tt.want {
				t.Fatalf("Equivocates = %v, want %v", got, tt.want)
			}
			if got := protocol.Equivocates(tt.b, a); got != tt.want {
				t.Fatalf("Equivocates is not symmetric")
			}
			if _, err := protocol.NewEquivocation(a, tt.b); (err == nil) != tt.want {
				t.Fatalf("NewEquivocation: %v", err)
			}
		})
	}
	if protocol.Equivocates(a, nil) {
		t.Fatal("Equivocates(a, nil)")
	}
}

func TestEquivocationEvidence(t *testing.T) {
	f := stdFed(t, protocol.DefaultRules)
	privacy := protocol.IssueTopic("privacy")
	a := signed(t, gov1, f.net, privacy, 1, "one")
	b := signed(t, gov1, f.net, privacy, 1, "two")
	body, err := protocol.NewEquivocation(b, a)
	if err != nil {
		t.Fatal(err)
	}
	ev := f.publish(civ, protocol.TopicMembers, protocol.KindMemberEquivocation, body)

	// The evidence verifies from the record alone.
	got, err := protocol.Validate(ev.Raw, f.net, vectorTime.Add(time.Hour))
	if err != nil {
		t.Fatalf("evidence does not validate on its own: %v", err)
	}
	x, y, err := got.Body.(*protocol.MemberEquivocation).Records()
	if err != nil || !protocol.Equivocates(x, y) {
		t.Fatalf("evidence records: %v", err)
	}

	// A fresh fold of the genesis and the evidence (whose past is empty)
	// flags gov1 and suspends it: the evidence is the removal.
	set := protocol.DeriveMembers(f.g, []*protocol.Record{ev})
	if fl := set.Flagged(pub(gov1)); len(fl) != 1 || !fl[0].Equals(ev.CID) {
		t.Fatalf("flags of gov1: %v", fl)
	}
	if set.IsMember(pub(gov1)) {
		t.Fatal("gov1 is still a member after evidence of its equivocation")
	}
	m, ok := set.KeyHistory(pub(gov1))
	if !ok || len(m.Flags) != 1 || !m.Flags[0].Equals(ev.CID) || m.Removed == nil || !m.Removed.Equals(ev.CID) {
		t.Fatalf("gov1 after evidence: known %v, info %+v", ok, m)
	}
	// A record of gov1 whose causal past holds the evidence is refused.
	later := f.publish(gov1, protocol.TopicMembers, protocol.KindMemberWithdraw, &protocol.MemberWithdraw{Statement: "leaving"}, ev)
	if err := protocol.CheckMembership(f.g, later, []*protocol.Record{ev}); protocol.ReasonOf(err) != protocol.ReasonNotMember {
		t.Fatalf("gov1 after the evidence: %v, want not-member", err)
	}
	if n, _ := set.Lookup(pub(civ)); len(n.Flags) != 0 {
		t.Fatal("the publisher of the evidence is flagged")
	}

	// Evidence published by a non-member counts for nothing.
	byOutsider := f.publish(out, protocol.TopicMembers, protocol.KindMemberEquivocation, body)
	set = protocol.DeriveMembers(f.g, []*protocol.Record{byOutsider})
	if got := verdict(t, set, byOutsider); got != protocol.ReasonNotMember || len(set.Flagged(pub(gov1))) != 0 {
		t.Fatalf("evidence by an outsider: verdict %q, flags %v", got, set.Flagged(pub(gov1)))
	}

	// Evidence about another federation's records is bogus here.
	other := devNetwork(t, fixedKey(2))
	foreign, err := protocol.NewEquivocation(signed(t, gov1, other, privacy, 1, "one"), signed(t, gov1, other, privacy, 1, "two"))
	if err != nil {
		t.Fatal(err)
	}
	fe := f.publish(priv, protocol.TopicMembers, protocol.KindMemberEquivocation, foreign)
	if err := protocol.CheckMembership(f.g, fe, nil); protocol.ReasonOf(err) != protocol.ReasonBadBody {
		t.Fatalf("evidence of another network: %v, want bad-body", err)
	}
}

func TestEquivocationBogus(t *testing.T) {
	f := stdFed(t, protocol.DefaultRules)
	privacy := protocol.IssueTopic("privacy")
	a := signed(t, gov1, f.net, privacy, 1, "one")
	b := signed(t, gov1, f.net, privacy, 1, "two")
	if bytes.Compare([]byte(a.CID.KeyString()), []byte(b.CID.KeyString())) > 0 {
		a, b = b, a
	}
	forged := mutate(t, b, nil, func(e *protocol.Envelope) { e.Sig = bytes.Repeat([]byte{7}, 64) })
	resigned := mutate(t, b, fixedKey(99), func(*protocol.Envelope) {}) // valid signature by another key, author unchanged
	tests := []struct {
		name string
		a, b []byte
	}{
		{"same record twice", a.Raw, a.Raw},
		{"different authors", a.Raw, signed(t, gov2, f.net, privacy, 1, "two").Raw},
		{"different seq", a.Raw, signed(t, gov1, f.net, privacy, 2, "two").Raw},
		{"different topic", a.Raw, signed(t, gov1, f.net, protocol.IssueTopic("access"), 1, "two").Raw},
		{"bad signature", a.Raw, forged},
		{"signature by another key", a.Raw, resigned},
		{"wrong order", b.Raw, a.Raw},
		{"not a record", a.Raw, []byte("garbage")},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.build(civ, protocol.TopicMembers, protocol.KindMemberEquivocation, &protocol.MemberEquivocation{A: tt.a, B: tt.b})
			if protocol.ReasonOf(err) != protocol.ReasonBadBody {
				t.Fatalf("reason %q, want bad-body (%v)", protocol.ReasonOf(err), err)
			}
		})
	}
}

package protocol_test

import (
	"testing"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// TestMembershipP4 checks that membership obeys P4: no coalition of
// groups short of every group with members can add a member to, or remove
// one from, another group; a group's own members take part in changes to
// it.
func TestMembershipP4(t *testing.T) {
	tests := []struct {
		name string
		run  func(f *fed) bool // reports whether the change took effect
		want bool
	}{
		{"admission to a group with members, without them", func(f *fed) bool {
			app := f.apply(appX, "government", "africa")
			f.endorse(civ, app)
			f.endorse(priv, app)
			return f.derive().IsMember(pub(appX))
		}, false},
		{"admission to a group with members, with one of them", func(f *fed) bool {
			app := f.apply(appX, "government", "africa")
			f.endorse(gov1, app)
			f.endorse(priv, app)
			return f.derive().IsMember(pub(appX))
		}, true},
		{"admission to a group without members, by two of three groups", func(f *fed) bool {
			app := f.apply(appX, "technical-academic", "africa")
			f.endorse(gov1, app)
			f.endorse(civ, app)
			return f.derive().IsMember(pub(appX))
		}, false},
		{"admission to a group without members, by every group", func(f *fed) bool {
			app := f.apply(appX, "technical-academic", "africa")
			f.endorse(gov1, app)
			f.endorse(civ, app)
			f.endorse(priv, app)
			return f.derive().IsMember(pub(appX))
		}, true},
		{"suspension by two other groups", func(f *fed) bool {
			f.publish(civ, protocol.TopicMembers, protocol.KindMemberSuspend, &protocol.MemberSuspend{Key: pub(gov1), Reason: "objected"})
			f.publish(priv, protocol.TopicMembers, protocol.KindMemberSuspend, &protocol.MemberSuspend{Key: pub(gov1), Reason: "objected"})
			return !f.derive().IsMember(pub(gov1))
		}, false},
		{"suspension with a member of the target's group", func(f *fed) bool {
			f.publish(gov2, protocol.TopicMembers, protocol.KindMemberSuspend, &protocol.MemberSuspend{Key: pub(gov1), Reason: "spam"})
			f.publish(civ, protocol.TopicMembers, protocol.KindMemberSuspend, &protocol.MemberSuspend{Key: pub(gov1), Reason: "spam"})
			return !f.derive().IsMember(pub(gov1))
		}, true},
		{"revocation by two other groups", func(f *fed) bool {
			f.publish(civ, protocol.TopicMembers, protocol.KindMemberRevoke, &protocol.MemberRevoke{Key: pub(gov1), Reason: "lost"})
			f.publish(priv, protocol.TopicMembers, protocol.KindMemberRevoke, &protocol.MemberRevoke{Key: pub(gov1), Reason: "lost"})
			return !f.derive().IsMember(pub(gov1))
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.run(stdFed(t, protocol.DefaultRules)); got != tt.want {
				t.Fatalf("took effect = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestOrgNames checks that one organisation is one member: names are
// compared after normalisation (NFKC, case folding, confusable skeleton),
// names with invisible or direction-changing characters are refused, and
// display strings with control characters are refused.
func TestOrgNames(t *testing.T) {
	for _, tt := range []struct{ a, b string }{
		{"Org 2", "ORG 2"},
		{"Org 2", "Оrg 2"}, // Cyrillic capital O
		{"Org 2", "Org\u00a02"},
		{"Café", "Cafe\u0301"},
		{"paypal", "pаypal"}, // Cyrillic a
	} {
		ka, err := protocol.OrgKey(tt.a)
		if err != nil {
			t.Fatal(err)
		}
		kb, err := protocol.OrgKey(tt.b)
		if err != nil {
			t.Fatal(err)
		}
		if ka != kb {
			t.Errorf("OrgKey(%q) = %q, OrgKey(%q) = %q: want the same organisation", tt.a, ka, tt.b, kb)
		}
	}
	if a, _ := protocol.OrgKey("Org 2"); a == func() string { b, _ := protocol.OrgKey("Org 3"); return b }() {
		t.Error("Org 2 and Org 3 compare equal")
	}
	for _, bad := range []string{"Org\u200b 2", "Org \u202e2", "\u2066Org 2\u2069", "Org\u00ad2", "Org\u0085 2"} {
		app := &protocol.MemberApply{Org: bad, Group: "government", Region: "africa", Statement: "Join."}
		if err := app.Check(); err == nil {
			t.Errorf("org %q accepted", bad)
		}
	}
	for _, bad := range []string{"a\u202eb", "a\u0085b", "a\x1bb"} {
		if err := (&protocol.Statement{Title: "T", Text: bad}).Check(); err == nil {
			t.Errorf("statement text %q accepted", bad)
		}
	}

	// The fold: a second application under an existing member's name is
	// refused, and of two concurrent applications under one name, only
	// the one first admitted becomes a member.
	f := stdFed(t, protocol.DefaultRules)
	dup := f.publish(appX, protocol.TopicMembers, protocol.KindMemberApply, &protocol.MemberApply{
		Org: "FOUNDER А", Group: "government", Region: "africa", Statement: "We are the real one.", // Cyrillic А
	})
	a := f.publish(appZ, protocol.TopicMembers, protocol.KindMemberApply, &protocol.MemberApply{Org: "New Org", Group: "government", Region: "africa", Statement: "Join."})
	b := f.publish(fixedKey(112), protocol.TopicMembers, protocol.KindMemberApply, &protocol.MemberApply{Org: "new  org", Group: "government", Region: "africa", Statement: "Join."})
	for _, app := range []*protocol.Record{a, b} {
		f.endorse(gov1, app)
		f.endorse(civ, app)
	}
	set := f.derive()
	if got := verdict(t, set, dup); got != protocol.ReasonNotAllowed {
		t.Fatalf("application under a member's name: verdict %q, want not-allowed", got)
	}
	if set.IsMember(pub(appZ)) == set.IsMember(pub(fixedKey(112))) {
		t.Fatalf("two applications under one organisation name: both or neither admitted")
	}
}

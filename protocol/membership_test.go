package protocol_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// fed is a test federation: a genesis and the records published so far,
// with each author's seq and prev kept per topic.
type fed struct {
	tb    testing.TB
	g     *protocol.Genesis
	net   cid.Cid
	seq   map[string]uint64
	last  map[string]cid.Cid
	clock time.Time
	all   []*protocol.Record
}

// founder describes a founder of a test federation.
type founder struct {
	key           ed25519.PrivateKey
	group, region string
}

func pub(k ed25519.PrivateKey) []byte { return k.Public().(ed25519.PublicKey) }

func newFed(tb testing.TB, rules protocol.Rules, founders ...founder) *fed {
	tb.Helper()
	var ms []protocol.Member
	for i, f := range founders {
		ms = append(ms, protocol.Member{Key: pub(f.key), Org: "Founder " + string(rune('A'+i%26)), Group: f.group, Region: f.region})
	}
	g := protocol.NewGenesis("Test federation", ms, vectorTime)
	g.Rules = rules
	for _, f := range founders {
		if err := g.Sign(f.key); err != nil {
			tb.Fatal(err)
		}
	}
	if err := g.Verify(); err != nil {
		tb.Fatal(err)
	}
	net, err := g.NetworkID()
	if err != nil {
		tb.Fatal(err)
	}
	return &fed{tb: tb, g: g, net: net, seq: map[string]uint64{}, last: map[string]cid.Cid{}, clock: vectorTime}
}

// publish signs the author's next record on topic, with deps, and keeps it.
func (f *fed) publish(key ed25519.PrivateKey, topic, kind string, body protocol.Body, deps ...*protocol.Record) *protocol.Record {
	f.tb.Helper()
	r, err := f.build(key, topic, kind, body, deps...)
	if err != nil {
		f.tb.Fatalf("build %s: %v", kind, err)
	}
	return r
}

// build is publish that returns the build error instead of failing.
func (f *fed) build(key ed25519.PrivateKey, topic, kind string, body protocol.Body, deps ...*protocol.Record) (*protocol.Record, error) {
	ck := string(pub(key)) + "\x00" + topic
	var ds []cid.Cid
	for _, d := range deps {
		ds = append(ds, d.CID)
	}
	f.clock = f.clock.Add(time.Second)
	r, err := protocol.Build(key, protocol.Draft{
		Network: f.net, Kind: kind, Topic: topic, Seq: f.seq[ck] + 1, Prev: f.last[ck],
		Deps: ds, Time: f.clock, Body: body,
	})
	if err != nil {
		return nil, err
	}
	f.seq[ck]++
	f.last[ck] = r.CID
	f.all = append(f.all, r)
	return r, nil
}

func (f *fed) apply(key ed25519.PrivateKey, group, region string, deps ...*protocol.Record) *protocol.Record {
	f.tb.Helper()
	return f.publish(key, protocol.TopicMembers, protocol.KindMemberApply, &protocol.MemberApply{
		Org: fmt.Sprintf("Applicant %x", pub(key)[:4]), Group: group, Region: region, Contact: "mailto:x@example.org", Statement: "We would like to join.",
	}, deps...)
}

// endorse endorses app, with app and deps as the record's deps.
func (f *fed) endorse(key ed25519.PrivateKey, app *protocol.Record, deps ...*protocol.Record) *protocol.Record {
	f.tb.Helper()
	return f.publish(key, protocol.TopicMembers, protocol.KindMemberEndorse, &protocol.MemberEndorse{Application: protocol.LinkTo(app.CID)}, append(deps, app)...)
}

func (f *fed) statement(key ed25519.PrivateKey, deps ...*protocol.Record) *protocol.Record {
	f.tb.Helper()
	return f.publish(key, protocol.IssueTopic("privacy"), protocol.KindStatement, &protocol.Statement{Title: "Priorities", Text: "Data protection."}, deps...)
}

func (f *fed) derive() *protocol.MemberSet { return protocol.DeriveMembers(f.g, f.all) }

// verdict returns the reason r did not count in set, or "" if it counted.
func verdict(t *testing.T, set *protocol.MemberSet, r *protocol.Record) protocol.Reason {
	t.Helper()
	known, err := set.Verdict(r.CID)
	if !known {
		t.Fatalf("record %s has no verdict", r.CID)
	}
	return protocol.ReasonOf(err)
}

// Keys of the standard test federation.
var (
	gov1 = fixedKey(101) // government, africa
	gov2 = fixedKey(102) // government, asia-pacific
	civ  = fixedKey(103) // civil-society, africa
	priv = fixedKey(104) // private-sector, western-europe-others
	appX = fixedKey(110) // an applicant
	appZ = fixedKey(111) // another applicant
	out  = fixedKey(120) // an outsider who never applies
)

func stdFed(tb testing.TB, rules protocol.Rules) *fed {
	return newFed(tb, rules,
		founder{gov1, "government", "africa"},
		founder{gov2, "government", "asia-pacific"},
		founder{civ, "civil-society", "africa"},
		founder{priv, "private-sector", "western-europe-others"},
	)
}

func TestAdmission(t *testing.T) {
	regional := protocol.DefaultRules
	regional.AdmitRegions = 2
	type want struct {
		rec    int // index into the records the case returns
		reason protocol.Reason
	}
	tests := []struct {
		name     string
		rules    protocol.Rules
		endorse  func(f *fed, app *protocol.Record) []*protocol.Record
		admitted bool
		verdicts []want
	}{
		{"two from one group", protocol.DefaultRules, func(f *fed, app *protocol.Record) []*protocol.Record {
			return []*protocol.Record{f.endorse(gov1, app), f.endorse(gov2, app)}
		}, false, []want{{0, ""}, {1, ""}}},
		{"two groups", protocol.DefaultRules, func(f *fed, app *protocol.Record) []*protocol.Record {
			return []*protocol.Record{f.endorse(gov1, app), f.endorse(civ, app)}
		}, true, nil},
		{"three endorsers from two groups", protocol.DefaultRules, func(f *fed, app *protocol.Record) []*protocol.Record {
			return []*protocol.Record{f.endorse(gov1, app), f.endorse(gov2, app), f.endorse(civ, app)}
		}, true, nil},
		{"P4: two groups cannot add a member to a third that has members", protocol.DefaultRules, func(f *fed, app *protocol.Record) []*protocol.Record {
			return []*protocol.Record{f.endorse(gov1, app), f.endorse(gov2, app), f.endorse(priv, app)}
		}, false, []want{{0, ""}, {1, ""}, {2, ""}}},
		{"one member twice", protocol.DefaultRules, func(f *fed, app *protocol.Record) []*protocol.Record {
			return []*protocol.Record{f.endorse(gov1, app), f.endorse(gov1, app)}
		}, false, []want{{0, ""}, {1, ""}}},
		{"non-member endorser counts for nothing", protocol.DefaultRules, func(f *fed, app *protocol.Record) []*protocol.Record {
			return []*protocol.Record{f.endorse(gov1, app), f.endorse(out, app)}
		}, false, []want{{1, protocol.ReasonNotMember}}},
		{"self-endorsement does not count", protocol.DefaultRules, func(f *fed, app *protocol.Record) []*protocol.Record {
			return []*protocol.Record{f.endorse(gov1, app), f.endorse(appX, app)}
		}, false, []want{{1, protocol.ReasonNotMember}}},
		{"endorser not yet admitted in its own past", protocol.DefaultRules, func(f *fed, app *protocol.Record) []*protocol.Record {
			z := f.apply(appZ, "private-sector", "western-europe-others")
			e1, e2 := f.endorse(gov1, z), f.endorse(priv, z)
			early := f.endorse(appZ, app) // Z's past holds its application only
			return []*protocol.Record{f.endorse(gov2, app), early, e1, e2}
		}, false, []want{{1, protocol.ReasonNotMember}, {2, ""}, {3, ""}}},
		{"endorser admitted in its own past", protocol.DefaultRules, func(f *fed, app *protocol.Record) []*protocol.Record {
			z := f.apply(appZ, "private-sector", "western-europe-others")
			e1, e2 := f.endorse(gov1, z), f.endorse(priv, z)
			return []*protocol.Record{f.endorse(civ, app), f.endorse(appZ, app, e1, e2)}
		}, true, []want{{1, ""}}},
		{"application not among deps", protocol.DefaultRules, func(f *fed, app *protocol.Record) []*protocol.Record {
			bad := f.publish(civ, protocol.TopicMembers, protocol.KindMemberEndorse, &protocol.MemberEndorse{Application: protocol.LinkTo(app.CID)})
			return []*protocol.Record{f.endorse(gov1, app), bad}
		}, false, []want{{1, protocol.ReasonBadLinks}}},
		{"endorsing what is not an application", protocol.DefaultRules, func(f *fed, app *protocol.Record) []*protocol.Record {
			e := f.endorse(gov1, app)
			return []*protocol.Record{e, f.endorse(civ, e)}
		}, false, []want{{1, protocol.ReasonNotAllowed}}},
		{"regions: two groups, one region", regional, func(f *fed, app *protocol.Record) []*protocol.Record {
			return []*protocol.Record{f.endorse(gov1, app), f.endorse(civ, app)}
		}, false, nil},
		{"regions: two groups, two regions", regional, func(f *fed, app *protocol.Record) []*protocol.Record {
			return []*protocol.Record{f.endorse(gov2, app), f.endorse(civ, app)}
		}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := stdFed(t, tt.rules)
			app := f.apply(appX, "civil-society", "africa")
			recs := tt.endorse(f, app)
			set := f.derive()
			if got := set.IsMember(pub(appX)); got != tt.admitted {
				t.Fatalf("admitted = %v, want %v", got, tt.admitted)
			}
			if got := verdict(t, set, app); got != "" {
				t.Fatalf("application did not count: %s", got)
			}
			for _, w := range tt.verdicts {
				if got := verdict(t, set, recs[w.rec]); got != w.reason {
					t.Fatalf("record %d: verdict %q, want %q", w.rec, got, w.reason)
				}
			}
			// The applicant's first statement after every record so far is
			// allowed exactly when it was admitted.
			st := f.statement(appX, f.all...)
			err := protocol.CheckMembership(f.g, st, f.all)
			if (err == nil) != tt.admitted {
				t.Fatalf("CheckMembership of the applicant's statement: %v, admitted %v", err, tt.admitted)
			}
			if !tt.admitted && protocol.ReasonOf(err) != protocol.ReasonNotMember {
				t.Fatalf("reason %q, want not-member", protocol.ReasonOf(err))
			}
			if tt.admitted {
				m, ok := set.Lookup(pub(appX))
				if !ok || m.Group != "civil-society" || m.Application == nil || !m.Application.Equals(app.CID) || len(m.Keys) != 1 || m.Keys[0].From == nil {
					t.Fatalf("admitted member info: %+v", m)
				}
			}
		})
	}
}

func TestApplyRules(t *testing.T) {
	f := stdFed(t, protocol.DefaultRules)
	app := f.apply(appX, "technical-academic", "eastern-europe")
	tests := []struct {
		name   string
		rec    func() *protocol.Record
		reason protocol.Reason
	}{
		{"member applies", func() *protocol.Record { return f.apply(gov1, "government", "africa") }, protocol.ReasonNotAllowed},
		{"applicant applies twice", func() *protocol.Record { return f.apply(appX, "government", "africa", app) }, protocol.ReasonNotAllowed},
		{"group outside the taxonomy", func() *protocol.Record { return f.apply(appZ, "farmers", "africa") }, protocol.ReasonNotAllowed},
		{"region outside the taxonomy", func() *protocol.Record { return f.apply(fixedKey(112), "government", "mars") }, protocol.ReasonNotAllowed},
		{"outsider applies", func() *protocol.Record { return f.apply(out, "government", "africa") }, ""},
		{"non-member statement", func() *protocol.Record { return f.statement(appX, app) }, protocol.ReasonNotMember},
		{"member statement", func() *protocol.Record { return f.statement(gov1, app) }, ""},
		{"non-member withdraws", func() *protocol.Record {
			return f.publish(fixedKey(113), protocol.TopicMembers, protocol.KindMemberWithdraw, &protocol.MemberWithdraw{})
		}, protocol.ReasonNotMember},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.rec()
			err := protocol.CheckMembership(f.g, r, f.all)
			if got := protocol.ReasonOf(err); got != tt.reason {
				t.Fatalf("reason %q, want %q (%v)", got, tt.reason, err)
			}
			if r.Env.Topic == protocol.TopicMembers {
				if got := verdict(t, f.derive(), r); got != tt.reason {
					t.Fatalf("DeriveMembers verdict %q, want %q", got, tt.reason)
				}
			}
		})
	}
}

func TestCheckMembershipPast(t *testing.T) {
	f := stdFed(t, protocol.DefaultRules)
	s1 := f.statement(gov1)
	s2 := f.statement(gov1, s1)
	if err := protocol.CheckMembership(f.g, s2, nil); protocol.ReasonOf(err) != protocol.ReasonMissingDeps {
		t.Fatalf("incomplete past: %v, want missing-deps", err)
	}
	other := newFed(t, protocol.DefaultRules, founder{gov1, "government", "africa"}, founder{civ, "civil-society", "asia-pacific"})
	if err := protocol.CheckMembership(other.g, s1, nil); protocol.ReasonOf(err) != protocol.ReasonWrongNetwork {
		t.Fatalf("other network: %v, want wrong-network", err)
	}
	// Extra records that are not in the past are ignored.
	if err := protocol.CheckMembership(f.g, s1, f.all); err != nil {
		t.Fatal(err)
	}
}

func TestRotation(t *testing.T) {
	f := stdFed(t, protocol.DefaultRules)
	newKey := fixedKey(130)
	before := f.statement(gov1)
	rot := f.publish(gov1, protocol.TopicMembers, protocol.KindMemberRotate, &protocol.MemberRotate{NewKey: pub(newKey)}, before)
	afterOld := f.statement(gov1, rot) // the old key, rotation in its past
	concurrentOld := f.publish(gov1, protocol.IssueTopic("access"), protocol.KindStatement, &protocol.Statement{Title: "t", Text: "x"})
	newStmt := f.statement(newKey, rot)
	newEarly := f.publish(newKey, protocol.IssueTopic("access"), protocol.KindStatement, &protocol.Statement{Title: "t", Text: "x"})
	oldAgain := f.publish(gov1, protocol.TopicMembers, protocol.KindMemberRotate, &protocol.MemberRotate{NewKey: pub(fixedKey(131))}, rot)
	toKnown := f.publish(civ, protocol.TopicMembers, protocol.KindMemberRotate, &protocol.MemberRotate{NewKey: pub(gov2)})
	toRetired := f.publish(priv, protocol.TopicMembers, protocol.KindMemberRotate, &protocol.MemberRotate{NewKey: pub(gov1)}, rot)

	tests := []struct {
		name   string
		rec    *protocol.Record
		reason protocol.Reason
	}{
		{"old key before the rotation", before, ""},
		{"old key after the rotation", afterOld, protocol.ReasonNotMember},
		{"old key, rotation not in its past", concurrentOld, ""},
		{"new key after the rotation", newStmt, ""},
		{"new key without the rotation in its past", newEarly, protocol.ReasonNotMember},
		{"old key rotates again", oldAgain, protocol.ReasonNotMember},
		{"rotate to a member's key", toKnown, protocol.ReasonNotAllowed},
		{"rotate to a retired key", toRetired, protocol.ReasonNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := protocol.CheckMembership(f.g, tt.rec, f.all)
			if got := protocol.ReasonOf(err); got != tt.reason {
				t.Fatalf("reason %q, want %q (%v)", got, tt.reason, err)
			}
		})
	}

	set := f.derive()
	if set.IsMember(pub(gov1)) || !set.IsMember(pub(newKey)) {
		t.Fatalf("after rotation: old key member %v, new key member %v", set.IsMember(pub(gov1)), set.IsMember(pub(newKey)))
	}
	h, ok := set.KeyHistory(pub(gov1))
	if !ok || !bytes.Equal(h.Key, pub(newKey)) || len(h.Keys) != 2 {
		t.Fatalf("key history of the old key: %+v", h)
	}
	if h.Keys[0].From != nil || h.Keys[0].Until == nil || !h.Keys[0].Until.Equals(rot.CID) ||
		h.Keys[1].From == nil || !h.Keys[1].From.Equals(rot.CID) || h.Keys[1].Until != nil {
		t.Fatalf("key epochs: %+v", h.Keys)
	}
	if h2, _ := set.KeyHistory(pub(newKey)); h2.Keys[0].Until == nil {
		t.Fatal("KeyHistory of the new key differs from the old key's")
	}
	if got := set.Len(); got != 4 {
		t.Fatalf("%d members after a rotation, want 4", got)
	}
}

func TestRevocation(t *testing.T) {
	repl, repl2 := fixedKey(140), fixedKey(141)
	revoke := func(f *fed, voter ed25519.PrivateKey, target []byte, replacement ed25519.PrivateKey, deps ...*protocol.Record) *protocol.Record {
		b := &protocol.MemberRevoke{Key: target, Reason: "key lost"}
		if replacement != nil {
			b.Replacement = pub(replacement)
		}
		return f.publish(voter, protocol.TopicMembers, protocol.KindMemberRevoke, b, deps...)
	}
	tests := []struct {
		name     string
		votes    func(f *fed) []*protocol.Record
		old, rep bool // want gov1's key, repl's key to be member keys
		reasons  map[int]protocol.Reason
	}{
		{"one vote", func(f *fed) []*protocol.Record {
			return []*protocol.Record{revoke(f, gov2, pub(gov1), repl)}
		}, true, false, nil},
		{"two votes, one group", func(f *fed) []*protocol.Record {
			return []*protocol.Record{revoke(f, gov2, pub(gov1), repl), revoke(f, gov2, pub(gov1), repl)}
		}, true, false, nil},
		{"two groups, recovery", func(f *fed) []*protocol.Record {
			return []*protocol.Record{revoke(f, gov2, pub(gov1), repl), revoke(f, civ, pub(gov1), repl)}
		}, false, true, nil},
		{"two groups, different replacements", func(f *fed) []*protocol.Record {
			return []*protocol.Record{revoke(f, gov2, pub(gov1), repl), revoke(f, civ, pub(gov1), repl2)}
		}, true, false, nil},
		{"two groups, no replacement", func(f *fed) []*protocol.Record {
			return []*protocol.Record{revoke(f, gov2, pub(gov1), nil), revoke(f, civ, pub(gov1), nil)}
		}, false, false, nil},
		{"own key", func(f *fed) []*protocol.Record {
			return []*protocol.Record{revoke(f, gov1, pub(gov1), repl), revoke(f, civ, pub(gov1), repl)}
		}, true, false, map[int]protocol.Reason{0: protocol.ReasonNotAllowed}},
		{"non-member voter", func(f *fed) []*protocol.Record {
			return []*protocol.Record{revoke(f, out, pub(gov1), repl), revoke(f, civ, pub(gov1), repl)}
		}, true, false, map[int]protocol.Reason{0: protocol.ReasonNotMember}},
		{"target not a member", func(f *fed) []*protocol.Record {
			return []*protocol.Record{revoke(f, civ, pub(out), nil)}
		}, true, false, map[int]protocol.Reason{0: protocol.ReasonNotAllowed}},
		{"replacement already known", func(f *fed) []*protocol.Record {
			return []*protocol.Record{revoke(f, gov2, pub(gov1), priv)}
		}, true, false, map[int]protocol.Reason{0: protocol.ReasonNotAllowed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := stdFed(t, protocol.DefaultRules)
			votes := tt.votes(f)
			set := f.derive()
			if got := set.IsMember(pub(gov1)); got != tt.old {
				t.Fatalf("old key member = %v, want %v", got, tt.old)
			}
			if got := set.IsMember(pub(repl)); got != tt.rep {
				t.Fatalf("replacement member = %v, want %v", got, tt.rep)
			}
			for i, v := range votes {
				if got := verdict(t, set, v); got != tt.reasons[i] {
					t.Fatalf("vote %d: verdict %q, want %q", i, got, tt.reasons[i])
				}
			}
			// Records after every vote: by the old key, by the replacement.
			oldStmt := f.statement(gov1, f.all...)
			repStmt := f.statement(repl, f.all...)
			if err := protocol.CheckMembership(f.g, oldStmt, f.all); (err == nil) != tt.old {
				t.Fatalf("old key statement: %v, want member %v", err, tt.old)
			}
			if err := protocol.CheckMembership(f.g, repStmt, f.all); (err == nil) != tt.rep {
				t.Fatalf("replacement statement: %v, want member %v", err, tt.rep)
			}
			if tt.rep {
				m, _ := set.Lookup(pub(repl))
				if len(m.Keys) != 2 || !bytes.Equal(m.Keys[0].Key, pub(gov1)) || m.Org != "Founder A" {
					t.Fatalf("recovered member: %+v", m)
				}
			}
			if !tt.old && !tt.rep {
				former := set.Former()
				if len(former) != 1 || !bytes.Equal(former[0].Key, pub(gov1)) || former[0].Removed == nil {
					t.Fatalf("former members: %+v", former)
				}
			}
		})
	}
}

func TestWithdrawal(t *testing.T) {
	f := stdFed(t, protocol.DefaultRules)
	app := f.apply(appX, "civil-society", "africa")
	e1 := f.endorse(civ, app)
	before := f.statement(civ)
	w := f.publish(civ, protocol.TopicMembers, protocol.KindMemberWithdraw, &protocol.MemberWithdraw{Statement: "Goodbye."}, e1)
	after := f.statement(civ, w)
	afterMembers := f.endorse(civ, app, w)
	e2 := f.endorse(gov1, app, w) // civ's endorsement, valid in its past, still counts
	set := f.derive()
	if set.IsMember(pub(civ)) {
		t.Fatal("withdrawn member is still a member")
	}
	if !set.IsMember(pub(appX)) {
		t.Fatal("an endorsement made before the endorser withdrew stopped counting")
	}
	for _, tt := range []struct {
		rec    *protocol.Record
		reason protocol.Reason
	}{{before, ""}, {after, protocol.ReasonNotMember}, {afterMembers, protocol.ReasonNotMember}, {e2, ""}} {
		if got := protocol.ReasonOf(protocol.CheckMembership(f.g, tt.rec, f.all)); got != tt.reason {
			t.Fatalf("%s by %x: reason %q, want %q", tt.rec.Env.Kind, tt.rec.Env.Author[:4], got, tt.reason)
		}
	}
	former := set.Former()
	if len(former) != 1 || former[0].Removed == nil || !former[0].Removed.Equals(w.CID) || former[0].Keys[0].Until == nil {
		t.Fatalf("former: %+v", former)
	}
	if _, ok := set.KeyHistory(pub(civ)); !ok {
		t.Fatal("a withdrawn member's key history is lost")
	}
	if got := set.Groups(); len(got) != 3 { // government, private-sector, technical-academic
		t.Fatalf("groups %v", got)
	}
}

func TestSuspension(t *testing.T) {
	suspend := func(f *fed, voter ed25519.PrivateKey, target []byte, deps ...*protocol.Record) *protocol.Record {
		return f.publish(voter, protocol.TopicMembers, protocol.KindMemberSuspend, &protocol.MemberSuspend{Key: target, Reason: "spam"}, deps...)
	}
	tests := []struct {
		name      string
		votes     func(f *fed)
		suspended bool
	}{
		{"one group", func(f *fed) { suspend(f, gov1, pub(priv)); suspend(f, gov2, pub(priv)) }, false},
		// priv is alone in its group and its region: every other group and
		// every other region must agree (P4, 9.5).
		{"two groups, one region", func(f *fed) { suspend(f, gov1, pub(priv)); suspend(f, civ, pub(priv)) }, false},
		{"two groups, two regions", func(f *fed) { suspend(f, gov2, pub(priv)); suspend(f, civ, pub(priv)) }, true},
		{"self vote does not count", func(f *fed) { suspend(f, gov1, pub(priv)); suspend(f, priv, pub(priv)) }, false},
		{"a concurrent rotation does not escape", func(f *fed) {
			f.publish(priv, protocol.TopicMembers, protocol.KindMemberRotate, &protocol.MemberRotate{NewKey: pub(fixedKey(150))})
			suspend(f, gov2, pub(priv))
			suspend(f, civ, pub(priv))
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := stdFed(t, protocol.DefaultRules)
			tt.votes(f)
			set := f.derive()
			h, ok := set.KeyHistory(pub(priv))
			if !ok {
				t.Fatal("no history")
			}
			if got := h.Removed != nil; got != tt.suspended {
				t.Fatalf("suspended = %v, want %v", got, tt.suspended)
			}
			if tt.suspended && (set.Len() != 3 || set.IsMember(h.Key)) {
				t.Fatalf("suspended member still counted: %d members", set.Len())
			}
			if err := protocol.CheckMembership(f.g, f.statement(priv, f.all...), f.all); (err == nil) == tt.suspended {
				t.Fatalf("statement by the target after the votes: %v", err)
			}
		})
	}
}

// TestConcurrentClaims checks the one tie-break of the fold: when
// concurrent records claim the same key, the one first in fold order (here
// all have depth 0, so the lower CID) wins, on every node.
func TestConcurrentClaims(t *testing.T) {
	k := fixedKey(160)
	first := func(a, b *protocol.Record) *protocol.Record {
		if a.CID.KeyString() < b.CID.KeyString() {
			return a
		}
		return b
	}
	rotate := func(f *fed, who ed25519.PrivateKey) *protocol.Record {
		return f.publish(who, protocol.TopicMembers, protocol.KindMemberRotate, &protocol.MemberRotate{NewKey: pub(k)})
	}
	t.Run("two rotations to one key", func(t *testing.T) {
		f := stdFed(t, protocol.DefaultRules)
		a, b := rotate(f, gov1), rotate(f, civ)
		set := f.derive()
		win := first(a, b)
		m, ok := set.Lookup(pub(k))
		if !ok || !bytes.Equal(m.Keys[0].Key, win.Env.Author) {
			t.Fatalf("key %x held by %+v, want the author of %s", pub(k)[:4], m, win.CID)
		}
		lose := a
		if win == a {
			lose = b
		}
		if !set.IsMember(lose.Env.Author) || set.Len() != 4 {
			t.Fatalf("the losing rotation retired its author's key")
		}
		// Both rotations were valid in their own past.
		if verdict(t, set, a) != "" || verdict(t, set, b) != "" {
			t.Fatal("a rotation did not count")
		}
	})
	t.Run("application and rotation claim one key", func(t *testing.T) {
		f := stdFed(t, protocol.DefaultRules)
		app := f.apply(k, "civil-society", "africa")
		rot := rotate(f, gov2)
		f.endorse(gov1, app)
		f.endorse(civ, app)
		set := f.derive()
		m, ok := set.Lookup(pub(k))
		if !ok {
			t.Fatal("nobody holds the key")
		}
		if first(app, rot) == app {
			if m.Application == nil || !set.IsMember(pub(gov2)) {
				t.Fatalf("the application came first, but %+v holds the key", m)
			}
		} else if !bytes.Equal(m.Keys[0].Key, pub(gov2)) {
			t.Fatalf("the rotation came first, but %+v holds the key", m)
		}
	})
}

func TestMemberBodies(t *testing.T) {
	f := stdFed(t, protocol.DefaultRules)
	key, long := pub(fixedKey(170)), strings.Repeat("x", 4001)
	rawCID := cid.NewCidV1(cid.Raw, protocol.RecordCID([]byte("x")).Hash())
	apply := func(mod func(*protocol.MemberApply)) protocol.Body {
		b := &protocol.MemberApply{Org: "Org", Group: "government", Region: "africa", Statement: "Hello."}
		mod(b)
		return b
	}
	tests := []struct {
		name string
		kind string
		body protocol.Body
		ok   bool
	}{
		{"apply", protocol.KindMemberApply, apply(func(*protocol.MemberApply) {}), true},
		{"apply without org", protocol.KindMemberApply, apply(func(b *protocol.MemberApply) { b.Org = "" }), false},
		{"apply with a malformed group", protocol.KindMemberApply, apply(func(b *protocol.MemberApply) { b.Group = "Government" }), false},
		{"apply with a malformed region", protocol.KindMemberApply, apply(func(b *protocol.MemberApply) { b.Region = "-africa" }), false},
		{"apply with a long contact", protocol.KindMemberApply, apply(func(b *protocol.MemberApply) { b.Contact = long }), false},
		{"apply without statement", protocol.KindMemberApply, apply(func(b *protocol.MemberApply) { b.Statement = "" }), false},
		{"apply with a long statement", protocol.KindMemberApply, apply(func(b *protocol.MemberApply) { b.Statement = long }), false},
		{"endorse a raw CID", protocol.KindMemberEndorse, &protocol.MemberEndorse{Application: protocol.LinkTo(rawCID)}, false},
		{"rotate to a short key", protocol.KindMemberRotate, &protocol.MemberRotate{NewKey: key[:31]}, false},
		{"revoke", protocol.KindMemberRevoke, &protocol.MemberRevoke{Key: key, Reason: "r", Replacement: pub(fixedKey(171))}, true},
		{"revoke a short key", protocol.KindMemberRevoke, &protocol.MemberRevoke{Key: key[:1], Reason: "r"}, false},
		{"revoke without reason", protocol.KindMemberRevoke, &protocol.MemberRevoke{Key: key}, false},
		{"revoke with a short replacement", protocol.KindMemberRevoke, &protocol.MemberRevoke{Key: key, Reason: "r", Replacement: key[:5]}, false},
		{"revoke with the key as replacement", protocol.KindMemberRevoke, &protocol.MemberRevoke{Key: key, Reason: "r", Replacement: key}, false},
		{"withdraw without statement", protocol.KindMemberWithdraw, &protocol.MemberWithdraw{}, true},
		{"withdraw with a long statement", protocol.KindMemberWithdraw, &protocol.MemberWithdraw{Statement: long}, false},
		{"suspend", protocol.KindMemberSuspend, &protocol.MemberSuspend{Key: key, Reason: "r"}, true},
		{"suspend a short key", protocol.KindMemberSuspend, &protocol.MemberSuspend{Key: key[:31], Reason: "r"}, false},
		{"suspend without reason", protocol.KindMemberSuspend, &protocol.MemberSuspend{Key: key}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := f.build(gov1, protocol.TopicMembers, tt.kind, tt.body)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := protocol.Decode(r.Raw); err != nil {
					t.Fatal(err)
				}
				return
			}
			if protocol.ReasonOf(err) != protocol.ReasonBadBody {
				t.Fatalf("reason %q, want bad-body (%v)", protocol.ReasonOf(err), err)
			}
		})
	}
	// Membership kinds live on the members topic only.
	if _, err := f.build(gov1, protocol.IssueTopic("privacy"), protocol.KindMemberWithdraw, &protocol.MemberWithdraw{}); protocol.ReasonOf(err) != protocol.ReasonWrongTopic {
		t.Fatalf("member.withdraw on an issue topic: %v", err)
	}
}

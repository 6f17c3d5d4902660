package gov_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/protocol/gov"
)

// mapRoster is a fixed roster backed by a map, as a genesis defines one.
type mapRoster struct {
	byKey   map[string]protocol.Member
	groups  []string
	regions []string
}

func newRoster(members []protocol.Member) *mapRoster {
	r := &mapRoster{byKey: map[string]protocol.Member{}}
	for _, m := range members {
		r.byKey[string(m.Key)] = m
		r.groups = append(r.groups, m.Group)
		r.regions = append(r.regions, m.Region)
	}
	slices.Sort(r.groups)
	slices.Sort(r.regions)
	r.groups, r.regions = slices.Compact(r.groups), slices.Compact(r.regions)
	return r
}

func (r *mapRoster) Lookup(key []byte) (protocol.Member, bool) {
	m, ok := r.byKey[string(key)]
	return m, ok
}
func (r *mapRoster) Groups() []string  { return r.groups }
func (r *mapRoster) Regions() []string { return r.regions }

// keyOf returns the deterministic key of a named test party.
func keyOf(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("clearinghouse test party " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

var genesisTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// world is a small federation in which test parties publish records, as
// their nodes would: each record links its author's previous record on the
// topic (prev), the records its body references and, unless told
// otherwise, every head of the topic it has seen. Records are applied to
// an Issue and an Index as they are published; a rejected record is not
// published further (nobody links to it, its author's seq does not move).
type world struct {
	t       testing.TB
	slug    string
	rules   protocol.Rules
	members []protocol.Member
	keys    map[string]ed25519.PrivateKey
	genesis *protocol.Genesis
	net     cid.Cid
	roster  *mapRoster
	issue   *gov.Issue
	index   *gov.Index

	names     map[string]*protocol.Record
	nameOf    map[cid.Cid]string
	seq       map[string]uint64 // by author name + topic
	prev      map[string]cid.Cid
	heads     map[string][]cid.Cid // by topic, in publication order
	all       []*protocol.Record   // every record built, in publication order
	firstSeen map[cid.Cid]int64
	charter   string // the latest charter published
	// removed are the members suspended so far: the roster of records
	// published after a suspension leaves them out, and so does the
	// membership of the whole set (Issue.SetMembers).
	removed map[string]bool
	// before is the roster before the latest suspension, for a record
	// whose signer leaves the suspension out of its causal past.
	before *mapRoster
	// rosters is the roster each record was checked against.
	rosters map[cid.Cid]gov.Roster
	// manualWitness turns off the automatic checkpoints: by default the
	// first members of the first two groups (in member order) publish a
	// checkpoint after every record accepted on the issue topic, at the
	// time it was published, so public times equal claimed times unless a
	// record says published=TIME.
	manualWitness bool
	lastCP        map[string]time.Time
	// witnessNames, if set, are the witnesses instead of the default.
	witnessNames []string
	checkpoints  int
	// advanceOnReject makes a rejected record still take its author's
	// seq, as a node that published it without checking would (the next
	// record's prev then links it); otherwise the next record reuses the
	// seq, as if the rejected one had never been published.
	advanceOnReject bool
}

func newWorld(t testing.TB, slug string) *world {
	return &world{
		t: t, slug: slug, rules: protocol.DefaultRules,
		keys: map[string]ed25519.PrivateKey{}, names: map[string]*protocol.Record{}, nameOf: map[cid.Cid]string{},
		seq: map[string]uint64{}, prev: map[string]cid.Cid{}, heads: map[string][]cid.Cid{}, firstSeen: map[cid.Cid]int64{},
		removed: map[string]bool{}, rosters: map[cid.Cid]gov.Roster{}, lastCP: map[string]time.Time{},
	}
}

// member adds a founder; outsider adds a party with a key but no membership.
func (w *world) member(name, group, region string) {
	if w.genesis != nil {
		w.t.Fatalf("member %s added after the genesis", name)
	}
	k := keyOf(name)
	w.keys[name] = k
	w.members = append(w.members, protocol.Member{Key: k.Public().(ed25519.PublicKey), Org: name, Group: group, Region: region})
}

func (w *world) outsider(name string) { w.keys[name] = keyOf(name) }

// found signs the genesis once every founder is known.
func (w *world) found() {
	if w.genesis != nil {
		return
	}
	g := protocol.NewGenesis("test federation", w.members, genesisTime)
	g.Rules = w.rules
	for _, m := range w.members {
		if err := g.Sign(w.keys[m.Org]); err != nil {
			w.t.Fatal(err)
		}
	}
	if err := g.Verify(); err != nil {
		w.t.Fatal(err)
	}
	w.genesis = g
	w.net, _ = g.NetworkID()
	w.roster = newRoster(w.members)
	w.before = w.roster
	var err error
	if w.issue, err = gov.NewIssue(g, w.slug); err != nil {
		w.t.Fatal(err)
	}
	w.issue.SetMembers(w.roster)
	if w.index, err = gov.NewIndex(g); err != nil {
		w.t.Fatal(err)
	}
}

// rosterAt returns the roster a record was checked against when it was
// published.
func (w *world) rosterAt(r *protocol.Record) gov.Roster {
	if ros, ok := w.rosters[r.CID]; ok {
		return ros
	}
	return w.roster
}

// suspend removes a member, as a completed member.suspend on the members
// topic would: records published from now on are checked against the
// roster without it, and so is the membership of the whole set.
func (w *world) suspend(name string) {
	w.found()
	w.removed[name] = true
	var left []protocol.Member
	for _, m := range w.members {
		if !w.removed[m.Org] {
			left = append(left, m)
		}
	}
	w.before = w.roster
	w.roster = newRoster(left)
	w.issue.SetMembers(w.roster)
}

// cid returns the CID of a named record.
func (w *world) cid(name string) cid.Cid {
	r, ok := w.names[name]
	if !ok {
		w.t.Fatalf("no record named %q", name)
	}
	return r.CID
}

func (w *world) link(name string) protocol.Link { return protocol.LinkTo(w.cid(name)) }

func (w *world) linkp(name string) *protocol.Link {
	if name == "" {
		return nil
	}
	l := w.link(name)
	return &l
}

// draft is a record a party publishes.
type draft struct {
	kind, name, by string
	at             time.Time
	body           protocol.Body
	// after, if not nil, replaces the topic heads in deps by these records.
	after []string
	// seen, if not zero, is the first-seen time.
	seen time.Time
	// stale checks the record against the roster before the latest
	// suspension: its signer left the suspension out of its causal past.
	stale bool
	// published, if not zero, is when the witnesses first see the record
	// (default: its claimed time).
	published time.Time
	// fork, if not empty, names a record of the same author and topic
	// whose chain position (seq and prev) this one takes: an
	// equivocation. The author's chain goes on from the first.
	fork string
}

// witnesses returns the members that publish checkpoints: the first
// member of each of the first witness-quorum groups, in member order.
func (w *world) witnesses() []string {
	if w.witnessNames != nil {
		return slices.DeleteFunc(slices.Clone(w.witnessNames), func(n string) bool { return w.removed[n] })
	}
	var out, groups []string
	for _, m := range w.members {
		if len(groups) == w.rules.Quorum() {
			break
		}
		if !slices.Contains(groups, m.Group) && !w.removed[m.Org] {
			groups = append(groups, m.Group)
			out = append(out, m.Org)
		}
	}
	return out
}

// witness has every witness publish a checkpoint of the issue topic at at
// (or as soon after as the minimum interval and the times of the heads
// allow). A checkpoint that would witness nothing new is skipped.
func (w *world) witness(at time.Time) {
	topic := protocol.IssueTopic(w.slug)
	latest := at
	for _, h := range w.heads[topic] {
		if r := w.byCID(h); r != nil && time.UnixMilli(r.Env.Time).After(latest) {
			latest = time.UnixMilli(r.Env.Time).UTC()
		}
	}
	for _, name := range w.witnesses() {
		t := latest
		if last, ok := w.lastCP[name]; ok && last.Add(protocol.MinCheckpointInterval).After(t) {
			t = last.Add(protocol.MinCheckpointInterval)
		}
		w.checkpoints++
		_, err := w.publish(draft{kind: protocol.KindCheckpoint, name: fmt.Sprintf("cp%d", w.checkpoints), by: name, at: t, body: &protocol.Checkpoint{}})
		switch {
		case err == nil:
			w.lastCP[name] = t
		case protocol.ReasonOf(err) != protocol.ReasonNotAllowed:
			w.t.Fatalf("checkpoint by %s: %v", name, err)
		}
	}
}

func (w *world) byCID(c cid.Cid) *protocol.Record {
	for _, r := range w.all {
		if r.CID.Equals(c) {
			return r
		}
	}
	return nil
}

// publish builds, signs and applies a record. It returns the record (nil
// if it could not be built) and the verdict.
func (w *world) publish(d draft) (*protocol.Record, error) {
	w.found()
	key, ok := w.keys[d.by]
	if !ok {
		w.t.Fatalf("%s: unknown party %q", d.name, d.by)
	}
	topic := protocol.IssueTopic(w.slug)
	if d.kind == protocol.KindIssueOpen {
		topic = protocol.TopicIndex
	}
	var deps []cid.Cid
	if d.after == nil {
		deps = slices.Clone(w.heads[topic])
	}
	for _, n := range d.after {
		deps = append(deps, w.cid(n))
	}
	if proc, refs, ok := protocol.ProcessRefs(d.body); ok {
		if proc.Defined() {
			deps = append(deps, proc)
		}
		deps = append(deps, refs...)
	}
	chain := d.by + " " + topic
	seq, prev := w.seq[chain]+1, w.prev[chain]
	if d.fork != "" {
		o := w.names[d.fork]
		seq, prev = o.Env.Seq, cid.Undef
		if o.Env.Prev != nil {
			prev = o.Env.Prev.Cid
		}
	}
	r, err := protocol.Build(key, protocol.Draft{
		Network: w.net, Kind: d.kind, Topic: topic, Seq: seq, Prev: prev,
		Deps: deps, Time: d.at, Body: d.body,
	})
	if err != nil {
		return nil, err
	}
	if d.name != "" {
		if old, dup := w.names[d.name]; dup && (w.issue.Has(old.CID) || w.index.Has(old.CID)) {
			w.t.Fatalf("record name %q used twice", d.name)
		}
		w.names[d.name] = r
		w.nameOf[r.CID] = d.name
	}
	w.all = append(w.all, r)
	if !d.seen.IsZero() {
		w.firstSeen[r.CID] = d.seen.UnixMilli()
	}
	ros := w.roster
	if d.stale {
		ros = w.before
	}
	w.rosters[r.CID] = ros
	if topic == protocol.TopicIndex {
		err = w.index.Apply(r, ros)
	} else {
		err = w.issue.Apply(r, ros)
	}
	if d.fork == "" && (err == nil || w.advanceOnReject) {
		w.seq[chain]++
		w.prev[chain] = r.CID
	}
	if err != nil {
		return r, err
	}
	w.heads[topic] = slices.DeleteFunc(w.heads[topic], func(c cid.Cid) bool { return slices.Contains(r.Links(), c) })
	w.heads[topic] = append(w.heads[topic], r.CID)
	if d.kind == protocol.KindCharter {
		w.charter = d.name
	}
	if !w.manualWitness && topic != protocol.TopicIndex && d.kind != protocol.KindCheckpoint {
		at := d.at
		if !d.published.IsZero() {
			at = d.published
		}
		w.witness(at)
	}
	return r, nil
}

// must publishes a record that must be accepted.
func (w *world) must(d draft) *protocol.Record {
	w.t.Helper()
	r, err := w.publish(d)
	if err != nil {
		w.t.Fatalf("%s %s: %v", d.kind, d.name, err)
	}
	return r
}

// names replaces CIDs and keys in s by the names of their records and
// parties.
func (w *world) rename(s string) string {
	var pairs []string
	for c, n := range w.nameOf {
		pairs = append(pairs, c.String(), n)
	}
	for n, k := range w.keys {
		pub := k.Public().(ed25519.PublicKey)
		pairs = append(pairs, hex.EncodeToString(pub), n, hex.EncodeToString(pub[:8]), n)
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// defaultCharter returns a complete charter convened by the named members,
// with phases starting at start and following each other every 30 days.
func (w *world) defaultCharter(start time.Time, final string, convenors ...string) *protocol.Charter {
	w.found()
	c := &protocol.Charter{
		Title:            "Cross-border data flows",
		Aim:              "Agree principles for personal data crossing borders.",
		Purpose:          "Give users the same protection wherever their data goes.",
		Scope:            []string{"jurisdiction over data", "redress"},
		Modalities:       "Open consultation on the issue topic; written feedback; two readings.",
		Significance:     "Affects every cross-border online service.",
		MinNoticeSeconds: w.rules.MinNoticeSeconds,
		WindowSeconds:    w.rules.MinNoticeSeconds,
		Rule:             protocol.DecisionRule{Name: protocol.RuleConcurrentMajority},
	}
	for _, n := range convenors {
		c.Convenors = append(c.Convenors, w.keys[n].Public().(ed25519.PublicKey))
	}
	day := 24 * time.Hour
	stages := []string{protocol.StageScoping, protocol.StageConsultation, protocol.StageDecision, final}
	for i, s := range stages {
		from := start.Add(time.Duration(i) * 30 * day)
		c.Phases = append(c.Phases, protocol.Phase{Stage: s, Start: from.UnixMilli(), End: from.Add(30 * day).UnixMilli()})
	}
	return c
}

// verdict formats an error as the golden files show it.
func verdict(err error) string {
	if err == nil {
		return "ok"
	}
	return "reject " + strings.TrimPrefix(err.Error(), "protocol: ")
}

func (w *world) String() string { return fmt.Sprintf("world(%s, %d records)", w.slug, len(w.all)) }

// Default timeline of a process chartered at t0 (phases of 30 days).
const day = 24 * time.Hour

// startProcess publishes a charter convened by convs (the first signs it),
// a consultation notice and the two stage moves, and returns the time the
// consultation started (t0 + 30 days + 1 hour).
func (w *world) startProcess(name string, t0 time.Time, convs ...string) time.Time {
	w.found()
	w.must(draft{kind: protocol.KindCharter, name: name, by: convs[0], at: t0,
		body: w.defaultCharter(t0, protocol.StageDelegation, convs...)})
	consult := t0.Add(30 * day)
	w.must(draft{kind: protocol.KindNotice, by: convs[0], at: t0.Add(time.Hour),
		body: &protocol.Notice{Process: w.link(name), Subject: protocol.SubjectConsultation, Date: consult.UnixMilli()}})
	w.must(draft{kind: protocol.KindStage, by: convs[0], at: consult, body: &protocol.StageChange{Process: w.link(name), To: protocol.StageConsultation}})
	w.must(draft{kind: protocol.KindStage, by: convs[1], at: consult.Add(time.Hour), body: &protocol.StageChange{Process: w.link(name), To: protocol.StageConsultation}})
	return consult.Add(time.Hour)
}

// toDecision publishes a decision notice at at (which must fall before the
// decision phase starts, t0 + 60 days, by the minimum notice) and the two
// moves, and returns the time the decision stage started.
func (w *world) toDecision(name string, t0, at time.Time, convs ...string) time.Time {
	dec := t0.Add(60 * day)
	w.must(draft{kind: protocol.KindNotice, by: convs[0], at: at,
		body: &protocol.Notice{Process: w.link(name), Subject: protocol.SubjectDecision, Date: dec.UnixMilli()}})
	w.must(draft{kind: protocol.KindStage, by: convs[0], at: dec, body: &protocol.StageChange{Process: w.link(name), To: protocol.StageDecision}})
	w.must(draft{kind: protocol.KindStage, by: convs[1], at: dec.Add(time.Hour), body: &protocol.StageChange{Process: w.link(name), To: protocol.StageDecision}})
	return dec.Add(time.Hour)
}

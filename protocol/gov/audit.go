package gov

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/bits"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// LateTolerance is how much later than its claimed time a node may first
// see a record before the audit lists it as late (possibly backdated).
const LateTolerance = time.Hour

// Report is the P1-P4 audit of one process (DESIGN.md section 1). It is a
// function of the records applied and of the node's first-seen times only;
// [Report.JSON] is its canonical form, [Report.Text] a readable one. Times
// are unix milliseconds, durations seconds, CIDs and keys strings (base32
// CIDs, hex keys). Every list has a fixed order, given with each field.
// Fields are declared in the bytewise order of their JSON names, so that
// encoding/json writes sorted keys.
type Report struct {
	// Conclusions are the CIDs of conclusion records, by time then CID.
	Conclusions []string `json:"conclusions"`
	// Convenors in charter order.
	Convenors []Party `json:"convenors"`
	// Delegations by claimed time, then CID.
	Delegations []DelegationInfo `json:"delegations"`
	// Matrix counts participants per group and region, by group then region.
	Matrix []Cell `json:"matrix"`
	// P1 is participation by stakeholder group; P3 by region.
	P1 Coverage     `json:"p1"`
	P2 Transparency `json:"p2"`
	P3 Coverage     `json:"p3"`
	P4 Independence `json:"p4"`
	// Process is the charter CID.
	Process string `json:"process"`
	// Proposals by claimed time, then CID.
	Proposals []ProposalInfo `json:"proposals"`
	// Records counts the valid records of the process, charter included.
	Records int      `json:"records"`
	Rule    RuleInfo `json:"rule"`
	// Stage is the stage given every record applied.
	Stage string `json:"stage"`
	Title string `json:"title"`
	Topic string `json:"topic"`
}

// RuleInfo is a decision rule as the audit shows it.
type RuleInfo struct {
	Group string `json:"group"`
	// Mandate is the decision approving a non-default rule, or "".
	Mandate   string `json:"mandate"`
	Name      string `json:"name"`
	Threshold int    `json:"threshold"`
}

// Party is a member as the audit shows it.
type Party struct {
	Group  string `json:"group"`
	Key    string `json:"key"`
	Org    string `json:"org"`
	Region string `json:"region"`
}

// Coverage is the participation of groups (P1) or regions (P3).
type Coverage struct {
	// Entries has one entry per group (region) with members, by name.
	Entries []Participation `json:"entries"`
	Missing []string        `json:"missing"`
	// NoMembers lists the federation's groups (regions) without members in
	// any roster the process's records were checked against, sorted.
	NoMembers []string `json:"noMembers"`
	// OK reports whether every group (region) with members took part.
	OK bool `json:"ok"`
	// TookPart and Missing list the names of Entries that did and did not
	// take part, sorted.
	TookPart []string `json:"tookPart"`
}

// Participation counts the participants of one group or region: members
// who signed at least one record of the process, and those records.
type Participation struct {
	Members int    `json:"members"`
	Name    string `json:"name"`
	Records int    `json:"records"`
}

// Cell counts the participants of one group in one region.
type Cell struct {
	Group   string `json:"group"`
	Members int    `json:"members"`
	Region  string `json:"region"`
}

// Transparency is the P2 audit.
type Transparency struct {
	Charter CharterCheck `json:"charter"`
	// Late lists records first seen more than LateTolerance after their
	// claimed time, by claimed time, then CID.
	Late []LateInfo `json:"late"`
	// Notices by claimed time, then CID.
	Notices []NoticeInfo `json:"notices"`
	// Objections by claimed time, then CID.
	Objections []ObjectionInfo `json:"objections"`
	// OK reports whether the charter is complete, every notice and comment
	// window met the minimum notice (as claimed and as first seen) and every
	// formal objection has a response.
	OK bool `json:"ok"`
	// Stages in process order, concluded last.
	Stages []StageInfo `json:"stages"`
	// Windows, one per proposal version, by opening time, then CID.
	Windows []WindowInfo `json:"windows"`
}

// CharterCheck says whether the charter states aim, purpose, scope,
// modalities and significance.
type CharterCheck struct {
	// Background counts the background documents.
	Background                 int   `json:"background"`
	Complete                   bool  `json:"complete"`
	FederationMinNoticeSeconds int64 `json:"federationMinNoticeSeconds"`
	MinNoticeSeconds           int64 `json:"minNoticeSeconds"`
	// Missing names the empty fields, in the order aim, purpose, scope,
	// modalities, significance.
	Missing       []string `json:"missing"`
	WindowSeconds int64    `json:"windowSeconds"`
}

// StageInfo is one stage: its planned phase (zero for concluded) and when
// it started, that is the claimed time of the move that first gave it
// convenors of two groups (the charter's time for scoping; null if not
// reached).
type StageInfo struct {
	// Moves are the stage or conclusion records to it, by time then CID.
	Moves        []string `json:"moves"`
	PlannedEnd   int64    `json:"plannedEnd"`
	PlannedStart int64    `json:"plannedStart"`
	Stage        string   `json:"stage"`
	Started      *int64   `json:"started"`
}

// NoticeInfo is one notice measured against the charter's minimum notice,
// as claimed and from when this node first saw it.
type NoticeInfo struct {
	Claimed          int64  `json:"claimed"`
	Date             int64  `json:"date"`
	EffectiveSeconds int64  `json:"effectiveSeconds"`
	FirstSeen        *int64 `json:"firstSeen"`
	NoticeSeconds    int64  `json:"noticeSeconds"`
	OK               bool   `json:"ok"`
	Record           string `json:"record"`
	Subject          string `json:"subject"`
}

// WindowInfo is one proposal version's comment window measured against the
// minimum notice, as claimed and from when this node first saw it.
type WindowInfo struct {
	Closes           int64  `json:"closes"`
	EffectiveSeconds int64  `json:"effectiveSeconds"`
	FirstSeen        *int64 `json:"firstSeen"`
	OK               bool   `json:"ok"`
	Opens            int64  `json:"opens"`
	Proposal         string `json:"proposal"`
	Seconds          int64  `json:"seconds"`
}

// ObjectionInfo is one formal objection and its responses (by time, CID).
type ObjectionInfo struct {
	Answered  bool     `json:"answered"`
	By        Party    `json:"by"`
	Proposal  string   `json:"proposal"`
	Record    string   `json:"record"`
	Responses []string `json:"responses"`
}

// LateInfo is a record first seen well after its claimed time.
type LateInfo struct {
	Claimed     int64  `json:"claimed"`
	FirstSeen   int64  `json:"firstSeen"`
	Kind        string `json:"kind"`
	LateSeconds int64  `json:"lateSeconds"`
	Record      string `json:"record"`
}

// Independence is the P4 audit.
type Independence struct {
	// OK reports whether every adopted outcome needed the support of every
	// group and every region (true when nothing is adopted).
	OK bool `json:"ok"`
	// Outcomes, one per valid decision, by time then CID.
	Outcomes []Outcome `json:"outcomes"`
}

// Outcome is one adopted proposal version: the rule, the tally in the
// decision's causal past, and which groups and regions it needed.
type Outcome struct {
	Decision string `json:"decision"`
	// Endorsers by key.
	Endorsers []Party `json:"endorsers"`
	// EveryGroupNeeded and EveryRegionNeeded report whether removing the
	// endorsements of any one group (region) leaves it not adopted.
	EveryGroupNeeded  bool `json:"everyGroupNeeded"`
	EveryRegionNeeded bool `json:"everyRegionNeeded"`
	// Groups and Regions have one entry per group and region with members
	// in the decision's causal past, by name.
	Groups   []Need   `json:"groups"`
	Proposal string   `json:"proposal"`
	Regions  []Need   `json:"regions"`
	Rule     RuleInfo `json:"rule"`
	Time     int64    `json:"time"`
	Title    string   `json:"title"`
	Version  int      `json:"version"`
}

// Need is one group's or region's part in an outcome.
type Need struct {
	Endorsements int    `json:"endorsements"`
	Name         string `json:"name"`
	// Needed reports whether removing its endorsements leaves the proposal
	// not adopted.
	Needed     bool `json:"needed"`
	Objections int  `json:"objections"`
}

// ProposalInfo is one proposal version with its feedback given every
// record applied.
type ProposalInfo struct {
	By     Party `json:"by"`
	Closes int64 `json:"closes"`
	// Decisions that adopted it, sorted.
	Decisions []string `json:"decisions"`
	// Endorsements counts members whose endorsement stands.
	Endorsements int `json:"endorsements"`
	// Objections counts formal objections.
	Objections int    `json:"objections"`
	Record     string `json:"record"`
	Replaces   string `json:"replaces"`
	// Stances counts members by the stance of their latest feedback.
	Stances map[string]int `json:"stances"`
	Time    int64          `json:"time"`
	Title   string         `json:"title"`
	Version int            `json:"version"`
}

// DelegationInfo is one delegation and its reports (by time, CID).
type DelegationInfo struct {
	Body      string   `json:"body"`
	Record    string   `json:"record"`
	Reporting string   `json:"reporting"`
	Reports   []string `json:"reports"`
	Scope     string   `json:"scope"`
}

// byTime orders records by claimed time, then CID.
func byTime(a, b *node) int {
	return cmp.Or(cmp.Compare(a.time(), b.time()), cidCompare(a.rec.CID, b.rec.CID))
}

func party(m protocol.Member) Party {
	return Party{Key: hex.EncodeToString(m.Key), Org: m.Org, Group: m.Group, Region: m.Region}
}

func cidStrings(ns []*node) []string {
	ns = slices.Clone(ns)
	slices.SortFunc(ns, byTime)
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.rec.CID.String()
	}
	return out
}

// Audit computes the P1-P4 audit of the process. firstSeen maps record
// CIDs to the unix millisecond time this node first saw them; it may be
// nil or partial (records without an entry are taken as seen when
// claimed). Two calls with the same records and the same firstSeen give
// identical reports.
func (p *Process) Audit(firstSeen map[cid.Cid]int64) *Report {
	is := p.is
	b := p.body
	seen := func(n *node) (*int64, int64) {
		if t, ok := firstSeen[n.rec.CID]; ok {
			return &t, max(t, n.time())
		}
		return nil, n.time()
	}
	minMs := b.MinNoticeSeconds * 1000
	rep := &Report{
		Process: p.CID().String(),
		Topic:   is.topic,
		Title:   b.Title,
		Stage:   p.Stage(),
		Records: len(p.records),
		Rule:    p.ruleInfo(),
	}
	for _, m := range p.conv {
		rep.Convenors = append(rep.Convenors, party(m))
	}

	// P1, P3 and the matrix.
	rep.P1, rep.P3, rep.Matrix = p.coverage()

	// P2.
	t := &rep.P2
	t.Charter = CharterCheck{
		Background:                 len(b.Background),
		MinNoticeSeconds:           b.MinNoticeSeconds,
		FederationMinNoticeSeconds: is.rules.MinNoticeSeconds,
		WindowSeconds:              b.WindowSeconds,
	}
	for _, f := range []struct {
		name  string
		empty bool
	}{{"aim", b.Aim == ""}, {"purpose", b.Purpose == ""}, {"scope", len(b.Scope) == 0}, {"modalities", b.Modalities == ""}, {"significance", b.Significance == ""}} {
		if f.empty {
			t.Charter.Missing = append(t.Charter.Missing, f.name)
		}
	}
	t.Charter.Complete = len(t.Charter.Missing) == 0
	t.Stages = p.stages()
	notices := slices.Clone(p.notices)
	slices.SortFunc(notices, byTime)
	allOK := t.Charter.Complete
	for _, n := range notices {
		nb := n.rec.Body.(*protocol.Notice)
		fs, from := seen(n)
		ni := NoticeInfo{
			Record: n.rec.CID.String(), Subject: nb.Subject, Date: nb.Date, Claimed: n.time(), FirstSeen: fs,
			NoticeSeconds: (nb.Date - n.time()) / 1000, EffectiveSeconds: (nb.Date - from) / 1000,
			OK: nb.Date-from >= minMs,
		}
		allOK = allOK && ni.OK
		t.Notices = append(t.Notices, ni)
	}
	props := p.sortedProposals()
	for _, pr := range props {
		fs, from := seen(pr.n)
		w := WindowInfo{
			Proposal: pr.n.rec.CID.String(), Opens: pr.n.time(), Closes: pr.closes, FirstSeen: fs,
			Seconds: (pr.closes - pr.n.time()) / 1000, EffectiveSeconds: (pr.closes - from) / 1000,
			OK: pr.closes-from >= minMs,
		}
		allOK = allOK && w.OK
		t.Windows = append(t.Windows, w)
	}
	objs := make([]*objection, 0, len(p.objections))
	for _, o := range p.objections {
		objs = append(objs, o)
	}
	slices.SortFunc(objs, func(a, b *objection) int { return byTime(a.n, b.n) })
	for _, o := range objs {
		oi := ObjectionInfo{
			Record: o.n.rec.CID.String(), Proposal: o.prop.n.rec.CID.String(), By: party(o.n.member),
			Answered: len(o.responses) > 0, Responses: cidStrings(o.responses),
		}
		allOK = allOK && oi.Answered
		t.Objections = append(t.Objections, oi)
	}
	recs := slices.Clone(p.records)
	slices.SortFunc(recs, byTime)
	for _, n := range recs {
		if fs, ok := firstSeen[n.rec.CID]; ok && fs-n.time() > LateTolerance.Milliseconds() {
			t.Late = append(t.Late, LateInfo{
				Record: n.rec.CID.String(), Kind: n.rec.Env.Kind, Claimed: n.time(), FirstSeen: fs,
				LateSeconds: (fs - n.time()) / 1000,
			})
		}
	}
	t.OK = allOK

	// P4.
	rep.P4.OK = true
	decs := slices.Clone(p.decisions)
	slices.SortFunc(decs, func(a, b *decision) int { return byTime(a.n, b.n) })
	for _, d := range decs {
		o := p.outcome(d)
		rep.P4.OK = rep.P4.OK && o.EveryGroupNeeded && o.EveryRegionNeeded
		rep.P4.Outcomes = append(rep.P4.Outcomes, o)
	}

	// Proposals, delegations, conclusions.
	for _, pr := range props {
		pi := ProposalInfo{
			Record: pr.n.rec.CID.String(), Version: pr.body.Version, Title: pr.body.Title,
			By: party(pr.n.member), Time: pr.n.time(), Closes: pr.closes,
			Stances:    map[string]int{protocol.StanceSupport: 0, protocol.StanceNeutral: 0, protocol.StanceConcern: 0, protocol.StanceObjection: 0},
			Objections: len(pr.objections),
		}
		if pr.body.Replaces != nil {
			pi.Replaces = pr.body.Replaces.Cid.String()
		}
		for _, l := range pr.stance {
			pi.Stances[l.stance]++
		}
		for _, l := range pr.endorse {
			if l.on {
				pi.Endorsements++
			}
		}
		for _, d := range pr.decisions {
			pi.Decisions = append(pi.Decisions, d.n.rec.CID.String())
		}
		slices.Sort(pi.Decisions)
		rep.Proposals = append(rep.Proposals, pi)
	}
	dels := make([]*delegation, 0, len(p.delegations))
	for _, d := range p.delegations {
		dels = append(dels, d)
	}
	slices.SortFunc(dels, func(a, b *delegation) int { return byTime(a.n, b.n) })
	for _, d := range dels {
		rep.Delegations = append(rep.Delegations, DelegationInfo{
			Record: d.n.rec.CID.String(), Body: d.body.Body, Scope: d.body.Scope, Reporting: d.body.Reporting,
			Reports: cidStrings(d.reports),
		})
	}
	var concl []*node
	for _, n := range p.moves {
		if n.rec.Env.Kind == protocol.KindConclusion {
			concl = append(concl, n)
		}
	}
	rep.Conclusions = cidStrings(concl)
	return rep
}

func (p *Process) ruleInfo() RuleInfo {
	ri := RuleInfo{Name: p.rule.Name, Threshold: p.rule.Threshold, Group: p.rule.Group}
	if p.body.Mandate != nil {
		ri.Mandate = p.body.Mandate.Cid.String()
	}
	return ri
}

func (p *Process) sortedProposals() []*proposal {
	out := make([]*proposal, 0, len(p.proposals))
	for _, pr := range p.proposals {
		out = append(out, pr)
	}
	slices.SortFunc(out, func(a, b *proposal) int { return byTime(a.n, b.n) })
	return out
}

// coverage computes P1, P3 and the participation matrix.
func (p *Process) coverage() (groups, regions Coverage, matrix []Cell) {
	type count struct{ members, records int }
	gc, rc := map[string]*count{}, map[string]*count{}
	cells := map[[2]string]int{}
	get := func(m map[string]*count, k string) *count {
		if m[k] == nil {
			m[k] = &count{}
		}
		return m[k]
	}
	for g := range p.groups {
		get(gc, g)
	}
	for r := range p.regions {
		get(rc, r)
	}
	for _, n := range p.records {
		get(gc, n.member.Group).records++
		get(rc, n.member.Region).records++
	}
	for _, pp := range p.people {
		get(gc, pp.member.Group).members++
		get(rc, pp.member.Region).members++
		cells[[2]string{pp.member.Group, pp.member.Region}]++
	}
	build := func(m map[string]*count, all []string) Coverage {
		c := Coverage{OK: true}
		for _, name := range sortedKeys(m) {
			v := m[name]
			c.Entries = append(c.Entries, Participation{Name: name, Members: v.members, Records: v.records})
			if v.members > 0 {
				c.TookPart = append(c.TookPart, name)
			} else {
				c.Missing = append(c.Missing, name)
				c.OK = false
			}
		}
		for _, name := range all {
			if m[name] == nil {
				c.NoMembers = append(c.NoMembers, name)
			}
		}
		slices.Sort(c.NoMembers)
		return c
	}
	for k, v := range cells {
		matrix = append(matrix, Cell{Group: k[0], Region: k[1], Members: v})
	}
	slices.SortFunc(matrix, func(a, b Cell) int { return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Region, b.Region)) })
	return build(gc, p.is.groups), build(rc, p.is.regions), matrix
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// stages computes the stage timeline.
func (p *Process) stages() []StageInfo {
	var out []StageInfo
	names := make([]string, 0, len(p.body.Phases)+1)
	for _, ph := range p.body.Phases {
		names = append(names, ph.Stage)
	}
	names = append(names, protocol.StageConcluded)
	moves := slices.Clone(p.moves)
	slices.SortFunc(moves, byTime)
	for _, name := range names {
		si := StageInfo{Stage: name}
		if ph, ok := p.body.PhaseOf(name); ok {
			si.PlannedStart, si.PlannedEnd = ph.Start, ph.End
		}
		if name == protocol.StageScoping {
			t := p.charter.time()
			si.Started = &t
			si.Moves = []string{}
		}
		st, _ := stageByName(name)
		var seen uint64
		var to []*node
		for _, n := range moves {
			if moveTarget(n) != st {
				continue
			}
			to = append(to, n)
			seen |= p.is.groupBit(n.member.Group)
			if si.Started == nil && bits.OnesCount64(seen) >= 2 {
				t := n.time()
				si.Started = &t
			}
		}
		if name != protocol.StageScoping {
			si.Moves = cidStrings(to)
		}
		out = append(out, si)
	}
	return out
}

func moveTarget(n *node) stage {
	if b, ok := n.rec.Body.(*protocol.StageChange); ok {
		s, _ := stageByName(b.To)
		return s
	}
	return concluded
}

func (p *Process) outcome(d *decision) Outcome {
	t := d.tally
	o := Outcome{
		Decision: d.n.rec.CID.String(), Proposal: d.prop.n.rec.CID.String(),
		Title: d.prop.body.Title, Version: d.prop.body.Version, Time: d.n.time(),
		Rule: p.ruleInfo(), EveryGroupNeeded: true, EveryRegionNeeded: true,
	}
	for _, g := range t.Groups {
		e, ob := t.Count("group", g)
		need := Need{Name: g, Endorsements: e, Objections: ob, Needed: t.Needed("group", g)}
		o.EveryGroupNeeded = o.EveryGroupNeeded && need.Needed
		o.Groups = append(o.Groups, need)
	}
	for _, r := range t.Regions {
		e, ob := t.Count("region", r)
		need := Need{Name: r, Endorsements: e, Objections: ob, Needed: t.Needed("region", r)}
		o.EveryRegionNeeded = o.EveryRegionNeeded && need.Needed
		o.Regions = append(o.Regions, need)
	}
	for _, v := range t.Endorsers {
		o.Endorsers = append(o.Endorsers, Party{Key: hex.EncodeToString(v.Key), Org: v.Org, Group: v.Group, Region: v.Region})
	}
	return o
}

// JSON returns the canonical JSON form of the report: UTF-8, no
// insignificant white space, object keys sorted bytewise (the struct fields
// are declared in that order), no HTML escaping, lists in the order
// documented on each field, empty lists as [] and absent times as null.
func (r *Report) JSON() ([]byte, error) {
	c := *r
	fillNil(reflect.ValueOf(&c).Elem())
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("gov: encode report: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// fillNil replaces nil slices and maps reachable from v (through structs,
// slices and maps, not pointers) with empty ones, so they encode as [] and
// {}. It copies slices before filling them, so the report is not changed.
func fillNil(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			fillNil(v.Field(i))
		}
	case reflect.Slice:
		if v.IsNil() {
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
			return
		}
		if k := v.Type().Elem().Kind(); k == reflect.Struct || k == reflect.Slice {
			c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
			reflect.Copy(c, v)
			for i := range c.Len() {
				fillNil(c.Index(i))
			}
			v.Set(c)
		}
	case reflect.Map:
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// Text returns a readable form of the report, one fact a line.
func (r *Report) Text() string {
	var b strings.Builder
	w := func(indent int, format string, args ...any) {
		b.WriteString(strings.Repeat("  ", indent))
		fmt.Fprintf(&b, format, args...)
		b.WriteByte('\n')
	}
	// As the web view says it.
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "not met"
	}
	ts := func(ms int64) string { return fmtTime(ms) }
	dur := func(s int64) string { return fmtDuration(s * 1000) }
	list := func(xs []string) string {
		if len(xs) == 0 {
			return "none"
		}
		return strings.Join(xs, ", ")
	}
	pty := func(p Party) string { return fmt.Sprintf("%s (%s, %s)", p.Org, p.Group, p.Region) }
	rule := func(ri RuleInfo) string {
		s := ri.Name
		if ri.Group != "" {
			s += " group " + ri.Group
		}
		s += fmt.Sprintf(" threshold %d", ri.Threshold)
		if ri.Mandate != "" {
			s += " mandate " + ri.Mandate
		}
		return s
	}

	w(0, "process %s %q", r.Process, r.Title)
	w(1, "topic %s, stage %s, %s", r.Topic, r.Stage, plural(r.Records, "record"))
	w(1, "rule %s", rule(r.Rule))
	var cs []string
	for _, c := range r.Convenors {
		cs = append(cs, pty(c))
	}
	w(1, "convenors %s", strings.Join(cs, "; "))

	cover := func(label string, c Coverage) {
		w(0, "%s: %s", label, verdict(c.OK))
		for _, e := range c.Entries {
			w(1, "%s: %s, %s", e.Name, plural(e.Members, "member"), plural(e.Records, "record"))
		}
		w(1, "took part: %s", list(c.TookPart))
		w(1, "missing: %s", list(c.Missing))
		if len(c.NoMembers) > 0 {
			w(1, "no members: %s", list(c.NoMembers))
		}
	}
	cover("P1 stakeholder groups", r.P1)

	t := r.P2
	w(0, "P2 notice, transparency, accountability: %s", verdict(t.OK))
	ch := "complete"
	if !t.Charter.Complete {
		ch = "incomplete, missing " + strings.Join(t.Charter.Missing, ", ")
	}
	w(1, "charter %s; %s", ch, plural(t.Charter.Background, "background document"))
	w(1, "minimum notice %s (federation %s); comment window %s",
		dur(t.Charter.MinNoticeSeconds), dur(t.Charter.FederationMinNoticeSeconds), dur(t.Charter.WindowSeconds))
	for _, s := range t.Stages {
		line := s.Stage
		if s.PlannedEnd != 0 {
			line += fmt.Sprintf(" planned %s .. %s", ts(s.PlannedStart), ts(s.PlannedEnd))
		}
		if s.Started != nil {
			line += ", started " + ts(*s.Started)
		} else {
			line += ", not reached"
		}
		if len(s.Moves) > 0 {
			line += ", moves " + strings.Join(s.Moves, ", ")
		}
		w(1, "stage %s", line)
	}
	seenStr := func(fs *int64) string {
		if fs == nil {
			return ""
		}
		return ", first seen " + ts(*fs)
	}
	for _, n := range t.Notices {
		w(1, "notice %s of %s on %s: claimed %s%s; %s notice, %s effective: %s",
			n.Record, n.Subject, ts(n.Date), ts(n.Claimed), seenStr(n.FirstSeen), dur(n.NoticeSeconds), dur(n.EffectiveSeconds), verdict(n.OK))
	}
	for _, win := range t.Windows {
		w(1, "window of %s: %s .. %s%s; %s, %s effective: %s",
			win.Proposal, ts(win.Opens), ts(win.Closes), seenStr(win.FirstSeen), dur(win.Seconds), dur(win.EffectiveSeconds), verdict(win.OK))
	}
	for _, o := range t.Objections {
		ans := "UNANSWERED"
		if o.Answered {
			ans = "answered by " + strings.Join(o.Responses, ", ")
		}
		w(1, "objection %s by %s to %s: %s", o.Record, pty(o.By), o.Proposal, ans)
	}
	for _, l := range t.Late {
		w(1, "late %s %s: claimed %s, first seen %s (%s later)", l.Kind, l.Record, ts(l.Claimed), ts(l.FirstSeen), dur(l.LateSeconds))
	}

	cover("P3 regions", r.P3)

	w(0, "P4 no group or region decides alone: %s", verdict(r.P4.OK))
	if len(r.P4.Outcomes) == 0 {
		w(1, "no adopted outcome")
	}
	for _, o := range r.P4.Outcomes {
		w(1, "decision %s adopts %s (v%d %q) at %s under %s", o.Decision, o.Proposal, o.Version, o.Title, ts(o.Time), rule(o.Rule))
		need := func(dim string, ns []Need) {
			for _, n := range ns {
				nd := "needed"
				if !n.Needed {
					nd = "NOT needed"
				}
				w(2, "%s %s: %s, %s, %s", dim, n.Name, plural(n.Endorsements, "endorsement"), plural(n.Objections, "objection"), nd)
			}
		}
		need("group", o.Groups)
		need("region", o.Regions)
		w(2, "every group needed: %v; every region needed: %v", o.EveryGroupNeeded, o.EveryRegionNeeded)
	}

	if len(r.Matrix) > 0 {
		w(0, "participants by group and region")
		for _, c := range r.Matrix {
			w(1, "%s / %s: %d", c.Group, c.Region, c.Members)
		}
	}
	if len(r.Proposals) > 0 {
		w(0, "proposals")
	}
	for _, p := range r.Proposals {
		repl := ""
		if p.Replaces != "" {
			repl = " replacing " + p.Replaces
		}
		w(1, "%s v%d %q by %s%s, window closes %s", p.Record, p.Version, p.Title, p.By.Org, repl, ts(p.Closes))
		w(2, "feedback support %d, neutral %d, concern %d, objection %d; %s; %s; adopted by %s",
			p.Stances[protocol.StanceSupport], p.Stances[protocol.StanceNeutral], p.Stances[protocol.StanceConcern],
			p.Stances[protocol.StanceObjection], plural(p.Endorsements, "endorsement"), plural(p.Objections, "formal objection"), list(p.Decisions))
	}
	if len(r.Delegations) > 0 {
		w(0, "delegations")
	}
	for _, d := range r.Delegations {
		w(1, "%s to %s (%s); reporting: %s; reports %s", d.Record, d.Body, d.Scope, d.Reporting, list(d.Reports))
	}
	w(0, "conclusions: %s", list(r.Conclusions))
	return b.String()
}

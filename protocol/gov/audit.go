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

// LateTolerance is how far a record's claimed time may be from its public
// time before the audit lists it as skewed (Transparency.Skewed), and how
// much later than claimed a node may first see it before the local
// diagnostic lists it as late.
const LateTolerance = time.Hour

// Principle verdicts: every principle of a report is met, not met, or not
// yet decided (a process still in progress is not failing).
const (
	StatusMet    = "met"
	StatusNotMet = "not-met"
	StatusNotYet = "not-yet"
)

// Report is the P1-P4 audit of one process (DESIGN.md section 1). It is a
// function of the records applied, the membership set with
// [Issue.SetMembers] and the node's first-seen times only (nil for the
// canonical audit); [Report.JSON] is its canonical form, [Report.Text] a
// readable one. Times are unix milliseconds, durations seconds, CIDs and
// keys strings (base32 CIDs, hex keys). Every list has a fixed order,
// given with each field. Fields are declared in the bytewise order of
// their JSON names, so that encoding/json writes sorted keys.
type Report struct {
	// Conclusions are the CIDs of conclusion records, by time then CID.
	Conclusions []string `json:"conclusions"`
	// Contested lists the decisions, conclusions, stage moves and
	// delegations that are valid but have no effect given every record
	// held, with the reasons, by time then CID.
	Contested []ContestInfo `json:"contested"`
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
	// Participants are the members who took part in the process in a way
	// that counts (a proposal, feedback, a formal objection, an
	// endorsement or its withdrawal), with the records counted, by key.
	Participants []Participant `json:"participants"`
	// Process is the charter CID.
	Process string `json:"process"`
	// Proposals by claimed time, then CID.
	Proposals []ProposalInfo `json:"proposals"`
	// Records counts the valid records of the process, charter included.
	Records int `json:"records"`
	// Removed are the authors of records of the process who are no longer
	// members, with their records, by key. Their records count for
	// nothing: not in P1 or P3, not in any tally.
	Removed []Participant `json:"removed"`
	Rule    RuleInfo      `json:"rule"`
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

// Participant is a member and the records of the process it is credited
// with, by time then CID.
type Participant struct {
	Group   string   `json:"group"`
	Key     string   `json:"key"`
	Org     string   `json:"org"`
	Records []string `json:"records"`
	Region  string   `json:"region"`
}

func participant(m protocol.Member, recs []*node) Participant {
	pt := party(m)
	return Participant{Group: pt.Group, Key: pt.Key, Org: pt.Org, Region: pt.Region, Records: cidStrings(recs)}
}

// ContestInfo is a valid record without effect and why.
type ContestInfo struct {
	Kind    string   `json:"kind"`
	Reasons []string `json:"reasons"`
	Record  string   `json:"record"`
}

// Coverage is the participation of groups (P1) or regions (P3).
type Coverage struct {
	// Absent lists the federation's groups (regions) that have no members
	// in the membership of the whole set, sorted. They cannot take part,
	// so the principle is not met while any is absent.
	Absent []string `json:"absent"`
	// Entries has one entry per group (region) with members, by name.
	Entries []Participation `json:"entries"`
	Missing []string        `json:"missing"`
	// Reasons say why the status is not met or not yet.
	Reasons []string `json:"reasons"`
	// Status is met when no group (region) is absent and every one with
	// members took part; not-yet when some has not taken part while the
	// process is not concluded; not-met otherwise.
	Status string `json:"status"`
	// TookPart and Missing list the names of Entries that did and did not
	// take part, sorted.
	TookPart []string `json:"tookPart"`
}

// Participation counts the participants of one group or region: members
// who signed at least one record of the process that counts (see
// [Report.Participants]), and those records.
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
	// claimed time, by claimed time, then CID: a diagnostic of this node's
	// first-seen times, empty in the canonical audit.
	Late []LateInfo `json:"late"`
	// Notices by claimed time, then CID.
	Notices []NoticeInfo `json:"notices"`
	// Objections by claimed time, then CID.
	Objections []ObjectionInfo `json:"objections"`
	// Reasons say why the status is not met or not yet.
	Reasons []string `json:"reasons"`
	// Skewed lists the records of the process whose claimed time is more
	// than LateTolerance from their public time, by claimed time, then
	// CID. Claimed times are shown, never used, on a witnessed topic.
	Skewed []SkewInfo `json:"skewed"`
	// Stages in process order, concluded last.
	Stages []StageInfo `json:"stages"`
	// Status is not-met when the charter is incomplete or a notice or
	// comment window fell short of the minimum notice on public time;
	// not-yet when a formal objection is unanswered in a process not
	// concluded, a notice or proposal is not witnessed yet, or nobody
	// witnesses the topic (times are then as claimed); met otherwise.
	// Witnessed is true when checkpoints of the witness quorum of groups
	// are on the topic.
	Status string `json:"status"`
	// Windows, one per proposal version, by claimed time, then CID.
	Windows   []WindowInfo `json:"windows"`
	Witnessed bool         `json:"witnessed"`
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
// it started, that is the claimed time of the move with effect that first
// gave it convenors of two groups (the charter's time for scoping; null
// if not reached).
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
	// Claimed is the signer's claimed time, shown only.
	Claimed int64 `json:"claimed"`
	Date    int64 `json:"date"`
	// EffectiveSeconds is Date minus the public time (the claimed time on
	// a topic nobody witnesses; in the local diagnostic, the later of that
	// and the first-seen time).
	EffectiveSeconds int64  `json:"effectiveSeconds"`
	FirstSeen        *int64 `json:"firstSeen"`
	NoticeSeconds    int64  `json:"noticeSeconds"`
	OK               bool   `json:"ok"`
	// Public is the notice's public time, null if not witnessed.
	Public  *int64 `json:"public"`
	Record  string `json:"record"`
	Subject string `json:"subject"`
}

// WindowInfo is one proposal version's comment window measured against the
// minimum notice, as claimed and from when this node first saw it.
type WindowInfo struct {
	// Closes is Opens plus the charter's window.
	Closes           int64  `json:"closes"`
	EffectiveSeconds int64  `json:"effectiveSeconds"`
	FirstSeen        *int64 `json:"firstSeen"`
	OK               bool   `json:"ok"`
	// Opens is the proposal's public time (its claimed time on a topic
	// nobody witnesses); Public is null when it is not witnessed.
	Opens    int64  `json:"opens"`
	Proposal string `json:"proposal"`
	Public   *int64 `json:"public"`
	Seconds  int64  `json:"seconds"`
}

// SkewInfo is a record whose claimed time is far (more than
// LateTolerance) from its public time.
type SkewInfo struct {
	Claimed int64  `json:"claimed"`
	Kind    string `json:"kind"`
	Public  int64  `json:"public"`
	Record  string `json:"record"`
	// SkewSeconds is public minus claimed: positive for a record claiming
	// to be older than its witnesses saw it.
	SkewSeconds int64 `json:"skewSeconds"`
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
	// Outcomes, one per valid decision, by claimed time then CID;
	// contested ones are shown and have no effect.
	Outcomes []Outcome `json:"outcomes"`
	// Reasons say why the status is not met or not yet.
	Reasons []string `json:"reasons"`
	// Status is not-met when an outcome with effect did not need the
	// support of every group and every region, or when a group or region
	// of the federation has no members (it cannot have been needed) and
	// something is adopted; met when every outcome
	// with effect did, or nothing is adopted in a concluded process;
	// not-yet when nothing is adopted and the process goes on.
	Status string `json:"status"`
}

// Outcome is one decision: the rule, the tally given every record held
// that does not have the decision in its past, and which groups and
// regions it needed.
type Outcome struct {
	// Contested reports whether the decision has no effect; Reasons say
	// why.
	Contested bool `json:"contested"`
	// Counted are the endorsement records the tally counted, by time then
	// CID.
	Counted  []string `json:"counted"`
	Decision string   `json:"decision"`
	// Endorsers by key.
	Endorsers []Party `json:"endorsers"`
	// EveryGroupNeeded and EveryRegionNeeded report whether removing the
	// endorsements of any one group (region) leaves it not adopted.
	EveryGroupNeeded  bool `json:"everyGroupNeeded"`
	EveryRegionNeeded bool `json:"everyRegionNeeded"`
	// Groups and Regions have one entry per group and region with members
	// in the decision's causal past, by name.
	Groups   []Need `json:"groups"`
	Proposal string `json:"proposal"`
	// Public is the decision's public time, null if not witnessed (or on
	// a topic nobody witnesses).
	Public  *int64   `json:"public"`
	Reasons []string `json:"reasons"`
	Regions []Need   `json:"regions"`
	Rule    RuleInfo `json:"rule"`
	Time    int64    `json:"time"`
	Title   string   `json:"title"`
	Version int      `json:"version"`
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
	Body string `json:"body"`
	By   Party  `json:"by"`
	// Decision is the decision delegated, or "" if it cites none.
	Decision string `json:"decision"`
	// Effective reports whether the delegation has effect: it cites a
	// decision with effect and convenors of two groups signed the same
	// delegation.
	Effective bool     `json:"effective"`
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
		out[i] = n.cs
	}
	return out
}

// Audit computes the P1-P4 audit of the process from every record applied
// and the membership set with [Issue.SetMembers]. firstSeen maps record
// CIDs to the unix millisecond time this node first saw them, a
// node-local diagnostic: nil gives the canonical audit, the same on every
// node with the same records; a partial map is allowed (records without an
// entry are taken as seen when claimed). Two calls with the same records,
// membership and firstSeen give identical reports.
func (p *Process) Audit(firstSeen map[cid.Cid]int64) *Report {
	is := p.is
	b := p.body
	ef := p.effects(nil, is.members)
	// seen returns n's public time (nil if not witnessed), its first-seen
	// time (nil if none given) and the time rules measure it by: the
	// public time, or the claimed time on a topic nobody witnesses, or in
	// the local diagnostic the later of that and the first-seen time; 0
	// when not witnessed.
	seen := func(n *node) (pub, fs *int64, from int64) {
		from = ef.timeOf(n)
		if from != 0 && ef.public != nil {
			pub = &from
		}
		if t, ok := firstSeen[n.rec.CID]; ok {
			fs = &t
			if from != 0 {
				from = max(t, from)
			}
		}
		return pub, fs, from
	}
	minMs := b.MinNoticeSeconds * 1000
	rep := &Report{
		Process: p.CID().String(),
		Topic:   is.topic,
		Title:   b.Title,
		Stage:   ef.stage.String(),
		Records: len(p.records),
		Rule:    p.ruleInfo(),
	}
	concluded := ef.stage == concluded
	for _, m := range p.conv {
		rep.Convenors = append(rep.Convenors, party(m))
	}

	// P1, P3, the matrix and who took part.
	rep.P1, rep.P3, rep.Matrix, rep.Participants, rep.Removed = p.coverage(concluded)

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
	if !t.Charter.Complete {
		t.Reasons = append(t.Reasons, "the charter does not state "+strings.Join(t.Charter.Missing, ", "))
	}
	t.Stages = p.stages(ef)
	notices := slices.Clone(p.notices)
	slices.SortFunc(notices, byTime)
	var notMet, notYet []string
	t.Witnessed = ef.public != nil
	if !t.Witnessed {
		notYet = append(notYet, fmt.Sprintf("no checkpoints of %d stakeholder groups witness the topic, so its times are as claimed by their signers", is.rules.Quorum()))
	}
	for _, n := range notices {
		nb := n.rec.Body.(*protocol.Notice)
		pub, fs, from := seen(n)
		ni := NoticeInfo{
			Record: n.cs, Subject: nb.Subject, Date: nb.Date, Claimed: n.time(), FirstSeen: fs, Public: pub,
			NoticeSeconds: (nb.Date - n.time()) / 1000, EffectiveSeconds: (nb.Date - from) / 1000,
			OK: from != 0 && nb.Date-from >= minMs,
		}
		if from == 0 {
			ni.EffectiveSeconds = 0
			notYet = append(notYet, fmt.Sprintf("notice %s is not witnessed yet", ni.Record))
		} else if !ni.OK {
			notMet = append(notMet, fmt.Sprintf("notice %s gave %s, less than the minimum notice %s", ni.Record, fmtDuration(ni.EffectiveSeconds*1000), fmtDuration(minMs)))
		}
		t.Notices = append(t.Notices, ni)
	}
	props := p.sortedProposals()
	for _, pr := range props {
		pub, fs, from := seen(pr.n)
		opens := ef.timeOf(pr.n)
		closes := opens + b.WindowSeconds*1000
		w := WindowInfo{
			Proposal: pr.n.cs, Opens: opens, Closes: closes, FirstSeen: fs, Public: pub,
			Seconds: b.WindowSeconds, EffectiveSeconds: (closes - from) / 1000,
			OK: from != 0 && closes-from >= minMs,
		}
		if from == 0 {
			w.Closes, w.EffectiveSeconds = 0, 0
			notYet = append(notYet, fmt.Sprintf("proposal %s is not witnessed yet, so its comment window has not opened", w.Proposal))
		} else if !w.OK {
			notMet = append(notMet, fmt.Sprintf("the comment window of %s was %s, less than the minimum notice %s", w.Proposal, fmtDuration(w.EffectiveSeconds*1000), fmtDuration(minMs)))
		}
		t.Windows = append(t.Windows, w)
	}
	objs := make([]*objection, 0, len(p.objections))
	for _, o := range p.objections {
		objs = append(objs, o)
	}
	slices.SortFunc(objs, func(a, b *objection) int { return byTime(a.n, b.n) })
	for _, o := range objs {
		oi := ObjectionInfo{
			Record: o.n.cs, Proposal: o.prop.n.cs, By: party(o.n.member),
			Answered: len(o.responses) > 0, Responses: cidStrings(o.responses),
		}
		if !oi.Answered {
			r := fmt.Sprintf("formal objection %s has no response", oi.Record)
			if concluded {
				notMet = append(notMet, r)
			} else {
				notYet = append(notYet, r)
			}
		}
		t.Objections = append(t.Objections, oi)
	}
	recs := slices.Clone(p.records)
	slices.SortFunc(recs, byTime)
	for _, n := range recs {
		if fs, ok := firstSeen[n.rec.CID]; ok && fs-n.time() > LateTolerance.Milliseconds() {
			t.Late = append(t.Late, LateInfo{
				Record: n.cs, Kind: n.rec.Env.Kind, Claimed: n.time(), FirstSeen: fs,
				LateSeconds: (fs - n.time()) / 1000,
			})
		}
	}
	if ef.public != nil {
		for _, n := range recs {
			if pt := ef.public[n.at]; pt != 0 && abs(pt-n.time()) > LateTolerance.Milliseconds() {
				t.Skewed = append(t.Skewed, SkewInfo{Record: n.cs, Kind: n.rec.Env.Kind, Claimed: n.time(), Public: pt, SkewSeconds: (pt - n.time()) / 1000})
			}
		}
	}
	t.Reasons = append(t.Reasons, notMet...)
	t.Status = StatusMet
	switch {
	case len(t.Reasons) > 0:
		t.Status = StatusNotMet
		t.Reasons = append(t.Reasons, notYet...)
	case len(notYet) > 0:
		t.Status, t.Reasons = StatusNotYet, notYet
	}

	// P4.
	decs := slices.Clone(p.decisions)
	slices.SortFunc(decs, func(a, b *decision) int { return byTime(a.n, b.n) })
	effective := 0
	for _, d := range decs {
		o := p.outcome(d, ef)
		if pt := ef.timeOf(d.n); ef.public != nil && pt != 0 {
			o.Public = &pt
		}
		if !o.Contested {
			effective++
			if !o.EveryGroupNeeded || !o.EveryRegionNeeded {
				rep.P4.Reasons = append(rep.P4.Reasons, fmt.Sprintf("decision %s was adopted without needing every group and every region", o.Decision))
			}
		}
		rep.P4.Outcomes = append(rep.P4.Outcomes, o)
	}
	if effective > 0 {
		for _, c := range []struct {
			dim    string
			absent []string
		}{{"group", rep.P1.Absent}, {"region", rep.P3.Absent}} {
			for _, name := range c.absent {
				rep.P4.Reasons = append(rep.P4.Reasons, fmt.Sprintf("%s %s has no members, so no outcome needed its support", c.dim, name))
			}
		}
	}
	switch {
	case len(rep.P4.Reasons) > 0:
		rep.P4.Status = StatusNotMet
	case effective > 0 || concluded:
		rep.P4.Status = StatusMet
	default:
		rep.P4.Status = StatusNotYet
		rep.P4.Reasons = []string{"no outcome with effect yet"}
	}

	// Proposals, delegations, conclusions, contested records.
	memo := map[string]bool{}
	counts := func(a string) bool {
		ok, done := memo[a]
		if !done {
			ok = p.counts(a)
			memo[a] = ok
		}
		return ok
	}
	for _, pr := range props {
		pi := ProposalInfo{
			Record: pr.n.cs, Version: pr.body.Version, Title: pr.body.Title,
			By: party(pr.n.member), Time: pr.n.time(), Closes: pr.closes,
			Stances:    map[string]int{protocol.StanceSupport: 0, protocol.StanceNeutral: 0, protocol.StanceConcern: 0, protocol.StanceObjection: 0},
			Objections: len(pr.objections),
		}
		if pr.body.Replaces != nil {
			pi.Replaces = pr.body.Replaces.Cid.String()
		}
		for a, l := range pr.stance {
			if counts(a) {
				pi.Stances[l.stance]++
			}
		}
		for a, l := range pr.endorse {
			if l.on && counts(a) {
				pi.Endorsements++
			}
		}
		for _, d := range ef.decisions {
			if d.prop == pr {
				pi.Decisions = append(pi.Decisions, d.n.cs)
			}
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
		di := DelegationInfo{
			Record: d.n.cs, By: party(d.n.member), Body: d.body.Body, Scope: d.body.Scope, Reporting: d.body.Reporting,
			Reports: cidStrings(d.reports), Effective: ef.delegations[d.n],
		}
		if d.body.Decision != nil {
			di.Decision = d.body.Decision.Cid.String()
		}
		rep.Delegations = append(rep.Delegations, di)
	}
	var concl []*node
	for _, n := range p.moves {
		if n.rec.Env.Kind == protocol.KindConclusion {
			concl = append(concl, n)
		}
	}
	rep.Conclusions = cidStrings(concl)
	contested := make([]*node, 0, len(ef.contested))
	for n := range ef.contested {
		contested = append(contested, n)
	}
	slices.SortFunc(contested, byTime)
	for _, n := range contested {
		rep.Contested = append(rep.Contested, ContestInfo{Record: n.cs, Kind: n.rec.Env.Kind, Reasons: ef.contested[n]})
	}
	return rep
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// counts reports whether an author's records count: the author is a
// member in the membership of the whole set (or no such membership was
// set).
func (p *Process) counts(author string) bool {
	if v := p.is.voidAuthors(nil); len(v) > 0 && v[author] {
		return false
	}
	if p.is.members == nil {
		return true
	}
	_, ok := p.is.members.Lookup([]byte(author))
	return ok
}

// meaningful reports whether a record counts as taking part in a process
// (P1, P3): a proposal, feedback, a formal objection, an endorsement or
// its withdrawal. Charters, notices, stage moves and responses are the
// convenors' work and do not show that a group took part.
func meaningful(n *node) bool {
	switch n.rec.Body.(type) {
	case *protocol.Proposal, *protocol.Feedback, *protocol.Objection, *protocol.Endorse, *protocol.Withdraw:
		return true
	}
	return false
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

// coverage computes P1, P3, the participation matrix, the participants and
// the removed authors.
func (p *Process) coverage(concluded bool) (groups, regions Coverage, matrix []Cell, parts, removed []Participant) {
	type count struct{ members, records int }
	gc, rc := map[string]*count{}, map[string]*count{}
	cells := map[[2]string]int{}
	get := func(m map[string]*count, k string) *count {
		if m[k] == nil {
			m[k] = &count{}
		}
		return m[k]
	}
	var withG, withR []string
	if ms := p.is.members; ms != nil {
		withG, withR = ms.Groups(), ms.Regions()
	} else {
		withG, withR = sortedKeys(p.groups), sortedKeys(p.regions)
	}
	for _, g := range withG {
		get(gc, g)
	}
	for _, r := range withR {
		get(rc, r)
	}
	byAuthor := map[string][]*node{}
	for _, n := range p.records {
		byAuthor[n.author()] = append(byAuthor[n.author()], n)
	}
	for _, a := range sortedKeys(byAuthor) {
		ns := byAuthor[a]
		pp := p.people[a]
		if !p.counts(a) {
			removed = append(removed, participant(pp.member, ns))
			continue
		}
		var mine []*node
		for _, n := range ns {
			if meaningful(n) {
				mine = append(mine, n)
			}
		}
		if len(mine) == 0 {
			continue
		}
		parts = append(parts, participant(pp.member, mine))
		g, r := get(gc, pp.member.Group), get(rc, pp.member.Region)
		g.members++
		r.members++
		g.records += len(mine)
		r.records += len(mine)
		cells[[2]string{pp.member.Group, pp.member.Region}]++
	}
	byKey := func(a, b Participant) int { return cmp.Compare(a.Key, b.Key) }
	slices.SortFunc(parts, byKey)
	slices.SortFunc(removed, byKey)
	build := func(dim string, m map[string]*count, all, with []string) Coverage {
		c := Coverage{}
		for _, name := range sortedKeys(m) {
			v := m[name]
			c.Entries = append(c.Entries, Participation{Name: name, Members: v.members, Records: v.records})
			if v.members > 0 {
				c.TookPart = append(c.TookPart, name)
			} else {
				c.Missing = append(c.Missing, name)
			}
		}
		for _, name := range all {
			if !slices.Contains(with, name) {
				c.Absent = append(c.Absent, name)
			}
		}
		slices.Sort(c.Absent)
		for _, name := range c.Absent {
			c.Reasons = append(c.Reasons, fmt.Sprintf("%s %s has no members, so it cannot take part", dim, name))
		}
		for _, name := range c.Missing {
			c.Reasons = append(c.Reasons, fmt.Sprintf("no member of %s %s took part", dim, name))
		}
		switch {
		case len(c.Absent) > 0 || len(c.Missing) > 0 && concluded:
			c.Status = StatusNotMet
		case len(c.Missing) > 0:
			c.Status = StatusNotYet
		default:
			c.Status = StatusMet
		}
		return c
	}
	for k, v := range cells {
		matrix = append(matrix, Cell{Group: k[0], Region: k[1], Members: v})
	}
	slices.SortFunc(matrix, func(a, b Cell) int { return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Region, b.Region)) })
	return build("group", gc, p.is.groups, withG), build("region", rc, p.is.regions, withR), matrix, parts, removed
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// stages computes the stage timeline from the moves with effect.
func (p *Process) stages(ef *effects) []StageInfo {
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
			if _, contested := ef.contested[n]; contested {
				continue
			}
			seen |= p.is.groupBit(n.member.Group)
			if si.Started == nil && bits.OnesCount64(seen) >= 2 {
				t := ef.timeOf(n)
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

// outcome shows a decision with the tally given every record held.
func (p *Process) outcome(d *decision, ef *effects) Outcome {
	t := ef.counted[d]
	reasons := ef.contested[d.n]
	o := Outcome{
		Decision: d.n.cs, Proposal: d.prop.n.cs,
		Title: d.prop.body.Title, Version: d.prop.body.Version, Time: d.n.time(),
		Rule: p.ruleInfo(), EveryGroupNeeded: true, EveryRegionNeeded: true,
		Contested: len(reasons) > 0, Reasons: reasons,
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
	o.Counted = cidStrings(ef.endorsements[d])
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
	status := func(s string) string {
		switch s {
		case StatusMet:
			return "met"
		case StatusNotYet:
			return "not yet"
		}
		return "NOT MET"
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

	reasons := func(rs []string) {
		for _, r := range rs {
			w(1, "because %s", r)
		}
	}
	cover := func(label string, c Coverage) {
		w(0, "%s: %s", label, status(c.Status))
		reasons(c.Reasons)
		for _, e := range c.Entries {
			w(1, "%s: %s, %s", e.Name, plural(e.Members, "member"), plural(e.Records, "record"))
		}
		w(1, "took part: %s", list(c.TookPart))
		w(1, "missing: %s", list(c.Missing))
		w(1, "absent (no members): %s", list(c.Absent))
	}
	cover("P1 stakeholder groups", r.P1)

	t := r.P2
	w(0, "P2 notice, transparency, accountability: %s", status(t.Status))
	reasons(t.Reasons)
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
	pubStr := func(p *int64) string {
		switch {
		case p != nil:
			return ", public " + ts(*p)
		case t.Witnessed:
			return ", NOT WITNESSED YET"
		}
		return ""
	}
	if !t.Witnessed {
		w(1, "times as claimed: no checkpoints of the witness quorum on the topic")
	}
	for _, n := range t.Notices {
		w(1, "notice %s of %s on %s: claimed %s%s%s; %s notice, %s effective: %s",
			n.Record, n.Subject, ts(n.Date), ts(n.Claimed), pubStr(n.Public), seenStr(n.FirstSeen), dur(n.NoticeSeconds), dur(n.EffectiveSeconds), verdict(n.OK))
	}
	for _, win := range t.Windows {
		if win.Opens == 0 {
			w(1, "window of %s: not open (proposal not witnessed yet)", win.Proposal)
			continue
		}
		w(1, "window of %s: %s .. %s%s; %s, %s effective: %s",
			win.Proposal, ts(win.Opens), ts(win.Closes), seenStr(win.FirstSeen), dur(win.Seconds), dur(win.EffectiveSeconds), verdict(win.OK))
	}
	for _, sk := range t.Skewed {
		w(1, "claimed time far from public time: %s %s claims %s, public %s", sk.Kind, sk.Record, ts(sk.Claimed), ts(sk.Public))
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

	w(0, "P4 no group or region decides alone: %s", status(r.P4.Status))
	reasons(r.P4.Reasons)
	for _, o := range r.P4.Outcomes {
		if o.Contested {
			w(1, "decision %s on %s (v%d %q) at %s under %s: CONTESTED, no effect", o.Decision, o.Proposal, o.Version, o.Title, ts(o.Time), rule(o.Rule))
			for _, r := range o.Reasons {
				w(2, "because %s", r)
			}
		} else {
			w(1, "decision %s adopts %s (v%d %q) at %s under %s", o.Decision, o.Proposal, o.Version, o.Title, ts(o.Time), rule(o.Rule))
		}
		if o.Public != nil {
			w(2, "public %s", ts(*o.Public))
		}
		w(2, "counted %s", list(o.Counted))
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
		eff := "no effect"
		if d.Effective {
			eff = "effective"
		}
		dec := d.Decision
		if dec == "" {
			dec = "no decision"
		}
		w(1, "%s by %s to %s (%s) citing %s: %s; reporting: %s; reports %s", d.Record, d.By.Org, d.Body, d.Scope, dec, eff, d.Reporting, list(d.Reports))
	}
	w(0, "conclusions: %s", list(r.Conclusions))
	if len(r.Contested) > 0 {
		w(0, "contested (valid, no effect)")
	}
	for _, c := range r.Contested {
		w(1, "%s %s: %s", c.Kind, c.Record, strings.Join(c.Reasons, "; "))
	}
	if len(r.Participants) > 0 {
		w(0, "participation counted")
	}
	for _, pt := range r.Participants {
		w(1, "%s (%s, %s): %s", pt.Org, pt.Group, pt.Region, list(pt.Records))
	}
	if len(r.Removed) > 0 {
		w(0, "records of removed members (not counted)")
	}
	for _, pt := range r.Removed {
		w(1, "%s (%s, %s): %s", pt.Org, pt.Group, pt.Region, list(pt.Records))
	}
	return b.String()
}

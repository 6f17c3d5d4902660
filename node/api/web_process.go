package api

import (
	"cmp"
	"net/http"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/protocol/gov"
)

// webRec is a record as a page lists it.
type webRec struct {
	CID, Kind string
	By        webParty
	Time      int64
}

// webVersion is one proposal version with everything said about it.
type webVersion struct {
	webRec
	Version      int
	Title, Text  string
	Clauses      []protocol.Clause
	Closes       int64
	Open         bool
	Adopted      bool
	SupersededBy int
	Replaces     string
	// Diff compares the clauses with those of the version replaced.
	Diff     []clauseDiff
	PrevVer  int
	Feedback []stanceGroup
	Objs     []*webObjection
	Endorse  endorseView
}

// stanceGroup is the feedback of one stance, latest first: Total
// records, of which Items are shown.
type stanceGroup struct {
	Stance string
	Items  []webFeedback
	Total  int
}

// maxFeedbackShown bounds the feedback records shown per version and
// stance, unless the page is asked for all (?feedback=all).
const maxFeedbackShown = 50

// webFeedback is one feedback record.
type webFeedback struct {
	webRec
	Reason, Clause string
}

// webObjection is a formal objection and its responses.
type webObjection struct {
	webRec
	Text      string
	Responses []webText
}

// webText is a record whose content is one text.
type webText struct {
	webRec
	Text string
}

// webProposal is one proposal: its versions, newest first.
type webProposal struct {
	Title    string
	Versions []*webVersion
}

// endorseView is the endorsement matrix of a version: standing
// endorsements by group x region.
type endorseView struct {
	Regions   []string
	Rows      []endorseRow
	Endorsers []webParty
	Threshold int
	// Short lists the groups and regions with members whose endorsements
	// are below the threshold.
	Short []string
}

type endorseRow struct {
	Group string
	Cells []endorseCell
}

type endorseCell struct {
	Endorsed int
	// Members counts the federation's members in the cell; a cell with
	// members and no endorsement is missing.
	Members int
}

// webDelegation is a delegation and its reports.
type webDelegation struct {
	webRec
	Body, Scope, Reporting string
	Reports                []webText
}

// timelineView draws the phases, today and the notice windows on one
// scale; positions are percentages of the whole span.
type timelineView struct {
	Bars  []timelineBar
	Today float64
	// TodayIn reports whether today is inside the span.
	TodayIn bool
	Now     int64
}

type timelineBar struct {
	Label      string
	Start, End int64
	Left, W    float64
	Notice     bool
	Current    bool
}

// processView is the process page's data.
type processView struct {
	R                *gov.Report
	Slug, CID        string
	Charter          *protocol.Charter
	ChartBy          webParty
	ChartTime        int64
	Convenors        []webParty
	Background       []string
	Timeline         timelineView
	Notices          []webNotice
	Proposals        []*webProposal
	Delegations      []*webDelegation
	Decisions        []webText
	Regions          []string
	Matrix           []matrixRow
	Audit            []auditRow
	Unanswered       int
	Records          []webRec
	Public           *publicView
	Observer         bool
	Stages           []string
	NextStage        string
	SignedIn         bool
	LatestProposal   *webVersion
	LatestProposalID string
}

// webNotice is a notice with its text and check.
type webNotice struct {
	webRec
	Subject, Text string
	Date          int64
	gov.NoticeInfo
}

// matrixRow is one stakeholder group's row of the participation matrix.
type matrixRow struct {
	Group string
	Cells []int // by region, in the order of the page's Regions
	Total int
}

// auditRow is one principle: its verdict and evidence.
type auditRow struct {
	Name, Verdict, Class string
	Why                  []string
	Evidence             []string // CIDs
}

// verdict turns an audit result into met, not met or not yet: a process
// before its decision stage has not yet failed a principle it can still
// meet.
// verdict returns the words and the style class of an audit status: the
// audit itself says whether a principle is met, not met, or not yet (a
// process still in progress is not failing).
func verdict(status string) (string, string) {
	switch status {
	case gov.StatusMet:
		return text("met"), "ok"
	case gov.StatusNotYet:
		return text("notyet"), "pending"
	}
	return text("notmet"), "fail"
}

func (s *Server) webProcess(w http.ResponseWriter, r *http.Request) {
	c, err := cid.Decode(r.PathValue("cid"))
	if err != nil {
		s.webError(w, r, http.StatusNotFound, text("err.notproc", r.PathValue("cid")))
		return
	}
	v, err := s.buildProcessView(c, r.URL.Query().Get("feedback") == "all")
	if err != nil {
		s.webError(w, r, http.StatusNotFound, text("err.noproc", c))
		return
	}
	if sess := s.web.sessions.get(r); sess != nil {
		v.SignedIn = true
	}
	s.renderLive(w, r, http.StatusOK, "process", v.R.Title, v.R.Topic+" "+protocol.PublicTopic(v.Slug), v)
}

// buildProcessView builds the process page from the node's audit and the
// process's records.
func (s *Server) buildProcessView(c cid.Cid, all bool) (*processView, error) {
	p, err := s.n.Process(c)
	if err != nil {
		return nil, err
	}
	rep, err := s.localAudit(c)
	if err != nil {
		return nil, err
	}
	cids := p.Records()
	s.prefetch(cids)
	ps := s.newParties()
	now := s.web.now().UnixMilli()
	v := &processView{R: rep, CID: c.String(), Slug: strings.TrimPrefix(rep.Topic, "issue/"),
		Charter: p.Charter(), Observer: s.n.IsObserver()}
	for _, k := range v.Charter.Convenors {
		v.Convenors = append(v.Convenors, ps.of(k))
	}
	for _, l := range v.Charter.Background {
		v.Background = append(v.Background, l.String())
	}

	props := map[cid.Cid]*webVersion{}
	objs := map[cid.Cid]*webObjection{}
	delegs := map[cid.Cid]*webDelegation{}
	endorse := map[cid.Cid]map[string]standing{}
	stance := map[cid.Cid]map[string]uint64{} // latest feedback per author
	var feedback []struct {
		prop cid.Cid
		f    webFeedback
		key  string
		seq  uint64
		st   string
	}
	var responses, reports []struct {
		to cid.Cid
		t  webText
	}
	adopted := map[cid.Cid]bool{}
	for _, a := range p.Adopted() {
		adopted[a] = true
	}
	for _, rc := range cids {
		rec, err := s.cachedRecord(rc)
		if err != nil {
			return nil, err
		}
		wr := webRec{CID: rc.String(), Kind: rec.Env.Kind, By: ps.of(rec.Env.Author), Time: rec.Env.Time}
		v.Records = append(v.Records, wr)
		switch b := rec.Body.(type) {
		case *protocol.Charter:
			v.ChartBy, v.ChartTime = wr.By, wr.Time
		case *protocol.Notice:
			n := webNotice{webRec: wr, Subject: b.Subject, Text: b.Text, Date: b.Date}
			if i := slices.IndexFunc(rep.P2.Notices, func(x gov.NoticeInfo) bool { return x.Record == wr.CID }); i >= 0 {
				n.NoticeInfo = rep.P2.Notices[i]
			}
			v.Notices = append(v.Notices, n)
		case *protocol.Proposal:
			pv := &webVersion{webRec: wr, Version: b.Version, Title: b.Title, Text: b.Text, Clauses: b.Clauses,
				Adopted: adopted[rc]}
			if b.Replaces != nil {
				pv.Replaces = b.Replaces.String()
			}
			if i := slices.IndexFunc(rep.Proposals, func(x gov.ProposalInfo) bool { return x.Record == wr.CID }); i >= 0 {
				pv.Closes = rep.Proposals[i].Closes
				pv.Open = pv.Closes > now
			}
			props[rc] = pv
		case *protocol.Feedback:
			key := string(rec.Env.Author)
			feedback = append(feedback, struct {
				prop cid.Cid
				f    webFeedback
				key  string
				seq  uint64
				st   string
			}{b.Proposal.Cid, webFeedback{webRec: wr, Reason: b.Reason, Clause: b.Clause}, key, rec.Env.Seq, b.Stance})
			if stance[b.Proposal.Cid] == nil {
				stance[b.Proposal.Cid] = map[string]uint64{}
			}
			stance[b.Proposal.Cid][key] = max(stance[b.Proposal.Cid][key], rec.Env.Seq)
		case *protocol.Objection:
			objs[rc] = &webObjection{webRec: wr, Text: b.Text}
			if pv := props[b.Proposal.Cid]; pv != nil {
				pv.Objs = append(pv.Objs, objs[rc])
			}
		case *protocol.Response:
			responses = append(responses, struct {
				to cid.Cid
				t  webText
			}{b.Objection.Cid, webText{wr, b.Text}})
		case *protocol.Endorse, *protocol.Withdraw:
			var prop cid.Cid
			on := false
			if e, ok := b.(*protocol.Endorse); ok {
				prop, on = e.Proposal.Cid, true
			} else {
				prop = b.(*protocol.Withdraw).Proposal.Cid
			}
			m := endorse[prop]
			if m == nil {
				m = map[string]standing{}
				endorse[prop] = m
			}
			if old, ok := m[string(rec.Env.Author)]; !ok || rec.Env.Seq > old.seq {
				m[string(rec.Env.Author)] = standing{rec.Env.Seq, on}
			}
		case *protocol.Decision:
			v.Decisions = append(v.Decisions, webText{wr, b.Summary})
		case *protocol.Delegation:
			delegs[rc] = &webDelegation{webRec: wr, Body: b.Body, Scope: b.Scope, Reporting: b.Reporting}
			v.Delegations = append(v.Delegations, delegs[rc])
		case *protocol.Report:
			reports = append(reports, struct {
				to cid.Cid
				t  webText
			}{b.Delegation.Cid, webText{wr, b.Text}})
		}
	}
	for _, x := range responses {
		if o := objs[x.to]; o != nil {
			o.Responses = append(o.Responses, x.t)
		}
	}
	for _, x := range reports {
		if d := delegs[x.to]; d != nil {
			d.Reports = append(d.Reports, x.t)
		}
	}
	for _, o := range objs {
		if len(o.Responses) == 0 {
			v.Unanswered++
		}
	}
	// Feedback: each author's latest on a version counts; older feedback
	// stays listed under its stance.
	for i := len(feedback) - 1; i >= 0; i-- {
		x := feedback[i]
		pv := props[x.prop]
		if pv == nil {
			continue
		}
		j := slices.IndexFunc(pv.Feedback, func(g stanceGroup) bool { return g.Stance == x.st })
		if j < 0 {
			pv.Feedback = append(pv.Feedback, stanceGroup{Stance: x.st})
			j = len(pv.Feedback) - 1
		}
		g := &pv.Feedback[j]
		if g.Total++; all || len(g.Items) < maxFeedbackShown {
			g.Items = append(g.Items, x.f)
		}
	}
	order := []string{protocol.StanceSupport, protocol.StanceNeutral, protocol.StanceConcern, protocol.StanceObjection}
	groups, regions := s.taxonomy(rep)
	v.Regions = regions
	counts := s.memberCounts()
	for pc, pv := range props {
		slices.SortFunc(pv.Feedback, func(a, b stanceGroup) int {
			return cmp.Compare(slices.Index(order, a.Stance), slices.Index(order, b.Stance))
		})
		pv.Endorse = s.endorseMatrix(endorse[pc], groups, regions, counts, rep.Rule.Threshold, ps)
	}
	// Chains of versions: a version's proposal is that of the one it
	// replaces.
	root := func(pv *webVersion) *webVersion {
		for pv.Replaces != "" {
			c, _ := cid.Decode(pv.Replaces)
			prev, ok := props[c]
			if !ok {
				break
			}
			pv = prev
		}
		return pv
	}
	byRoot := map[*webVersion]*webProposal{}
	var roots []*webVersion
	for _, pv := range props {
		rt := root(pv)
		wp := byRoot[rt]
		if wp == nil {
			wp = &webProposal{}
			byRoot[rt] = wp
			roots = append(roots, rt)
		}
		wp.Versions = append(wp.Versions, pv)
		if pv.Replaces != "" {
			c, _ := cid.Decode(pv.Replaces)
			if prev, ok := props[c]; ok {
				pv.Diff = diffClauses(prev.Clauses, pv.Clauses, prev.Text, pv.Text)
				pv.PrevVer = prev.Version
				if prev.SupersededBy == 0 || pv.Version > prev.SupersededBy {
					prev.SupersededBy = pv.Version
				}
			}
		}
	}
	slices.SortFunc(roots, func(a, b *webVersion) int { return cmp.Or(cmp.Compare(a.Time, b.Time), strings.Compare(a.CID, b.CID)) })
	for _, rt := range roots {
		wp := byRoot[rt]
		slices.SortFunc(wp.Versions, func(a, b *webVersion) int {
			return cmp.Or(cmp.Compare(b.Version, a.Version), cmp.Compare(b.Time, a.Time), strings.Compare(a.CID, b.CID))
		})
		wp.Title = wp.Versions[0].Title
		v.Proposals = append(v.Proposals, wp)
		if v.LatestProposal == nil || wp.Versions[0].Time > v.LatestProposal.Time {
			v.LatestProposal = wp.Versions[0]
		}
	}
	v.Matrix = participation(rep, groups, regions)
	v.Timeline = timeline(v.Charter, v.Notices, rep.P2.Stages, now)
	v.Audit = auditRows(rep, v.Unanswered)
	v.NextStage = nextStage(v.Charter, rep.Stage)
	v.Public = s.publicComments(v.Slug, &c)
	for _, wp := range v.Proposals {
		for _, pv := range wp.Versions {
			v.Public.Proposals = append(v.Public.Proposals, pubTarget{CID: pv.CID, Title: pv.Title, Version: pv.Version})
		}
	}
	return v, nil
}

// taxonomy returns the groups and regions of the matrices: those with
// members, then those without.
func (s *Server) taxonomy(rep *gov.Report) (groups, regions []string) {
	groups, regions = coverageNames(rep.P1), coverageNames(rep.P3)
	for _, cell := range rep.Matrix {
		if !slices.Contains(groups, cell.Group) {
			groups = append(groups, cell.Group)
		}
		if !slices.Contains(regions, cell.Region) {
			regions = append(regions, cell.Region)
		}
	}
	return groups, regions
}

// memberCounts counts current members per group and region.
func (s *Server) memberCounts() map[[2]string]int {
	out := map[[2]string]int{}
	for _, m := range s.n.Members() {
		out[[2]string{m.Group, m.Region}]++
	}
	return out
}

// standing is an author's latest endorse (on) or withdraw of a version.
type standing struct {
	seq uint64
	on  bool
}

func (s *Server) endorseMatrix(latest map[string]standing, groups, regions []string, counts map[[2]string]int, threshold int, ps *parties) endorseView {
	ev := endorseView{Regions: regions, Threshold: threshold}
	byGroup, byRegion := map[string]int{}, map[string]int{}
	keys := make([]string, 0, len(latest))
	for k, st := range latest {
		if st.on {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := ps.of([]byte(k))
		ev.Endorsers = append(ev.Endorsers, p)
		byGroup[p.Group]++
		byRegion[p.Region]++
	}
	slices.SortFunc(ev.Endorsers, func(a, b webParty) int { return strings.Compare(a.Org, b.Org) })
	gm, rm := map[string]int{}, map[string]int{}
	for k, n := range counts {
		gm[k[0]] += n
		rm[k[1]] += n
	}
	for _, g := range groups {
		row := endorseRow{Group: g}
		for _, r := range regions {
			cell := endorseCell{Members: counts[[2]string{g, r}]}
			for _, p := range ev.Endorsers {
				if p.Group == g && p.Region == r {
					cell.Endorsed++
				}
			}
			row.Cells = append(row.Cells, cell)
		}
		ev.Rows = append(ev.Rows, row)
		if gm[g] > 0 && byGroup[g] < threshold {
			ev.Short = append(ev.Short, g)
		}
	}
	for _, r := range regions {
		if rm[r] > 0 && byRegion[r] < threshold {
			ev.Short = append(ev.Short, r)
		}
	}
	return ev
}

func participation(rep *gov.Report, groups, regions []string) []matrixRow {
	var out []matrixRow
	for _, g := range groups {
		row := matrixRow{Group: g, Cells: make([]int, len(regions))}
		for _, cell := range rep.Matrix {
			if cell.Group == g {
				row.Cells[slices.Index(regions, cell.Region)] += cell.Members
				row.Total += cell.Members
			}
		}
		out = append(out, row)
	}
	return out
}

// coverageNames returns the names of a coverage's entries and of the
// groups (regions) without members.
func coverageNames(c gov.Coverage) []string {
	var out []string
	for _, e := range c.Entries {
		out = append(out, e.Name)
	}
	return append(out, c.Absent...)
}

func timeline(ch *protocol.Charter, notices []webNotice, stages []gov.StageInfo, now int64) timelineView {
	var tv timelineView
	tv.Now = now
	if len(ch.Phases) == 0 {
		return tv
	}
	lo, hi := ch.Phases[0].Start, ch.Phases[len(ch.Phases)-1].End
	for _, n := range notices {
		lo = min(lo, n.Date-ch.MinNoticeSeconds*1000, n.Time)
		hi = max(hi, n.Date)
	}
	span := float64(max(1, hi-lo))
	pos := func(t int64) float64 { return float64(t-lo) / span * 100 }
	for _, ph := range ch.Phases {
		tv.Bars = append(tv.Bars, timelineBar{Label: ph.Stage, Start: ph.Start, End: ph.End,
			Left: pos(ph.Start), W: max(0.5, pos(ph.End)-pos(ph.Start)), Current: ph.Start <= now && now < ph.End})
	}
	for _, n := range notices {
		start := n.Date - ch.MinNoticeSeconds*1000
		tv.Bars = append(tv.Bars, timelineBar{Label: text("timeline.notice", n.Subject), Start: start, End: n.Date,
			Left: pos(start), W: max(0.5, pos(n.Date)-pos(start)), Notice: true})
	}
	tv.Today = min(100, max(0, pos(now)))
	tv.TodayIn = now >= lo && now <= hi
	return tv
}

func auditRows(rep *gov.Report, unanswered int) []auditRow {
	cov := func(name string, c gov.Coverage) auditRow {
		row := auditRow{Name: text(name)}
		row.Verdict, row.Class = verdict(c.Status)
		if len(c.TookPart) > 0 {
			row.Why = append(row.Why, text("tookpart", strings.Join(c.TookPart, ", ")))
		}
		if len(c.Missing) > 0 {
			row.Why = append(row.Why, text("missingin", strings.Join(c.Missing, ", ")))
		}
		if len(c.Absent) > 0 {
			row.Why = append(row.Why, text("nomembers", strings.Join(c.Absent, ", ")))
		}
		row.Why = append(row.Why, c.Reasons...)
		return row
	}
	p2 := auditRow{Name: text("p2")}
	p2.Verdict, p2.Class = verdict(rep.P2.Status)
	p2.Why = append(p2.Why, rep.P2.Reasons...)
	if rep.P2.Charter.Complete {
		p2.Why = append(p2.Why, text("charter.complete"))
	} else {
		p2.Why = append(p2.Why, text("charter.lacks", strings.Join(rep.P2.Charter.Missing, ", ")))
	}
	short := 0
	for _, n := range rep.P2.Notices {
		p2.Evidence = append(p2.Evidence, n.Record)
		if !n.OK {
			short++
		}
	}
	p2.Why = append(p2.Why, text("p2.notices", len(rep.P2.Notices), short))
	short = 0
	for _, w := range rep.P2.Windows {
		p2.Evidence = append(p2.Evidence, w.Proposal)
		if !w.OK {
			short++
		}
	}
	p2.Why = append(p2.Why, text("p2.windows", len(rep.P2.Windows), short))
	for _, o := range rep.P2.Objections {
		p2.Evidence = append(p2.Evidence, o.Record)
		p2.Evidence = append(p2.Evidence, o.Responses...)
	}
	p2.Why = append(p2.Why, text("p2.objections", len(rep.P2.Objections), unanswered))
	p4 := auditRow{Name: text("p4")}
	p4.Verdict, p4.Class = verdict(rep.P4.Status)
	p4.Why = append(p4.Why, rep.P4.Reasons...)
	if len(rep.P4.Outcomes) == 0 {
		p4.Why = append(p4.Why, text("p4.none"))
	}
	for _, o := range rep.P4.Outcomes {
		if o.Contested {
			p4.Why = append(p4.Why, text("p4.contested", o.Title, o.Version, strings.Join(o.Reasons, "; ")))
		} else {
			p4.Why = append(p4.Why, text("p4.outcome", o.Title, o.Version, yesNo(o.EveryGroupNeeded), yesNo(o.EveryRegionNeeded)))
		}
		p4.Evidence = append(p4.Evidence, o.Decision, o.Proposal)
	}
	return []auditRow{cov("p1", rep.P1), p2, cov("p3", rep.P3), p4}
}

func yesNo(b bool) string {
	if b {
		return text("yes")
	}
	return text("no")
}

// nextStage returns the stage a process moves to next, or "".
func nextStage(ch *protocol.Charter, stage string) string {
	switch stage {
	case protocol.StageScoping:
		return protocol.StageConsultation
	case protocol.StageConsultation:
		return protocol.StageDecision
	case protocol.StageDecision:
		return ch.FinalStage()
	}
	return ""
}

// clauseDiff is one clause compared between two versions.
type clauseDiff struct {
	ID, Change string // added, removed, changed
	Words      []wordDiff
}

// wordDiff is a run of words that is the same (Op ""), inserted ("ins")
// or deleted ("del").
type wordDiff struct {
	Op, Text string
}

// diffClauses compares two versions' clauses by id, and their texts under
// the id "text".
func diffClauses(old, cur []protocol.Clause, oldText, curText string) []clauseDiff {
	var out []clauseDiff
	if oldText != curText {
		out = append(out, clauseDiff{ID: "text", Change: text("prop.changed"), Words: diffWords(oldText, curText)})
	}
	find := func(cs []protocol.Clause, id string) (string, bool) {
		i := slices.IndexFunc(cs, func(c protocol.Clause) bool { return c.ID == id })
		if i < 0 {
			return "", false
		}
		return cs[i].Text, true
	}
	for _, c := range cur {
		o, ok := find(old, c.ID)
		switch {
		case !ok:
			out = append(out, clauseDiff{ID: c.ID, Change: text("prop.added"), Words: []wordDiff{{"ins", c.Text}}})
		case o != c.Text:
			out = append(out, clauseDiff{ID: c.ID, Change: text("prop.changed"), Words: diffWords(o, c.Text)})
		}
	}
	for _, c := range old {
		if _, ok := find(cur, c.ID); !ok {
			out = append(out, clauseDiff{ID: c.ID, Change: text("prop.removed"), Words: []wordDiff{{"del", c.Text}}})
		}
	}
	return out
}

// maxDiffWords bounds the word diff (quadratic); longer texts are shown
// as deleted and inserted whole.
const maxDiffWords = 600

// diffWords is a longest-common-subsequence diff of two texts by words.
func diffWords(a, b string) []wordDiff {
	aw, bw := strings.Fields(a), strings.Fields(b)
	if len(aw) > maxDiffWords || len(bw) > maxDiffWords {
		return []wordDiff{{"del", a}, {"ins", b}}
	}
	// lcs[i][j] is the LCS length of aw[i:] and bw[j:].
	lcs := make([][]int32, len(aw)+1)
	for i := range lcs {
		lcs[i] = make([]int32, len(bw)+1)
	}
	for i := len(aw) - 1; i >= 0; i-- {
		for j := len(bw) - 1; j >= 0; j-- {
			if aw[i] == bw[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []wordDiff
	emit := func(op, w string) {
		if n := len(out); n > 0 && out[n-1].Op == op {
			out[n-1].Text += " " + w
			return
		}
		out = append(out, wordDiff{op, w})
	}
	i, j := 0, 0
	for i < len(aw) || j < len(bw) {
		switch {
		case i < len(aw) && j < len(bw) && aw[i] == bw[j]:
			emit("", aw[i])
			i, j = i+1, j+1
		case i < len(aw) && (j == len(bw) || lcs[i+1][j] >= lcs[i][j+1]):
			emit("del", aw[i])
			i++
		default:
			emit("ins", bw[j])
			j++
		}
	}
	return out
}

// recentRecords is how many records the process page lists.
const recentRecords = 200

// RecentRecords returns the process's latest records, newest first.
func (v *processView) RecentRecords() []webRec {
	rs := v.Records[max(0, len(v.Records)-recentRecords):]
	out := make([]webRec, len(rs))
	for i, r := range rs {
		out[len(rs)-1-i] = r
	}
	return out
}

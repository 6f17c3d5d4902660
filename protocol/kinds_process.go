package protocol

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"

	"github.com/ipfs/go-cid"
)

// Kind names of issues and processes (DESIGN.md section 6). The rules that
// decide whether such a record is allowed by its causal past, and the state
// and audit derived from them, live in package protocol/gov; this file only
// fixes the body schemas, which every receiver checks in [Decode].
const (
	// KindIssueOpen opens an issue on the index topic; the issue's records
	// then travel on topic "issue/<slug>".
	KindIssueOpen = "issue.open"
	// KindCharter starts a process on an issue topic.
	KindCharter = "process.charter"
	// KindNotice announces a consultation, meeting or decision.
	KindNotice = "process.notice"
	// KindProposal is one version of a proposal.
	KindProposal = "process.proposal"
	// KindFeedback is structured feedback on a proposal version.
	KindFeedback = "process.feedback"
	// KindObjection is a formal objection to a proposal version; it must be
	// answered by a response.
	KindObjection = "process.objection"
	// KindResponse is the public response to a formal objection.
	KindResponse = "process.response"
	// KindEndorse endorses a proposal version.
	KindEndorse = "process.endorse"
	// KindWithdraw withdraws the author's endorsement of a proposal version.
	KindWithdraw = "process.endorse.withdraw"
	// KindDecision claims that a proposal version is adopted under the
	// charter's decision rule; it is valid only if its causal past proves it.
	KindDecision = "process.decision"
	// KindDelegation delegates implementation to another body.
	KindDelegation = "process.delegation"
	// KindReport is a report back on a delegation.
	KindReport = "process.report"
	// KindStage moves a process to its next stage (with a co-signer).
	KindStage = "process.stage"
	// KindConclusion concludes a process (with a co-signer).
	KindConclusion = "process.conclusion"
)

// Process stages, in order. A charter names its phases with these; exactly
// one of StageImplementation and StageDelegation follows StageDecision.
const (
	StageScoping        = "scoping"
	StageConsultation   = "consultation"
	StageDecision       = "decision"
	StageImplementation = "implementation"
	StageDelegation     = "delegation"
	StageConcluded      = "concluded"
)

// Notice subjects.
const (
	SubjectConsultation = "consultation"
	SubjectMeeting      = "meeting"
	SubjectDecision     = "decision"
)

// Feedback stances.
const (
	StanceSupport   = "support"
	StanceNeutral   = "neutral"
	StanceConcern   = "concern"
	StanceObjection = "objection"
)

// Decision rules.
const (
	// RuleConcurrentMajority is the default rule: in every stakeholder group
	// and every region that has members, endorsements reach the threshold
	// and outnumber objections.
	RuleConcurrentMajority = "concurrent-majority"
	// RuleGroupDecides lets one stakeholder group decide alone (for example
	// governments, once a mechanism is agreed). A charter may name it only
	// with a mandate: a decision adopted under the default rule approving it.
	RuleGroupDecides = "group-decides"
)

// Body size limits of process kinds, in bytes or items.
const (
	maxTitle     = 200
	maxParagraph = 4000
	maxText      = 32 << 10
	maxClause    = 8 << 10
	maxClauses   = 256
	maxClauseID  = 32
	maxScope     = 32
	maxConvenors = 16
	maxDocs      = 32
	maxThreshold = 1000
	// maxSeconds bounds durations in a charter: ten years.
	maxSeconds = 10 * 366 * 24 * 3600
)

func init() {
	issue := func(name string, f func() Body) { register(KindSpec{Name: name, Topics: ClassIssue, New: f}) }
	register(KindSpec{Name: KindIssueOpen, Topics: ClassIndex, New: func() Body { return new(IssueOpen) }})
	issue(KindCharter, func() Body { return new(Charter) })
	issue(KindNotice, func() Body { return new(Notice) })
	issue(KindProposal, func() Body { return new(Proposal) })
	issue(KindFeedback, func() Body { return new(Feedback) })
	issue(KindObjection, func() Body { return new(Objection) })
	issue(KindResponse, func() Body { return new(Response) })
	issue(KindEndorse, func() Body { return new(Endorse) })
	issue(KindWithdraw, func() Body { return new(Withdraw) })
	issue(KindDecision, func() Body { return new(Decision) })
	issue(KindDelegation, func() Body { return new(Delegation) })
	issue(KindReport, func() Body { return new(Report) })
	issue(KindStage, func() Body { return new(StageChange) })
	issue(KindConclusion, func() Body { return new(Conclusion) })
}

// IssueOpen is the body of an issue.open record.
type IssueOpen struct {
	// Slug names the issue; its topic is "issue/<slug>".
	Slug    string `cbor:"slug"`
	Title   string `cbor:"title"`
	Summary string `cbor:"summary"`
}

// Check validates an issue.open body.
func (b *IssueOpen) Check() error {
	if !ValidSlug(b.Slug) {
		return fmt.Errorf("slug: %q is not a valid issue slug", b.Slug)
	}
	if err := checkText("title", b.Title, 1, maxTitle); err != nil {
		return err
	}
	return checkText("summary", b.Summary, 0, maxParagraph)
}

// Phase is one planned phase of a process, in unix milliseconds.
type Phase struct {
	Stage string `cbor:"stage"`
	Start int64  `cbor:"start"`
	End   int64  `cbor:"end"`
}

// DecisionRule names a decision rule and its parameters.
type DecisionRule struct {
	// Name is RuleConcurrentMajority or RuleGroupDecides.
	Name string `cbor:"name"`
	// Threshold is the least number of endorsements needed within each
	// group and region the rule counts; 0 means the federation's
	// Rules.DecisionMinEndorsements.
	Threshold int `cbor:"threshold"`
	// Group is the deciding group of RuleGroupDecides, empty otherwise.
	Group string `cbor:"group"`
}

// Check validates a decision rule's shape.
func (r *DecisionRule) Check() error {
	switch r.Name {
	case RuleConcurrentMajority:
		if r.Group != "" {
			return fmt.Errorf("rule.group: must be empty for %s", r.Name)
		}
	case RuleGroupDecides:
		if !ValidSlug(r.Group) {
			return fmt.Errorf("rule.group: %q is not a valid group name", r.Group)
		}
	default:
		return fmt.Errorf("rule.name: unknown rule %q", r.Name)
	}
	if r.Threshold < 0 || r.Threshold > maxThreshold {
		return fmt.Errorf("rule.threshold: must be between 0 and %d", maxThreshold)
	}
	return nil
}

// Charter is the body of a process.charter record: it starts a process on
// the issue topic it is published on. The process is identified by the
// charter's CID.
type Charter struct {
	Title        string   `cbor:"title"`
	Aim          string   `cbor:"aim"`
	Purpose      string   `cbor:"purpose"`
	Scope        []string `cbor:"scope"`
	Modalities   string   `cbor:"modalities"`
	Significance string   `cbor:"significance"`
	// Convenors are the member keys that run the process.
	Convenors [][]byte `cbor:"convenors"`
	// Background links background documents (any CID).
	Background []Link `cbor:"background"`
	// Phases are scoping, consultation, decision, then implementation or
	// delegation, in order, not overlapping.
	Phases []Phase `cbor:"phases"`
	// MinNoticeSeconds is the least notice before a consultation or a
	// decision; at least the genesis Rules.MinNoticeSeconds.
	MinNoticeSeconds int64 `cbor:"minNoticeSeconds"`
	// WindowSeconds is the comment window of every proposal version,
	// counted from its claimed time; at least MinNoticeSeconds.
	WindowSeconds int64 `cbor:"windowSeconds"`
	// Rule is the decision rule.
	Rule DecisionRule `cbor:"rule"`
	// Mandate links the adopted decision that approves a non-default rule;
	// null exactly when Rule is the default rule.
	Mandate *Link `cbor:"mandate"`
}

// Check validates a charter body's shape.
func (b *Charter) Check() error {
	if err := checkText("title", b.Title, 1, maxTitle); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"aim", b.Aim}, {"purpose", b.Purpose}, {"modalities", b.Modalities}, {"significance", b.Significance}} {
		if err := checkText(f.name, f.v, 0, maxParagraph); err != nil {
			return err
		}
	}
	if len(b.Scope) > maxScope {
		return fmt.Errorf("scope: more than %d aspects", maxScope)
	}
	for i, s := range b.Scope {
		if err := checkText(fmt.Sprintf("scope[%d]", i), s, 1, maxTitle); err != nil {
			return err
		}
	}
	if len(b.Convenors) == 0 || len(b.Convenors) > maxConvenors {
		return fmt.Errorf("convenors: must list 1 to %d keys", maxConvenors)
	}
	for i, k := range b.Convenors {
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("convenors[%d]: key is %d bytes, want %d", i, len(k), ed25519.PublicKeySize)
		}
		for _, o := range b.Convenors[:i] {
			if string(o) == string(k) {
				return fmt.Errorf("convenors[%d]: key listed twice", i)
			}
		}
	}
	if len(b.Background) > maxDocs {
		return fmt.Errorf("background: more than %d documents", maxDocs)
	}
	if err := checkPhases(b.Phases); err != nil {
		return err
	}
	if b.MinNoticeSeconds < 0 || b.MinNoticeSeconds > maxSeconds {
		return fmt.Errorf("minNoticeSeconds: must be between 0 and %d", maxSeconds)
	}
	if b.WindowSeconds < max(1, b.MinNoticeSeconds) || b.WindowSeconds > maxSeconds {
		return fmt.Errorf("windowSeconds: must be at least minNoticeSeconds (and 1), at most %d", maxSeconds)
	}
	if err := b.Rule.Check(); err != nil {
		return err
	}
	if (b.Rule.Name == RuleConcurrentMajority) != (b.Mandate == nil) {
		return errors.New("mandate: required exactly when the rule is not " + RuleConcurrentMajority)
	}
	return nil
}

// PhaseOf returns the charter's phase of a stage and whether it has one.
func (b *Charter) PhaseOf(stage string) (Phase, bool) {
	i := slices.IndexFunc(b.Phases, func(p Phase) bool { return p.Stage == stage })
	if i < 0 {
		return Phase{}, false
	}
	return b.Phases[i], true
}

// FinalStage returns the charter's stage after the decision stage:
// StageImplementation or StageDelegation.
func (b *Charter) FinalStage() string {
	if len(b.Phases) == 0 {
		return ""
	}
	return b.Phases[len(b.Phases)-1].Stage
}

func checkPhases(ps []Phase) error {
	want := []string{StageScoping, StageConsultation, StageDecision, StageImplementation + "|" + StageDelegation}
	if len(ps) != len(want) {
		return fmt.Errorf("phases: want exactly %d phases (%s, %s, %s, %s or %s)", len(want),
			StageScoping, StageConsultation, StageDecision, StageImplementation, StageDelegation)
	}
	for i, p := range ps {
		ok := p.Stage == want[i] || i == 3 && (p.Stage == StageImplementation || p.Stage == StageDelegation)
		if !ok {
			return fmt.Errorf("phases[%d]: stage %q, want %s", i, p.Stage, want[i])
		}
		if p.Start >= p.End {
			return fmt.Errorf("phases[%d]: start must be before end", i)
		}
		if i > 0 && p.Start < ps[i-1].End {
			return fmt.Errorf("phases[%d]: starts before phases[%d] ends", i, i-1)
		}
	}
	return nil
}

// Notice is the body of a process.notice record: it announces an event of
// the process at Date (unix milliseconds).
type Notice struct {
	Process Link   `cbor:"process"`
	Subject string `cbor:"subject"`
	Date    int64  `cbor:"date"`
	Text    string `cbor:"text"`
}

// Check validates a notice body.
func (b *Notice) Check() error {
	switch b.Subject {
	case SubjectConsultation, SubjectMeeting, SubjectDecision:
	default:
		return fmt.Errorf("subject: %q is not one of %s, %s, %s", b.Subject, SubjectConsultation, SubjectMeeting, SubjectDecision)
	}
	if b.Date <= 0 {
		return errors.New("date: must be a positive unix time in milliseconds")
	}
	return checkText("text", b.Text, 0, maxParagraph)
}

// Clause is one numbered clause of a proposal.
type Clause struct {
	ID   string `cbor:"id"`
	Text string `cbor:"text"`
}

// Proposal is the body of a process.proposal record: one version of a
// proposal. Version 1 starts a proposal; a later version replaces the
// version before it.
type Proposal struct {
	Process  Link     `cbor:"process"`
	Version  int      `cbor:"version"`
	Replaces *Link    `cbor:"replaces"`
	Title    string   `cbor:"title"`
	Text     string   `cbor:"text"`
	Clauses  []Clause `cbor:"clauses"`
	// Rule, if set, is a decision rule that this proposal, once adopted,
	// approves for later charters on the same issue (their mandate).
	Rule *DecisionRule `cbor:"rule"`
}

// Check validates a proposal body.
func (b *Proposal) Check() error {
	if b.Version < 1 {
		return errors.New("version: must be >= 1")
	}
	if (b.Version == 1) != (b.Replaces == nil) {
		return errors.New("replaces: required exactly when version > 1")
	}
	if err := checkText("title", b.Title, 1, maxTitle); err != nil {
		return err
	}
	if err := checkText("text", b.Text, 0, maxText); err != nil {
		return err
	}
	if b.Text == "" && len(b.Clauses) == 0 {
		return errors.New("text: a proposal needs a text or clauses")
	}
	if len(b.Clauses) > maxClauses {
		return fmt.Errorf("clauses: more than %d", maxClauses)
	}
	for i, c := range b.Clauses {
		if err := checkText(fmt.Sprintf("clauses[%d].id", i), c.ID, 1, maxClauseID); err != nil {
			return err
		}
		if err := checkText(fmt.Sprintf("clauses[%d].text", i), c.Text, 1, maxClause); err != nil {
			return err
		}
		if slices.ContainsFunc(b.Clauses[:i], func(o Clause) bool { return o.ID == c.ID }) {
			return fmt.Errorf("clauses[%d].id: %q used twice", i, c.ID)
		}
	}
	if b.Rule != nil {
		return b.Rule.Check()
	}
	return nil
}

// HasClause reports whether the proposal has a clause with the given id.
func (b *Proposal) HasClause(id string) bool {
	return slices.ContainsFunc(b.Clauses, func(c Clause) bool { return c.ID == id })
}

// Feedback is the body of a process.feedback record.
type Feedback struct {
	Process  Link   `cbor:"process"`
	Proposal Link   `cbor:"proposal"`
	Stance   string `cbor:"stance"`
	Reason   string `cbor:"reason"`
	// Clause is the id of the clause the feedback refers to, or empty for
	// the whole proposal.
	Clause string `cbor:"clause"`
}

// Check validates a feedback body.
func (b *Feedback) Check() error {
	switch b.Stance {
	case StanceSupport, StanceNeutral, StanceConcern, StanceObjection:
	default:
		return fmt.Errorf("stance: %q is not one of %s, %s, %s, %s", b.Stance, StanceSupport, StanceNeutral, StanceConcern, StanceObjection)
	}
	if err := checkText("reason", b.Reason, 0, maxParagraph); err != nil {
		return err
	}
	return checkText("clause", b.Clause, 0, maxClauseID)
}

// Objection is the body of a process.objection record: a formal objection.
type Objection struct {
	Process  Link   `cbor:"process"`
	Proposal Link   `cbor:"proposal"`
	Text     string `cbor:"text"`
}

// Check validates an objection body.
func (b *Objection) Check() error { return checkText("text", b.Text, 1, maxText) }

// Response is the body of a process.response record.
type Response struct {
	Process   Link   `cbor:"process"`
	Objection Link   `cbor:"objection"`
	Text      string `cbor:"text"`
}

// Check validates a response body.
func (b *Response) Check() error { return checkText("text", b.Text, 1, maxText) }

// Endorse is the body of a process.endorse record.
type Endorse struct {
	Process  Link `cbor:"process"`
	Proposal Link `cbor:"proposal"`
}

// Check validates an endorse body.
func (b *Endorse) Check() error { return nil }

// Withdraw is the body of a process.endorse.withdraw record.
type Withdraw struct {
	Process  Link `cbor:"process"`
	Proposal Link `cbor:"proposal"`
}

// Check validates a withdraw body.
func (b *Withdraw) Check() error { return nil }

// Decision is the body of a process.decision record: the claim that
// Proposal is adopted under the charter's rule.
type Decision struct {
	Process  Link   `cbor:"process"`
	Proposal Link   `cbor:"proposal"`
	Summary  string `cbor:"summary"`
}

// Check validates a decision body.
func (b *Decision) Check() error { return checkText("summary", b.Summary, 0, maxParagraph) }

// Delegation is the body of a process.delegation record.
type Delegation struct {
	Process Link `cbor:"process"`
	// Decision links the decision whose outcome is delegated. A
	// delegation without one is valid (records made before the field
	// existed stay readable) but has no effect.
	Decision *Link `cbor:"decision,omitempty"`
	// Body names the body implementation is delegated to.
	Body  string `cbor:"body"`
	Scope string `cbor:"scope"`
	// Reporting states the body's duty to report back.
	Reporting string `cbor:"reporting"`
}

// Check validates a delegation body.
func (b *Delegation) Check() error {
	if b.Decision != nil && !IsRecordCID(b.Decision.Cid) {
		return errors.New("decision: not a record CID")
	}
	if err := checkText("body", b.Body, 1, maxTitle); err != nil {
		return err
	}
	if err := checkText("scope", b.Scope, 1, maxParagraph); err != nil {
		return err
	}
	return checkText("reporting", b.Reporting, 1, maxParagraph)
}

// Report is the body of a process.report record.
type Report struct {
	Process    Link   `cbor:"process"`
	Delegation Link   `cbor:"delegation"`
	Text       string `cbor:"text"`
}

// Check validates a report body.
func (b *Report) Check() error { return checkText("text", b.Text, 1, maxText) }

// StageChange is the body of a process.stage record.
type StageChange struct {
	Process Link   `cbor:"process"`
	To      string `cbor:"to"`
}

// Check validates a stage body.
func (b *StageChange) Check() error {
	switch b.To {
	case StageConsultation, StageDecision, StageImplementation, StageDelegation:
		return nil
	}
	return fmt.Errorf("to: %q is not one of %s, %s, %s, %s (a process concludes with %s)",
		b.To, StageConsultation, StageDecision, StageImplementation, StageDelegation, KindConclusion)
}

// Conclusion is the body of a process.conclusion record.
type Conclusion struct {
	Process Link   `cbor:"process"`
	Summary string `cbor:"summary"`
}

// Check validates a conclusion body.
func (b *Conclusion) Check() error { return checkText("summary", b.Summary, 1, maxText) }

// ProcessRefs returns the charter CID a process record belongs to and the
// other records its body references (proposal, objection, delegation,
// replaced version, mandate). For a charter, process is cid.Undef. ok is
// false if body is not a process body.
func ProcessRefs(body Body) (process cid.Cid, refs []cid.Cid, ok bool) {
	switch b := body.(type) {
	case *Charter:
		if b.Mandate != nil {
			refs = []cid.Cid{b.Mandate.Cid}
		}
		return cid.Undef, refs, true
	case *Notice:
		return b.Process.Cid, nil, true
	case *Proposal:
		if b.Replaces != nil {
			refs = []cid.Cid{b.Replaces.Cid}
		}
		return b.Process.Cid, refs, true
	case *Feedback:
		return b.Process.Cid, []cid.Cid{b.Proposal.Cid}, true
	case *Objection:
		return b.Process.Cid, []cid.Cid{b.Proposal.Cid}, true
	case *Response:
		return b.Process.Cid, []cid.Cid{b.Objection.Cid}, true
	case *Endorse:
		return b.Process.Cid, []cid.Cid{b.Proposal.Cid}, true
	case *Withdraw:
		return b.Process.Cid, []cid.Cid{b.Proposal.Cid}, true
	case *Decision:
		return b.Process.Cid, []cid.Cid{b.Proposal.Cid}, true
	case *Delegation:
		if b.Decision != nil {
			refs = []cid.Cid{b.Decision.Cid}
		}
		return b.Process.Cid, refs, true
	case *Report:
		return b.Process.Cid, []cid.Cid{b.Delegation.Cid}, true
	case *StageChange:
		return b.Process.Cid, nil, true
	case *Conclusion:
		return b.Process.Cid, nil, true
	}
	return cid.Undef, nil, false
}

// CheckRefs checks that every record a process record's body references
// (see [ProcessRefs]) is also one of its deps, so that it lies in the
// record's causal past. It returns a bad-links error otherwise, and nil for
// records of other kinds.
func CheckRefs(r *Record) error {
	process, refs, ok := ProcessRefs(r.Body)
	if !ok {
		return nil
	}
	if process.Defined() {
		refs = append([]cid.Cid{process}, refs...)
	}
	for _, c := range refs {
		if !slices.ContainsFunc(r.Env.Deps, func(l Link) bool { return l.Equals(c) }) {
			return Errorf(ReasonBadLinks, "%s references %s, which is not among its deps", r.Env.Kind, c)
		}
	}
	return nil
}

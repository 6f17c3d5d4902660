package gov_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/protocol/gov"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files in testdata from the current code")

// TestGolden runs every scenario testdata/*.txt and compares its transcript
// with testdata/*.golden. Regenerate with
//
//	go test ./protocol/gov -run TestGolden -rewrite
//
// The scenario language, one command a line ('#' starts a comment):
//
//	federation [slug=S] [notice=DUR] [threshold=N] [witness=auto|manual] [witnesses=A,B]
//	                                                  rules, before any record
//	witness at TIME                                   the witnesses checkpoint the topic
//	member NAME GROUP REGION                          a founding member
//	outsider NAME                                     a key that is not a member
//	suspend NAME                                      the member is removed
//	                                                  (a completed member.suspend)
//	KIND NAME by PARTY at TIME [key=value ...]        publish a record; fork=NAME signs it at
//	                                                  NAME's chain position (an equivocation)
//	audit [CHARTER]                                   the audit text of a process
//	audit-json [CHARTER]                              its JSON (indented here)
//	index                                             the open issues
//
// KIND is open, charter, notice, proposal, feedback, object, respond,
// endorse, withdraw, decide, delegate, report, stage, conclude or statement.
// TIME is 2026-01-02, 2026-01-02T15:04, or +DUR / -DUR from the previous
// record's time; DUR is a number with d, h, m or s. Every record takes
// process=CHARTER (default: the latest charter), after=NAME,NAME (deps
// instead of the topic heads; after=none for only what the body
// references), seen=TIME (first-seen time, relative to its own time) and
// stale=true (checked against the roster before the latest suspension, as
// when the signer leaves the suspension out of its deps) and
// published=TIME (when the witnesses first see it, relative to its own
// time; by default they checkpoint every accepted record at its claimed
// time, see world.witness, unless witness=manual).
// The kind-specific keys are in scriptBody. Each record line is followed in
// the transcript by its verdict; names replace CIDs and keys.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios in testdata: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txt")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got, w := runScript(t, string(src))
			checkRecords(t, strings.TrimSuffix(file, ".txt")+".records.json", w)
			golden := strings.TrimSuffix(file, ".txt") + ".golden"
			if *rewrite {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -rewrite to create it)", err)
			}
			if got != string(want) {
				gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
				for i := range max(len(gl), len(wl)) {
					g, w := "", ""
					if i < len(gl) {
						g = gl[i]
					}
					if i < len(wl) {
						w = wl[i]
					}
					if g != w {
						t.Fatalf("transcript differs from %s at line %d:\n got: %s\nwant: %s\n(run with -rewrite to accept)", golden, i+1, g, w)
					}
				}
			}
		})
	}
}

// script runs a scenario.
type script struct {
	t    *testing.T
	w    *world
	last time.Time
	out  strings.Builder
}

func runScript(t *testing.T, src string) (string, *world) {
	s := &script{t: t, w: newWorld(t, "privacy"), last: genesisTime}
	for i, line := range strings.Split(strings.TrimRight(src, "\n"), "\n") {
		s.out.WriteString(line + "\n")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		f, err := tokenize(trimmed)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if err := s.run(f); err != nil {
			t.Fatalf("line %d: %s: %v", i+1, trimmed, err)
		}
	}
	s.checkDerive()
	return s.w.rename(s.out.String()), s.w
}

// scenarioRecords is the content of a testdata/*.records.json file: a
// scenario's genesis and every record it built, in publication order, as
// raw DAG-CBOR (base64 in JSON). Other packages' tests read them to run
// the golden scenarios through their own code (node's differential test
// compares a node's derived state with gov.Derive over them); TestGolden
// checks that they match the scenarios and -rewrite regenerates them.
type scenarioRecords struct {
	Genesis []byte   `json:"genesis"`
	Records [][]byte `json:"records"`
}

func checkRecords(t *testing.T, file string, w *world) {
	t.Helper()
	var sr scenarioRecords
	if w.genesis != nil {
		g, err := w.genesis.Encode()
		if err != nil {
			t.Fatal(err)
		}
		sr.Genesis = g
	}
	for _, r := range w.all {
		sr.Records = append(sr.Records, r.Raw)
	}
	got, err := json.Marshal(sr)
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *rewrite {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -rewrite to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s does not hold the scenario's records (run with -rewrite to accept)", file)
	}
}

// tokenize splits a line at spaces, keeping "double quoted" parts (Go
// syntax) together; key="a b" is one token.
func tokenize(line string) ([]string, error) {
	var out []string
	for line = strings.TrimSpace(line); line != ""; line = strings.TrimSpace(line) {
		end := 0
		for end < len(line) && line[end] != ' ' {
			if line[end] == '"' {
				q, err := strconv.QuotedPrefix(line[end:])
				if err != nil {
					return nil, err
				}
				end += len(q)
				continue
			}
			end++
		}
		tok := line[:end]
		if k, v, ok := strings.Cut(tok, "="); ok && strings.HasPrefix(v, `"`) {
			u, err := strconv.Unquote(v)
			if err != nil {
				return nil, err
			}
			tok = k + "=" + u
		}
		out = append(out, tok)
		line = line[end:]
	}
	return out, nil
}

func parseDuration(v string) (time.Duration, error) {
	if len(v) < 2 {
		return 0, fmt.Errorf("bad duration %q", v)
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q", v)
	}
	unit := map[byte]time.Duration{'d': 24 * time.Hour, 'h': time.Hour, 'm': time.Minute, 's': time.Second}[v[len(v)-1]]
	if unit == 0 {
		return 0, fmt.Errorf("bad duration unit in %q", v)
	}
	return time.Duration(n) * unit, nil
}

func parseTime(v string, base time.Time) (time.Time, error) {
	if v != "" && (v[0] == '+' || v[0] == '-') {
		d, err := parseDuration(v[1:])
		if v[0] == '-' {
			d = -d
		}
		return base.Add(d), err
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad time %q", v)
}

var scriptKinds = map[string]string{
	"open": protocol.KindIssueOpen, "charter": protocol.KindCharter, "notice": protocol.KindNotice,
	"proposal": protocol.KindProposal, "feedback": protocol.KindFeedback, "object": protocol.KindObjection,
	"respond": protocol.KindResponse, "endorse": protocol.KindEndorse, "withdraw": protocol.KindWithdraw,
	"decide": protocol.KindDecision, "delegate": protocol.KindDelegation, "report": protocol.KindReport,
	"stage": protocol.KindStage, "conclude": protocol.KindConclusion, "statement": protocol.KindStatement,
}

func (s *script) run(f []string) error {
	w := s.w
	switch f[0] {
	case "federation":
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "slug":
				w.slug = v
			case "notice":
				d, err := parseDuration(v)
				if err != nil {
					return err
				}
				w.rules.MinNoticeSeconds = int64(d / time.Second)
			case "threshold":
				n, err := strconv.Atoi(v)
				if err != nil {
					return err
				}
				w.rules.DecisionMinEndorsements = n
			case "witnesses":
				w.witnessNames = strings.Split(v, ",")
			case "witness":
				if v != "manual" && v != "auto" {
					return fmt.Errorf("witness=auto|manual")
				}
				w.manualWitness = v == "manual"
			default:
				return fmt.Errorf("unknown federation key %q", k)
			}
		}
		return nil
	case "member":
		if len(f) != 4 {
			return fmt.Errorf("want: member NAME GROUP REGION")
		}
		w.member(f[1], f[2], f[3])
		return nil
	case "outsider":
		w.outsider(f[1])
		return nil
	case "witness":
		if len(f) != 3 || f[1] != "at" {
			return fmt.Errorf("want: witness at TIME")
		}
		at, err := parseTime(f[2], s.last)
		if err != nil {
			return err
		}
		w.witness(at)
		return nil
	case "suspend":
		if len(f) != 2 {
			return fmt.Errorf("want: suspend NAME")
		}
		w.suspend(f[1])
		return nil
	case "audit", "audit-json":
		w.found()
		name := w.charter
		if len(f) > 1 {
			name = f[1]
		}
		p, ok := w.issue.Process(w.cid(name))
		if !ok {
			return fmt.Errorf("%s is not a process", name)
		}
		rep := p.Audit(w.firstSeen)
		if f[0] == "audit" {
			s.out.WriteString(rep.Text())
			return nil
		}
		js, err := rep.JSON()
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := json.Indent(&buf, js, "", "  "); err != nil {
			return err
		}
		s.out.WriteString(buf.String() + "\n")
		return nil
	case "index":
		w.found()
		for _, is := range w.index.Issues() {
			fmt.Fprintf(&s.out, "issue %s %q opened by %s (%s) contenders %v\n", is.Slug, is.Title, is.Open, is.Author.Org, is.Contenders)
		}
		return nil
	}
	kind, ok := scriptKinds[f[0]]
	if !ok {
		return fmt.Errorf("unknown command %q", f[0])
	}
	if len(f) < 6 || f[2] != "by" || f[4] != "at" {
		return fmt.Errorf("want: %s NAME by PARTY at TIME [key=value ...]", f[0])
	}
	at, err := parseTime(f[5], s.last)
	if err != nil {
		return err
	}
	s.last = at
	attrs := map[string]string{}
	for _, kv := range f[6:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("want key=value, got %q", kv)
		}
		attrs[k] = v
	}
	d := draft{kind: kind, name: f[1], by: f[3], at: at}
	if v, ok := attrs["after"]; ok {
		d.after = []string{}
		if v != "none" {
			d.after = strings.Split(v, ",")
		}
		delete(attrs, "after")
	}
	if v, ok := attrs["published"]; ok {
		if d.published, err = parseTime(v, at); err != nil {
			return err
		}
		delete(attrs, "published")
	}
	if v, ok := attrs["fork"]; ok {
		if _, known := w.names[v]; !known {
			return fmt.Errorf("fork=%s: no such record", v)
		}
		d.fork = v
		delete(attrs, "fork")
	}
	if v, ok := attrs["stale"]; ok {
		d.stale = v == "true"
		delete(attrs, "stale")
	}
	if v, ok := attrs["seen"]; ok {
		if d.seen, err = parseTime(v, at); err != nil {
			return err
		}
		delete(attrs, "seen")
	}
	w.found()
	if d.body, err = s.body(kind, f[1], at, attrs); err != nil {
		return err
	}
	for k := range attrs {
		return fmt.Errorf("unknown key %q for %s", k, f[0])
	}
	_, err = w.publish(d)
	s.out.WriteString("  -> " + verdict(err) + "\n")
	return nil
}

// body builds a record body from the line's attributes, deleting those it
// uses. Keys by command:
//
//	open      slug title summary
//	charter   convenors=A,B final=delegation|implementation phases=D0,D1,D2,D3,D4
//	          notice=DUR window=DUR rule group threshold mandate=DECISION
//	          title aim purpose scope=a|b modalities significance background=N
//	notice    subject date=TIME text
//	proposal  title text clauses=1,2 replaces=NAME version=N approves=RULE:GROUP:THRESHOLD
//	feedback  on=PROPOSAL stance clause reason
//	object    on=PROPOSAL text;  respond to=OBJECTION text
//	endorse, withdraw, decide  on=PROPOSAL (decide: summary)
//	delegate  decision=DECISION body scope reporting;  report on=DELEGATION text
//	stage     to;  conclude summary;  statement title text
func (s *script) body(kind, name string, at time.Time, a map[string]string) (protocol.Body, error) {
	w := s.w
	take := func(k, def string) string {
		v, ok := a[k]
		delete(a, k)
		if !ok {
			return def
		}
		return v
	}
	procName := take("process", w.charter)
	proc := func() protocol.Link { return w.link(procName) }
	switch kind {
	case protocol.KindIssueOpen:
		return &protocol.IssueOpen{Slug: take("slug", w.slug), Title: take("title", "Issue "+name), Summary: take("summary", "")}, nil
	case protocol.KindStatement:
		return &protocol.Statement{Title: take("title", "Statement "+name), Text: take("text", "Our priorities.")}, nil
	case protocol.KindCharter:
		conv := strings.Split(take("convenors", ""), ",")
		c := w.defaultCharter(at, take("final", protocol.StageDelegation), conv...)
		if v := take("phases", ""); v != "" {
			ds := strings.Split(v, ",")
			if len(ds) != 5 {
				return nil, fmt.Errorf("phases: want 5 dates")
			}
			for i := range c.Phases {
				from, err := parseTime(ds[i], at)
				if err != nil {
					return nil, err
				}
				to, err := parseTime(ds[i+1], at)
				if err != nil {
					return nil, err
				}
				c.Phases[i].Start, c.Phases[i].End = from.UnixMilli(), to.UnixMilli()
			}
		}
		for k, p := range map[string]*int64{"notice": &c.MinNoticeSeconds, "window": &c.WindowSeconds} {
			if v := take(k, ""); v != "" {
				d, err := parseDuration(v)
				if err != nil {
					return nil, err
				}
				*p = int64(d / time.Second)
			}
		}
		c.Rule.Name = take("rule", c.Rule.Name)
		c.Rule.Group = take("group", "")
		th, err := strconv.Atoi(take("threshold", "0"))
		if err != nil {
			return nil, err
		}
		c.Rule.Threshold = th
		c.Mandate = w.linkp(take("mandate", ""))
		c.Title = take("title", c.Title)
		c.Aim = take("aim", c.Aim)
		c.Purpose = take("purpose", c.Purpose)
		c.Modalities = take("modalities", c.Modalities)
		c.Significance = take("significance", c.Significance)
		if v, ok := a["scope"]; ok {
			c.Scope = nil
			if v != "" {
				c.Scope = strings.Split(v, "|")
			}
			delete(a, "scope")
		}
		n, err := strconv.Atoi(take("background", "1"))
		if err != nil {
			return nil, err
		}
		for i := range n {
			c.Background = append(c.Background, protocol.LinkTo(cid.NewCidV1(cid.Raw, protocol.RecordCID([]byte(fmt.Sprintf("document %d", i))).Hash())))
		}
		return c, nil
	case protocol.KindNotice:
		date, err := parseTime(take("date", ""), at)
		if err != nil {
			return nil, err
		}
		return &protocol.Notice{Process: proc(), Subject: take("subject", ""), Date: date.UnixMilli(), Text: take("text", "")}, nil
	case protocol.KindProposal:
		p := &protocol.Proposal{Process: proc(), Version: 1, Title: take("title", "Proposal "+name), Text: take("text", "Text of "+name+".")}
		if v := take("replaces", ""); v != "" {
			p.Replaces = w.linkp(v)
			if old, ok := w.names[v].Body.(*protocol.Proposal); ok {
				p.Version = old.Version + 1
			}
		}
		if v := take("version", ""); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, err
			}
			p.Version = n
		}
		if v := take("clauses", ""); v != "" {
			for _, id := range strings.Split(v, ",") {
				p.Clauses = append(p.Clauses, protocol.Clause{ID: id, Text: "Clause " + id + "."})
			}
		}
		if v := take("approves", ""); v != "" {
			parts := strings.Split(v, ":")
			if len(parts) != 3 {
				return nil, fmt.Errorf("approves: want RULE:GROUP:THRESHOLD")
			}
			th, err := strconv.Atoi(parts[2])
			if err != nil {
				return nil, err
			}
			p.Rule = &protocol.DecisionRule{Name: parts[0], Group: parts[1], Threshold: th}
		}
		return p, nil
	case protocol.KindFeedback:
		return &protocol.Feedback{Process: proc(), Proposal: w.link(take("on", "")), Stance: take("stance", protocol.StanceSupport),
			Reason: take("reason", ""), Clause: take("clause", "")}, nil
	case protocol.KindObjection:
		return &protocol.Objection{Process: proc(), Proposal: w.link(take("on", "")), Text: take("text", "We object.")}, nil
	case protocol.KindResponse:
		return &protocol.Response{Process: proc(), Objection: w.link(take("to", "")), Text: take("text", "Our response.")}, nil
	case protocol.KindEndorse:
		return &protocol.Endorse{Process: proc(), Proposal: w.link(take("on", ""))}, nil
	case protocol.KindWithdraw:
		return &protocol.Withdraw{Process: proc(), Proposal: w.link(take("on", ""))}, nil
	case protocol.KindDecision:
		return &protocol.Decision{Process: proc(), Proposal: w.link(take("on", "")), Summary: take("summary", "")}, nil
	case protocol.KindDelegation:
		return &protocol.Delegation{Process: proc(), Decision: w.linkp(take("decision", "")), Body: take("body", "Implementing body"),
			Scope: take("scope", "Implementation."), Reporting: take("reporting", "Report every six months.")}, nil
	case protocol.KindReport:
		return &protocol.Report{Process: proc(), Delegation: w.link(take("on", "")), Text: take("text", "Progress report.")}, nil
	case protocol.KindStage:
		return &protocol.StageChange{Process: proc(), To: take("to", "")}, nil
	case protocol.KindConclusion:
		return &protocol.Conclusion{Process: proc(), Summary: take("summary", "Concluded.")}, nil
	}
	return nil, fmt.Errorf("no body for %s", kind)
}

// checkDerive checks that deriving the state from every record published,
// in reverse order and with duplicates, gives the same audits and the same
// rejections as applying them one by one.
func (s *script) checkDerive() {
	w := s.w
	if w.genesis == nil {
		return
	}
	recs := slices.Clone(w.all)
	slices.Reverse(recs)
	recs = append(recs, w.all...)
	is, rej, err := gov.Derive(w.genesis, w.slug, recs, w.rosterAt)
	if err != nil {
		s.t.Fatal(err)
	}
	is.SetMembers(w.roster)
	for _, p := range w.issue.Processes() {
		q, ok := is.Process(p.CID())
		if !ok {
			s.t.Fatalf("derived state lacks process %s", w.rename(p.CID().String()))
		}
		a, _ := p.Audit(w.firstSeen).JSON()
		b, _ := q.Audit(w.firstSeen).JSON()
		if !bytes.Equal(a, b) {
			s.t.Fatalf("derived audit of %s differs:\n%s\n%s", w.rename(p.CID().String()), a, b)
		}
	}
	if is.Len() != w.issue.Len() {
		s.t.Fatalf("derived state holds %d records, incremental %d", is.Len(), w.issue.Len())
	}
	for _, r := range rej {
		if w.issue.Has(r.CID) {
			s.t.Fatalf("derive rejected %s (%v), applied incrementally", w.rename(r.CID.String()), r.Err)
		}
	}
	x, _, err := gov.DeriveIndex(w.genesis, recs, w.rosterAt)
	if err != nil {
		s.t.Fatal(err)
	}
	if fmt.Sprint(x.Issues()) != fmt.Sprint(w.index.Issues()) {
		s.t.Fatalf("derived index differs")
	}
}

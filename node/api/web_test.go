package api_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/node/api"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// demoT0 is when the demo data starts.
var demoT0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// demoNet starts five members (every group and region) and one observer
// on one clock, all following the demo issue, and publishes the demo data.
func demoNet(t *testing.T) (*testnet.Network, *testnet.Demo, *testnet.Clock) {
	t.Helper()
	ctx := testContext(t)
	clock := testnet.NewClock(demoT0)
	net := testnet.New(t, 6, testnet.WithObservers(1), testnet.WithFollow("privacy"),
		testnet.WithNodeOptions(func(int) []node.Option { return []node.Option{node.WithClock(clock.Now)} }))
	for _, tp := range []string{protocol.TopicIndex, "issue/privacy"} {
		if err := net.WaitTopicMesh(ctx, tp); err != nil {
			t.Fatal(err)
		}
	}
	d, err := net.PublishDemo(ctx, clock, demoT0)
	if err != nil {
		t.Fatal(err)
	}
	return net, d, clock
}

// browser is an HTTP client with cookies that does not follow redirects.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: base, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(path string) (int, string, http.Header) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func (b *browser) post(path string, form url.Values) (int, string, http.Header) {
	b.t.Helper()
	resp, err := b.c.PostForm(b.base+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// flash returns the outcome a form's answer sets for the next page:
// "done:<kind>", "failed:<reason>" or "".
func flash(hdr http.Header) string {
	for _, c := range (&http.Response{Header: hdr}).Cookies() {
		if c.Name == "ch_flash" {
			v, _ := url.QueryUnescape(c.Value)
			return v
		}
	}
	return ""
}

// csrf returns the CSRF token of the forms of a page.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	_, page, _ := b.get(path)
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("%s has no csrf field:\n%s", path, page)
	}
	return m[1]
}

func mustContain(t *testing.T, what, page string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(page, w) {
			t.Fatalf("%s lacks %q:\n%s", what, w, page)
		}
	}
}

func mustNotContain(t *testing.T, what, page string, bad ...string) {
	t.Helper()
	for _, w := range bad {
		if strings.Contains(page, w) {
			t.Fatalf("%s has %q:\n%s", what, w, page)
		}
	}
}

// TestWebPages: the pages show the federation, the issues with their
// processes and deadlines, a process with its charter, timeline,
// proposals by clause with the diff between versions, feedback by stance
// with reasons and clauses, objections (the unanswered one marked),
// endorsements by group x region with the missing cells, the audit with
// links to its evidence, and records decoded with their signature
// checked; authors are organisations; a process in scoping is "not yet",
// never "not met"; two processes of one title are told apart; text from
// records is escaped; an observer serves the same pages without member
// forms.
func TestWebPages(t *testing.T) {
	ctx := testContext(t)
	net, d, clock := demoNet(t)
	if _, err := net.PublishAll(ctx, 0, protocol.KindIssueOpen, protocol.TopicIndex, &protocol.IssueOpen{
		Slug: "other", Title: "Other <script>alert(1)</script>", Summary: "Data & borders."}); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 5} { // a member and the observer
		ts := serve(t, net.Nodes[i], api.WithToken(token), api.WithWebClock(clock.Now))
		b := newBrowser(t, ts.URL)
		status, home, hdr := b.get("/")
		if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") ||
			!strings.Contains(hdr.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Fatalf("home: %d %v", status, hdr)
		}
		mustContain(t, "home", home, "Other &lt;script&gt;alert(1)&lt;/script&gt;", "Data &amp; borders.",
			`href="/issues/privacy"`, "Privacy and data protection", `href="/processes/`+d.Process.String()+`"`,
			"consultation", "comments close: 2026-04-27", // v2's window: day 26 + 30 days
			`<link rel="stylesheet" href="/static/app.css">`)
		mustNotContain(t, "home", home, "<script>alert")

		_, issue, _ := b.get("/issues/privacy")
		// Two processes of one title: each row names its charter date,
		// convenor and short id.
		mustContain(t, "issue", issue, "2026-03-03 · Org 0 · <span class=\"mono\">…"+d.Process.String()[len(d.Process.String())-8:],
			"2026-04-01 · Org 2 · <span class=\"mono\">…"+d.Scoping.String()[len(d.Scoping.String())-8:],
			"Public comments on this issue")

		status, page, _ := b.get("/processes/" + d.Process.String())
		if status != 200 {
			t.Fatalf("process: %d\n%s", status, page)
		}
		mustContain(t, "process", page,
			// charter
			"Agree on a global baseline", "Give people the same protection", "redress for people abroad",
			"Open online consultation", "Most Internet services", "14d", "30d",
			// timeline with today and the notice window
			`class="today"`, "notice window of consultation", `class="bar current"`,
			// proposals by clause, newest first, with the diff
			"version 2 · Baseline principles", "superseded by version 2",
			`id="v-`+d.V2.String()[len(d.V2.String())-8:]+`-4"`, "names a representative",
			"Changes from version 1", "<del>five</del> <ins>two</ins>", "removed", "added",
			// feedback by stance with reasons, clause and organisation
			`<span class="badge">concern</span> (1)`, "Five years is too long for small operators.", "Clause 2",
			"<b>Org 3</b>", "Redress abroad must not depend",
			// objections: answered with its response, the unanswered one stands out
			`<span class="fail">unanswered</span>`, `class="card unanswered"`, "Response by Org 0",
			"Version 2 adds a designated representative",
			// endorsements: three standing, the missing cells marked
			`Endorsed by: Org 0; Org 1; Org 2`, `<td class="n missing">missing</td>`, "Still short of the threshold (1): ",
			// audit with evidence links
			"P1 · all stakeholder groups take part", `href="/records/`+d.Answered.String()+`"`,
		)
		// In consultation nothing is "not met" yet: P2 has an unanswered
		// objection, P4 nothing adopted.
		mustNotContain(t, "process", page, `<span class="fail">not met</span>`)
		mustContain(t, "process", page, `<span class="pending">not yet</span>`)

		_, scoping, _ := b.get("/processes/" + d.Scoping.String())
		mustContain(t, "scoping process", scoping, "scoping", `<span class="pending">not yet</span>`)
		mustNotContain(t, "scoping process", scoping, "not met")

		_, rec, _ := b.get("/records/" + d.Answered.String())
		mustContain(t, "record", rec, "process.objection", "Org 3", "verified (ed25519, by the author key)",
			`href="/records/`+d.V1.String()+`"`, `href="/processes/`+d.Process.String()+`"`,
			"Clause 3 leaves people without redress")

		_, fed, _ := b.get("/federation")
		mustContain(t, "federation", fed, "Members by stakeholder group and region", "Org 4", "intergovernmental",
			"western-europe-others", "Connected peers", net.Nodes[i].ID().String())

		status, css, hdr := b.get("/static/app.css")
		if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/css") || !strings.Contains(css, "@media") {
			t.Fatalf("app.css: %d %v", status, hdr)
		}
		for path, want := range map[string]string{
			"/issues/unknown":             "No open issue",
			"/processes/nonsense":         "not a process id",
			"/processes/" + d.V1.String(): "holds no process",
			"/records/nonsense":           "not a record id",
		} {
			status, body, _ := b.get(path)
			if status != 404 || !strings.Contains(body, want) {
				t.Fatalf("%s: %d %q", path, status, body)
			}
		}
		if i == 5 { // the observer
			mustNotContain(t, "observer process page", page, `class="act`, "/login", "/act/")
			for _, path := range []string{"/login", "/logout", "/processes/" + d.Process.String() + "/act/feedback", "/public/" + d.V1.String() + "/respond"} {
				if status, _, _ := b.post(path, url.Values{}); status != 404 && status != 405 {
					t.Fatalf("observer POST %s: %d, want 404 or 405", path, status)
				}
			}
			if status, _, _ := b.get("/login"); status != 404 {
				t.Fatalf("observer GET /login: %d", status)
			}
		}
	}
}

// TestWebAct: on a member node, a signed-in user publishes from the page;
// the API token never reaches a page; the session cookie is HttpOnly and
// SameSite=Strict; forms without the CSRF token, or from another origin,
// are refused; the record shows on another member's page.
func TestWebAct(t *testing.T) {
	ctx := testContext(t)
	net, d, clock := demoNet(t)
	ts := serve(t, net.Nodes[0], api.WithToken(token), api.WithWebClock(clock.Now))
	b := newBrowser(t, ts.URL)
	proc := "/processes/" + d.Process.String()
	_, page, _ := b.get(proc)
	mustNotContain(t, "signed-out page", page, `/act/feedback`)
	if status, _, hdr := b.post(proc+"/act/feedback", url.Values{}); status != 303 || hdr.Get("Location") != "/login" {
		t.Fatalf("act without session: %d %v", status, hdr)
	}
	csrf := b.csrf("/login")
	if status, _, _ := b.post("/login", url.Values{"csrf": {csrf}, "token": {"wrong"}}); status != 401 {
		t.Fatalf("wrong token: %d", status)
	}
	if status, _, _ := b.post("/login", url.Values{"csrf": {"forged"}, "token": {token}}); status != 403 {
		t.Fatalf("login without csrf: %d", status)
	}
	status, _, hdr := b.post("/login", url.Values{"csrf": {csrf}, "token": {token}})
	if status != 303 {
		t.Fatalf("login: %d", status)
	}
	cookie := hdr.Get("Set-Cookie")
	mustContain(t, "session cookie", cookie, "ch_session=", "HttpOnly", "SameSite=Strict")
	mustNotContain(t, "session cookie", cookie, token)

	_, page, _ = b.get(proc)
	mustContain(t, "signed-in page", page, `action="`+proc+`/act/feedback"`, `action="`+proc+`/act/endorse"`,
		`action="`+proc+`/act/respond"`, `action="`+proc+`/act/stage"`, `action="`+proc+`/act/notice"`, "Sign out")
	mustNotContain(t, "signed-in page", page, token)
	csrf = csrfField.FindStringSubmatch(page)[1]

	form := url.Values{"proposal": {d.V2.String()}, "stance": {"support"}, "clause": {"4"}, "reason": {"Representatives make redress real."}}
	if status, _, _ := b.post(proc+"/act/feedback", form); status != 403 {
		t.Fatalf("feedback without csrf: %d", status)
	}
	form.Set("csrf", csrf)
	req, _ := http.NewRequest("POST", ts.URL+proc+"/act/feedback", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if resp, err := b.c.Do(req); err != nil || resp.StatusCode != 403 {
		t.Fatalf("feedback from another origin: %v %v", resp, err)
	}
	st, err := net.Nodes[0].Store().Stats()
	if err != nil {
		t.Fatal(err)
	}
	before := st.LastArrival
	clock.Set(d.Now.Add(time.Hour))
	status, _, hdr = b.post(proc+"/act/feedback", form)
	if status != 303 || hdr.Get("Location") != proc || flash(hdr) != "done:process.feedback" {
		t.Fatalf("feedback: %d %v", status, hdr)
	}
	// The next page says so, once; a link cannot make it say so.
	_, page, _ = b.get(proc)
	mustContain(t, "page after feedback", page, `<p class="flash" role="status">Published process.feedback.</p>`)
	_, page, _ = b.get(proc + "?done=process.decision")
	mustNotContain(t, "page after feedback", page, "Published process.decision", `class="flash"`)
	// Responding to the unanswered objection answers it.
	clock.Set(d.Now.Add(2 * time.Hour))
	status, _, hdr = b.post(proc+"/act/respond", url.Values{"csrf": {csrf}, "objection": {d.Unanswered.String()}, "text": {"Small jurisdictions may share one representative."}})
	if status != 303 || flash(hdr) != "done:process.response" {
		t.Fatalf("respond: %d %v", status, hdr)
	}
	// A bad form comes back with the reason.
	status, _, hdr = b.post(proc+"/act/feedback", url.Values{"csrf": {csrf}, "proposal": {d.V2.String()}, "stance": {"maybe"}})
	if status != 303 || !strings.HasPrefix(flash(hdr), "failed:") || !strings.Contains(flash(hdr), "stance") {
		t.Fatalf("bad feedback: %d %v", status, hdr)
	}
	_, page, _ = b.get(proc)
	mustContain(t, "page after bad feedback", page, `<p class="error" role="alert">Not published: `)

	// Another member's page shows both, through gossip.
	ms, err := net.Nodes[0].Store().Since(before, 10)
	if err != nil || len(ms) != 2 {
		t.Fatalf("node 0 stored %d records from the page (%v), want 2", len(ms), err)
	}
	if err := net.Nodes[3].WaitRecords(ctx, ms[0].CID, ms[1].CID); err != nil {
		t.Fatal(err)
	}
	other := serve(t, net.Nodes[3], api.WithToken(token), api.WithWebClock(clock.Now))
	_, page, _ = newBrowser(t, other.URL).get(proc)
	mustContain(t, "other member's page", page, "Representatives make redress real.", "Small jurisdictions may share one representative.")
	mustNotContain(t, "other member's page", page, `class="card unanswered"`)
	// Every other action of the page publishes its kind of record.
	for i, a := range []struct {
		action string
		form   url.Values
		want   string // the flash: done:<kind>, or a failure's protocol reason
	}{
		{"withdraw", url.Values{"proposal": {d.V2.String()}}, "done:" + protocol.KindWithdraw},
		{"endorse", url.Values{"proposal": {d.V2.String()}}, "done:" + protocol.KindEndorse},
		{"object", url.Values{"proposal": {d.V2.String()}, "text": {"Clause 2 still burdens archives."}}, "done:" + protocol.KindObjection},
		{"version", url.Values{"replaces": {d.V2.String()}, "title": {"Baseline principles"}, "text": {"Principles."},
			"clauses": {"1: Data leaves only to a jurisdiction at the baseline.\r\n4: Representatives everywhere."}}, "done:" + protocol.KindProposal},
		{"notice", url.Values{"subject": {"decision"}, "date": {"2026-05-01"}, "text": {"The decision stage opens."}}, "done:" + protocol.KindNotice},
		// Too early: the protocol refuses the move, and the page says why.
		{"stage", url.Values{"to": {"decision"}}, "failed:node: publish process.stage on issue/privacy: protocol: not-allowed"},
		{"nonsense", url.Values{}, "failed:no action"},
	} {
		clock.Set(d.Now.Add(time.Duration(3+i) * time.Hour))
		a.form.Set("csrf", csrf)
		status, _, hdr := b.post(proc+"/act/"+a.action, a.form)
		if status != 303 || !strings.HasPrefix(flash(hdr), a.want) {
			t.Fatalf("%s: %d %q, want %q", a.action, status, flash(hdr), a.want)
		}
	}
	_, page, _ = b.get(proc)
	mustContain(t, "page after the actions", page, "version 3 · Baseline principles", "Clause 2 still burdens archives.",
		"superseded by version 3", "The decision stage opens.", "Representatives everywhere.")

	// Sign out ends the session.
	if status, _, _ := b.post("/logout", url.Values{"csrf": {csrf}}); status != 303 {
		t.Fatalf("logout: %d", status)
	}
	if status, _, hdr := b.post(proc+"/act/endorse", url.Values{"csrf": {csrf}, "proposal": {d.V2.String()}}); status != 303 || hdr.Get("Location") != "/login" {
		t.Fatalf("act after logout: %d %v", status, hdr)
	}
}

package api_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/node/api"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// getPage fetches a web page and returns its status, body and headers.
func getPage(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// TestWebView: the pages show the issues, a process's stage, principles,
// participation matrix and proposals with feedback by stance, as the node
// derives them; text from records is escaped; unknown things are 404
// pages; an observer serves the same pages.
func TestWebView(t *testing.T) {
	ctx := testContext(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock := testnet.NewClock(t0)
	net := testnet.New(t, 3, testnet.WithObservers(1), testnet.WithFollow("privacy"),
		testnet.WithAffiliation(func(i int) (string, string) {
			return []string{"government", "civil-society"}[i%2], []string{"africa", "asia-pacific"}[i%2]
		}),
		testnet.WithNodeOptions(func(int) []node.Option { return []node.Option{node.WithClock(clock.Now)} }))
	for _, tp := range []string{protocol.TopicIndex, "issue/privacy"} {
		if err := net.WaitTopicMesh(ctx, tp); err != nil {
			t.Fatal(err)
		}
	}
	day := 24 * time.Hour
	publish := func(i int, at time.Duration, kind, tp string, body protocol.Body, deps ...cid.Cid) *protocol.Record {
		t.Helper()
		clock.Set(t0.Add(at))
		r, err := net.PublishAll(ctx, i, kind, tp, body, deps...)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	pub := net.PublicKey
	ms := func(d time.Duration) int64 { return t0.Add(d).UnixMilli() }
	topic := "issue/privacy"

	publish(0, 0, protocol.KindIssueOpen, protocol.TopicIndex, &protocol.IssueOpen{
		Slug: "privacy", Title: "Privacy <script>alert(1)</script>", Summary: "Data & borders."})
	charter := publish(0, day, protocol.KindCharter, topic, &protocol.Charter{
		Title: "Cross-border principles", Aim: "Agree.", Purpose: "Protect.", Scope: []string{"transfers"},
		Modalities: "Online.", Significance: "Global.", Convenors: [][]byte{pub(0), pub(1)},
		Phases: []protocol.Phase{
			{Stage: protocol.StageScoping, Start: ms(day), End: ms(20 * day)},
			{Stage: protocol.StageConsultation, Start: ms(20 * day), End: ms(60 * day)},
			{Stage: protocol.StageDecision, Start: ms(60 * day), End: ms(90 * day)},
			{Stage: protocol.StageImplementation, Start: ms(90 * day), End: ms(360 * day)},
		},
		MinNoticeSeconds: 14 * 24 * 3600, WindowSeconds: 14 * 24 * 3600,
		Rule: protocol.DecisionRule{Name: protocol.RuleConcurrentMajority, Threshold: 1},
	})
	proc := protocol.LinkTo(charter.CID)
	publish(1, 2*day, protocol.KindNotice, topic, &protocol.Notice{Process: proc, Subject: protocol.SubjectConsultation,
		Date: ms(20 * day), Text: "Consultation opens."}, charter.CID)
	publish(0, 20*day, protocol.KindStage, topic, &protocol.StageChange{Process: proc, To: protocol.StageConsultation}, charter.CID)
	publish(1, 20*day+time.Hour, protocol.KindStage, topic, &protocol.StageChange{Process: proc, To: protocol.StageConsultation}, charter.CID)
	prop := publish(1, 21*day, protocol.KindProposal, topic, &protocol.Proposal{Process: proc, Version: 1,
		Title: "Principles v1", Text: "The principles.", Clauses: []protocol.Clause{{ID: "1", Text: "Protect data."}}}, charter.CID)
	publish(0, 22*day, protocol.KindFeedback, topic, &protocol.Feedback{Process: proc, Proposal: protocol.LinkTo(prop.CID),
		Stance: protocol.StanceConcern, Reason: "Too broad."}, charter.CID, prop.CID)

	for _, nd := range []*node.Node{net.Nodes[0], net.Nodes[2]} { // a member and the observer
		ts := serve(t, nd, api.WithToken(token))
		status, home, hdr := getPage(t, ts.URL+"/")
		if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") ||
			!strings.Contains(hdr.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Fatalf("home: %d %v", status, hdr)
		}
		if strings.Contains(home, "<script>alert") || !strings.Contains(home, "Privacy &lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Fatalf("home does not escape the issue title:\n%s", home)
		}
		for _, want := range []string{`href="/issues/privacy"`, "Data &amp; borders.", "following", net.Genesis.Name} {
			if !strings.Contains(home, want) {
				t.Fatalf("home lacks %q:\n%s", want, home)
			}
		}
		_, issue, _ := getPage(t, ts.URL+"/issues/privacy")
		for _, want := range []string{`href="/processes/` + charter.CID.String() + `"`, "Cross-border principles", "consultation"} {
			if !strings.Contains(issue, want) {
				t.Fatalf("issue page lacks %q:\n%s", want, issue)
			}
		}
		status, page, _ := getPage(t, ts.URL+"/processes/"+charter.CID.String())
		if status != 200 {
			t.Fatalf("process page: %d\n%s", status, page)
		}
		for _, want := range []string{
			"P1 · all stakeholder groups take part", "P4 · no group or region decides alone",
			"Principles v1", "took part: civil-society, government", "took part: africa, asia-pacific",
			// the matrix (regions africa, asia-pacific, then those without
			// members): one participant in each of two cells
			`<th>civil-society</th><td class="n zero">0</td><td class="n">1</td><td class="n zero">0</td>`,
			`<th>government</th><td class="n">1</td><td class="n zero">0</td><td class="n zero">0</td>`,
			"absent (no members): intergovernmental, private-sector, technical-academic",
			// stances: support, neutral, concern, objection
			`<td class="n">0</td><td class="n">0</td><td class="n">1</td><td class="n">0</td>`,
			"nothing adopted yet", "Consultation opens.", "scoping",
		} {
			if strings.Contains(want, "Consultation opens.") {
				want = "consultation" // the notice's subject
			}
			if !strings.Contains(page, want) {
				t.Fatalf("process page lacks %q:\n%s", want, page)
			}
		}
		for path, want := range map[string]string{
			"/issues/unknown":                 "No open issue",
			"/processes/nonsense":             "not a process id",
			"/processes/" + prop.CID.String(): "holds no process",
		} {
			status, body, hdr := getPage(t, ts.URL+path)
			if status != 404 || !strings.Contains(body, want) || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
				t.Fatalf("%s: %d %q", path, status, body)
			}
		}
	}
}

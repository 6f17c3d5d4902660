package api_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/node/api"
	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// person posts public comments through a handler from one client address.
type person struct {
	t       *testing.T
	h       http.Handler
	ip      string
	cookies []*http.Cookie
	csrf    string
}

func newPerson(t *testing.T, h http.Handler, ip string) *person {
	t.Helper()
	p := &person{t: t, h: h, ip: ip}
	rec := p.do(httptest.NewRequest("GET", "/issues/privacy", nil))
	p.cookies = rec.Result().Cookies()
	m := csrfField.FindStringSubmatch(rec.Body.String())
	if rec.Code != 200 || m == nil {
		t.Fatalf("issue page: %d", rec.Code)
	}
	p.csrf = m[1]
	return p
}

func (p *person) do(req *http.Request) *httptest.ResponseRecorder {
	req.RemoteAddr = p.ip + ":40000"
	for _, c := range p.cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	p.h.ServeHTTP(rec, req)
	return rec
}

// comment posts a comment and returns the status.
func (p *person) comment(form url.Values) int {
	p.t.Helper()
	form.Set("csrf", p.csrf)
	req := httptest.NewRequest("POST", "/issues/privacy/comments", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := p.do(req)
	if f := flash(rec.Header()); rec.Code == 303 && f != "done:public.comment" {
		p.t.Fatalf("comment refused: %s", f)
	}
	return rec.Code
}

// publicCount counts the public comments a node stores on the issue.
func publicCount(t *testing.T, nd *node.Node) int {
	t.Helper()
	ms, err := nd.Store().TopicRecords(protocol.PublicTopic("privacy"), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range ms {
		if m.Kind == protocol.KindPublicComment {
			n++
		}
	}
	return n
}

// TestPublicComments: anyone comments through an observer's page; the
// observer signs the comment; a member's page shows it apart, marked
// public, on the process and the proposal it is about; a member responds
// from its page.
func TestPublicComments(t *testing.T) {
	ctx := testContext(t)
	net, d, clock := demoNet(t)
	obs := serve(t, net.Nodes[5], api.WithWebClock(clock.Now))
	ob := newBrowser(t, obs.URL)
	proc := "/processes/" + d.Process.String()
	_, page, _ := ob.get(proc)
	mustContain(t, "observer process page", page, `action="/issues/privacy/comments"`, `name="proposal"`)
	csrf := csrfField.FindStringSubmatch(page)[1]
	status, _, hdr := ob.post("/issues/privacy/comments", url.Values{"csrf": {csrf}, "return": {proc},
		"process": {d.Process.String()}, "proposal": {d.V2.String()}, "clause": {"4"}, "name": {"Ada <b>L</b>"},
		"text": {"Representatives must speak the local language."}})
	if status != 303 || hdr.Get("Location") != proc+"#public" || flash(hdr) != "done:public.comment" {
		t.Fatalf("comment: %d %v", status, hdr)
	}
	// A comment cannot claim a target the process does not have.
	for _, bad := range []url.Values{
		{"process": {d.Process.String()}, "proposal": {d.V2.String()}, "clause": {"3"}}, // v2 has no clause 3
		{"process": {d.Scoping.String()}, "proposal": {d.V2.String()}},                  // another process's proposal
		{"process": {d.V1.String()}},                                                    // not a process
	} {
		bad.Set("csrf", csrf)
		bad.Set("text", "x")
		if status, _, hdr := ob.post("/issues/privacy/comments", bad); status != 303 || !strings.HasPrefix(flash(hdr), "failed:") {
			t.Fatalf("comment on %v: %d %q", bad, status, flash(hdr))
		}
	}
	ms, err := net.Nodes[5].Store().TopicRecords(protocol.PublicTopic("privacy"), 0, 10)
	if err != nil || len(ms) != 1 {
		t.Fatalf("observer stores %d public records (%v)", len(ms), err)
	}
	rec, err := net.Nodes[5].Record(ms[0].CID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rec.Env.Author, net.PublicKey(5)) {
		t.Fatalf("comment signed by %x, not by the observer", rec.Env.Author)
	}
	if err := net.Nodes[1].WaitRecords(ctx, rec.CID); err != nil {
		t.Fatal(err)
	}
	member := serve(t, net.Nodes[1], api.WithToken(token), api.WithWebClock(clock.Now))
	mb := newBrowser(t, member.URL)
	_, page, _ = mb.get(proc)
	mustContain(t, "member process page", page, `<span class="badge public">public</span> <b>Ada &lt;b&gt;L&lt;/b&gt;</b>`,
		"Representatives must speak the local language.", "via observer node", "Clause 4")
	// Shown apart: after the proposals, in its own section.
	if strings.Index(page, "Representatives must speak") < strings.Index(page, `id="pub-h"`) {
		t.Fatal("the public comment is shown among the member feedback")
	}
	_, issue, _ := mb.get("/issues/privacy")
	mustContain(t, "member issue page", issue, "Representatives must speak the local language.")

	// A member responds from its page; the response is a record too.
	csrf = mb.csrf("/login")
	if status, _, _ := mb.post("/login", url.Values{"csrf": {csrf}, "token": {token}}); status != 303 {
		t.Fatalf("login: %d", status)
	}
	_, page, _ = mb.get(proc)
	mustContain(t, "signed-in member page", page, `action="/public/`+rec.CID.String()+`/respond"`)
	csrf = csrfField.FindStringSubmatch(page)[1]
	clock.Set(d.Now.Add(time.Minute))
	status, _, hdr = mb.post("/public/"+rec.CID.String()+"/respond", url.Values{"csrf": {csrf}, "return": {proc}, "text": {"Clause 4 will say so."}})
	if status != 303 || flash(hdr) != "done:public.response" {
		t.Fatalf("respond: %d %v", status, hdr)
	}
	_, page, _ = mb.get(proc)
	mustContain(t, "member page after the response", page, "Response by Org 1", "Clause 4 will say so.")
}

// TestPublicCommentFlood: one person's flood is cut after the burst; a
// node's flood through its page is cut by the protocol pace, and a node
// that signs comments past the pace itself has them refused by every
// peer; the comments stored stay within the bounds.
func TestPublicCommentFlood(t *testing.T) {
	ctx := testContext(t)
	net, d, clock := demoNet(t)
	srv, err := api.New(net.Nodes[5], api.WithWebClock(clock.Now), api.WithCommentLimits(3, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	h := srv.Handler()
	now := d.Now
	tick := func() { now = now.Add(protocol.MinCommentInterval); clock.Set(now) }

	// One person: three comments pass (one per pace interval), then the
	// person is limited, whatever the node's pace allows.
	ada := newPerson(t, h, "192.0.2.1")
	for i := range 6 {
		tick()
		want := 303
		if i >= 3 {
			want = 429
		}
		if got := ada.comment(url.Values{"text": {fmt.Sprintf("comment %d", i)}}); got != want {
			t.Fatalf("Ada's comment %d: %d, want %d", i, got, want)
		}
	}
	// Another person still gets through.
	tick()
	if got := newPerson(t, h, "192.0.2.2").comment(url.Values{"text": {"mine"}}); got != 303 {
		t.Fatalf("Bob's comment: %d", got)
	}
	// Many people at once: the node signs one per interval.
	tick()
	accepted := 0
	for i := range 20 {
		if newPerson(t, h, fmt.Sprintf("198.51.100.%d", i)).comment(url.Values{"text": {"crowd"}}) == 303 {
			accepted++
		}
	}
	if accepted != 1 {
		t.Fatalf("%d of 20 simultaneous comments accepted, want 1 (the node's pace)", accepted)
	}
	if got := publicCount(t, net.Nodes[5]); got != 5 {
		t.Fatalf("observer stores %d comments, want 5", got)
	}

	// A node that bypasses its page and signs comments one second apart:
	// each peer refuses every one that breaks the pace.
	key := net.SigningKey(5)
	topic := protocol.PublicTopic("privacy")
	seq, prev, err := net.Nodes[5].Store().ChainHead(net.PublicKey(5), topic)
	if err != nil {
		t.Fatal(err)
	}
	if err := net.Nodes[0].WaitRecords(ctx, prev); err != nil {
		t.Fatal(err)
	}
	refused := 0
	for i := range 10 {
		now = now.Add(time.Second)
		clock.Set(now)
		r, err := protocol.Build(key, protocol.Draft{Network: net.Nodes[5].NetworkID(), Kind: protocol.KindPublicComment, Topic: topic,
			Seq: seq + 1, Prev: prev, Time: now, Body: &protocol.PublicComment{Person: make([]byte, 16), Text: fmt.Sprintf("spam %d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = net.Nodes[0].Ingest(ctx, r.Raw, "", node.SourceLocal)
		if err != nil {
			if protocol.ReasonOf(err) != protocol.ReasonNotAllowed {
				t.Fatalf("spam %d: %v", i, err)
			}
			refused++
			continue
		}
		seq, prev = seq+1, r.CID
	}
	// Ten seconds of spam hold at most one interval's worth.
	if refused < 9 {
		t.Fatalf("%d of 10 spam comments refused, want >= 9", refused)
	}
}

// TestPublicCommentsNeverCount is a property test: whatever public
// comments and responses arrive (on any process, proposal or clause, with
// any text, through members' and observers' pages), every audit and every
// process's stage and adoption stay byte-identical.
func TestPublicCommentsNeverCount(t *testing.T) {
	ctx := testContext(t)
	net, d, clock := demoNet(t)
	snapshot := func() string {
		var b strings.Builder
		for _, c := range []cid.Cid{d.Process, d.Scoping} {
			rep, err := net.Nodes[0].Audit(c)
			if err != nil {
				t.Fatal(err)
			}
			j, err := rep.JSON()
			if err != nil {
				t.Fatal(err)
			}
			b.Write(j)
		}
		ps, err := net.Nodes[0].Processes("privacy")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			fmt.Fprintf(&b, "%s %s %d %v\n", p.CID(), p.Stage(), p.Len(), p.Adopted())
		}
		return b.String()
	}
	before := snapshot()
	handlers := make([]http.Handler, len(net.Nodes))
	for i, nd := range net.Nodes {
		srv, err := api.New(nd, api.WithToken(token), api.WithWebClock(clock.Now), api.WithCommentLimits(1000, time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Close() })
		handlers[i] = srv.Handler()
	}
	texts := []string{"I endorse this", "objection", "support", "concern: clause 2", "+1", "P1 met"}
	now := d.Now
	var posted []cid.Cid
	for seed := range uint64(5) {
		rng := rand.New(rand.NewPCG(seed, 13))
		now = now.Add(protocol.MinCommentInterval)
		clock.Set(now)
		for i := range net.Nodes { // each node relays one comment per interval
			form := url.Values{"text": {texts[rng.IntN(len(texts))]}, "name": {fmt.Sprintf("p%d", rng.IntN(100))}}
			switch rng.IntN(3) {
			case 1:
				form.Set("process", d.Process.String())
				v := rng.IntN(2)
				form.Set("proposal", []cid.Cid{d.V1, d.V2}[v].String())
				form.Set("clause", [][]string{{"", "1", "2", "3"}, {"", "1", "2", "4"}}[v][rng.IntN(4)])
			case 2:
				form.Set("process", d.Scoping.String())
			}
			p := newPerson(t, handlers[i], fmt.Sprintf("203.0.113.%d", rng.IntN(250)))
			if got := p.comment(form); got != 303 {
				t.Fatalf("seed %d node %d: comment %d", seed, i, got)
			}
		}
		// Members respond to some comments.
		ms, err := net.Nodes[0].Store().TopicRecords(protocol.PublicTopic("privacy"), 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			posted = append(posted, m.CID)
			if m.Kind == protocol.KindPublicComment && rng.IntN(3) == 0 {
				j := rng.IntN(5)
				if err := net.Nodes[j].WaitRecords(ctx, m.CID); err != nil {
					t.Fatal(err)
				}
				if _, err := net.Nodes[j].Publish(ctx, protocol.KindPublicResponse, m.Topic,
					&protocol.PublicResponse{Comment: protocol.LinkTo(m.CID), Text: "noted"}, m.CID); err != nil {
					t.Fatal(err)
				}
			}
		}
		if after := snapshot(); after != before {
			t.Fatalf("seed %d: public comments changed the audit or a process:\nbefore %s\nafter  %s", seed, before, after)
		}
	}
	if len(posted) == 0 {
		t.Fatal("no public record reached node 0")
	}
	// And a non-member cannot answer as a member.
	obsKey := net.SigningKey(5)
	seq, prev, err := net.Nodes[5].Store().ChainHead(net.PublicKey(5), protocol.PublicTopic("privacy"))
	if err != nil {
		t.Fatal(err)
	}
	if err := net.Nodes[0].WaitRecords(ctx, prev, posted[0]); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	clock.Set(now)
	r, err := protocol.Build(obsKey, protocol.Draft{Network: net.Nodes[5].NetworkID(), Kind: protocol.KindPublicResponse,
		Topic: protocol.PublicTopic("privacy"), Seq: seq + 1, Prev: prev, Deps: []cid.Cid{posted[0]}, Time: now,
		Body: &protocol.PublicResponse{Comment: protocol.LinkTo(posted[0]), Text: "as if a member"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := net.Nodes[0].Ingest(ctx, r.Raw, "", node.SourceLocal); protocol.ReasonOf(err) != protocol.ReasonNotMember {
		t.Fatalf("a response by a non-member: %v, want not-member", err)
	}
}

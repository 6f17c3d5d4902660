package api_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/node/api"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

const token = "test-token-0123456789abcdef0123456789abcdef"

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// serve starts the API of nd behind an httptest server, closed at cleanup.
func serve(t *testing.T, nd *node.Node, opts ...api.Option) *httptest.Server {
	t.Helper()
	srv, err := api.New(nd, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		_ = srv.Close() // ends event streams first
		ts.Close()
	})
	return ts
}

// client does requests against one test server.
type client struct {
	t     *testing.T
	base  string
	token string
}

// do sends a request and returns the status and body.
func (c client) do(method, path string, body string, hdr ...string) (int, []byte, http.Header) {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

// json does a request, checks the status and decodes the JSON answer.
func (c client) json(method, path, body string, want int, out any) {
	c.t.Helper()
	status, b, _ := c.do(method, path, body)
	if status != want {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

type apiErr struct {
	Error api.Error `json:"error"`
}

// wantErr checks an error answer's status, code and reason.
func (c client) wantErr(method, path, body string, status int, code, reason string) api.Error {
	c.t.Helper()
	var e apiErr
	c.json(method, path, body, status, &e)
	if e.Error.Code != code || e.Error.Reason != reason || e.Error.Message == "" {
		c.t.Fatalf("%s %s: error %+v, want code %q reason %q", method, path, e.Error, code, reason)
	}
	return e.Error
}

func publishBody(kind, topic string, body any, deps ...string) string {
	b, _ := json.Marshal(map[string]any{"kind": kind, "topic": topic, "body": body, "deps": deps})
	return string(b)
}

func TestNewRequiresToken(t *testing.T) {
	net := testnet.New(t, 2, testnet.WithObservers(1))
	if _, err := api.New(net.Nodes[0]); err != api.ErrNoToken {
		t.Fatalf("New without token on a member: %v, want ErrNoToken", err)
	}
	if _, err := api.New(net.Nodes[0], api.WithToken("")); err == nil {
		t.Fatal("WithToken(\"\") accepted")
	}
	if _, err := api.New(net.Nodes[1]); err != nil {
		t.Fatalf("New without token on an observer: %v", err)
	}
}

func TestAPI(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 3, testnet.WithObservers(1))
	if err := net.WaitTopicMesh(ctx, protocol.TopicIndex); err != nil {
		t.Fatal(err)
	}
	ts := serve(t, net.Nodes[0], api.WithToken(token))
	c := client{t: t, base: ts.URL + api.Prefix, token: token}
	anon := client{t: t, base: ts.URL + api.Prefix}
	wrong := client{t: t, base: ts.URL + api.Prefix, token: "wrong-token-0123456789abcdef0123456789"}

	// Status and friends.
	var st api.StatusView
	c.json("GET", "/status", "", 200, &st)
	if st.Role != "member" || st.PeerID != net.Nodes[0].ID().String() || st.NetworkID != net.Nodes[0].NetworkID().String() ||
		st.Federation != net.Genesis.Name || st.DevFederation || len(st.ListenAddrs) == 0 || st.Key == "" {
		t.Fatalf("status: %+v", st)
	}
	var peers struct{ Peers []api.PeerView }
	c.json("GET", "/peers", "", 200, &peers)
	if len(peers.Peers) != 2 {
		t.Fatalf("peers: %+v", peers)
	}
	var members struct{ Members []api.MemberView }
	c.json("GET", "/members", "", 200, &members)
	if len(members.Members) != 2 || members.Members[0].Org == "" || len(members.Members[0].Keys) != 1 {
		t.Fatalf("members: %+v", members)
	}
	keys := map[string]bool{}
	for _, m := range members.Members {
		keys[m.Key] = true
	}
	if !keys[st.Key] {
		t.Fatalf("own key %s not among members", st.Key)
	}

	// Write errors.
	open := publishBody(protocol.KindIssueOpen, protocol.TopicIndex, map[string]any{"slug": "privacy", "title": "Privacy", "summary": "Cross-border data."})
	anon.wantErr("POST", "/records", open, 401, api.CodeUnauthorized, "")
	wrong.wantErr("POST", "/records", open, 401, api.CodeUnauthorized, "")
	c.wantErr("POST", "/records", `{"kind": "issue.open",`, 400, api.CodeBadRequest, "")
	c.wantErr("POST", "/records", `{"kind": "issue.open", "topic": "index", "body": {}, "extra": 1}`, 400, api.CodeBadRequest, "")
	c.wantErr("POST", "/records", publishBody("no.such.kind", "index", map[string]any{}), 400, api.CodeUnknownKind, "unknown-kind")
	c.wantErr("POST", "/records", publishBody(protocol.KindIssueOpen, "index", map[string]any{"slug": "x", "nope": 1}), 400, api.CodeBadRequest, "")
	c.wantErr("POST", "/records", publishBody(protocol.KindIssueOpen, "index", map[string]any{"slug": "Not A Slug", "title": "t"}), 422, api.CodeRejected, "bad-body")
	c.wantErr("POST", "/records", publishBody(protocol.KindIssueOpen, "issue/privacy", map[string]any{"slug": "privacy", "title": "t"}), 422, api.CodeRejected, "wrong-topic")
	c.wantErr("POST", "/records", publishBody(protocol.KindStatement, "issue/privacy", map[string]any{"title": "t", "text": "x"},
		"bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"), 422, api.CodeRejected, "missing-deps")
	c.wantErr("GET", "/nope", "", 404, api.CodeNotFound, "")
	c.wantErr("POST", "/status", "", 405, api.CodeMethodNotAllowed, "")
	c.wantErr("GET", "/records", "", 405, api.CodeMethodNotAllowed, "")

	// Open an issue and follow it.
	var rec api.RecordView
	c.json("POST", "/records", open, 201, &rec)
	if rec.Kind != protocol.KindIssueOpen || rec.Topic != "index" || rec.Author != st.Key || rec.Seq != 1 || rec.Meta == nil || rec.Meta.Arrival == 0 {
		t.Fatalf("published: %+v", rec)
	}
	if b := rec.Body.(map[string]any); b["slug"] != "privacy" || b["title"] != "Privacy" {
		t.Fatalf("body: %+v", rec.Body)
	}
	var issues struct{ Issues []api.IssueView }
	c.json("GET", "/issues", "", 200, &issues)
	if len(issues.Issues) != 1 || issues.Issues[0].Slug != "privacy" || issues.Issues[0].Open != rec.CID {
		t.Fatalf("issues: %+v", issues)
	}
	anon.wantErr("POST", "/issues/privacy/follow", "", 401, api.CodeUnauthorized, "")
	c.wantErr("POST", "/issues/Bad%20Slug/follow", "", 400, api.CodeBadRequest, "")
	c.json("POST", "/issues/privacy/follow", "", 200, nil)
	c.json("GET", "/issues", "", 200, &issues)
	if !issues.Issues[0].Following {
		t.Fatalf("not following after follow: %+v", issues)
	}
	anon.wantErr("DELETE", "/issues/privacy/follow", "", 401, api.CodeUnauthorized, "")
	c.wantErr("DELETE", "/issues/Bad%20Slug/follow", "", 400, api.CodeBadRequest, "")
	var left map[string]any
	c.json("DELETE", "/issues/privacy/follow", "", 200, &left)
	c.json("GET", "/issues", "", 200, &issues)
	if left["following"] != false || issues.Issues[0].Following {
		t.Fatalf("following after unfollow: %v, %+v", left, issues)
	}
	c.json("POST", "/issues/privacy/follow", "", 200, nil) // and again
	c.json("GET", "/issues", "", 200, &issues)
	if !issues.Issues[0].Following {
		t.Fatalf("not following after a second follow: %+v", issues)
	}

	// A process.
	b64 := func(h string) string { b, _ := hex.DecodeString(h); return base64.StdEncoding.EncodeToString(b) }
	var convenors []string
	for _, m := range members.Members {
		convenors = append(convenors, b64(m.Key))
	}
	day := int64(24 * 3600 * 1000)
	t0 := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	charter := map[string]any{
		"title": "Baseline", "aim": "A baseline.", "purpose": "Agree.", "scope": []string{"transfers"},
		"modalities": "Online.", "significance": "High.", "convenors": convenors, "background": []any{},
		"phases": []map[string]any{
			{"stage": "scoping", "start": t0, "end": t0 + 30*day},
			{"stage": "consultation", "start": t0 + 30*day, "end": t0 + 90*day},
			{"stage": "decision", "start": t0 + 90*day, "end": t0 + 120*day},
			{"stage": "implementation", "start": t0 + 120*day, "end": t0 + 365*day},
		},
		"minNoticeSeconds": 14 * 24 * 3600, "windowSeconds": 30 * 24 * 3600,
		"rule": map[string]any{"name": "concurrent-majority", "threshold": 0, "group": ""}, "mandate": nil,
	}
	var ch api.RecordView
	c.json("POST", "/records", publishBody(protocol.KindCharter, "issue/privacy", charter), 201, &ch)
	var procs struct {
		Issue     string
		Processes []api.ProcessView
	}
	c.json("GET", "/issues/privacy/processes", "", 200, &procs)
	if len(procs.Processes) != 1 || procs.Processes[0].CID != ch.CID || procs.Processes[0].Stage != "scoping" {
		t.Fatalf("processes: %+v", procs)
	}
	c.wantErr("GET", "/issues/unknown/processes", "", 404, api.CodeNotFound, "")
	c.wantErr("GET", "/issues/Bad%20Slug/processes", "", 400, api.CodeBadRequest, "")
	var pv api.ProcessView
	c.json("GET", "/processes/"+ch.CID, "", 200, &pv)
	if pv.Title != "Baseline" || pv.Topic != "issue/privacy" || pv.Charter == nil {
		t.Fatalf("process: %+v", pv)
	}
	c.wantErr("GET", "/processes/"+rec.CID, "", 404, api.CodeNotFound, "")
	c.wantErr("GET", "/processes/nonsense", "", 400, api.CodeBadRequest, "")

	// A notice (valid in the scoping stage), published with its process
	// added to deps by the API.
	notice := map[string]any{"process": map[string]string{"/": ch.CID}, "subject": "consultation",
		"date": t0 + 30*day, "text": "Consultation opens."}
	var pr api.RecordView
	c.json("POST", "/records", publishBody(protocol.KindNotice, "issue/privacy", notice), 201, &pr)
	// (Without main's fix to Node.Publish, a dep that is also prev is dropped.)
	if !strings.Contains(strings.Join(append(pr.Deps, pr.Prev), " "), ch.CID) {
		t.Fatalf("notice deps %v and prev %s lack the charter", pr.Deps, pr.Prev)
	}

	status, b, hdr := c.do("GET", "/processes/"+ch.CID+"/audit", "")
	var audit map[string]any
	if status != 200 || hdr.Get("Content-Type") != "application/json" || json.Unmarshal(b, &audit) != nil || audit["process"] != ch.CID {
		t.Fatalf("audit: %d %s", status, b)
	}
	status, b, _ = c.do("GET", "/processes/"+ch.CID+"/audit?format=text", "")
	if status != 200 || !strings.Contains(string(b), "Baseline") {
		t.Fatalf("audit text: %d %s", status, b)
	}
	c.wantErr("GET", "/processes/"+ch.CID+"/audit?format=xml", "", 400, api.CodeBadRequest, "")

	// Records.
	var got api.RecordView
	c.json("GET", "/records/"+pr.CID, "", 200, &got)
	if got.CID != pr.CID || got.Kind != protocol.KindNotice || got.Time == "" || got.Meta == nil {
		t.Fatalf("record: %+v", got)
	}
	if p := got.Body.(map[string]any)["process"].(map[string]any)["/"]; p != ch.CID {
		t.Fatalf("body link: %v", p)
	}
	for _, h := range [][]string{{"/records/" + pr.CID + "?format=raw"}, {"/records/" + pr.CID, "Accept", api.MediaDagCBOR}} {
		status, raw, hdr := c.do("GET", h[0], "", h[1:]...)
		if status != 200 || hdr.Get("Content-Type") != api.MediaDagCBOR {
			t.Fatalf("raw %v: %d %s", h, status, hdr)
		}
		if protocol.RecordCID(raw).String() != pr.CID {
			t.Fatalf("raw bytes do not hash to the CID")
		}
	}
	c.wantErr("GET", "/records/"+cid.NewCidV1(cid.DagCBOR, protocol.RecordCID([]byte("x")).Hash()).String(), "", 404, api.CodeNotFound, "")
	c.wantErr("GET", "/records/nonsense", "", 400, api.CodeBadRequest, "")

	// Topic paging.
	var page api.RecordPage
	c.json("GET", "/topics/issue/privacy/records?limit=1", "", 200, &page)
	if len(page.Records) != 1 || page.Records[0].CID != ch.CID {
		t.Fatalf("page 1: %+v", page)
	}
	c.json("GET", "/topics/issue/privacy/records?limit=1&after="+itoa(page.Next), "", 200, &page)
	if len(page.Records) != 1 || page.Records[0].CID != pr.CID {
		t.Fatalf("page 2: %+v", page)
	}
	next := page.Next
	c.json("GET", "/topics/issue/privacy/records?after="+itoa(next), "", 200, &page)
	if len(page.Records) != 0 || page.Next != next {
		t.Fatalf("page 3: %+v", page)
	}
	c.wantErr("GET", "/topics/issue/privacy/records?limit=0", "", 400, api.CodeBadRequest, "")
	c.wantErr("GET", "/topics/issue/privacy/records?after=x", "", 400, api.CodeBadRequest, "")
	c.wantErr("GET", "/topics/Bad/records", "", 400, api.CodeBadRequest, "")

	// The observer: reads work, writes do not exist.
	obs := serve(t, net.Nodes[2])
	oc := client{t: t, base: obs.URL + api.Prefix, token: token}
	var ost api.StatusView
	oc.json("GET", "/status", "", 200, &ost)
	if ost.Role != "observer" || ost.Key != "" {
		t.Fatalf("observer status: %+v", ost)
	}
	e := oc.wantErr("POST", "/records", open, 403, api.CodeObserver, "observer")
	if !strings.Contains(e.Message, "observer") {
		t.Fatalf("observer message: %q", e.Message)
	}
	oc.wantErr("POST", "/issues/privacy/follow", "", 403, api.CodeObserver, "observer")
	oc.wantErr("GET", "/records", "", 404, api.CodeNotFound, "")
	if err := net.Nodes[2].WaitRecords(ctx, mustCID(t, rec.CID)); err != nil {
		t.Fatal(err)
	}
	oc.json("GET", "/records/"+rec.CID, "", 200, &got)
}

func itoa(v uint64) string { b, _ := json.Marshal(v); return string(b) }

func mustCID(t *testing.T, s string) cid.Cid {
	t.Helper()
	c, err := cid.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestServeClose: Serve answers on a real listener, and Close ends an open
// event stream and makes Serve return nil.
func TestServeClose(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 1)
	srv, err := api.New(net.Nodes[0], api.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	l, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l) }()
	base := "http://" + l.Addr().String()
	s := openStream(t, ctx, base+api.Prefix+"/events", "")
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		t.Fatal("event stream still open after Close")
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

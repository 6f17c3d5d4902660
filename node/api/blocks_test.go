package api_test

import (
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-net/clearinghouse/node/api"
	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// TestBlockRoutes: a member's operator blocks the observer that relayed a
// public comment, by peer id, through the API: the comment leaves this
// node's issue and process pages and its record page (it stays in the
// store and in the JSON topic list), the list shows the block, and an
// unblock brings the comment back. Bad keys, bad bodies, the node's own
// key and a missing token are refused; the observer's server has no
// write route for blocks, only the list.
func TestBlockRoutes(t *testing.T) {
	ctx := testContext(t)
	net, d, clock := demoNet(t)
	const obs = 5
	clock.Set(d.Now.Add(time.Minute))
	const text = "A comment relayed by the observer."
	c, err := net.Nodes[obs].PublishComment(ctx, d.Slug, &protocol.PublicComment{
		Process: ptr(protocol.LinkTo(d.Process)), Person: make([]byte, 16), Text: text})
	if err != nil {
		t.Fatal(err)
	}
	if err := net.Nodes[0].WaitRecords(ctx, c.CID); err != nil {
		t.Fatal(err)
	}
	ts := serve(t, net.Nodes[0], api.WithToken(token), api.WithWebClock(clock.Now))
	cl := client{t: t, base: ts.URL, token: token}
	anon := client{t: t, base: ts.URL}
	page := func(path string) (int, string) {
		t.Helper()
		status, b, _ := anon.do("GET", path, "")
		return status, string(b)
	}
	shown := func() bool {
		t.Helper()
		_, issue := page("/issues/" + d.Slug)
		_, proc := page("/processes/" + d.Process.String())
		status, _ := page("/records/" + c.CID.String())
		if strings.Contains(issue, text) != strings.Contains(proc, text) || strings.Contains(issue, text) != (status == 200) {
			t.Fatalf("pages disagree: issue page %v, process page %v, record page %d",
				strings.Contains(issue, text), strings.Contains(proc, text), status)
		}
		return status == 200
	}
	if !shown() {
		t.Fatal("the comment is not shown before the block")
	}

	var list []api.BlockView
	cl.json("GET", "/api/v1/public/blocks", "", 200, &list)
	if len(list) != 0 {
		t.Fatalf("blocks at start: %+v", list)
	}
	id := net.Nodes[obs].ID().String()
	path := "/api/v1/public/blocks/" + id
	anon.wantErr("PUT", path, "", 401, api.CodeUnauthorized, "")
	cl.wantErr("PUT", "/api/v1/public/blocks/not-a-key", "", 400, api.CodeBadRequest, "")
	cl.wantErr("PUT", path, `{"reason":"spam","extra":1}`, 400, api.CodeBadRequest, "")
	cl.wantErr("PUT", path, `{"reason":"a\u0007b"}`, 400, api.CodeBadRequest, "")
	cl.wantErr("PUT", "/api/v1/public/blocks/"+net.Nodes[0].ID().String(), "", 409, api.CodeConflict, "")

	var b api.BlockView
	cl.json("PUT", path, `{"reason":"relays spam"}`, 200, &b)
	key := hex.EncodeToString(net.PublicKey(obs))
	if b.Key != key || b.Peer != id || b.Reason != "relays spam" || b.Config || b.Since != clock.Now().UTC().Format(api.TimeLayout) {
		t.Fatalf("PUT = %+v", b)
	}
	if shown() {
		t.Fatal("the comment of a blocked relay is still shown")
	}
	cl.json("GET", "/api/v1/public/blocks", "", 200, &list)
	if len(list) != 1 || list[0] != b {
		t.Fatalf("blocks = %+v, want [%+v]", list, b)
	}
	// The data API still lists it: the node holds it.
	status, body, _ := anon.do("GET", "/api/v1/topics/"+protocol.PublicTopic(d.Slug)+"/records", "")
	if status != 200 || !strings.Contains(string(body), c.CID.String()) {
		t.Fatalf("topic list: %d, comment listed %v", status, strings.Contains(string(body), c.CID.String()))
	}

	// Unblock by hex key.
	cl.json("DELETE", "/api/v1/public/blocks/"+key, "", 200, nil)
	if !shown() {
		t.Fatal("the comment is not shown after the unblock")
	}
	cl.json("GET", "/api/v1/public/blocks", "", 200, &list)
	if len(list) != 0 {
		t.Fatalf("blocks after the unblock: %+v", list)
	}

	// The observer serves the list, and no write.
	ots := serve(t, net.Nodes[obs])
	ocl := client{t: t, base: ots.URL, token: token}
	ocl.json("GET", "/api/v1/public/blocks", "", 200, &list)
	ocl.wantErr("PUT", path, "", http.StatusForbidden, api.CodeObserver, "observer")
	ocl.wantErr("DELETE", path, "", http.StatusForbidden, api.CodeObserver, "observer")
}

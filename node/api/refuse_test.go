package api_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/clearinghouse-net/clearinghouse/node/api"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// TestRefusesInvisibleState: typos that the protocol would accept but that
// leave state no other node sees are refused by this node's API with a
// message that says what to do: a charter on an issue that is not open, a
// charter without an aim, following an issue that is not open (unless
// forced).
func TestRefusesInvisibleState(t *testing.T) {
	net := testnet.New(t, 2)
	ts := serve(t, net.Nodes[0], api.WithToken(token))
	c := client{t: t, base: ts.URL + api.Prefix, token: token}
	c.json("POST", "/records", publishBody(protocol.KindIssueOpen, protocol.TopicIndex,
		map[string]any{"slug": "privacy", "title": "Privacy", "summary": ""}), 201, nil)

	charter := func(aim string) map[string]any {
		keys := []string{}
		for i := range net.Keys {
			keys = append(keys, base64.StdEncoding.EncodeToString(net.PublicKey(i)))
		}
		return map[string]any{"title": "T", "aim": aim, "purpose": "p", "scope": []string{}, "modalities": "m",
			"significance": "s", "convenors": keys, "background": []any{}, "phases": []any{},
			"minNoticeSeconds": 0, "windowSeconds": 0, "rule": map[string]any{"name": "concurrent-majorities", "threshold": 1, "group": ""}, "mandate": nil}
	}
	e := c.wantErr("POST", "/records", publishBody(protocol.KindCharter, "issue/privacyy", charter("An aim")), 422, api.CodeRefused, "")
	if !strings.Contains(e.Message, `issue "privacyy" is not open`) || !strings.Contains(e.Message, "issue open privacyy") {
		t.Errorf("charter on an issue not open: %q", e.Message)
	}
	e = c.wantErr("POST", "/records", publishBody(protocol.KindCharter, "issue/privacy", charter(" ")), 422, api.CodeRefused, "")
	if !strings.Contains(e.Message, "no aim") {
		t.Errorf("charter without aim: %q", e.Message)
	}

	e = c.wantErr("POST", "/issues/nosuchissue/follow", "", 404, api.CodeNotFound, "")
	if !strings.Contains(e.Message, `issue "nosuchissue" is not open`) || !strings.Contains(e.Message, "force=true") {
		t.Errorf("follow of an issue not open: %q", e.Message)
	}
	c.wantErr("POST", "/issues/nosuchissue/follow?force=maybe", "", 400, api.CodeBadRequest, "")
	var v map[string]any
	c.json("POST", "/issues/nosuchissue/follow?force=true", "", 200, &v)
	if v["following"] != true {
		t.Fatalf("forced follow: %v", v)
	}
	c.json("POST", "/issues/privacy/follow", "", 200, nil)
}

package cli

import (
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/clearinghouse-net/clearinghouse/node/api"
)

// TestPublicBlockCommands: "public block", "blocks" and "unblock" against a
// member's API, by peer id and by hex key; a malformed key is a usage
// error (exit 2) and nothing is sent; the node's own key is refused.
func TestPublicBlockCommands(t *testing.T) {
	e := newAPIEnv(t)
	other := e.net.Nodes[1].ID().String()

	wantContains(t, e.run(t, "public", "blocks").mustSucceed(t).stdout, "no relaying key is blocked")
	wantContains(t, e.run(t, "public", "block", other, "--reason", "relays spam").mustSucceed(t).stdout,
		"blocked "+other+" (key "+e.keys[1]+")")
	wantContains(t, e.run(t, "public", "blocks").mustSucceed(t).stdout, "PEER ID", other, "operator", "relays spam")
	var list []api.BlockView
	if err := json.Unmarshal([]byte(e.run(t, "public", "blocks", "--json").mustSucceed(t).stdout), &list); err != nil ||
		len(list) != 1 || list[0].Key != e.keys[1] || list[0].Reason != "relays spam" {
		t.Fatalf("blocks --json: %v %+v", err, list)
	}
	if !e.net.Nodes[0].Blocked(mustHex(t, e.keys[1])) {
		t.Fatal("the node does not block the key")
	}
	wantContains(t, e.run(t, "public", "unblock", e.keys[1]).mustSucceed(t).stdout, "unblocked "+e.keys[1])
	if e.net.Nodes[0].Blocked(mustHex(t, e.keys[1])) {
		t.Fatal("the node still blocks the key")
	}

	if r := e.run(t, "public", "block", "nonsense"); r.code != 2 || !strings.Contains(r.stderr, "neither an ed25519 key") {
		t.Fatalf("block of a malformed key: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := e.run(t, "public", "block", e.keys[0]); r.code != 1 || !strings.Contains(r.stderr, "own key") {
		t.Fatalf("block of the node's own key: exit %d, stderr %q", r.code, r.stderr)
	}
	wantContains(t, e.run(t, "public", "--help").mustSucceed(t).stdout, "public.blocked", "block", "unblock", "blocks")
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

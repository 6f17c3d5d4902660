package cli

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/node/api"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// TestClientMemberAdmission: an organisation joins a running federation
// through the CLI and the HTTP API. Its node (not a founder) applies with
// `member apply`; three members of three groups endorse with `member
// endorse`, each having seen the endorsements before it (the second one
// admits it under the default rules, the third changes nothing but must
// be accepted); every node then counts it as a member, and its records are
// accepted everywhere. Before the membership engine kept an endorsement's
// own links, the second endorsement was refused with 422 bad-links.
func TestClientMemberAdmission(t *testing.T) {
	e := newJoinEnv(t)
	nodes, key := e.nodes, e.key
	cli := func(i int, args ...string) string { t.Helper(); return e.cliT(t, i, args...) }
	waitAll := func(c string) { t.Helper(); e.waitAllT(t, c) }

	app := lastCID(t, cli(3, "member", "apply", "--org", "Example NGO", "--group", "civil-society", "--region", "africa",
		"--contact", "ops@example.org", "--statement", "We run community networks."))
	waitAll(app)
	pub, _ := key.GetPublic().Raw()
	for i := range 3 {
		out := cli(i, "member", "endorse", app)
		wantContains(t, out, protocol.KindMemberEndorse)
		waitAll(lastCID(t, out))
	}
	for i, nd := range nodes {
		m, ok := nd.MemberSet().Lookup(ed25519.PublicKey(pub))
		if !ok || m.Org != "Example NGO" || m.Group != "civil-society" {
			t.Fatalf("node %d: the newcomer is not a member: %+v", i, m)
		}
	}
	// The new member publishes, and every node accepts it.
	waitAll(lastCID(t, cli(3, "issue", "open", "privacy", "--title", "Privacy")))
	if out := cli(0, "member", "list"); !strings.Contains(out, "Example NGO") {
		t.Fatalf("member list lacks the new member:\n%s", out)
	}

	// The other membership commands. Two suspension votes of two groups
	// remove the new member; a recovery and a revocation vote are each
	// one vote (accepted, no effect yet); a rotation and a withdrawal take
	// effect at once.
	hexKey := func(k crypto.PrivKey) string { raw, _ := k.GetPublic().Raw(); return fmt.Sprintf("%x", raw) }
	for i := range 2 {
		waitAll(lastCID(t, cli(i, "member", "suspend", fmt.Sprintf("%x", pub), "--reason", "spam")))
	}
	for i, nd := range nodes {
		if nd.MemberSet().IsMember(pub) {
			t.Fatalf("node %d: still a member after two suspension votes", i)
		}
	}
	fresh := func() crypto.PrivKey {
		k, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	node2 := hexKey(e.founderKey(2))
	waitAll(lastCID(t, cli(0, "member", "recover", node2, "--replacement", hexKey(fresh()), "--reason", "key lost")))
	waitAll(lastCID(t, cli(1, "member", "revoke", node2, "--reason", "key stolen")))
	waitAll(lastCID(t, cli(2, "member", "withdraw", "--statement", "We leave.")))
	newKey := fresh()
	waitAll(lastCID(t, cli(0, "member", "rotate", "--new-key", hexKey(newKey))))
	set := nodes[1].MemberSet()
	if set.IsMember(e.founderPub(2)) || set.IsMember(e.founderPub(0)) {
		t.Fatal("the withdrawn member or the rotated key is still a member key")
	}
	newPub, _ := newKey.GetPublic().Raw()
	if m, ok := set.Lookup(newPub); !ok || m.Group != "government" {
		t.Fatalf("the rotated key is not node 0's member key: %+v", m)
	}
	// Bad keys are usage errors, before anything is sent.
	if r := runCLI(t, "--data-dir", e.dir, "--api", e.urls[0], "--token", testToken, "member", "suspend", "nonsense", "--reason", "x"); r.code == 0 {
		t.Fatal("member suspend accepted a malformed key")
	}
}

// joinEnv is a running federation of three founders (government,
// private-sector, civil-society) and a fourth node whose key is no member,
// each with its API behind a test server.
type joinEnv struct {
	ctx   context.Context
	net   *testnet.Network
	nodes []*node.Node // the founders, then the newcomer (index 3)
	urls  []string
	key   crypto.PrivKey // the newcomer's
	dir   string
}

func newJoinEnv(t *testing.T) *joinEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	t.Cleanup(cancel)
	net := testnet.New(t, 3, testnet.WithFollow("privacy"))
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	newcomer, err := node.New(ctx, node.WithIdentity(key), node.WithGenesis(net.Genesis), node.WithInMemory(),
		node.WithListenAddrs([]string{"/ip4/127.0.0.1/tcp/0"}), node.WithFollow([]string{"privacy"}),
		node.WithSyncInterval(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = newcomer.Close() })
	e := &joinEnv{ctx: ctx, net: net, nodes: append(append([]*node.Node{}, net.Nodes...), newcomer), key: key, dir: t.TempDir()}
	for _, nd := range net.Nodes {
		if err := newcomer.Connect(ctx, nd.AddrInfo()); err != nil {
			t.Fatal(err)
		}
	}
	if err := newcomer.WaitTopicPeers(ctx, protocol.TopicMembers, 3); err != nil {
		t.Fatal(err)
	}
	for _, nd := range e.nodes {
		srv, err := api.New(nd, api.WithToken(testToken))
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv.Handler())
		t.Cleanup(func() { _ = srv.Close(); ts.Close() })
		e.urls = append(e.urls, ts.URL)
	}
	return e
}

// founderKey returns founder i's identity key.
func (e *joinEnv) founderKey(i int) crypto.PrivKey { return e.net.Keys[i] }

// founderPub returns founder i's public signing key.
func (e *joinEnv) founderPub(i int) []byte { return e.net.PublicKey(i) }

// cliT runs a client command against node i's API and returns its output.
func (e *joinEnv) cliT(t *testing.T, i int, args ...string) string {
	t.Helper()
	return runCLI(t, append([]string{"--data-dir", e.dir, "--api", e.urls[i], "--token", testToken}, args...)...).mustSucceed(t).stdout
}

// waitAllT waits until every node holds the record c.
func (e *joinEnv) waitAllT(t *testing.T, c string) {
	t.Helper()
	id, err := cid.Decode(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, nd := range e.nodes {
		if err := nd.WaitRecords(e.ctx, id); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOperationsJoinExample runs the worked example of docs/operations.md
// (between the join markers) as written: each `clearinghouse --data-dir
// DIR ...` line against the node that DIR names (applicant: the newcomer;
// member-gov, member-private: founders of those groups), `VAR=$(... | awk
// '{print $2}')` keeping the second word of the output, "$VAR" expanded.
// After the block the applicant is a member on every node and its issue
// reached every node.
func TestOperationsJoinExample(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "<!-- join:begin -->\n```sh\n")
	if !ok {
		t.Fatal("docs/operations.md has no join example")
	}
	block, _, ok := strings.Cut(rest, "```\n<!-- join:end -->")
	if !ok {
		t.Fatal("the join example is not closed")
	}
	e := newJoinEnv(t)
	dirs := map[string]int{"/srv/ch/member-gov": 0, "/srv/ch/member-private": 1, "/srv/ch/applicant": 3}
	vars := map[string]string{}
	commands := 0
	for _, line := range strings.Split(strings.ReplaceAll(block, "\\\n", " "), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		assign := ""
		if name, cmd, ok := strings.Cut(line, "=$("); ok {
			body, ok := strings.CutSuffix(cmd, " | awk '{print $2}')")
			if !ok {
				t.Fatalf("unsupported line: %s", line)
			}
			assign, line = name, body
		}
		words, err := shellWords(line, vars)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if len(words) < 3 || words[0] != "clearinghouse" || words[1] != "--data-dir" {
			t.Fatalf("unsupported line: %s", line)
		}
		i, ok := dirs[words[2]]
		if !ok {
			t.Fatalf("unknown data directory %s", words[2])
		}
		out := e.cliT(t, i, words[3:]...)
		commands++
		if words[3] != "sync" && !slices.Contains(words, "list") && cidPattern.MatchString(out) {
			e.waitAllT(t, lastCID(t, out)) // what the command published has spread
		}
		if assign != "" {
			f := strings.Fields(out)
			if len(f) < 2 {
				t.Fatalf("%s: no second word in %q", line, out)
			}
			vars[assign] = f[1]
		}
	}
	if commands < 5 {
		t.Fatalf("only %d commands in the example", commands)
	}
	pub, _ := e.key.GetPublic().Raw()
	for i, nd := range e.nodes {
		if !nd.MemberSet().IsMember(pub) {
			t.Fatalf("node %d: the applicant is not a member after the example", i)
		}
		if !slicesContainsIssue(nd, "water") {
			t.Fatalf("node %d: the new member's issue is missing", i)
		}
	}
}

// slicesContainsIssue reports whether nd lists the open issue slug.
func slicesContainsIssue(nd *node.Node, slug string) bool {
	for _, is := range nd.Issues() {
		if is.Slug == slug {
			return true
		}
	}
	return false
}

// shellWords splits a command line as sh would for the example's subset:
// words separated by spaces, "double quotes" grouping, $VAR and "$VAR"
// expanded from vars.
func shellWords(line string, vars map[string]string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord, quoted := false, false
	expand := func(i int) int {
		j := i + 1
		for j < len(line) && (line[j] == '_' || line[j] >= 'A' && line[j] <= 'Z' || line[j] >= 'a' && line[j] <= 'z' || line[j] >= '0' && line[j] <= '9') {
			j++
		}
		cur.WriteString(vars[line[i+1:j]])
		return j
	}
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == '"':
			quoted, inWord = !quoted, true
			i++
		case c == '$':
			inWord = true
			i = expand(i)
		case c == ' ' && !quoted:
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
			i++
		default:
			cur.WriteByte(c)
			inWord = true
			i++
		}
	}
	if quoted {
		return nil, fmt.Errorf("unclosed quote")
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}

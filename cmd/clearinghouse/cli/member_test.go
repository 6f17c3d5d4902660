package cli

import (
	"context"
	"crypto/ed25519"
	"net/http/httptest"
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
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
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
	nodes := append(append([]*node.Node{}, net.Nodes...), newcomer)
	for _, nd := range net.Nodes {
		if err := newcomer.Connect(ctx, nd.AddrInfo()); err != nil {
			t.Fatal(err)
		}
	}
	if err := newcomer.WaitTopicPeers(ctx, protocol.TopicMembers, 3); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	urls := make([]string, len(nodes))
	for i, nd := range nodes {
		srv, err := api.New(nd, api.WithToken(testToken))
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv.Handler())
		t.Cleanup(func() { _ = srv.Close(); ts.Close() })
		urls[i] = ts.URL
	}
	cli := func(i int, args ...string) string {
		t.Helper()
		return runCLI(t, append([]string{"--data-dir", dir, "--api", urls[i], "--token", testToken}, args...)...).mustSucceed(t).stdout
	}
	waitAll := func(c string) {
		t.Helper()
		id, err := cid.Decode(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, nd := range nodes {
			if err := nd.WaitRecords(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
	}

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
}

package api_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/node/api"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// TestStatusNet: GET /status says the node's reachability, its dialable
// addresses and, for each peer, whether the connection is direct.
func TestStatusNet(t *testing.T) {
	net := testnet.New(t, 2)
	c := client{t: t, base: serve(t, net.Nodes[0], api.WithToken("t0ken")).URL + api.Prefix}
	var st api.StatusView
	c.json(http.MethodGet, "/status", "", http.StatusOK, &st)
	if st.Net.Reachability != node.ReachabilityUnknown || len(st.Net.Relays) != 0 {
		t.Errorf("net %+v, want reachability unknown and no relays", st.Net)
	}
	if len(st.Net.Addrs) == 0 || len(st.Net.Peers) != 1 {
		t.Fatalf("net %+v, want addresses and one peer", st.Net)
	}
	p := st.Net.Peers[0]
	if p.ID != net.Nodes[1].ID().String() || p.Conn != "direct" || !p.Member || p.Addr == "" {
		t.Errorf("peer %+v, want node 1, direct, member, with its address", p)
	}
}

// TestBackupRoute: POST /backup writes a backup where asked and refuses a
// relative path, a directory that is not empty, and a request without the
// token.
func TestBackupRoute(t *testing.T) {
	const token = "t0ken"
	net := testnet.New(t, 1, testnet.WithDataDir(t.TempDir()))
	base := serve(t, net.Nodes[0], api.WithToken(token)).URL + api.Prefix
	c := client{t: t, base: base, token: token}
	dir := filepath.Join(t.TempDir(), "backup")
	var info node.BackupInfo
	c.json(http.MethodPost, "/backup", fmt.Sprintf(`{"dir":%q}`, dir), http.StatusOK, &info)
	if info.Dir != dir || info.Network != net.Nodes[0].NetworkID().String() {
		t.Errorf("backup %+v", info)
	}
	if _, err := node.ReadBackup(dir); err != nil {
		t.Fatal(err)
	}
	c.wantErr(http.MethodPost, "/backup", fmt.Sprintf(`{"dir":%q}`, dir), http.StatusConflict, api.CodeConflict, "")
	c.wantErr(http.MethodPost, "/backup", `{"dir":"relative/path"}`, http.StatusBadRequest, api.CodeBadRequest, "")
	c.wantErr(http.MethodPost, "/backup", `{"out":"/x"}`, http.StatusBadRequest, api.CodeBadRequest, "")
	noToken := client{t: t, base: base}
	noToken.wantErr(http.MethodPost, "/backup", `{"dir":"/tmp/x"}`, http.StatusUnauthorized, api.CodeUnauthorized, "")
}

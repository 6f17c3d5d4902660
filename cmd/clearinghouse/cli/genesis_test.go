package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/clearinghouse-net/clearinghouse/config"
	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// founder is a data directory made by init, standing for one founder.
type founder struct {
	dir, id, org, group, region string
}

// newFounders inits n data directories with distinct organisations.
func newFounders(t *testing.T, n int) []founder {
	t.Helper()
	out := make([]founder, n)
	for i := range out {
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("founder%d", i+1))
		id := field(t, runCLI(t, "--data-dir", dir, "init").mustSucceed(t).stdout, "peer id")
		out[i] = founder{dir, id, fmt.Sprintf("Org %c", 'A'+i),
			protocol.DefaultGroups[i%len(protocol.DefaultGroups)], protocol.DefaultRegions[i%len(protocol.DefaultRegions)]}
	}
	return out
}

// founderArgs returns --founder flags for fs.
func founderArgs(fs []founder) []string {
	var args []string
	for _, f := range fs {
		args = append(args, "--founder", strings.Join([]string{f.id, f.org, f.group, f.region}, ","))
	}
	return args
}

// fails runs the command line and checks that it exits 1 with each of
// wants in its stderr.
func fails(t *testing.T, wants []string, args ...string) result {
	t.Helper()
	return failsWith(t, exitError, wants, args...)
}

// failsWith is fails with the exit status code.
func failsWith(t *testing.T, code int, wants []string, args ...string) result {
	t.Helper()
	r := runCLI(t, args...)
	if r.code != code {
		t.Fatalf("%v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, r.code, code, r.stdout, r.stderr)
	}
	for _, w := range wants {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("%v: stderr lacks %q:\n%s", args, w, r.stderr)
		}
	}
	return r
}

func TestGenesisWorkflow(t *testing.T) {
	fs := newFounders(t, 5)
	draft := filepath.Join(t.TempDir(), "genesis.cbor")
	args := append([]string{"genesis", "draft", "--name", "Test federation", "--description", "for tests",
		"--admit-endorsements", "3", "--admit-groups", "2", "--admit-regions", "1",
		"--decision-min-endorsements", "1", "--min-notice", "72h", "--out", draft}, founderArgs(fs)...)
	r := runCLI(t, args...).mustSucceed(t)
	if got := field(t, r.stdout, "founders"); got != "5, signed: 0, missing: 5" {
		t.Errorf("draft founders line %q", got)
	}
	if got := field(t, r.stdout, "minimum notice"); got != "3d" {
		t.Errorf("minimum notice %q", got)
	}

	// Four founders sign, each in place, as the file goes round.
	for i, f := range fs[:4] {
		r := runCLI(t, "--data-dir", f.dir, "genesis", "sign", draft).mustSucceed(t)
		want := fmt.Sprintf("5, signed: %d, missing: %d", i+1, 4-i)
		if got := field(t, r.stdout, "founders"); got != want {
			t.Errorf("after %s signed: founders %q, want %q", f.org, got, want)
		}
		if !strings.Contains(r.stdout, "signed yes  "+f.org+" ") {
			t.Errorf("sign output does not show %s as signed:\n%s", f.org, r.stdout)
		}
	}
	last := fs[4]
	missing := []string{"missing 1 of 5", last.org}

	r = fails(t, append(missing, draft), "genesis", "verify", draft)
	if !strings.Contains(r.stdout, "signed no   "+last.org+" ") || !strings.Contains(r.stdout, last.id) {
		t.Errorf("verify does not show %s (%s) as missing:\n%s", last.org, last.id, r.stdout)
	}
	if got := field(t, r.stdout, "network id"); !strings.HasPrefix(got, "none") {
		t.Errorf("incomplete genesis shows network id %q", got)
	}
	joiner := filepath.Join(t.TempDir(), "joiner")
	fails(t, append(missing, "every founder"), "--data-dir", joiner, "init", "--genesis", draft)
	if _, err := os.Stat(joiner); err == nil {
		t.Error("init --genesis created the data directory for an incomplete genesis")
	}

	// The last founder signs a copy with --out; the draft is left as it was.
	signed := filepath.Join(t.TempDir(), "signed.cbor")
	before, _ := os.ReadFile(draft)
	r = runCLI(t, "--data-dir", last.dir, "genesis", "sign", draft, "--out", signed).mustSucceed(t)
	if after, _ := os.ReadFile(draft); !bytes.Equal(before, after) {
		t.Error("sign --out changed the draft")
	}
	id := field(t, r.stdout, "network id")

	r = runCLI(t, "genesis", "verify", signed).mustSucceed(t)
	if got := field(t, r.stdout, "network id"); got != id {
		t.Errorf("verify: network id %q, want %q", got, id)
	}
	if got := field(t, r.stdout, "name"); got != "Test federation" {
		t.Errorf("verify: name %q", got)
	}
	for _, f := range fs {
		if !strings.Contains(r.stdout, "signed yes  "+f.org+" ("+f.group+", "+f.region+") peer "+f.id) {
			t.Errorf("verify does not show %s as signed:\n%s", f.org, r.stdout)
		}
	}
	data, err := os.ReadFile(signed)
	if err != nil {
		t.Fatal(err)
	}
	g, err := protocol.DecodeGenesis(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Verify(); err != nil {
		t.Fatal(err)
	}
	if want, _ := g.NetworkID(); want.String() != id {
		t.Errorf("printed network id %s, genesis CID %s", id, want)
	}
	wantRules := protocol.Rules{AdmitEndorsements: 3, AdmitGroups: 2, AdmitRegions: 1, DecisionMinEndorsements: 1, MinNoticeSeconds: 72 * 3600}
	if g.Rules != wantRules || g.Description != "for tests" {
		t.Errorf("rules %+v description %q, want %+v", g.Rules, g.Description, wantRules)
	}

	// verify --json.
	r = runCLI(t, "genesis", "verify", "--json", signed).mustSucceed(t)
	var v genesisJSON
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("decode %s: %v", r.stdout, err)
	}
	if !v.Complete || v.NetworkID != id || len(v.Founders) != 5 || !v.Founders[4].Signed || v.Founders[4].PeerID != last.id {
		t.Errorf("verify --json = %+v", v)
	}

	// Every founder, and a newcomer, installs it.
	for _, dir := range []string{fs[0].dir, joiner} {
		r := runCLI(t, "--data-dir", dir, "init", "--genesis", signed).mustSucceed(t)
		if got := field(t, r.stdout, "network id"); got != id {
			t.Errorf("init --genesis: network id %q, want %q", got, id)
		}
		installed, err := os.ReadFile(config.DataDir{Path: dir}.GenesisPath())
		if err != nil || !bytes.Equal(installed, data) {
			t.Errorf("installed genesis differs from %s (err %v)", signed, err)
		}
	}
	if r := runCLI(t, "--data-dir", fs[0].dir, "init", "--genesis", signed).mustSucceed(t); !strings.Contains(r.stdout, "already installed") {
		t.Errorf("second init --genesis:\n%s", r.stdout)
	}
}

func TestGenesisSignByNonFounder(t *testing.T) {
	fs := newFounders(t, 3)
	draft := filepath.Join(t.TempDir(), "draft.cbor")
	runCLI(t, append([]string{"genesis", "draft", "--name", "N", "--out", draft}, founderArgs(fs[:2])...)...).mustSucceed(t)
	before, _ := os.ReadFile(draft)
	fails(t, []string{"is not a founder of " + draft, fs[2].id, fs[0].id, fs[1].id}, "--data-dir", fs[2].dir, "genesis", "sign", draft)
	if after, _ := os.ReadFile(draft); !bytes.Equal(before, after) {
		t.Error("a refused sign changed the draft")
	}
}

func TestGenesisMalformedFile(t *testing.T) {
	fs := newFounders(t, 1)
	bad := filepath.Join(t.TempDir(), "bad.cbor")
	if err := os.WriteFile(bad, []byte("not cbor at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := []string{bad + " is not a valid genesis file"}
	fails(t, want, "genesis", "verify", bad)
	fails(t, want, "--data-dir", fs[0].dir, "genesis", "sign", bad)
	fails(t, want, "--data-dir", fs[0].dir, "init", "--genesis", bad)
	missing := filepath.Join(t.TempDir(), "missing.cbor")
	fails(t, []string{missing, "no such file"}, "genesis", "verify", missing)
}

func TestInitGenesisRefusesAnother(t *testing.T) {
	fs := newFounders(t, 1)
	f := fs[0]
	dd := config.DataDir{Path: f.dir}
	// The node once ran without a genesis and founded a dev federation.
	key, err := config.LoadIdentity(dd.KeyPath())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := key.Raw()
	dev, err := protocol.DevGenesis(ed25519.PrivateKey(raw), "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	devData, _ := dev.Encode()
	if err := os.WriteFile(dd.GenesisPath(), devData, 0o644); err != nil {
		t.Fatal(err)
	}
	devID, _ := dev.NetworkID()

	g := filepath.Join(t.TempDir(), "g.cbor")
	runCLI(t, append([]string{"genesis", "draft", "--name", "Real", "--out", g}, founderArgs(fs)...)...).mustSucceed(t)
	r := runCLI(t, "--data-dir", f.dir, "genesis", "sign", g).mustSucceed(t)
	newID := field(t, r.stdout, "network id")
	fails(t, []string{"already holds the genesis of network " + devID.String(), "not of network " + newID, "dev federation", dd.StorePath()},
		"--data-dir", f.dir, "init", "--genesis", g)
	if got, _ := os.ReadFile(dd.GenesisPath()); !bytes.Equal(got, devData) {
		t.Error("init --genesis replaced the existing genesis")
	}
}

func TestGenesisDraftFoundersFileAndKeys(t *testing.T) {
	fs := newFounders(t, 2)
	pid, err := peer.Decode(fs[1].id)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := pid.ExtractPublicKey()
	raw, _ := pk.Raw()
	file := filepath.Join(t.TempDir(), "founders.toml")
	toml := fmt.Sprintf("[[founder]]\nkey = %q\norg = \"Example, Inc.\"\ngroup = \"private-sector\"\nregion = \"africa\"\ncontact = \"ops@example.org\"\n", fs[0].id)
	if err := os.WriteFile(file, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "d.cbor")
	runCLI(t, "genesis", "draft", "--name", "F", "--founders-file", file,
		"--founder", hex.EncodeToString(raw)+",Org B,civil-society,asia-pacific,a@b.example, c@d.example",
		"--out", out).mustSucceed(t)
	data, _ := os.ReadFile(out)
	g, err := protocol.DecodeGenesis(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Founders) != 2 || g.Founders[0].Org != "Example, Inc." || !bytes.Equal(g.Founders[1].Key, raw) ||
		g.Founders[1].Contact != "a@b.example, c@d.example" {
		t.Errorf("founders %+v", g.Founders)
	}
	if len(g.Sigs) != 0 {
		t.Errorf("draft has %d signatures", len(g.Sigs))
	}
	// The draft is not replaced without --force.
	fails(t, []string{out + " exists"}, "genesis", "draft", "--name", "F", "--founders-file", file, "--out", out)
	runCLI(t, "genesis", "draft", "--name", "F2", "--founders-file", file, "--out", out, "--force").mustSucceed(t)
}

func TestGenesisDraftErrors(t *testing.T) {
	fs := newFounders(t, 1)
	ok := fs[0].id + ",Org,civil-society,africa"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no name", []string{"--founder", ok}, "--name is required"},
		{"no founders", []string{"--name", "N"}, "no founders"},
		{"bad key", []string{"--name", "N", "--founder", "xyz,Org,civil-society,africa"}, `key "xyz" is neither a peer id nor 64 hex digits`},
		{"too few fields", []string{"--name", "N", "--founder", fs[0].id + ",Org"}, "want KEY,ORG,GROUP,REGION[,CONTACT]"},
		{"unknown group", []string{"--name", "N", "--founder", fs[0].id + ",Org,farmers,africa"}, `group "farmers" is not one of`},
		{"custom groups", []string{"--name", "N", "--groups", "a,b", "--founder", ok}, `group "civil-society" is not one of a, b`},
		{"duplicate", []string{"--name", "N", "--founder", ok, "--founder", ok}, "key listed twice"},
		{"rules", []string{"--name", "N", "--founder", ok, "--admit-groups", "3"}, "rules.admitGroups"},
		{"missing founders file", []string{"--name", "N", "--founders-file", "/nonexistent/f.toml"}, "founders file /nonexistent/f.toml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "d.cbor")
			code := exitError
			if tt.name == "no name" || tt.name == "no founders" { // a required flag: a usage error
				code = exitUsage
			}
			failsWith(t, code, []string{tt.want}, append([]string{"genesis", "draft", "--out", out}, tt.args...)...)
			if _, err := os.Stat(out); err == nil {
				t.Error("a refused draft was written")
			}
		})
	}
}

// TestInitGenesisThenRun starts a real node on a data directory made by
// init --genesis: the node joins that federation (as an observer, which
// needs a genesis), not a dev federation of its own.
func TestInitGenesisThenRun(t *testing.T) {
	fs := newFounders(t, 2)
	g := filepath.Join(t.TempDir(), "genesis.cbor")
	runCLI(t, append([]string{"genesis", "draft", "--name", "Joined", "--out", g}, founderArgs(fs)...)...).mustSucceed(t)
	runCLI(t, "--data-dir", fs[0].dir, "genesis", "sign", g).mustSucceed(t)
	id := field(t, runCLI(t, "--data-dir", fs[1].dir, "genesis", "sign", g).mustSucceed(t).stdout, "network id")
	dir := filepath.Join(t.TempDir(), "observer")
	runCLI(t, "--data-dir", dir, "init", "--genesis", g).mustSucceed(t)

	ready := make(chan struct{})
	stdout := &notifyingBuffer{want: "listening on: ", ready: ready}
	var stderr bytes.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	result := make(chan int, 1)
	go func() {
		result <- execute(ctx, NewRootCommand(stdout, &stderr),
			[]string{"--data-dir", dir, "run", "--observer", "--listen", "/ip4/127.0.0.1/tcp/0",
				"--api-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t))}, &stderr)
	}()
	select {
	case <-ready:
	case code := <-result:
		t.Fatalf("run ended with %d before listening:\n%s", code, stderr.String())
	}
	cancel()
	if code := <-result; code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	if got := field(t, stdout.String(), "network"); got != id {
		t.Errorf("node runs network %s, want the installed %s", got, id)
	}
	if strings.Contains(stderr.String(), "dev federation") {
		t.Errorf("node founded a dev federation:\n%s", stderr.String())
	}
}

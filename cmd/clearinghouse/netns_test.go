package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/clearinghouse-net/clearinghouse/config"
	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/node/api"
	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// The NAT test's network, all inside namespaces the test creates (none of
// these addresses exists outside them, and the namespaces have no route
// out). The "internet" is a bridge in the public namespace; its addresses
// must look globally routable, because libp2p only hole-punches through
// public addresses.
const (
	inetPrefix = "11.12.13"   // the "internet": .1 public members, .11/.12 the NAT routers
	homePrefix = "192.168.%d" // home network i: .1 its router, .2 its member
)

// requireNetns skips the test, or fails it when CI=true, unless network
// namespaces, veth pairs and nftables can be used here (root, ip, nft), and
// make builds the binary.
func requireNetns(t *testing.T) {
	t.Helper()
	missing := ""
	switch {
	case os.Geteuid() != 0:
		missing = "root"
	case lookPath("ip") != nil:
		missing = "the ip command (iproute2)"
	case lookPath("nft") != nil:
		missing = "the nft command (Debian package nftables)"
	case lookPath("make") != nil:
		missing = "make (the binary is built with make build)"
	}
	if missing == "" {
		name := fmt.Sprintf("chprobe%d", os.Getpid())
		if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
			missing = fmt.Sprintf("network namespaces (ip netns add: %v: %s)", err, bytes.TrimSpace(out))
		} else {
			_ = exec.Command("ip", "netns", "del", name).Run()
		}
	}
	if missing == "" {
		return
	}
	msg := "network namespace test needs " + missing
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: CI must provide it)")
	}
	t.Skip(msg)
}

func lookPath(name string) error { _, err := exec.LookPath(name); return err }

// topo creates and removes the test's namespaces.
type topo struct {
	t      *testing.T
	prefix string
	spaces []string
}

// ns returns the full name of namespace short.
func (tp *topo) ns(short string) string { return tp.prefix + short }

// sh runs a command, failing the test on error.
func (tp *topo) sh(args ...string) {
	tp.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		tp.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// in runs a command inside namespace short.
func (tp *topo) in(short string, args ...string) {
	tp.t.Helper()
	tp.sh(append([]string{"ip", "netns", "exec", tp.ns(short)}, args...)...)
}

// addNS creates a namespace with loopback up; cleanup deletes it.
func (tp *topo) addNS(short string) {
	tp.t.Helper()
	tp.sh("ip", "netns", "add", tp.ns(short))
	tp.spaces = append(tp.spaces, tp.ns(short))
	tp.in(short, "ip", "link", "set", "lo", "up")
}

// newTopology builds: namespace "pub" with the internet bridge (and the
// public members), and for i in 1, 2 a router namespace "r<i>" (WAN on the
// bridge, LAN to its home, nftables masquerade and a stateful firewall that
// drops unsolicited inbound connections) and a home namespace "h<i>".
func newTopology(t *testing.T) *topo {
	tp := &topo{t: t, prefix: fmt.Sprintf("ch%d-", os.Getpid())}
	t.Cleanup(func() {
		for _, s := range slices.Backward(tp.spaces) {
			if out, err := exec.Command("ip", "netns", "del", s).CombinedOutput(); err != nil {
				t.Errorf("delete namespace %s: %v: %s", s, err, out)
			}
		}
	})
	tp.addNS("pub")
	tp.in("pub", "ip", "link", "add", "br0", "type", "bridge")
	tp.in("pub", "ip", "addr", "add", inetPrefix+".1/24", "dev", "br0")
	tp.in("pub", "ip", "link", "set", "br0", "up")
	for i := 1; i <= 2; i++ {
		r, h := fmt.Sprintf("r%d", i), fmt.Sprintf("h%d", i)
		home := fmt.Sprintf(homePrefix, i)
		tp.addNS(r)
		tp.addNS(h)
		// WAN: router <-> the internet bridge.
		tp.sh("ip", "link", "add", "name", "wan", "netns", tp.ns(r), "type", "veth", "peer", "name", r, "netns", tp.ns("pub"))
		tp.in("pub", "ip", "link", "set", r, "master", "br0", "up")
		tp.in(r, "ip", "addr", "add", fmt.Sprintf("%s.%d/24", inetPrefix, 10+i), "dev", "wan")
		tp.in(r, "ip", "link", "set", "wan", "up")
		// LAN: router <-> home.
		tp.sh("ip", "link", "add", "name", "lan", "netns", tp.ns(r), "type", "veth", "peer", "name", "eth0", "netns", tp.ns(h))
		tp.in(r, "ip", "addr", "add", home+".1/24", "dev", "lan")
		tp.in(r, "ip", "link", "set", "lan", "up")
		tp.in(h, "ip", "addr", "add", home+".2/24", "dev", "eth0")
		tp.in(h, "ip", "link", "set", "eth0", "up")
		tp.in(h, "ip", "route", "add", "default", "via", home+".1")
		tp.in(r, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
		tp.in(r, "nft", "-f", "-", nftRules)
	}
	return tp
}

// nftRules make a router a home NAT: masquerade out of the WAN, only
// connections opened from the LAN (and their replies) forwarded, and
// nothing unsolicited from the WAN answered (silently dropped, as home
// routers do: no RST or ICMP error, and no conntrack entry that would take
// the port a hole punch needs).
const nftRules = `
table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan" masquerade
	}
}
table inet filter {
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "wan" ct state != { established, related } drop
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "lan" oifname "wan" accept
	}
}
`

// proc is a node running in a namespace.
type proc struct {
	name, ns, dir string
	apiPort       int
	id            peer.ID
	key           ed25519.PrivateKey
	cmd           *exec.Cmd
	log           *bytes.Buffer
}

// TestNATTraversal: two members on the public internet, and two at home,
// each behind its own NAT router (masquerade, stateful firewall). The home
// members start with the genesis and one bootstrap address each; the public
// members with none, sharing a LAN, find each other by mDNS and learn that
// they are public with AutoNAT. Through the federation's DHT every node
// finds every other (nothing else links the two halves); the home members reserve
// relay slots on the public ones, and their connection to each other
// becomes direct by DCUtR hole punching (asserted from the connection's
// remote address); every record published anywhere is stored everywhere.
func TestNATTraversal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs four nodes in network namespaces")
	}
	requireNetns(t)
	tp := newTopology(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "clearinghouse")
	// The build of make build and the container recipe (deploy/).
	build := exec.Command("make", "build", "BIN="+bin)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}

	nodes := []*proc{
		{name: "pub1", ns: "pub", apiPort: 5080},
		{name: "pub2", ns: "pub", apiPort: 5081},
		{name: "home1", ns: "h1", apiPort: 5080},
		{name: "home2", ns: "h2", apiPort: 5080},
	}
	// Identities and the genesis, signed by all four founders.
	var founders []protocol.Member
	groups := []string{"government", "private-sector", "civil-society", "technical-academic"}
	for i, p := range nodes {
		p.dir = filepath.Join(dir, p.name)
		p.log = &bytes.Buffer{}
		if _, err := config.InitFiles(p.dir); err != nil {
			t.Fatal(err)
		}
		k, err := config.LoadIdentity(config.DataDir{Path: p.dir}.KeyPath())
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := k.Raw()
		p.key = ed25519.PrivateKey(raw)
		if p.id, err = peer.IDFromPrivateKey(k); err != nil {
			t.Fatal(err)
		}
		founders = append(founders, protocol.Member{Key: p.key.Public().(ed25519.PublicKey), Org: "Org " + p.name,
			Group: groups[i], Region: "africa"})
	}
	g := protocol.NewGenesis("netns federation", founders, time.Now().Add(-time.Hour).UTC().Truncate(time.Second))
	for _, p := range nodes {
		if err := g.Sign(p.key); err != nil {
			t.Fatal(err)
		}
	}
	gen, err := g.Encode()
	if err != nil {
		t.Fatal(err)
	}
	pubAddr := func(i int) string { return fmt.Sprintf("/ip4/%s.1/tcp/%d/p2p/%s", inetPrefix, 4001+i, nodes[i].id) }
	for i, p := range nodes {
		var listen []string
		var bootstrap []string
		mdns := false
		// Home members are known to be behind NAT; in a network this
		// small AutoNAT cannot tell (libp2p trusts an observed address
		// only from four distinct observers).
		reach := "private"
		if p.ns == "pub" {
			port := 4001 + i
			listen = []string{fmt.Sprintf("/ip4/%s.1/tcp/%d", inetPrefix, port), fmt.Sprintf("/ip4/%s.1/udp/%d/quic-v1", inetPrefix, port)}
			reach = "auto"
			// The two public members share a LAN (the bridge) and
			// know no bootstrap peer: they find each other by mDNS.
			mdns = true
		} else {
			listen = []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}
			// Each home member knows one public member only.
			bootstrap = []string{pubAddr(i - 2)}
		}
		q := func(ss []string) string {
			b, _ := json.Marshal(append([]string{}, ss...))
			return string(b)
		}
		cfg := fmt.Sprintf(`[node]
name = "Org %s"
[network]
listen = %s
bootstrap = %s
reachability = %q
mdns = %v
want_peers = 3
[api]
listen = "127.0.0.1:%d"
[sync]
interval = "2s"
[log]
level = "debug"
`, p.name, q(listen), q(bootstrap), reach, mdns, p.apiPort)
		if err := os.WriteFile(config.DataDir{Path: p.dir}.ConfigPath(), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p.dir, node.GenesisFile), gen, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Usually done in 15 to 25 s. A hole punch that fails is tried
	// again when the relay ends the relayed connection (2 min) and
	// discovery dials through a relay again: the deadline allows one.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	for _, p := range nodes {
		p.cmd = exec.Command("ip", "netns", "exec", tp.ns(p.ns), bin, "--data-dir", p.dir, "run")
		p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
		if os.Getenv("CH_NETNS_LOGDIR") != "" {
			p.cmd.Env = append(os.Environ(), "GOLOG_LOG_LEVEL=p2p-holepunch=debug,autorelay=debug,autonat=debug,autonatv2=debug,relay=debug")
		}
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			// By pid: SIGTERM (a clean shutdown), then the group.
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan error, 1)
			go func() { done <- p.cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
				<-done
			}
			if d := os.Getenv("CH_NETNS_LOGDIR"); d != "" {
				_ = os.WriteFile(filepath.Join(d, p.name+".log"), p.log.Bytes(), 0o644)
			}
			if t.Failed() {
				t.Logf("log of %s (all of it: set CH_NETNS_LOGDIR):\n%s", p.name, tail(p.log.String(), 30))
			}
		})
	}
	cli := func(p *proc, args ...string) ([]byte, error) {
		full := append([]string{"netns", "exec", tp.ns(p.ns), bin, "--data-dir", p.dir}, args...)
		cmd := exec.CommandContext(ctx, "ip", full...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return out, fmt.Errorf("%s %s: %w: %s", p.name, strings.Join(args, " "), err, stderr.String())
		}
		return out, nil
	}
	status := func(p *proc) (api.StatusView, error) {
		var s api.StatusView
		out, err := cli(p, "status", "--json")
		if err != nil {
			return s, err
		}
		return s, json.Unmarshal(out, &s)
	}
	for _, p := range nodes {
		if _, err := cli(p, "status", "--wait", "30s"); err != nil {
			t.Fatal(err)
		}
	}

	// Wait, by asking each node's status, until every node is connected
	// to every other, home1 to home2 directly, and holds every issue.
	// Once all are connected, every node publishes a record: it opens an
	// issue. (Not before: a node whose key predates its store first
	// confirms its chain with peers, node.WithRecoverChain.)
	start := time.Now()
	var last string
	published := false
	reported := time.Now()
	for {
		last = ""
		for _, p := range nodes {
			s, err := status(p)
			if err != nil {
				t.Fatalf("%v (waiting for: %s)", err, last)
			}
			conns := map[string]api.NetPeerView{}
			for _, c := range s.Net.Peers {
				conns[c.ID] = c
			}
			for _, o := range nodes {
				if o == p {
					continue
				}
				c, ok := conns[o.id.String()]
				switch {
				case !ok:
					last += fmt.Sprintf("%s not connected to %s; ", p.name, o.name)
				case c.Conn != "direct" || strings.Contains(c.Addr, "p2p-circuit"):
					last += fmt.Sprintf("%s to %s is %s (%s); ", p.name, o.name, c.Conn, c.Addr)
				case !c.Member:
					t.Errorf("%s does not see %s as a member", p.name, o.name)
				}
			}
			out, err := cli(p, "issue", "list", "--json")
			if err != nil {
				t.Fatal(err)
			}
			var il struct{ Issues []api.IssueView }
			if err := json.Unmarshal(out, &il); err != nil {
				t.Fatalf("%s issue list: %v: %s", p.name, err, out)
			}
			if !published || len(il.Issues) != len(nodes) {
				last += fmt.Sprintf("%s holds %d of %d issues; ", p.name, len(il.Issues), len(nodes))
			}
			// The public members learn that they are public with
			// AutoNAT (network.reachability is "auto"); the home
			// members are configured private.
			if want := map[bool]string{true: "public", false: "private"}[p.ns == "pub"]; s.Net.Reachability != want {
				last += fmt.Sprintf("%s reachability %s; ", p.name, s.Net.Reachability)
			}
			if p.ns != "pub" && len(s.Net.Relays) == 0 {
				last += fmt.Sprintf("%s has no relay reservation; ", p.name)
			}
		}
		if last == "" {
			break
		}
		if !published && !strings.Contains(last, "connected") && !strings.Contains(last, "relay") {
			t.Logf("all connected after %s", time.Since(start).Round(time.Second))
			for _, p := range nodes {
				if _, err := cli(p, "issue", "open", "from-"+p.name, "--title", "Opened by "+p.name); err != nil {
					t.Fatal(err)
				}
			}
			published = true
			continue
		}
		if ctx.Err() != nil {
			t.Fatalf("after %s: %s", time.Since(start).Round(time.Second), last)
		}
		if time.Since(reported) > 10*time.Second {
			t.Logf("after %s: %s", time.Since(start).Round(time.Second), last)
			reported = time.Now()
		}
		// Polling another process's status: there is no event to wait on
		// across processes.
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	t.Logf("all connected, home-to-home direct, all records everywhere after %s", time.Since(start).Round(time.Second))

	// The home-to-home connection is direct between the two NATs' public
	// addresses: it was punched, not routed.
	s, err := status(nodes[2])
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range s.Net.Peers {
		if c.ID == nodes[3].id.String() && !strings.Contains(c.Addr, inetPrefix+".12/") {
			t.Errorf("home1's connection to home2 is from %s, want home2's NAT address %s.12", c.Addr, inetPrefix)
		}
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

package cli

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/spf13/cobra"

	"github.com/clearinghouse-net/clearinghouse/config"
	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/node/api"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// testnetRules are the rules of the local testnet federation: the default
// admission rules, and no minimum notice, so a process can be walked
// through in minutes instead of weeks.
var testnetRules = func() protocol.Rules {
	r := protocol.DefaultRules
	r.MinNoticeSeconds = 0
	return r
}()

func newTestnetCommand(a *app) *cobra.Command {
	var (
		nodes, observers, apiPort int
		dir                       string
		follow                    []string
	)
	cmd := &cobra.Command{
		Use:   "testnet",
		Short: "Run a local testnet of several nodes in one process",
		Long: `Testnet starts a local federation of several nodes in this process, on
loopback, connected to each other, each with its HTTP API on its own port
(127.0.0.1:PORT+i), and runs until interrupted.

Every non-observer node is a founder. Keys are deterministic (node i has the
same key in every testnet), so the federation, its network id and the files in
the data directories are the same each time: run it again on the same --dir to
continue where it stopped. Each node's data directory (DIR/node-i) holds the
usual config.toml (with its api.listen), identity.key, api.token, genesis.cbor
and store/, so every client command works against node i with
--data-dir DIR/node-i.

The testnet federation has no minimum notice (rules.minNoticeSeconds = 0), so a
process can move from notice to consultation within seconds, and its nodes sync
with each other every 2 s (a real node: sync.interval, 30 s by default).`,
		Example: `  clearinghouse testnet
  clearinghouse testnet --nodes 6 --observers 1 --dir /tmp/ch-testnet --follow privacy
  clearinghouse --data-dir /tmp/ch-testnet/node-0 status`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nodes < 1 || nodes > 64 {
				return &usageError{fmt.Errorf("--nodes %d: want 1 to 64", nodes)}
			}
			if observers < 0 || observers >= nodes {
				return &usageError{fmt.Errorf("--observers %d: want 0 to %d", observers, nodes-1)}
			}
			if apiPort < 1 || apiPort+nodes > 65535 {
				return &usageError{fmt.Errorf("--api-port %d: out of range", apiPort)}
			}
			if dir == "" {
				dir = filepath.Join(os.TempDir(), "clearinghouse-testnet")
			}
			return runTestnet(cmd.Context(), a, dir, nodes, observers, apiPort, follow)
		},
	}
	cmd.Flags().IntVar(&nodes, "nodes", 4, "number of nodes")
	cmd.Flags().IntVar(&observers, "observers", 0, "how many of the nodes (the last ones) are read-only observers")
	cmd.Flags().IntVar(&apiPort, "api-port", 5080, "HTTP API port of node 0; node i uses this + i")
	cmd.Flags().StringVar(&dir, "dir", "", "directory of the nodes' data directories (default $TMPDIR/clearinghouse-testnet)")
	cmd.Flags().StringSliceVar(&follow, "follow", nil, "issue slugs every node follows")
	cmd.AddCommand(newFaultCommand(a))
	cmd.AddCommand(newTestnetBenchCommand(a))
	return cmd
}

// prepareTestnetDir makes DIR/node-i a complete data directory for node i
// (config with its api.listen, its deterministic identity, an API token)
// and returns its token.
func prepareTestnetDir(d string, i, apiPort int) (string, error) {
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", err
	}
	dd := config.DataDir{Path: d}
	if _, err := os.Stat(dd.ConfigPath()); errors.Is(err, os.ErrNotExist) {
		cfg := fmt.Sprintf("# Node %d of a local testnet (clearinghouse testnet).\n[api]\nlisten = \"127.0.0.1:%d\"\n\n[network]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\n", i, apiPort+i)
		if err := os.WriteFile(dd.ConfigPath(), []byte(cfg), 0o644); err != nil {
			return "", err
		}
	}
	if _, err := os.Stat(dd.KeyPath()); errors.Is(err, os.ErrNotExist) {
		raw, err := crypto.MarshalPrivateKey(testnet.Key(1, i))
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(dd.KeyPath(), raw, 0o600); err != nil {
			return "", err
		}
	}
	if _, err := config.Init(d); err != nil {
		return "", err
	}
	return config.LoadToken(dd.TokenPath())
}

func runTestnet(ctx context.Context, a *app, dir string, nodes, observers, apiPort int, follow []string) (err error) {
	// The API ports first: a busy one is reported before anything is
	// created or started.
	listeners := make([]net.Listener, nodes)
	defer func() {
		for _, l := range listeners {
			if l != nil {
				_ = l.Close() // those not handed to a server
			}
		}
	}()
	for i := range nodes {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", apiPort+i))
		if err != nil {
			return fmt.Errorf("testnet: node %d API on 127.0.0.1:%d: %w; is another testnet or node running? choose another --api-port",
				i, apiPort+i, unwrapOpError(err))
		}
		listeners[i] = l
	}
	// A start that fails removes the directories it created, so that a
	// second try starts from the same state as the first.
	created := missingDirs(dir, nodes)
	defer func() {
		if err != nil {
			for _, d := range created {
				_ = os.RemoveAll(d)
			}
		}
	}()
	tokens := make([]string, nodes)
	for i := range nodes {
		tok, err := prepareTestnetDir(filepath.Join(dir, fmt.Sprintf("node-%d", i)), i, apiPort)
		if err != nil {
			return fmt.Errorf("testnet: node %d: %w", i, err)
		}
		tokens[i] = tok
	}
	logger := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts := []testnet.Option{
		testnet.WithDataDir(dir), testnet.WithObservers(observers), testnet.WithRules(testnetRules),
		testnet.WithFollow(follow...), testnet.WithLogger(logger),
	}
	if a.clock != nil {
		opts = append(opts, testnet.WithNodeOptions(func(int) []node.Option { return []node.Option{node.WithClock(a.clock)} }))
	}
	tn, err := testnet.Start(ctx, nodes, opts...)
	if err != nil {
		return err
	}
	defer tn.Close()
	// The genesis goes into every data directory, so client commands and a
	// later `run` on one of them see the same federation.
	graw, err := tn.Genesis.Encode()
	if err != nil {
		return err
	}
	var (
		servers []*api.Server
		wg      sync.WaitGroup
	)
	defer func() {
		for _, s := range servers {
			_ = s.Close()
		}
		wg.Wait()
	}()
	for i, n := range tn.Nodes {
		d := config.DataDir{Path: filepath.Join(dir, fmt.Sprintf("node-%d", i))}
		if err := os.WriteFile(d.GenesisPath(), graw, 0o644); err != nil {
			return err
		}
		aopts := []api.Option{api.WithLogger(logger.With("node", i))}
		if !n.IsObserver() {
			aopts = append(aopts, api.WithToken(tokens[i]))
		}
		srv, err := api.New(n, aopts...)
		if err != nil {
			return err
		}
		servers = append(servers, srv)
		l := listeners[i]
		listeners[i] = nil
		wg.Go(func() { _ = srv.Serve(ctx, l) })
	}
	v := testnetJSON{Name: tn.Genesis.Name, Network: tn.Nodes[0].NetworkID().String(), PID: os.Getpid()}
	for i, n := range tn.Nodes {
		nv := testnetNodeJSON{Index: i, Role: "member", API: fmt.Sprintf("http://127.0.0.1:%d", apiPort+i),
			DataDir: filepath.Join(dir, fmt.Sprintf("node-%d", i)), PeerID: n.ID().String()}
		if n.IsObserver() {
			nv.Role = "observer"
		} else {
			f := tn.Genesis.Founders[i]
			nv.Group, nv.Region = f.Group, f.Region
		}
		pub, _ := tn.Keys[i].GetPublic().Raw()
		nv.Key = hex.EncodeToString(pub)
		v.Nodes = append(v.Nodes, nv)
	}
	if a.jsonOutput() {
		if err := printValue(a.stdout, v); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(a.stdout, "testnet %q: %s, network %s\n", v.Name, plural(nodes, "node"), v.Network)
		t := a.newTable(a.stdout, "", "node", "role", "group", "region", "api", "key")
		for _, n := range v.Nodes {
			t.row(n.Index, n.Role, n.Group, n.Region, n.API, n.Key)
		}
		if err := t.flush(); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "data directories: %s/node-0 ... node-%d\n", dir, nodes-1)
		fmt.Fprintf(a.stdout, "web: every api address above is also the node's web view: open http://127.0.0.1:%d/ in a browser\n", apiPort)
		fmt.Fprintf(a.stdout, "try: %s --data-dir %s status\n", progName(), shellQuote(filepath.Join(dir, "node-0")))
		fmt.Fprintf(a.stdout, "stop: Ctrl-C, or kill %d (the data directories stay; run the same command again to continue)\n", os.Getpid())
		fmt.Fprintln(a.stdout, "ready")
	}
	<-ctx.Done()
	fmt.Fprintln(a.stderr, "testnet: shutting down")
	return nil
}

// testnetJSON is the --json banner of testnet: one line, once every node
// serves its API.
type testnetJSON struct {
	Name    string            `json:"name"`
	Network string            `json:"network"`
	PID     int               `json:"pid"` // kill it (SIGINT or SIGTERM) to stop the testnet
	Nodes   []testnetNodeJSON `json:"nodes"`
}

// testnetNodeJSON is one node of testnetJSON.
type testnetNodeJSON struct {
	Index   int    `json:"index"`
	Role    string `json:"role"`
	Group   string `json:"group,omitempty"`
	Region  string `json:"region,omitempty"`
	API     string `json:"api"`
	DataDir string `json:"dataDir"`
	PeerID  string `json:"peerId"`
	Key     string `json:"key"`
}

// missingDirs returns those of dir and its node directories dir/node-i
// (i < nodes) that do not exist yet, parents first.
func missingDirs(dir string, nodes int) []string {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return []string{dir}
	}
	var out []string
	for i := range nodes {
		d := filepath.Join(dir, fmt.Sprintf("node-%d", i))
		if _, err := os.Stat(d); errors.Is(err, fs.ErrNotExist) {
			out = append(out, d)
		}
	}
	return out
}

package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/clearinghouse-net/clearinghouse/config"
)

func newInitCommand(a *app) *cobra.Command {
	var (
		genesisFile string
		public      bool
		announce    []string
	)
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the data directory: configuration, identity key, API token",
		Long: `Create the node's data directory (mode 0700) with what a node needs to start:

  config.toml    the configuration, every key commented with its default
  identity.key   a new ed25519 identity key (mode 0600); its peer id is printed
  api.token      a new bearer token for the HTTP API (mode 0600)

init is safe to run again: it only creates the files that are missing, and it
never replaces an existing identity key. The default configuration listens on
loopback only; edit network.listen in config.toml to reach other machines.

With --genesis FILE, init also installs the federation's genesis as
genesis.cbor, so that the node joins that federation when it runs. The genesis
must be signed by every founder (see clearinghouse genesis); init refuses an
incomplete one, naming the founders who have not signed, and refuses to
replace a different genesis already installed. Without a genesis, run founds a
one-member development federation.

With --public, the configuration written is the public profile: the node
listens on every interface, IPv4 and IPv6, over TCP and QUIC on port 4001
(network.listen), and announces the --announce addresses, if any, instead of
its interface addresses (network.announce). Use it for a member's node on a
server that others must reach; see docs/operations.md for the firewall and
the relay service it offers. --public and --announce only apply when
config.toml does not exist yet.`,
		Example: `  clearinghouse init
  clearinghouse init --genesis genesis.cbor
  clearinghouse init --public --announce /dns4/node.example.org/tcp/4001 --announce /dns4/node.example.org/udp/4001/quic-v1
  clearinghouse --data-dir /srv/clearinghouse init
  CLEARINGHOUSE_DIR=/tmp/node1 clearinghouse init`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			dd, err := a.resolveDataDir()
			if err != nil {
				return err
			}
			var gen *installing
			if genesisFile != "" { // checked before anything is created
				if gen, err = prepareGenesis(genesisFile); err != nil {
					return err
				}
			}
			if len(announce) > 0 && !public {
				return &usageError{errors.New("--announce needs --public")}
			}
			cfg := config.Default()
			if public {
				cfg = config.Public(announce)
				if err := cfg.Validate(); err != nil {
					return &usageError{fmt.Errorf("--announce: %w", err)}
				}
			}
			made, err := config.InitFilesWith(dd.Path, cfg)
			if err != nil {
				return err
			}
			// A new identity gets an empty store directory with it: a
			// key without a store is how run recognises a lost store (and
			// then confirms its chain heads with peers before it
			// publishes), which a node that never ran has not lost.
			if slices.Contains(made, dd.KeyPath()) {
				if err := os.Mkdir(dd.StorePath(), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
					return fmt.Errorf("create store directory: %w", err)
				}
			}
			id, err := peerID(dd)
			if err != nil {
				return err
			}
			w := a.stdout
			if a.jsonOutput() {
				if gen != nil {
					if err := gen.install(io.Discard, dd, ""); err != nil {
						return err
					}
				}
				return printValue(w, initJSON{DataDir: dd.Path, PeerID: id.String(), Created: append([]string{}, made...),
					Genesis: gen != nil})
			}
			if len(made) == 0 {
				fmt.Fprintf(w, "data directory %s already exists; nothing to create\n", dd.Path)
			} else {
				fmt.Fprintf(w, "data directory: %s\n", dd.Path)
			}
			fmt.Fprintf(w, "peer id: %s\n", id)
			for _, p := range made {
				fmt.Fprintf(w, "created: %s\n", p)
			}
			if gen != nil {
				return gen.install(w, dd, a.command(dd, "run"))
			}
			if len(made) > 0 {
				fmt.Fprintf(w, "next: edit %s, then run: %s\n", dd.ConfigPath(), a.command(dd, "run"))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&genesisFile, "genesis", "", "install this fully signed genesis file, to join its federation")
	cmd.Flags().BoolVar(&public, "public", false, "write the public profile: listen on all interfaces over TCP and QUIC, port 4001")
	cmd.Flags().StringArrayVar(&announce, "announce", nil, "with --public: an address others dial, e.g. /dns4/node.example.org/tcp/4001; repeat for several")
	return cmd
}

// initJSON is the --json answer of init.
type initJSON struct {
	DataDir string   `json:"dataDir"`
	PeerID  string   `json:"peerId"`
	Created []string `json:"created"`
	// Genesis reports whether --genesis installed (or found) the genesis.
	Genesis bool `json:"genesis"`
}

// peerID returns the peer id of the data directory's identity key.
func peerID(dd config.DataDir) (peer.ID, error) {
	key, err := config.LoadIdentity(dd.KeyPath())
	if err != nil {
		return "", err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return "", fmt.Errorf("peer id of %s: %w", dd.KeyPath(), err)
	}
	return id, nil
}

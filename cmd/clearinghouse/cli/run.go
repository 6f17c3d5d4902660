package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"github.com/spf13/cobra"

	"github.com/clearinghouse-net/clearinghouse/config"
)

// runningNode is what the run command needs of a started node;
// *node.Node has these methods.
type runningNode interface {
	// ID returns the node's peer id.
	ID() peer.ID
	// Addrs returns the listen addresses, each ending in /p2p/<peer id>.
	Addrs() []multiaddr.Multiaddr
	// NetworkID returns the federation's network id (the genesis CID).
	NetworkID() cid.Cid
	// Done returns a channel closed when the node has stopped.
	Done() <-chan struct{}
	// Close stops the node.
	Close() error
}

// nodeParams is everything run hands to the node.
type nodeParams struct {
	identity crypto.PrivKey
	dataDir  config.DataDir
	config   config.Config // validated, with the flags applied
	logger   *slog.Logger
	// recoverChain says the identity key existed but the store did not
	// (a lost disk): the node must learn its chain heads from peers
	// before it publishes (node.WithRecoverChain).
	recoverChain bool
}

// startFunc starts a node. The caller must Close the node it returns.
type startFunc func(ctx context.Context, p nodeParams) (runningNode, error)

func newRunCommand(a *app) *cobra.Command {
	var (
		observer bool
		listen   []string
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the node in the foreground",
		Long: `Run the node in the foreground until it receives SIGINT (Ctrl-C) or SIGTERM.

run reads the configuration from config.toml in the data directory, checks
it, loads the identity key (which must be readable by its owner only), and
starts the node: the libp2p host, the gossip topics of the federation and of
the issues in topics.follow, and the connections to network.bootstrap. It
prints the peer id, the network id and the listen addresses to stdout, and
logs to stderr as set in the [log] table.

If the data directory does not exist or is empty, run sets it up first, as
init does.
A node without a genesis.cbor founds a one-member development federation.

Exit status: 0 after a shutdown by signal; 1 if the node cannot start or
stops by itself.`,
		Example: `  clearinghouse run
  clearinghouse run --observer
  clearinghouse --data-dir /tmp/node2 run --listen /ip4/127.0.0.1/tcp/4002 --listen /ip4/127.0.0.1/udp/4002/quic-v1`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var o runOverrides
			if cmd.Flags().Changed("observer") {
				o.observer = &observer
			}
			if cmd.Flags().Changed("listen") {
				o.listen = listen
			}
			return a.run(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVar(&observer, "observer", false,
		"run as a read-only observer, overriding node.role (--observer=false forces member)")
	cmd.Flags().StringArrayVar(&listen, "listen", nil,
		"multiaddr to listen on, overriding network.listen; repeat for several")
	return cmd
}

// runOverrides are the run flags that override the configuration; nil
// fields were not given.
type runOverrides struct {
	observer *bool
	listen   []string
}

// run is the run command.
func (a *app) run(ctx context.Context, o runOverrides) error {
	if err := o.check(); err != nil {
		return err
	}
	dd, err := a.resolveDataDir()
	if err != nil {
		return err
	}
	// A missing or empty data directory (such as a new volume) is set up
	// as by init. Not one with files in it: a directory that lost its key
	// must not silently get a new identity.
	var made []string
	if empty, err := isEmptyOrMissing(dd.Path); err != nil {
		return err
	} else if empty {
		if made, err = config.InitFiles(dd.Path); err != nil {
			return err
		}
	}

	cfg, err := config.Load(dd.ConfigPath())
	if err != nil {
		return err
	}
	o.apply(&cfg)
	logger, err := newLogger(a.stderr, cfg.Log)
	if err != nil {
		return err
	}
	if len(made) > 0 {
		logger.Info("initialised data directory", "dir", dd.Path, "created", made)
	}
	key, err := config.LoadIdentity(dd.KeyPath())
	if err != nil {
		return err
	}

	// The rule of node.WithRecoverChain: a key we did not create in this
	// run, and no store, means the store was lost (or the node never ran;
	// then peers answer seq 0 and nothing is lost but a round trip).
	_, serr := os.Stat(dd.StorePath())
	recoverChain := errors.Is(serr, fs.ErrNotExist) && !slices.Contains(made, dd.KeyPath())
	if recoverChain {
		logger.Warn("identity key without a store: this node will confirm its chain heads with peers before it publishes",
			"store", dd.StorePath())
	}

	n, err := a.start(ctx, nodeParams{identity: key, dataDir: dd, config: cfg, logger: logger, recoverChain: recoverChain})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "peer id: %s\n", n.ID())
	fmt.Fprintf(a.stdout, "network: %s\n", n.NetworkID())
	for _, addr := range n.Addrs() {
		fmt.Fprintf(a.stdout, "listening on: %s\n", addr)
	}
	if an, ok := n.(interface{ APIAddr() string }); ok {
		fmt.Fprintf(a.stdout, "api: http://%s\n", an.APIAddr())
	}

	var stopped error
	select {
	case <-ctx.Done():
	case <-n.Done():
		stopped = errors.New("node stopped unexpectedly")
		if en, ok := n.(interface{ Err() error }); ok && en.Err() != nil {
			stopped = fmt.Errorf("node stopped: %w", en.Err())
		}
	}
	logger.Info("shutting down")
	if err := n.Close(); err != nil {
		logger.Error("shutdown failed", "err", err)
		return errors.Join(stopped, fmt.Errorf("close node: %w", err))
	}
	logger.Info("stopped")
	return stopped
}

// check checks the values of the flags.
func (o runOverrides) check() error {
	for _, s := range o.listen {
		if _, err := multiaddr.NewMultiaddr(s); err != nil {
			return &usageError{fmt.Errorf("--listen %q: invalid multiaddr: %w", s, err)}
		}
	}
	return nil
}

// apply applies the flags to cfg.
func (o runOverrides) apply(cfg *config.Config) {
	if o.observer != nil {
		cfg.Node.Role = config.RoleMember
		if *o.observer {
			cfg.Node.Role = config.RoleObserver
		}
	}
	if o.listen != nil {
		cfg.Network.Listen = o.listen
	}
}

// isEmptyOrMissing reports whether dir does not exist or has no entries.
func isEmptyOrMissing(dir string) (bool, error) {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("data directory: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("data directory %s: %w", dir, err)
	}
	return len(names) == 0, nil
}

// newLogger returns the node's logger: level and format from the [log]
// table (already validated), writing to w.
func newLogger(w io.Writer, c config.Log) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("log.level %q: %w", c.Level, err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.Format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log.format %q: must be \"text\" or \"json\"", c.Format)
	}
}

package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"github.com/spf13/cobra"

	"github.com/clearinghouse-net/clearinghouse/config"
)

func newIDCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "id",
		Short: "Print the node's peer id and addresses",
		Long: `Print the node's peer id and the addresses another node can dial it on, each
ending in /p2p/<peer id> so that another node can use it in
network.bootstrap. It reads the data directory only; it does not start a node
or need one running.

The addresses are network.announce if set; otherwise network.listen, with a
wildcard address such as /ip4/0.0.0.0 expanded to this machine's interface
addresses. A listen address with port 0 gets its port only when the node
starts: it is left out (with a note on stderr), and "clearinghouse status"
shows the bound one. Behind NAT, set network.announce to the public address.`,
		Example: `  clearinghouse id
  clearinghouse id --json | jq -r '.addrs[0]'`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			dd, err := a.resolveDataDir()
			if err != nil {
				return err
			}
			if err := a.requireDataDir(dd); err != nil {
				return err
			}
			cfg, err := config.Load(dd.ConfigPath())
			if err != nil {
				return err
			}
			id, err := peerID(dd)
			if err != nil {
				return err
			}
			addrs, notes, err := dialableAddrs(cfg.Network, id)
			if err != nil {
				return err
			}
			for _, n := range notes {
				fmt.Fprintf(a.stderr, "note: %s\n", n)
			}
			if a.jsonOutput() {
				return printValue(a.stdout, struct {
					ID    string   `json:"id"`
					Addrs []string `json:"addrs"`
				}{id.String(), addrs})
			}
			fmt.Fprintf(a.stdout, "peer id: %s\n", id)
			for _, s := range addrs {
				fmt.Fprintf(a.stdout, "address: %s\n", s)
			}
			return nil
		},
	}
	return cmd
}

// requireDataDir returns an error unless dd exists.
func (a *app) requireDataDir(dd config.DataDir) error {
	if _, err := os.Stat(dd.Path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("data directory %s does not exist; create it with: %s", dd.Path, a.command(dd, "init"))
	}
	return nil
}

// p2pAddrs returns each of addrs with /p2p/<id> appended.
func p2pAddrs(addrs []string, id peer.ID) ([]string, error) {
	p2p, err := multiaddr.NewComponent("p2p", id.String())
	if err != nil {
		return nil, fmt.Errorf("peer id %s: %w", id, err)
	}
	out := make([]string, 0, len(addrs))
	for _, s := range addrs {
		a, err := multiaddr.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("listen address %q: %w", s, err)
		}
		out = append(out, a.Encapsulate(p2p).String())
	}
	return out, nil
}

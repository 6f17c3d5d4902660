package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/clearinghouse-net/clearinghouse/config"
	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/node/api"
)

// newPublic is the "public" command group: the node's block list of
// relaying keys (docs/protocol.md 8.9, docs/operations.md).
func newPublic(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "public", Short: "Manage the block list of nodes that relay public comments", Args: noArgs,
		Long: `Public comments are signed by the node (member or observer) that took them
through its web page, so every comment has a node that answers for it. When a
node relays abuse, block its key on your node: your node keeps storing that
key's records on public topics (so the federation's record sets stay the same
and sync never fetches them again), but it no longer forwards them by gossip
and its pages no longer show them. Nothing changes on other nodes: a block is
your node's policy, not a protocol rule. Find the key on the comment's record
page (/records/CID: the author) or in "record get CID" (author).

Blocks made with "public block" are kept in the node's store across restarts.
An observer's API has no write routes: on an observer, list keys in
public.blocked of config.toml and restart.`,
		Example: "  clearinghouse public blocks\n  clearinghouse public block 12D3KooW... --reason 'relays spam'\n  clearinghouse public unblock 12D3KooW..."}
	cmd.AddCommand(newPublicBlocks(a), newPublicBlock(a), newPublicUnblock(a))
	return cmd
}

func newPublicBlocks(a *app) *cobra.Command {
	return readCmd(a, "blocks", "List the relaying keys this node blocks", "  clearinghouse public blocks\n  clearinghouse public blocks --json", noArgs,
		func(ctx context.Context, c *apiClient, w io.Writer, asJSON bool, _ []string) error {
			var v []api.BlockView
			b, err := c.get(ctx, "/public/blocks", &v)
			if err != nil || asJSON {
				return printOr(w, b, err)
			}
			t := a.newTable(w, "no relaying key is blocked", "peer id", "blocked", "by", "reason")
			for _, e := range v {
				by := "operator"
				if e.Config {
					by = "config"
				}
				when := ""
				if e.Since != "" {
					when = humanTime(parseAPITime(e.Since), a.now())
				}
				t.row(e.Peer, when, by, e.Reason)
			}
			return t.flush()
		})
}

// relayKeyArg checks a KEY argument before anything is sent.
func relayKeyArg(s string) error {
	if _, err := config.ParseRelayKey(s); err != nil {
		return &usageError{fmt.Errorf("KEY: %w", err)}
	}
	return nil
}

// observerHint explains a 403 from an observer's API.
func observerHint(err error) error {
	if isAPICode(err, api.CodeObserver) {
		return fmt.Errorf("%w; on an observer, list the key in public.blocked of config.toml and restart it", err)
	}
	return err
}

func newPublicBlock(a *app) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use: "block KEY", Short: "Stop forwarding and showing the public records a node relays",
		Long: `Block a relaying key: from now on this node stores that key's records on
public topics (public.comment, and public.response if a member's key is
blocked) but neither forwards them by gossip nor shows them on its pages; the
ones already stored leave the pages at once. Records of that key on other
topics (a member's part in a process) are never affected. KEY is the node's
peer id (12D3KooW...) or its ed25519 public key in 64 hex digits. The block
is kept in the node's store until "public unblock"; blocking a key again
replaces its reason. A node cannot block its own key. Each withheld record is
counted in clearinghouse_public_withheld_total.`,
		Example: "  clearinghouse public block 12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA --reason 'relays spam'",
		Args:    argsN(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := relayKeyArg(args[0]); err != nil {
				return err
			}
			c, err := a.writeClient(cmd.Context())
			if err != nil {
				return err
			}
			b, err := c.do(cmd.Context(), http.MethodPut, "/public/blocks/"+url.PathEscape(args[0]), api.BlockRequest{Reason: reason})
			if err != nil {
				return observerHint(err)
			}
			if a.jsonOutput() {
				printJSON(a.stdout, b)
				return nil
			}
			var v api.BlockView
			if err := json.Unmarshal(b, &v); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "blocked %s (key %s)\n", v.Peer, v.Key)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", fmt.Sprintf("why (shown by \"public blocks\"; at most %d bytes)", node.MaxBlockReason))
	return cmd
}

func newPublicUnblock(a *app) *cobra.Command {
	return &cobra.Command{
		Use: "unblock KEY", Short: "Forward and show a relaying key's public records again",
		Long: `Lift a block made with "public block": the node forwards and shows the key's
public records again, and those stored meanwhile reappear on its pages (gossip
does not resend them; peers that lack them get them by sync). A key listed in
public.blocked of config.toml cannot be unblocked this way: remove it there
and restart. Unblocking a key that is not blocked does nothing.`,
		Example: "  clearinghouse public unblock 12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
		Args:    argsN(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := relayKeyArg(args[0]); err != nil {
				return err
			}
			c, err := a.writeClient(cmd.Context())
			if err != nil {
				return err
			}
			b, err := c.do(cmd.Context(), http.MethodDelete, "/public/blocks/"+url.PathEscape(args[0]), nil)
			if err != nil {
				return observerHint(err)
			}
			if a.jsonOutput() {
				printJSON(a.stdout, b)
				return nil
			}
			fmt.Fprintf(a.stdout, "unblocked %s\n", args[0])
			return nil
		},
	}
}

package cli

import (
	"encoding/base64"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// newMember returns the member command group: the membership records of
// docs/operations.md section 4, published through the node's API and
// signed by its key, and the member list.
func newMember(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "member", Short: "Apply for membership, endorse, rotate, revoke, suspend, recover, withdraw, list", Args: noArgs,
		Example: "  clearinghouse member apply --org \"Example NGO\" --group civil-society --region africa --statement \"...\"\n" +
			"  clearinghouse member endorse bafyrei...\n  clearinghouse member list"}
	list := newMembers(a)
	list.Use, list.Short = "list", "List the federation's current members"
	list.Example = "  clearinghouse member list\n  clearinghouse member list --json"
	list.Long = "List the federation's current members: organisation, group, region and current key."
	cmd.AddCommand(newMemberApply(a), newMemberEndorse(a), newMemberRotate(a), newMemberVote(a, "revoke"),
		newMemberVote(a, "suspend"), newMemberRecover(a), newMemberWithdraw(a), list)
	return cmd
}

// memberPublish publishes one members-topic record and prints its kind and
// CID.
func (a *app) memberPublish(cmd *cobra.Command, kind string, body map[string]any, deps ...string) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	return a.published(c.publish(cmd.Context(), kind, protocol.TopicMembers, body, deps...))
}

// keyJSON parses a key given as 64 hex digits or a peer id and returns it
// as the API's JSON bytes (base64).
func keyJSON(flag, s string) (string, error) {
	k, err := parseFounderKey(s)
	if err != nil {
		return "", &usageError{fmt.Errorf("%s: %w", flag, err)}
	}
	return base64.StdEncoding.EncodeToString(k), nil
}

func newMemberApply(a *app) *cobra.Command {
	var org, group, region, contact, statement string
	cmd := &cobra.Command{
		Use: "apply", Short: "Apply for membership (signed by this node's key, which becomes the member key)", Args: noArgs,
		Example: `  clearinghouse member apply --org "Example NGO" --group civil-society --region africa \
    --contact ops@example.org --statement "We run community networks."`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.memberPublish(cmd, protocol.KindMemberApply, map[string]any{
				"org": org, "group": group, "region": region, "contact": contact, "statement": statement})
		},
	}
	cmd.Flags().StringVar(&org, "org", "", "organisation name (required)")
	cmd.Flags().StringVar(&group, "group", "", "stakeholder group, one of the genesis's (required)")
	cmd.Flags().StringVar(&region, "region", "", "region, one of the genesis's (required)")
	cmd.Flags().StringVar(&contact, "contact", "", "contact address")
	cmd.Flags().StringVar(&statement, "statement", "", "why the organisation applies (required)")
	for _, f := range []string{"org", "group", "region", "statement"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}

func newMemberEndorse(a *app) *cobra.Command {
	return &cobra.Command{
		Use: "endorse APPLICATION", Short: "Endorse a membership application (its member.apply CID)", Args: argsN(1),
		Example: "  clearinghouse member endorse bafyrei...",
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.memberPublish(cmd, protocol.KindMemberEndorse, map[string]any{"application": link(args[0])}, args[0])
		},
	}
}

func newMemberRotate(a *app) *cobra.Command {
	var newKey string
	cmd := &cobra.Command{
		Use: "rotate", Short: "Replace this member's key (signed by the current key); then restart the node on the new key", Args: noArgs,
		Example: "  clearinghouse member rotate --new-key 12D3KooW...",
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := keyJSON("--new-key", newKey)
			if err != nil {
				return err
			}
			return a.memberPublish(cmd, protocol.KindMemberRotate, map[string]any{"newKey": k})
		},
	}
	cmd.Flags().StringVar(&newKey, "new-key", "", "the new key: a peer id or 64 hex digits (required)")
	_ = cmd.MarkFlagRequired("new-key")
	return cmd
}

// newMemberVote returns member revoke or member suspend: a vote against a
// member's key.
func newMemberVote(a *app, what string) *cobra.Command {
	var reason string
	kind, short := protocol.KindMemberRevoke, "Vote to revoke a member's key (without replacement: the member is removed)"
	if what == "suspend" {
		kind, short = protocol.KindMemberSuspend, "Vote to suspend (remove) the member whose current key is KEY"
	}
	cmd := &cobra.Command{
		Use: what + " KEY", Short: short, Args: argsN(1),
		Example: "  clearinghouse member " + what + " 12D3KooW... --reason \"...\"",
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := keyJSON("KEY", args[0])
			if err != nil {
				return err
			}
			body := map[string]any{"key": k, "reason": reason}
			if kind == protocol.KindMemberRevoke {
				body["replacement"] = nil
			}
			return a.memberPublish(cmd, kind, body)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (required)")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

func newMemberRecover(a *app) *cobra.Command {
	var replacement, reason string
	cmd := &cobra.Command{
		Use: "recover KEY", Short: "Vote to replace a member's lost or stolen key by a replacement key", Args: argsN(1),
		Example: "  clearinghouse member recover 12D3KooWOld... --replacement 12D3KooWNew... --reason \"key lost\"",
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := keyJSON("KEY", args[0])
			if err != nil {
				return err
			}
			r, err := keyJSON("--replacement", replacement)
			if err != nil {
				return err
			}
			return a.memberPublish(cmd, protocol.KindMemberRevoke, map[string]any{"key": k, "reason": reason, "replacement": r})
		},
	}
	cmd.Flags().StringVar(&replacement, "replacement", "", "the member's new key: a peer id or 64 hex digits (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (required)")
	_ = cmd.MarkFlagRequired("replacement")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

func newMemberWithdraw(a *app) *cobra.Command {
	var statement string
	cmd := &cobra.Command{
		Use: "withdraw", Short: "Leave the federation (this node's member)", Args: noArgs,
		Example: "  clearinghouse member withdraw --statement \"We are closing.\"",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.memberPublish(cmd, protocol.KindMemberWithdraw, map[string]any{"statement": statement})
		},
	}
	cmd.Flags().StringVar(&statement, "statement", "", "a public statement")
	return cmd
}

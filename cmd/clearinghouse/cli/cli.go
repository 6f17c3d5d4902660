package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/clearinghouse-net/clearinghouse/config"
)

// Main runs the clearinghouse command line with args (without the program
// name), writing results to stdout and errors to stderr, and returns the
// process exit status: 0 on success, 1 on any error. Cancelling ctx stops a
// running command, such as run, cleanly.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return execute(ctx, NewRootCommand(stdout, stderr), args, stderr)
}

// execute runs root with args and prints its error, if any, to stderr.
func execute(ctx context.Context, root *cobra.Command, args []string, stderr io.Writer) int {
	if args == nil {
		args = []string{} // cobra reads os.Args when given nil
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintf(stderr, "clearinghouse: %s\n", line)
	}
	var ue *usageError
	if errors.As(err, &ue) && cmd != nil {
		fmt.Fprintf(stderr, "\n%s", cmd.UsageString())
	}
	return 1
}

// NewRootCommand returns the clearinghouse command with all its
// subcommands, writing results to stdout and errors and usage to stderr.
// Each call returns a fresh command tree; run it with ExecuteContext, or
// use Main, which also prints errors.
func NewRootCommand(stdout, stderr io.Writer) *cobra.Command {
	return newRoot(&app{stdout: stdout, stderr: stderr, start: startNode})
}

// app is the state shared by the commands of one command tree.
type app struct {
	stdout, stderr io.Writer
	// dataDir is the --data-dir flag.
	dataDir string
	// apiURL and token are the --api and --token flags of the client
	// commands.
	apiURL, token string
	// start starts a node; tests replace it.
	start startFunc
	// clock, if set, replaces the nodes' clock in `testnet` (tests).
	clock func() time.Time
}

// resolveDataDir returns the data directory from --data-dir, the
// environment or the default.
func (a *app) resolveDataDir() (config.DataDir, error) {
	p, err := config.ResolveDataDir(a.dataDir)
	return config.DataDir{Path: p}, err
}

func newRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "clearinghouse",
		Short: "A federation of peer nodes for multistakeholder Internet policy processes",
		Long: `clearinghouse runs a node of a clearing house for international Internet
public policy: a federation of peer nodes, one per stakeholder organisation,
that publish signed, content-addressed process records on one gossip topic per
issue. Every node keeps and verifies its own copy; no node is special.

A node keeps its configuration, identity key and records in a data directory:
--data-dir, else $` + config.EnvDataDir + `, else ~/` + config.DefaultDirName + `.`,
		Example: `  clearinghouse init
  clearinghouse run
  clearinghouse --data-dir /srv/clearinghouse id --json`,
		Args:          rootArgs,
		RunE:          func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
		// As cobra's own default, which it applies only when it finds
		// unknown commands itself.
		SuggestionsMinimumDistance: 2,
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetVersionTemplate(versionLine() + "\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.PersistentFlags().StringVar(&a.dataDir, "data-dir", "",
		"data directory (default $"+config.EnvDataDir+" or ~/"+config.DefaultDirName+")")

	root.PersistentFlags().StringVar(&a.apiURL, "api", "",
		"URL of the node API for client commands (default from api.listen in the data directory's config)")
	root.PersistentFlags().StringVar(&a.token, "token", "",
		"API token for writes (default: api.token in the data directory)")

	root.AddCommand(
		newInitCommand(a),
		newRunCommand(a),
		newIDCommand(a),
		newVersionCommand(a),
		newGenesisCommand(a),
		newTestnetCommand(a),
		newBackupCommand(a),
		newRestoreCommand(a),
	)
	root.AddCommand(clientCommands(a)...)
	return root
}

// usageError is an error in the command line itself, shown with the
// command's usage.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// rootArgs rejects an unknown command. (cobra only does so itself for a
// root command that cannot run.)
func rootArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q", args[0])
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %q?)", s[0])
	}
	return &usageError{errors.New(msg)}
}

// noArgs rejects positional arguments.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &usageError{fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args[0])}
	}
	return nil
}

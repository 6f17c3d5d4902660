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
// process exit status: 0 on success, 2 when the command line itself is
// wrong (an unknown command or flag, a bad argument count or flag value),
// 1 on any other error. Cancelling ctx stops a running command, such as
// run, cleanly.
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
		return exitOK
	}
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintf(stderr, "clearinghouse: %s\n", line)
	}
	var ue *usageError
	if errors.As(err, &ue) {
		if cmd != nil {
			fmt.Fprintf(stderr, "\n%s", cmd.UsageString())
		}
		return exitUsage
	}
	return exitError
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
	// clock, if set, replaces the nodes' clock in `testnet` and the
	// clients' "now" (tests).
	clock func() time.Time
	// output is the --output format (formatText or formatJSON); --json
	// sets it to formatJSON.
	output string
	// noColor is --no-color.
	noColor bool
}

// resolveDataDir returns the data directory from --data-dir, the
// environment or the default.
func (a *app) resolveDataDir() (config.DataDir, error) {
	p, err := config.ResolveDataDir(a.dataDir)
	return config.DataDir{Path: p}, err
}

// command returns the command line that runs args on the data directory
// dd, as hints print it: with --data-dir unless dd is the default one, so
// that it works as printed.
func (a *app) command(dd config.DataDir, args ...string) string {
	parts := []string{progName()}
	if def, err := config.ResolveDataDir(""); a.dataDir != "" || err != nil || def != dd.Path {
		parts = append(parts, "--data-dir", shellQuote(dd.Path))
	}
	return strings.Join(append(parts, args...), " ")
}

// shellQuote quotes s for a POSIX shell if it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
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
--data-dir, else $` + config.EnvDataDir + `, else ~/` + config.DefaultDirName + `.

Output: text for people (tables with headers, times in UTC with how long ago),
or JSON with --json (-o json): one JSON value, times in RFC 3339, field names
stable between versions. Colour only on a terminal, never with $NO_COLOR set
or --no-color. Errors go to stderr, one "clearinghouse: ..." line each.

Exit status: 0 done; 1 error (the node, the network, a file, the input's
content); 2 usage (an unknown command or flag, a wrong argument count).

Shell completion: clearinghouse completion bash|zsh|fish|powershell --help.`,
		Example: `  clearinghouse init
  clearinghouse run
  clearinghouse --data-dir /srv/clearinghouse id --json
  source <(clearinghouse completion bash)`,
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

	var asJSON bool
	root.PersistentFlags().BoolVar(&asJSON, "json", false, "print JSON instead of text (the same as --output json)")
	root.PersistentFlags().StringVarP(&a.output, "output", "o", formatText, "output format: text or json")
	root.PersistentFlags().BoolVar(&a.noColor, "no-color", false, "no colour in the output (also when $NO_COLOR is set)")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if asJSON {
			a.output = formatJSON
		}
		if a.output != formatText && a.output != formatJSON {
			return &usageError{fmt.Errorf("--output %q: want text or json", a.output)}
		}
		return nil
	}

	root.AddCommand(
		newInitCommand(a),
		newRunCommand(a),
		newIDCommand(a),
		newVersionCommand(a),
		newGenesisCommand(a),
		newTestnetCommand(a),
		newWebCommand(a),
		newBackupCommand(a),
		newRestoreCommand(a),
	)
	root.AddCommand(clientCommands(a)...)
	root.AddCommand(openDataCommands(a)...)
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

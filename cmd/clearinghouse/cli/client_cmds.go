package cli

import (
	"bufio"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"

	"github.com/clearinghouse-net/clearinghouse/node/api"
	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// clientCommands returns the commands that talk to a running node.
func clientCommands(a *app) []*cobra.Command {
	issue := &cobra.Command{Use: "issue", Short: "Open, list and follow issues", Args: noArgs,
		Example: "  clearinghouse issue list\n  clearinghouse issue open privacy --title Privacy"}
	issue.AddCommand(newIssueOpen(a), newIssueList(a), newIssueFollow(a), newIssueUnfollow(a))
	process := &cobra.Command{Use: "process", Short: "Start, list and show processes", Args: noArgs,
		Example: "  clearinghouse process list privacy\n  clearinghouse process charter --file charter.toml"}
	process.AddCommand(newProcessCharter(a), newProcessList(a), newProcessShow(a))
	proposal := &cobra.Command{Use: "proposal", Short: "Submit proposals", Args: noArgs,
		Example: "  clearinghouse proposal submit --file proposal.toml"}
	proposal.AddCommand(newProposalSubmit(a))
	record := &cobra.Command{Use: "record", Short: "Read records", Args: noArgs,
		Example: "  clearinghouse record get bafyrei..."}
	record.AddCommand(newRecordGet(a))
	reads := []*cobra.Command{newStatus(a), newPeers(a), newMembers(a), issue, process, proposal, record, newAudit(a), newWatch(a), newPublic(a)}
	writes := []*cobra.Command{newSync(a), newMember(a), newFeedback(a), newObject(a), newRespond(a), newEndorse(a), newWithdraw(a),
		newDecide(a), newDelegate(a), newReport(a), newConclude(a), newStage(a), newNotice(a)}
	for _, c := range reads {
		documentClient(c, false)
	}
	for _, c := range writes {
		documentClient(c, true)
	}
	return append(reads, writes...)
}

// readCmd builds a read command. run gets the client and whether --json
// (or --output json) was given.
func readCmd(a *app, use, short, example string, args cobra.PositionalArgs, run func(ctx context.Context, c *apiClient, w io.Writer, asJSON bool, args []string) error) *cobra.Command {
	cmd := &cobra.Command{
		Use: use, Short: short, Example: example, Args: args,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			return run(cmd.Context(), c, a.stdout, a.jsonOutput(), args)
		},
	}
	return cmd
}

// argsN is cobra.ExactArgs as a usage error.
func argsN(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return &usageError{fmt.Errorf("%s takes %s, got %d", cmd.CommandPath(), plural(n, "argument"), len(args))}
		}
		return nil
	}
}

func newStatus(a *app) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use: "status", Short: "Show the running node's status",
		Example: "  clearinghouse status\n  clearinghouse status --json\n  clearinghouse status --wait 30s",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var s api.StatusView
			get := func() ([]byte, error) {
				c, err := a.client()
				if err != nil {
					return nil, err
				}
				return c.get(ctx, "/status", &s)
			}
			b, err := get()
			// --wait: a node that is still starting may not have written
			// its data directory yet, and refuses connections; ask again
			// (reading the directory again) until it answers or the wait
			// is over.
			if wait > 0 {
				deadline := time.NewTimer(wait)
				defer deadline.Stop()
				tick := time.NewTicker(200 * time.Millisecond)
				defer tick.Stop()
				var nr *notReadyError
				for err != nil && (isConnRefused(err) || errors.As(err, &nr)) {
					select {
					case <-deadline.C:
						return fmt.Errorf("node did not answer within %s: %w", humanDuration(wait), err)
					case <-ctx.Done():
						return ctx.Err()
					case <-tick.C:
					}
					b, err = get()
				}
			}
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				printJSON(a.stdout, b)
				return nil
			}
			printStatus(a.stdout, s, a.now())
			printNet(a.stdout, s)
			return nil
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 0, "wait up to this long for a node that is still starting")
	return cmd
}

func newPeers(a *app) *cobra.Command {
	return readCmd(a, "peers", "List the connected peers", "  clearinghouse peers\n  clearinghouse peers --json", noArgs,
		func(ctx context.Context, c *apiClient, w io.Writer, asJSON bool, _ []string) error {
			var v struct{ Peers []api.PeerView }
			b, err := c.get(ctx, "/peers", &v)
			if err != nil || asJSON {
				return printOr(w, b, err)
			}
			t := a.newTable(w, "no connected peers", "peer id", "addresses")
			for _, p := range v.Peers {
				t.row(p.ID, strings.Join(p.Addrs, " "))
			}
			return t.flush()
		})
}

// printOr prints b if err is nil and returns err.
func printOr(w io.Writer, b []byte, err error) error {
	if err == nil {
		printJSON(w, b)
	}
	return err
}

func newMembers(a *app) *cobra.Command {
	return readCmd(a, "members", "List the federation's members", "  clearinghouse members\n  clearinghouse members --json", noArgs,
		func(ctx context.Context, c *apiClient, w io.Writer, asJSON bool, _ []string) error {
			var v struct{ Members []api.MemberView }
			b, err := c.get(ctx, "/members", &v)
			if err != nil || asJSON {
				return printOr(w, b, err)
			}
			// By organisation, as people look them up; the API's order
			// (by key) is kept in --json.
			slices.SortStableFunc(v.Members, func(x, y api.MemberView) int {
				return cmp.Or(strings.Compare(strings.ToLower(x.Org), strings.ToLower(y.Org)), strings.Compare(x.Key, y.Key))
			})
			t := a.newTable(w, "no members", "org", "group", "region", "key")
			for _, m := range v.Members {
				t.row(m.Org, m.Group, m.Region, m.Key)
			}
			return t.flush()
		})
}

func newIssueOpen(a *app) *cobra.Command {
	var title, summary string
	cmd := &cobra.Command{
		Use: "open SLUG", Short: "Open an issue on the federation's index",
		Example: `  clearinghouse issue open privacy --title "Privacy" --summary "Cross-border data flows"`,
		Args:    argsN(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.writeClient(cmd.Context())
			if err != nil {
				return err
			}
			// Opening an open issue again changes nothing: say so and
			// succeed, so that a script (such as the README's tour) can
			// run again on the same federation.
			var open struct{ Issues []api.IssueView }
			if _, err := c.get(cmd.Context(), "/issues", &open); err != nil {
				return err
			}
			for _, i := range open.Issues {
				if i.Slug != args[0] {
					continue
				}
				if a.jsonOutput() {
					var v api.RecordView
					if _, err := c.get(cmd.Context(), "/records/"+url.PathEscape(i.Open), &v); err != nil {
						return err
					}
					return printValue(a.stdout, &v)
				}
				fmt.Fprintf(a.stdout, "issue %s is already open: %s (opened by %s, %s)\n", i.Slug, i.Open, i.Author.Org,
					humanTime(parseAPITime(i.Time), a.now()))
				return nil
			}
			r, err := c.publish(cmd.Context(), protocol.KindIssueOpen, protocol.TopicIndex,
				map[string]any{"slug": args[0], "title": title, "summary": summary})
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return printValue(a.stdout, r)
			}
			fmt.Fprintf(a.stdout, "opened issue %s: %s\n", args[0], r.CID)
			return nil
		},
	}
	cmd.Flags().StringVar(&title, "title", "", "issue title (required)")
	cmd.Flags().StringVar(&summary, "summary", "", "one-paragraph summary")
	_ = cmd.MarkFlagRequired("title")
	return cmd
}

func newIssueList(a *app) *cobra.Command {
	return readCmd(a, "list", "List the open issues", "  clearinghouse issue list", noArgs,
		func(ctx context.Context, c *apiClient, w io.Writer, asJSON bool, _ []string) error {
			var v struct{ Issues []api.IssueView }
			b, err := c.get(ctx, "/issues", &v)
			if err != nil || asJSON {
				return printOr(w, b, err)
			}
			t := a.newTable(w, "no open issues (open one with: issue open SLUG --title TITLE)", "slug", "title", "following", "opened by", "opened")
			for _, i := range v.Issues {
				t.row(i.Slug, i.Title, yesNo(i.Following), i.Author.Org, humanTime(parseAPITime(i.Time), a.now()))
			}
			return t.flush()
		})
}

func newIssueFollow(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use: "follow SLUG", Short: "Make the node follow an issue's topic, also after restarts",
		Long: `Make the node join an issue's topic: it receives, stores and forwards the
issue's records from now on and fetches its history from its peers. The node
remembers the follow in its store and follows the issue again after a restart,
until "issue unfollow". (Issues in topics.follow of config.toml are always
followed.)

An issue that is not open on the federation's index (see "issue list") is
refused, as a typo would otherwise be followed for good; --force follows it
anyway, for an issue opened where this node has not caught up yet.`,
		Example: "  clearinghouse issue follow privacy\n  clearinghouse issue follow dns --force",
		Args:    argsN(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.writeClient(cmd.Context())
			if err != nil {
				return err
			}
			path := "/issues/" + url.PathEscape(args[0]) + "/follow"
			if force {
				path += "?force=true"
			}
			if _, err := c.do(cmd.Context(), http.MethodPost, path, nil); err != nil {
				if isAPICode(err, api.CodeNotFound) {
					return fmt.Errorf("issue %q is not open on this federation's index (see: %s issue list); "+
						"follow it anyway with: %s issue follow %s --force", args[0], progName(), progName(), args[0])
				}
				return err
			}
			if a.jsonOutput() {
				return printValue(a.stdout, followJSON{Topic: protocol.IssueTopic(args[0]), Following: true})
			}
			fmt.Fprintf(a.stdout, "following %s\n", protocol.IssueTopic(args[0]))
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "follow an issue that is not open on the index (yet)")
	return cmd
}

func newIssueUnfollow(a *app) *cobra.Command {
	return &cobra.Command{
		Use: "unfollow SLUG", Short: "Make the node stop following an issue's topic",
		Long: `Make the node leave an issue's topic: it stops receiving, forwarding and
syncing the issue's records, and forgets an earlier "issue follow". The records
it holds stay in its store and readable. An issue listed in topics.follow of
config.toml cannot be unfollowed this way: remove it there and restart.`,
		Example: "  clearinghouse issue unfollow privacy",
		Args:    argsN(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.writeClient(cmd.Context())
			if err != nil {
				return err
			}
			if _, err := c.do(cmd.Context(), http.MethodDelete, "/issues/"+url.PathEscape(args[0])+"/follow", nil); err != nil {
				return err
			}
			if a.jsonOutput() {
				return printValue(a.stdout, followJSON{Topic: protocol.IssueTopic(args[0]), Following: false})
			}
			fmt.Fprintf(a.stdout, "not following %s\n", protocol.IssueTopic(args[0]))
			return nil
		},
	}
}

// charterFile is the TOML form of a charter (see docs/examples/charter.toml).
type charterFile struct {
	Issue        string   `toml:"issue"`
	Title        string   `toml:"title"`
	Aim          string   `toml:"aim"`
	Purpose      string   `toml:"purpose"`
	Scope        []string `toml:"scope"`
	Modalities   string   `toml:"modalities"`
	Significance string   `toml:"significance"`
	// Convenors are hex ed25519 keys; "self" is this node's key.
	Convenors  []string `toml:"convenors"`
	Background []string `toml:"background"`
	// Phases' start and end are decoded as any: charterTime checks them,
	// so that a wrong one gets a message that names it.
	Phases []struct {
		Stage string `toml:"stage"`
		Start any    `toml:"start"`
		End   any    `toml:"end"`
	} `toml:"phases"`
	MinNoticeSeconds int64 `toml:"minNoticeSeconds"`
	WindowSeconds    int64 `toml:"windowSeconds"`
	Rule             struct {
		Name      string `toml:"name"`
		Threshold int    `toml:"threshold"`
		Group     string `toml:"group"`
	} `toml:"rule"`
	Mandate string `toml:"mandate"`
}

// charterTime reads the time at key of a charter file: a TOML offset
// date-time. A local date or time, whose meaning depends on the time zone
// of the machine, and a string are refused with a message that says what
// to write.
func charterTime(file, key string, v any) (time.Time, error) {
	const want = "write a TOML date-time with its offset, unquoted, such as 2027-02-01T00:00:00Z (UTC) or 2027-02-01T09:00:00+01:00"
	switch x := v.(type) {
	case nil:
		return time.Time{}, fmt.Errorf("%s: %s is missing: %s", file, key, want)
	case time.Time:
		// The toml package gives local values these zone names.
		if layout, ok := localLayouts[x.Location().String()]; ok {
			return time.Time{}, fmt.Errorf("%s: %s = %s has no time zone offset, so it would mean different times on different machines: %s",
				file, key, x.Format(layout), want)
		}
		return x, nil
	case string:
		return time.Time{}, fmt.Errorf("%s: %s = %q is a string, not a date-time: %s", file, key, x, want)
	default:
		return time.Time{}, fmt.Errorf("%s: %s = %v is not a date-time: %s", file, key, x, want)
	}
}

// localLayouts are the layouts of the TOML local date-time, date and
// time, by the zone name the toml package gives them.
var localLayouts = map[string]string{
	"datetime-local": "2006-01-02T15:04:05",
	"date-local":     "2006-01-02",
	"time-local":     "15:04:05",
}

// tomlLinePrefix is the location prefix of the toml package's own error
// messages: `toml: line 5 (last key "phases.start"): `.
var tomlLinePrefix = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): `)

// decodeTOML reads a TOML file strictly: unknown keys are an error.
func decodeTOML(path string, v any) error {
	md, err := toml.DecodeFile(path, v)
	var pe toml.ParseError
	switch {
	case errors.As(err, &pe):
		// "FILE:LINE: KEY: PROBLEM", as config errors read.
		key := ""
		if pe.LastKey != "" {
			key = pe.LastKey + ": "
		}
		return fmt.Errorf("%s:%d: %s%s", path, pe.Position.Line, key, pe.Message)
	case err != nil:
		if m := tomlLinePrefix.FindStringSubmatch(err.Error()); m != nil {
			return fmt.Errorf("%s:%s: %s: %s", path, m[1], m[2], err.Error()[len(m[0]):])
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		return fmt.Errorf("%s: unknown key %s", path, u[0])
	}
	return nil
}

func links(cs []string) []any {
	out := []any{}
	for _, c := range cs {
		out = append(out, link(c))
	}
	return out
}

func optLink(c string) any {
	if c == "" {
		return nil
	}
	return link(c)
}

func newProcessCharter(a *app) *cobra.Command {
	var file, issue string
	cmd := &cobra.Command{
		Use: "charter", Short: "Start a process on an issue from a charter file",
		Long: `Start a process: publish a process.charter record from a TOML file (see
docs/examples/charter.toml). Convenors are hex keys; "self" is this node's key.
A charter needs convenors from at least two stakeholder groups.`,
		Example: "  clearinghouse process charter --file charter.toml\n  clearinghouse process charter --file charter.toml --issue privacy",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var f charterFile
			if err := decodeTOML(file, &f); err != nil {
				return err
			}
			if issue != "" {
				f.Issue = issue
			}
			if f.Issue == "" {
				return &usageError{errors.New("the charter file names no issue; give --issue SLUG")}
			}
			if strings.TrimSpace(f.Aim) == "" {
				return fmt.Errorf("%s: the charter states no aim: write aim = \"...\", what the process means to achieve (principle P2: notice of aim, purpose, modalities and significance)", file)
			}
			phases := []any{}
			for i, p := range f.Phases {
				start, err := charterTime(file, fmt.Sprintf("phases[%d].start", i), p.Start)
				if err != nil {
					return err
				}
				end, err := charterTime(file, fmt.Sprintf("phases[%d].end", i), p.End)
				if err != nil {
					return err
				}
				phases = append(phases, map[string]any{"stage": p.Stage, "start": start.UnixMilli(), "end": end.UnixMilli()})
			}
			c, err := a.writeClient(cmd.Context())
			if err != nil {
				return err
			}
			var convenors []string
			for _, k := range f.Convenors {
				if k == "self" {
					var s api.StatusView
					if _, err := c.get(cmd.Context(), "/status", &s); err != nil {
						return err
					}
					k = s.Key
				}
				raw, err := hex.DecodeString(k)
				if err != nil {
					return fmt.Errorf("%s: convenor %q is not a hex key", file, k)
				}
				convenors = append(convenors, base64.StdEncoding.EncodeToString(raw))
			}
			scope := f.Scope
			if scope == nil {
				scope = []string{}
			}
			body := map[string]any{
				"title": f.Title, "aim": f.Aim, "purpose": f.Purpose, "scope": scope,
				"modalities": f.Modalities, "significance": f.Significance, "convenors": convenors,
				"background": links(f.Background), "phases": phases,
				"minNoticeSeconds": f.MinNoticeSeconds, "windowSeconds": f.WindowSeconds,
				"rule":    map[string]any{"name": f.Rule.Name, "threshold": f.Rule.Threshold, "group": f.Rule.Group},
				"mandate": optLink(f.Mandate),
			}
			r, err := c.publish(cmd.Context(), protocol.KindCharter, protocol.IssueTopic(f.Issue), body)
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return printValue(a.stdout, r)
			}
			fmt.Fprintf(a.stdout, "process %s on %s\n", r.CID, r.Topic)
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "charter TOML file (required)")
	cmd.Flags().StringVar(&issue, "issue", "", "issue slug, overriding the file's issue")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func newProcessList(a *app) *cobra.Command {
	return readCmd(a, "list SLUG", "List the processes of an issue", "  clearinghouse process list privacy", argsN(1),
		func(ctx context.Context, c *apiClient, w io.Writer, asJSON bool, args []string) error {
			var v struct{ Processes []api.ProcessView }
			b, err := c.get(ctx, "/issues/"+url.PathEscape(args[0])+"/processes", &v)
			if err != nil || asJSON {
				return printOr(w, b, err)
			}
			t := a.newTable(w, "no processes on issue "+args[0], "process", "stage", "records", "title")
			for _, p := range v.Processes {
				t.row(p.CID, p.Stage, p.Records, p.Title)
			}
			return t.flush()
		})
}

func newProcessShow(a *app) *cobra.Command {
	return readCmd(a, "show CID", "Show the derived state of a process", "  clearinghouse process show bafyrei...", argsN(1),
		func(ctx context.Context, c *apiClient, w io.Writer, asJSON bool, args []string) error {
			var p api.ProcessView
			b, err := c.get(ctx, "/processes/"+url.PathEscape(args[0]), &p)
			if isAPICode(err, api.CodeNotFound) {
				return c.notAProcess(ctx, args[0])
			}
			if err != nil || asJSON {
				return printOr(w, b, err)
			}
			printProcess(w, p)
			return nil
		})
}

// proposalFile is the TOML form of a proposal (see docs/examples/proposal.toml).
type proposalFile struct {
	Process  string `toml:"process"`
	Version  int    `toml:"version"`
	Replaces string `toml:"replaces"`
	Title    string `toml:"title"`
	Text     string `toml:"text"`
	Clauses  []struct {
		ID   string `toml:"id"`
		Text string `toml:"text"`
	} `toml:"clauses"`
	Rule *struct {
		Name      string `toml:"name"`
		Threshold int    `toml:"threshold"`
		Group     string `toml:"group"`
	} `toml:"rule"`
}

func newProposalSubmit(a *app) *cobra.Command {
	var file, process string
	cmd := &cobra.Command{
		Use: "submit", Short: "Submit a proposal version from a TOML file",
		Example: "  clearinghouse proposal submit --file proposal.toml\n  clearinghouse proposal submit --file proposal.toml --process bafyrei...",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var f proposalFile
			if err := decodeTOML(file, &f); err != nil {
				return err
			}
			if process != "" {
				f.Process = process
			}
			if f.Version == 0 {
				f.Version = 1
			}
			c, err := a.writeClient(cmd.Context())
			if err != nil {
				return err
			}
			ref, err := c.ref(cmd.Context(), f.Process)
			if err != nil {
				return err
			}
			clauses := []any{}
			for _, cl := range f.Clauses {
				clauses = append(clauses, map[string]any{"id": cl.ID, "text": cl.Text})
			}
			body := map[string]any{"process": link(ref.Process), "version": f.Version, "replaces": optLink(f.Replaces),
				"title": f.Title, "text": f.Text, "clauses": clauses, "rule": nil}
			if f.Rule != nil {
				body["rule"] = map[string]any{"name": f.Rule.Name, "threshold": f.Rule.Threshold, "group": f.Rule.Group}
			}
			return a.published(c.publish(cmd.Context(), protocol.KindProposal, ref.Topic, body))
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "proposal TOML file (required)")
	cmd.Flags().StringVar(&process, "process", "", "process (charter CID), overriding the file's")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// published prints the kind and CID of a published record, or its JSON
// view.
func (a *app) published(r *api.RecordView, err error) error {
	if err != nil {
		return err
	}
	if a.jsonOutput() {
		return printValue(a.stdout, r)
	}
	fmt.Fprintf(a.stdout, "%s %s\n", r.Kind, r.CID)
	return nil
}

// processCmd builds a command that publishes one process record about the
// record named by the --<refFlag> flag. body builds the record body from
// the looked-up reference.
func processCmd(a *app, use, short, example, kind, refFlag string, flags func(*cobra.Command), body func(ref recordRef) (map[string]any, error)) *cobra.Command {
	var refCID string
	cmd := &cobra.Command{
		Use: use, Short: short, Example: example, Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.writeClient(cmd.Context())
			if err != nil {
				return err
			}
			ref, err := c.ref(cmd.Context(), refCID)
			if err != nil {
				return err
			}
			b, err := body(ref)
			if err != nil {
				return err
			}
			b["process"] = link(ref.Process)
			return a.published(c.publish(cmd.Context(), kind, ref.Topic, b))
		},
	}
	cmd.Flags().StringVar(&refCID, refFlag, "", refFlag+" CID (required)")
	_ = cmd.MarkFlagRequired(refFlag)
	if flags != nil {
		flags(cmd)
	}
	return cmd
}

func newFeedback(a *app) *cobra.Command {
	var stance, reason, clause string
	return processCmd(a, "feedback", "Give feedback on a proposal version",
		`  clearinghouse feedback --proposal bafyrei... --stance concern --reason "Too broad" --clause 2`,
		protocol.KindFeedback, "proposal",
		func(cmd *cobra.Command) {
			cmd.Flags().StringVar(&stance, "stance", "", "support, neutral, concern or objection (required)")
			cmd.Flags().StringVar(&reason, "reason", "", "why")
			cmd.Flags().StringVar(&clause, "clause", "", "clause id the feedback refers to (default: the whole proposal)")
			_ = cmd.MarkFlagRequired("stance")
		},
		func(ref recordRef) (map[string]any, error) {
			return map[string]any{"proposal": link(ref.CID), "stance": stance, "reason": reason, "clause": clause}, nil
		})
}

func newObject(a *app) *cobra.Command {
	var text string
	return processCmd(a, "object", "File a formal objection to a proposal version",
		`  clearinghouse object --proposal bafyrei... --text "Clause 2 overrides national law"`,
		protocol.KindObjection, "proposal",
		func(cmd *cobra.Command) {
			cmd.Flags().StringVar(&text, "text", "", "the objection (required)")
			_ = cmd.MarkFlagRequired("text")
		},
		func(ref recordRef) (map[string]any, error) {
			return map[string]any{"proposal": link(ref.CID), "text": text}, nil
		})
}

func newRespond(a *app) *cobra.Command {
	var text string
	return processCmd(a, "respond", "Respond publicly to a formal objection",
		`  clearinghouse respond --objection bafyrei... --text "Clause 2 now defers to national law"`,
		protocol.KindResponse, "objection",
		func(cmd *cobra.Command) {
			cmd.Flags().StringVar(&text, "text", "", "the response (required)")
			_ = cmd.MarkFlagRequired("text")
		},
		func(ref recordRef) (map[string]any, error) {
			return map[string]any{"objection": link(ref.CID), "text": text}, nil
		})
}

func newEndorse(a *app) *cobra.Command {
	return processCmd(a, "endorse", "Endorse a proposal version", "  clearinghouse endorse --proposal bafyrei...",
		protocol.KindEndorse, "proposal", nil,
		func(ref recordRef) (map[string]any, error) { return map[string]any{"proposal": link(ref.CID)}, nil })
}

func newWithdraw(a *app) *cobra.Command {
	return processCmd(a, "withdraw", "Withdraw your endorsement of a proposal version", "  clearinghouse withdraw --proposal bafyrei...",
		protocol.KindWithdraw, "proposal", nil,
		func(ref recordRef) (map[string]any, error) { return map[string]any{"proposal": link(ref.CID)}, nil })
}

func newDecide(a *app) *cobra.Command {
	var summary string
	return processCmd(a, "decide", "Record that a proposal version is adopted under the charter's rule",
		`  clearinghouse decide --proposal bafyrei... --summary "Adopted with concurrent majorities"`,
		protocol.KindDecision, "proposal",
		func(cmd *cobra.Command) { cmd.Flags().StringVar(&summary, "summary", "", "summary of the decision") },
		func(ref recordRef) (map[string]any, error) {
			return map[string]any{"proposal": link(ref.CID), "summary": summary}, nil
		})
}

func newDelegate(a *app) *cobra.Command {
	var body, scope, reporting string
	return processCmd(a, "delegate", "Delegate implementation to another body",
		`  clearinghouse delegate --process bafyrei... --body "IETF" --scope "Protocol work" --reporting "Yearly report"`,
		protocol.KindDelegation, "process",
		func(cmd *cobra.Command) {
			cmd.Flags().StringVar(&body, "body", "", "the body implementation is delegated to (required)")
			cmd.Flags().StringVar(&scope, "scope", "", "what is delegated (required)")
			cmd.Flags().StringVar(&reporting, "reporting", "", "the body's duty to report back (required)")
			for _, f := range []string{"body", "scope", "reporting"} {
				_ = cmd.MarkFlagRequired(f)
			}
		},
		func(recordRef) (map[string]any, error) {
			return map[string]any{"body": body, "scope": scope, "reporting": reporting}, nil
		})
}

func newReport(a *app) *cobra.Command {
	var text string
	return processCmd(a, "report", "Report back on a delegation",
		`  clearinghouse report --delegation bafyrei... --text "First year: ..."`,
		protocol.KindReport, "delegation",
		func(cmd *cobra.Command) {
			cmd.Flags().StringVar(&text, "text", "", "the report (required)")
			_ = cmd.MarkFlagRequired("text")
		},
		func(ref recordRef) (map[string]any, error) {
			return map[string]any{"delegation": link(ref.CID), "text": text}, nil
		})
}

func newConclude(a *app) *cobra.Command {
	var summary string
	return processCmd(a, "conclude", "Conclude a process",
		`  clearinghouse conclude --process bafyrei... --summary "Implemented"`,
		protocol.KindConclusion, "process",
		func(cmd *cobra.Command) {
			cmd.Flags().StringVar(&summary, "summary", "", "summary (required)")
			_ = cmd.MarkFlagRequired("summary")
		},
		func(recordRef) (map[string]any, error) { return map[string]any{"summary": summary}, nil })
}

func newStage(a *app) *cobra.Command {
	var to string
	return processCmd(a, "stage", "Move a process to its next stage",
		`  clearinghouse stage --process bafyrei... --to consultation`,
		protocol.KindStage, "process",
		func(cmd *cobra.Command) {
			cmd.Flags().StringVar(&to, "to", "", "consultation, decision, implementation or delegation (required)")
			_ = cmd.MarkFlagRequired("to")
		},
		func(recordRef) (map[string]any, error) { return map[string]any{"to": to}, nil })
}

func newNotice(a *app) *cobra.Command {
	var subject, date, text string
	return processCmd(a, "notice", "Announce a consultation, meeting or decision of a process",
		`  clearinghouse notice --process bafyrei... --subject consultation --date 2027-02-01T00:00:00Z`,
		protocol.KindNotice, "process",
		func(cmd *cobra.Command) {
			cmd.Flags().StringVar(&subject, "subject", "", "consultation, meeting or decision (required)")
			cmd.Flags().StringVar(&date, "date", "", "date of the event: RFC 3339, or +DURATION from now (required)")
			cmd.Flags().StringVar(&text, "text", "", "details")
			_ = cmd.MarkFlagRequired("subject")
			_ = cmd.MarkFlagRequired("date")
		},
		func(recordRef) (map[string]any, error) {
			t, err := parseDate(date, a.now())
			if err != nil {
				return nil, &usageError{fmt.Errorf("--date %q: want RFC 3339 (2027-02-01T00:00:00Z) or +DURATION from now (+2s, +336h)", date)}
			}
			return map[string]any{"subject": subject, "date": t.UnixMilli(), "text": text}, nil
		})
}

func newAudit(a *app) *cobra.Command {
	var local bool
	cmd := readCmd(a, "audit PROCESS", "Show the P1-P4 audit of a process",
		"  clearinghouse audit bafyrei...\n  clearinghouse audit bafyrei... --json  # canonical JSON, byte-identical on every node with the same records\n  clearinghouse audit bafyrei... --local  # diagnostic: with this node's first-seen times",
		argsN(1),
		func(ctx context.Context, c *apiClient, w io.Writer, asJSON bool, args []string) error {
			q := url.Values{}
			if !asJSON {
				q.Set("format", "text")
			}
			if local {
				q.Set("local", "true")
			}
			path := "/processes/" + url.PathEscape(args[0]) + "/audit"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			b, err := c.do(ctx, http.MethodGet, path, nil)
			if err != nil {
				return err
			}
			if !asJSON {
				b = []byte(a.style().colourAudit(string(b)))
			}
			printJSON(w, b)
			return nil
		})
	cmd.Flags().BoolVar(&local, "local", false, "diagnostic of this node: add its first-seen time of each record to P2 (differs between nodes; not an audit)")
	return cmd
}

func newRecordGet(a *app) *cobra.Command {
	var raw bool
	cmd := readCmd(a, "get CID", "Show a record", "  clearinghouse record get bafyrei...\n  clearinghouse record get bafyrei... --raw > record.cbor", argsN(1),
		func(ctx context.Context, c *apiClient, w io.Writer, asJSON bool, args []string) error {
			if raw {
				b, err := c.do(ctx, http.MethodGet, "/records/"+url.PathEscape(args[0])+"?format=raw", nil)
				if err == nil {
					_, err = w.Write(b)
				}
				return err
			}
			var v api.RecordView
			b, err := c.get(ctx, "/records/"+url.PathEscape(args[0]), &v)
			if isAPICode(err, api.CodeNotFound) {
				return errRecordNotFound(args[0])
			}
			if err != nil || asJSON {
				return printOr(w, b, err)
			}
			printRecord(w, v, c.orgs(ctx), a.now())
			return nil
		})
	cmd.Flags().BoolVar(&raw, "raw", false, "write the record's DAG-CBOR bytes")
	return cmd
}

func newWatch(a *app) *cobra.Command {
	var topic, kind, after string
	var once bool
	cmd := &cobra.Command{
		Use: "watch", Short: "Print accepted records as they arrive",
		Long: `Follow the node's event stream and print one line per accepted record:
arrival number, claimed time (RFC 3339), topic, kind, CID and author (the
organisation, with spaces as '_', or the first 16 hex digits of an unknown
key). It starts with the
records stored from now on; with --after N it first prints the stored records
after arrival number N (--after 0: all of them).

It says on stderr when it is following. If the stream breaks (the node
restarts, the network drops), watch reconnects
with growing pauses (1 s up to 30 s), telling so on stderr, and resumes after
the last record it printed: nothing is missed or printed twice. --once exits
with an error instead. It runs until interrupted.`,
		Example: "  clearinghouse watch\n  clearinghouse watch --after 0 --topic issue/privacy\n  clearinghouse watch --kind process.feedback --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if err := c.check(ctx, false); err != nil {
				return err
			}
			asJSON := a.jsonOutput()
			if after == "" {
				// From now on: the stream replays what is stored after
				// the cursor, so nothing arriving meanwhile is missed.
				var st api.StatusView
				if _, err := c.get(ctx, "/status", &st); err != nil {
					return err
				}
				after = strconv.FormatUint(st.LastArrival, 10)
			}
			orgs := c.orgs(ctx)
			q := url.Values{"after": {after}}
			for k, v := range map[string]string{"topic": topic, "kind": kind} {
				if v != "" {
					q.Set(k, v)
				}
			}
			print := func(id string, data []byte) error {
				if asJSON {
					printJSON(a.stdout, data)
					return nil
				}
				var v api.RecordView
				if err := json.Unmarshal(data, &v); err != nil {
					return fmt.Errorf("event %s: %w", id, err)
				}
				fmt.Fprintf(a.stdout, "%s %s %s %s %s %s\n", id, jsonTime(parseAPITime(v.Time)), v.Topic, v.Kind, v.CID, orgs.name(ctx, v.Author))
				return nil
			}
			return c.watchResume(ctx, q, print, once, a.stderr)
		},
	}
	cmd.Flags().StringVar(&topic, "topic", "", "only records of this topic")
	cmd.Flags().StringVar(&kind, "kind", "", "only records of this kind")
	cmd.Flags().StringVar(&after, "after", "", "first print the stored records after this arrival number (0: all)")
	cmd.Flags().BoolVar(&once, "once", false, "exit with an error when the stream breaks instead of reconnecting")
	return cmd
}

// Pauses between reconnections of watch: the first, doubled each time up
// to the last. Tests shorten them.
var watchRetryFirst, watchRetryMax = time.Second, 30 * time.Second

// errStreamLost marks a watch stream that was established and then broke,
// as opposed to one the node refused.
var errStreamLost = errors.New("event stream lost")

// watchResume runs watch, reconnecting after a broken stream from the
// arrival number of the last event delivered (q's "after" at first),
// unless once is set. Errors the node answers with (a bad topic, say) end
// it at once, as does a first connection that fails.
func (c *apiClient) watchResume(ctx context.Context, q url.Values, f func(id string, data []byte) error, once bool, stderr io.Writer) error {
	last := q.Get("after")
	track := func(id string, data []byte) error {
		if err := f(id, data); err != nil {
			return err
		}
		last = id
		return nil
	}
	pause := watchRetryFirst
	connected := false
	for {
		q.Set("after", last)
		err := c.watch(ctx, q, func() {
			if connected {
				fmt.Fprintf(stderr, "watch: reconnected, resuming after arrival %s\n", last)
			} else {
				fmt.Fprintf(stderr, "watch: following records after arrival %s (interrupt to stop)\n", last)
			}
			connected, pause = true, watchRetryFirst
		}, track)
		if err == nil || once || !connected || !errors.Is(err, errStreamLost) {
			return err
		}
		fmt.Fprintf(stderr, "watch: %v; reconnecting in %s\n", err, humanDuration(pause))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
		pause = min(2*pause, watchRetryMax)
	}
}

// watch reads the event stream until ctx ends (it returns nil) or the
// stream breaks (an error wrapping errStreamLost), calling live once the
// node has accepted the stream and f for every record event.
func (c *apiClient) watch(ctx context.Context, q url.Values, live func(), f func(id string, data []byte) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+api.Prefix+"/events?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("%w: cannot reach the node API at %s: %w", errStreamLost, c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return apiError(resp.StatusCode, b)
	}
	live()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 4<<20)
	var id string
	var data []byte
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "data: "):
			data = []byte(line[6:])
		case line == "" && data != nil:
			if err := f(id, data); err != nil {
				return err
			}
			id, data = "", nil
		}
	}
	if ctx.Err() != nil {
		return nil // interrupted
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: %w", errStreamLost, err)
	}
	return fmt.Errorf("%w: closed by the node", errStreamLost)
}

// clientLong is the part of every client command's long help that says
// how it reaches the node.
const clientLong = `It talks to the running node's HTTP API: --api, else http:// + api.listen from
the data directory's config. Commands that publish records need the API token:
--token, else api.token in the data directory. Errors from the node are shown
with their protocol reason.`

// longs are the long helps of client commands that need more than their
// short help.
var longs = map[string]string{
	"publish": `It publishes one record signed by the node's key; the records its body
refers to (the process, the proposal, ...) are added to its deps by the API,
and it prints the record's kind and CID.`,
	"status":   "It prints the peer id, role, federation, network id, peer count, stored records and followed topics.",
	"audit":    "By default it prints the text form of the audit; --json prints the canonical JSON,\nbyte-identical on every node that holds the same records.",
	"watch":    "",
	"proposal": "A proposal file is TOML; see docs/examples/proposal.toml.",
	"process":  "A charter file is TOML; see docs/examples/charter.toml.",
}

// documentClient fills in the long help of cmd and its subcommands.
func documentClient(cmd *cobra.Command, publishes bool) {
	if cmd.Long == "" {
		long := cmd.Short + "."
		if extra := longs[cmd.Name()]; extra != "" {
			long += "\n\n" + extra
		}
		if publishes {
			long += "\n\n" + longs["publish"]
		}
		cmd.Long = long + "\n\n" + clientLong
	} else {
		cmd.Long += "\n\n" + clientLong
	}
	for _, sub := range cmd.Commands() {
		documentClient(sub, publishes)
	}
}

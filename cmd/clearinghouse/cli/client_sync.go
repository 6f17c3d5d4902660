package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/clearinghouse-net/clearinghouse/node/api"
)

// newSync is `clearinghouse sync`: an on-demand sync of every followed
// topic with every connected peer, with a progress line on stderr while it
// runs.
func newSync(a *app) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Catch up with the connected peers now",
		Long: `Sync reconciles every topic the node follows with every connected peer, fetches
the records the node lacks, verifies and stores them, and prints what it did.
While it runs it shows on stderr how many records are stored and how many the
peers still hold that the node lacks (the lag reported by the node's status).`,
		Example: "  clearinghouse sync\n  clearinghouse sync --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.writeClient(cmd.Context())
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			type result struct {
				b   []byte
				err error
			}
			done := make(chan result, 1)
			go func() {
				b, err := c.do(ctx, http.MethodPost, "/sync", struct{}{})
				done <- result{b, err}
			}()
			tick := time.NewTicker(500 * time.Millisecond)
			defer tick.Stop()
			shown := false
			for {
				select {
				case r := <-done:
					if shown {
						fmt.Fprintln(a.stderr)
					}
					if r.err != nil {
						return r.err
					}
					if a.jsonOutput() {
						printJSON(a.stdout, r.b)
						return nil
					}
					var rep api.SyncReportView
					if err := json.Unmarshal(r.b, &rep); err != nil {
						return fmt.Errorf("sync: unexpected answer: %w", err)
					}
					fmt.Fprintf(a.stdout, "synced %s with %s (%s, %s): %d missing, %d fetched, %d stored\n",
						plural(rep.Topics, "topic"), plural(rep.Peers, "peer"), plural(rep.Reconciliations, "reconciliation"),
						plural(rep.RoundTrips, "round trip"), rep.Missing, rep.Fetched, rep.Stored)
					return nil
				case <-tick.C:
					if quiet {
						continue
					}
					var s api.StatusView
					if _, err := c.get(ctx, "/status", &s); err != nil {
						continue
					}
					fmt.Fprintf(a.stderr, "\r%s", progress(s))
					shown = true
				}
			}
		},
	}
	cmd.Flags().BoolVar(&quiet, "quiet", false, "do not show progress on stderr")
	return cmd
}

// progress renders a one-line progress bar: records stored against stored
// plus the largest lag any peer reported on each topic.
func progress(s api.StatusView) string {
	lag := map[string]int{}
	for _, v := range s.Sync {
		lag[v.Topic] = max(lag[v.Topic], v.Lag)
	}
	behind := 0
	for _, l := range lag {
		behind += l
	}
	total := int(s.Records) + behind
	const width = 30
	filled := width
	if total > 0 {
		filled = width * int(s.Records) / total
	}
	return fmt.Sprintf("syncing [%s%s] %d stored, %d behind ", strings.Repeat("#", filled), strings.Repeat(".", width-filled), s.Records, behind)
}

// parseDate reads an RFC 3339 time or "+DURATION" relative to now.
func parseDate(s string, now time.Time) (time.Time, error) {
	if d, ok := strings.CutPrefix(s, "+"); ok {
		dur, err := time.ParseDuration(d)
		if err != nil || dur <= 0 {
			return time.Time{}, fmt.Errorf("bad duration %q", d)
		}
		return now.Add(dur), nil
	}
	return time.Parse(time.RFC3339, s)
}

// isConnRefused reports whether err is a refused connection (nothing
// listens yet).
func isConnRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}

// now returns the app's clock.
func (a *app) now() time.Time {
	if a.clock != nil {
		return a.clock()
	}
	return time.Now()
}

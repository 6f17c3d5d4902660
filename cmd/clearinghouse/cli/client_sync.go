package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
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
	var asJSON, quiet bool
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
			c, err := a.client()
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
					if asJSON {
						printJSON(a.stdout, r.b)
						return nil
					}
					var rep api.SyncReportView
					if err := json.Unmarshal(r.b, &rep); err != nil {
						return fmt.Errorf("sync: unexpected answer: %w", err)
					}
					fmt.Fprintf(a.stdout, "synced with %d peers on %d topics in %d round trips: %d missing, %d fetched, %d stored\n",
						rep.Peers, rep.Topics, rep.RoundTrips, rep.Missing, rep.Fetched, rep.Stored)
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
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON answer")
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

// printSync writes one sync line per topic: the most any peer had that
// this node lacked at the last reconciliation, and any errors.
func printSync(w io.Writer, s api.StatusView) {
	type agg struct {
		peers, behind, fetched int
		last                   string
		errs                   []string
	}
	by := map[string]*agg{}
	var topics []string
	for _, v := range s.Sync {
		g := by[v.Topic]
		if g == nil {
			g = &agg{}
			by[v.Topic] = g
			topics = append(topics, v.Topic)
		}
		g.peers++
		g.behind = max(g.behind, v.Lag)
		g.fetched += v.Fetched
		g.last = max(g.last, v.Last)
		if v.Error != "" {
			g.errs = append(g.errs, v.Error)
		}
	}
	slices.Sort(topics)
	for _, t := range topics {
		g := by[t]
		line := fmt.Sprintf("sync:        %s: %d behind, %d fetched from %d peers", t, g.behind, g.fetched, g.peers)
		if g.last != "" {
			line += ", last " + g.last
		}
		if len(g.errs) > 0 {
			line += " (errors: " + strings.Join(g.errs, "; ") + ")"
		}
		fmt.Fprintln(w, line)
	}
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

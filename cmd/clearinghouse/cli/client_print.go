package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/clearinghouse-net/clearinghouse/node/api"
)

// The text forms of the client commands' answers. The --json forms are
// the API's answers as they came (see docs/api.md).

// followJSON is the --json answer of issue follow and issue unfollow.
type followJSON struct {
	Topic     string `json:"topic"`
	Following bool   `json:"following"`
}

// yesNo is a boolean of a table.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// printStatus writes the text form of a node's status.
func printStatus(w io.Writer, s api.StatusView, now time.Time) {
	fed := s.Federation
	if s.DevFederation {
		fed += " (one-member dev federation)"
	}
	fmt.Fprintf(w, "peer id:     %s\nrole:        %s\nfederation:  %s\nnetwork:     %s\n", s.PeerID, s.Role, fed, s.NetworkID)
	if s.Key != "" {
		fmt.Fprintf(w, "key:         %s\n", s.Key)
	}
	fmt.Fprintf(w, "peers:       %s\nrecords:     %s (%s)\ntopics:      %s\n",
		plural(s.Peers, "connected peer"), plural(int(s.Records), "record"), humanBytes(s.Bytes), strings.Join(s.Topics, ", "))
	for _, a := range s.ListenAddrs {
		fmt.Fprintf(w, "listening:   %s\n", a)
	}
	printSync(w, s, now)
}

// humanBytes formats a size in bytes with binary units: "512 B",
// "4.0 KiB", "12.3 MiB".
func humanBytes(n uint64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, units := float64(n)/1024, []string{"KiB", "MiB", "GiB", "TiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// printSync writes one sync line per topic: the most any peer had that
// this node lacked at the last reconciliation, and any errors.
func printSync(w io.Writer, s api.StatusView, now time.Time) {
	type agg struct {
		peers, behind, fetched int
		last                   time.Time
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
		if t := parseAPITime(v.Last); t.After(g.last) {
			g.last = t
		}
		if v.Error != "" {
			g.errs = append(g.errs, v.Error)
		}
	}
	slices.Sort(topics)
	for _, t := range topics {
		g := by[t]
		line := fmt.Sprintf("sync:        %s: %d behind, %d fetched from %s", t, g.behind, g.fetched, plural(g.peers, "peer"))
		if !g.last.IsZero() {
			line += ", last " + humanTime(g.last, now)
		}
		if len(g.errs) > 0 {
			line += " (errors: " + strings.Join(g.errs, "; ") + ")"
		}
		fmt.Fprintln(w, line)
	}
}

// printProcess writes the text form of a process.
func printProcess(w io.Writer, p api.ProcessView) {
	fmt.Fprintf(w, "process: %s\ntitle:   %s\ntopic:   %s\nstage:   %s\nrecords: %d\n", p.CID, p.Title, p.Topic, p.Stage, p.Records)
	for _, d := range p.Adopted {
		fmt.Fprintf(w, "adopted: %s\n", d)
	}
	for _, ph := range p.Phases {
		start, end := parseAPITime(ph.Start), parseAPITime(ph.End)
		fmt.Fprintf(w, "phase:   %-14s %s to %s (%s)\n", ph.Stage, start.Format("2006-01-02 15:04"), end.Format("2006-01-02 15:04 UTC"),
			humanDuration(end.Sub(start)))
	}
}

// printRecord writes the text form of a record, its author shown as the
// member's organisation where known.
func printRecord(w io.Writer, v api.RecordView, o *orgNames, now time.Time) {
	fmt.Fprintf(w, "cid:    %s\nkind:   %s\ntopic:  %s\nauthor: %s\nseq:    %d\ntime:   %s\n",
		v.CID, v.Kind, v.Topic, o.describe(v.Author), v.Seq, humanTime(parseAPITime(v.Time), now))
	if v.Prev != "" {
		fmt.Fprintf(w, "prev:   %s\n", v.Prev)
	}
	for _, d := range v.Deps {
		fmt.Fprintf(w, "dep:    %s\n", d)
	}
	body, _ := json.MarshalIndent(v.Body, "        ", "  ")
	fmt.Fprintf(w, "body:   %s\n", body)
}

// orgNames maps member keys to their organisations, from GET /members,
// asked again (once) when a key is not known: a member admitted since.
type orgNames struct {
	c       *apiClient
	byKey   map[string]string
	fetched bool
}

// orgs returns the organisation names of the node's members; a node that
// cannot list them leaves authors as keys.
func (c *apiClient) orgs(ctx context.Context) *orgNames {
	o := &orgNames{c: c}
	o.fetch(ctx)
	return o
}

func (o *orgNames) fetch(ctx context.Context) {
	var v struct{ Members []api.MemberView }
	if _, err := o.c.get(ctx, "/members", &v); err != nil {
		return
	}
	o.byKey = map[string]string{}
	for _, m := range v.Members {
		for _, k := range m.Keys {
			o.byKey[k.Key] = m.Org
		}
		o.byKey[m.Key] = m.Org
	}
}

// name returns the organisation of key as one word (spaces as '_'), for
// lines that are split on spaces, or the first 16 hex digits of an
// unknown key.
func (o *orgNames) name(ctx context.Context, key string) string {
	org, ok := o.byKey[key]
	if !ok && !o.fetched {
		o.fetched = true
		o.fetch(ctx)
		org, ok = o.byKey[key]
	}
	if !ok {
		return key[:min(16, len(key))]
	}
	return strings.ReplaceAll(org, " ", "_")
}

// describe returns "Org (key)", or the key alone if it is not a member's.
func (o *orgNames) describe(key string) string {
	if org, ok := o.byKey[key]; ok {
		return org + " (" + key + ")"
	}
	return key
}

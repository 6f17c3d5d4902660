package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

func newSyncFaultCommand(a *app) *cobra.Command {
	var (
		nodes, records   int
		attacks          []string
		requestTimeout   time.Duration
		sessionBudget    time.Duration
		maxConverge      time.Duration
		fakeIDsPerAnswer int
	)
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Heal a partition with a stalling and a fake-id sync peer connected",
		Long: `Sync starts --nodes nodes in this process, cuts them into two halves that
each publish --records records, connects hostile sync peers (speaking the real
sync protocol) to every node, heals the partition and measures:

  stall      a peer that answers every sync request after two thirds of the
             request timeout (inside it, with room for a loaded machine's
             delays), with fingerprints that never match (a session with it
             would never end by itself)
  fake-ids   a peer that claims, in each reconcile answer, as many ids as fit
             a frame (--fake-ids) and serves none of them

It reports how long after the heal every node held every record, when each
hostile peer was penalised on every node, how many ids the fake-id peer got
to claim, and this process's peak heap and RSS. It fails if the sets do not
converge within --max-converge or a hostile peer is not penalised on every
node within three session budgets.

The sync budgets default to short ones so that the scenario runs in seconds;
give --request-timeout 30s --session-budget 2m for a node's defaults.`,
		Example: `  clearinghouse testnet fault sync
  clearinghouse testnet fault sync --attack stall --request-timeout 30s --session-budget 2m`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nodes < 2 || records < 1 {
				return &usageError{errors.New("want --nodes >= 2 and --records >= 1")}
			}
			var kinds []testnet.HostileKind
			for _, at := range attacks {
				switch at {
				case "stall":
					kinds = append(kinds, testnet.Stalling)
				case "fake-ids":
					kinds = append(kinds, testnet.FakeIDs)
				default:
					return &usageError{fmt.Errorf("--attack %q: want stall or fake-ids", at)}
				}
			}
			lim := node.DefaultSyncLimits()
			lim.RequestTimeout, lim.SessionBudget = requestTimeout, sessionBudget
			return syncFault(cmd.Context(), a.stdout, nodes, records, kinds, lim, maxConverge, fakeIDsPerAnswer)
		},
	}
	cmd.Flags().IntVar(&nodes, "nodes", 4, "honest nodes")
	cmd.Flags().IntVar(&records, "records", 200, "records published on each side of the partition")
	cmd.Flags().StringSliceVar(&attacks, "attack", []string{"stall", "fake-ids"}, "hostile peers to connect: stall, fake-ids")
	cmd.Flags().DurationVar(&requestTimeout, "request-timeout", 2*time.Second, "the nodes' sync request timeout")
	cmd.Flags().DurationVar(&sessionBudget, "session-budget", 6*time.Second, "the nodes' sync session budget")
	cmd.Flags().DurationVar(&maxConverge, "max-converge", 10*time.Second, "longest acceptable time from heal to identical sets")
	cmd.Flags().IntVar(&fakeIDsPerAnswer, "fake-ids", testnet.MaxFakeIDs, "ids the fake-id peer claims per answer")
	return cmd
}

func syncFault(ctx context.Context, out io.Writer, n, records int, kinds []testnet.HostileKind, lim node.SyncLimits, maxConverge time.Duration, fakeIDs int) error {
	part := testnet.NewPartition()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	tn, err := testnet.Start(ctx, n, testnet.WithFollow("fault"), testnet.WithPartition(part), testnet.WithLogger(logger),
		testnet.WithNodeOptions(func(int) []node.Option {
			return []node.Option{node.WithSyncInterval(0), node.WithSyncLimits(lim)}
		}))
	if err != nil {
		return err
	}
	defer tn.Close()
	netID := tn.Nodes[0].NetworkID()
	var hostile []*testnet.HostileSyncPeer
	defer func() {
		for _, hp := range hostile {
			hp.Close()
		}
	}()
	for _, k := range kinds {
		// The stalling peer answers inside the request timeout, so that it
		// is penalised for holding whole sessions (session-budget), the
		// abuse this scenario is about, not for a stall strike. With less
		// room than a third of the timeout, a loaded machine's delay turns
		// an answer into a strike that ends the session, and the node, with
		// periodic sync off here, opens no other session to be penalised in.
		hp, err := testnet.NewHostileSyncPeer(netID, k, lim.RequestTimeout*2/3, testnet.WithFakeIDs(fakeIDs))
		if err != nil {
			return err
		}
		hostile = append(hostile, hp)
	}
	left, right := make([]int, 0, n), make([]int, 0, n)
	for i := range n {
		if i < n/2 {
			left = append(left, i)
		} else {
			right = append(right, i)
		}
	}
	if err := part.Cut(tn, left, right); err != nil {
		return err
	}
	topic := protocol.IssueTopic("fault")
	var cids []cid.Cid
	for _, p := range []int{left[0], right[0]} {
		for i := range records {
			r, err := tn.Nodes[p].Publish(ctx, protocol.KindStatement, topic,
				&protocol.Statement{Title: fmt.Sprintf("node %d statement %d", p, i), Text: "Published during a partition."})
			if err != nil {
				return err
			}
			cids = append(cids, r.CID)
		}
	}
	// The hostile peers connect to every node just before the heal, so
	// that every session after it has them to contend with.
	connected := time.Now()
	for _, nd := range tn.Nodes {
		for _, hp := range hostile {
			if err := nd.Connect(ctx, hp.AddrInfo()); err != nil {
				return err
			}
		}
	}
	healed := time.Now()
	if err := part.Heal(ctx, tn); err != nil {
		return err
	}
	var fails []string
	wctx, cancel := context.WithTimeout(ctx, maxConverge)
	defer cancel()
	converged := true
	for i, nd := range tn.Nodes {
		if err := nd.WaitRecords(wctx, cids...); err != nil {
			converged = false
			fails = append(fails, fmt.Sprintf("node %d did not converge within %v", i, maxConverge))
			break
		}
	}
	took := time.Since(healed)
	if converged {
		fmt.Fprintf(out, "partition of %d+%d nodes, %d records: every node holds every record %v after the heal\n",
			len(left), len(right), len(cids), took.Round(time.Millisecond))
	}

	// Penalties, polled: each hostile peer must be penalised on every node.
	deadline := time.Now().Add(3 * lim.SessionBudget)
	when := make([]time.Duration, len(hostile))
	penalised := make([]int, len(hostile))
	for {
		done := true
		for j, hp := range hostile {
			if when[j] > 0 {
				continue
			}
			penalised[j] = 0
			for _, nd := range tn.Nodes {
				if info := nd.Host().ConnManager().GetTagInfo(hp.ID()); info != nil && info.Tags["clearinghouse-sync-bad"] < 0 {
					penalised[j]++
				}
			}
			if penalised[j] == n {
				when[j] = time.Since(connected)
			} else {
				done = false
			}
		}
		if done || time.Now().After(deadline) {
			break
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	for j, hp := range hostile {
		kind := hp.Kind().String()
		if penalised[j] < n {
			fmt.Fprintf(out, "%s peer: penalised on only %d of %d nodes after %v\n", kind, penalised[j], n, 3*lim.SessionBudget)
			fails = append(fails, fmt.Sprintf("%s peer penalised on %d of %d nodes", kind, penalised[j], n))
			continue
		}
		fmt.Fprintf(out, "%s peer: penalised on every node %v after connecting; %d streams, %d requests, %d ids claimed\n",
			kind, when[j].Round(time.Millisecond), hp.Streams(), hp.Requests(), hp.Claimed())
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	_, hwm, _ := procMemory(os.Getpid())
	reasons := []string{"stall", "session-budget", "fake-ids"}
	var counts []string
	for _, r := range reasons {
		total := 0.0
		for _, nd := range tn.Nodes {
			total += counterValue(nd, "clearinghouse_sync_bad_records_total", r)
		}
		counts = append(counts, fmt.Sprintf("%s %.0f", r, total))
	}
	fmt.Fprintf(out, "penalties over all nodes: %s\n", strings.Join(counts, ", "))
	fmt.Fprintf(out, "this process: heap in use %d MiB, peak RSS %d MiB (all %d nodes and the hostile peers)\n",
		ms.HeapInuse>>20, hwm>>10, n)
	if len(fails) > 0 {
		return fmt.Errorf("%w: %s", ErrFaultFailed, strings.Join(fails, "; "))
	}
	return nil
}

// counterValue sums the samples of a counter of nd whose labels contain
// value.
func counterValue(nd *node.Node, name, value string) float64 {
	mfs, err := nd.Registry().Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

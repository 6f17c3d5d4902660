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
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/store"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

func newPendingFaultCommand(a *app) *cobra.Command {
	var (
		records, peers, applyEvery int
		maxWait                    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "pending",
		Short: "Flood a node with non-members' records that name dependencies nobody has",
		Long: `Pending starts a node in this process (on a temporary data directory) and
--peers raw gossipsub peers (no sync protocol) that flood it with --records
records in all: each signed by a fresh key that is no member, naming as its
dependency a CID nobody has. One in --apply-every is a member.apply (a kind a
non-member may sign, which may wait for its past); the others are statements,
which only members may sign. Meanwhile an honest raw peer gossips a member's
record before its parent. It reports:

  the most records waiting at once (sampled), against the bound: each peer's
  quota of non-members' records (64), within the global cap;
  the refusals by reason (unknown-author, pending-full) and the evictions;
  whether and when the honest out-of-order record was stored;
  each hostile peer's gossip score, and when it fell below the graylist
  threshold;
  what the pending area holds after a restart (only kinds that may still
  complete may remain), and after a restart past the pending TTL (nothing).

It fails if a bound is exceeded, the honest record is not stored within
--max-wait, a hostile peer is not graylisted within --max-wait, or the pending
area holds after a restart what can never complete.`,
		Example: `  clearinghouse testnet fault pending
  clearinghouse testnet fault pending --records 100000 --peers 4`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if records < 1 || peers < 1 || applyEvery < 0 || maxWait <= 0 {
				return &usageError{errors.New("want --records >= 1, --peers >= 1, --apply-every >= 0 and --max-wait > 0")}
			}
			return pendingFault(cmd.Context(), a.stdout, records, peers, applyEvery, maxWait)
		},
	}
	cmd.Flags().IntVar(&records, "records", 100_000, "flood records, over all hostile peers")
	cmd.Flags().IntVar(&peers, "peers", 1, "hostile peer identities")
	cmd.Flags().IntVar(&applyEvery, "apply-every", 2, "one flood record in this many is a member.apply (0: none)")
	cmd.Flags().DurationVar(&maxWait, "max-wait", 30*time.Second, "longest acceptable time for the honest record to be stored and each hostile peer graylisted")
	return cmd
}

func pendingFault(ctx context.Context, out io.Writer, records, peers, applyEvery int, maxWait time.Duration) error {
	dir, err := os.MkdirTemp("", "clearinghouse-fault-pending-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	lim := node.DefaultPendingLimits()
	var skew atomic.Int64 // added to the node's clock for the restart past the TTL
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	// Node 1 stays unconnected: the honest record is signed with its key.
	tn, err := testnet.Start(ctx, 2, testnet.WithTopology(testnet.None), testnet.WithFollow("fault"), testnet.WithDataDir(dir),
		testnet.WithLogger(logger), testnet.WithNodeOptions(func(int) []node.Option {
			return []node.Option{node.WithClock(func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })}
		}))
	if err != nil {
		return err
	}
	defer tn.Close()
	nd := tn.Nodes[0]
	id := nd.NetworkID()
	topic := protocol.IssueTopic("fault")

	began := time.Now()
	flood, err := testnet.FakeDepsFlood(id, topic, records, applyEvery, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "built %d flood records in %v\n", len(flood), time.Since(began).Round(time.Millisecond))

	var hostile []*testnet.GossipPeer
	defer func() {
		for _, g := range hostile {
			g.Close()
		}
	}()
	join := func(g *testnet.GossipPeer, want int, topics ...string) error {
		for _, t := range topics {
			if err := g.Join(t); err != nil {
				return err
			}
		}
		if err := g.Connect(ctx, nd.AddrInfo()); err != nil {
			return err
		}
		for _, t := range topics {
			if err := g.WaitTopicPeer(ctx, t, nd.ID()); err != nil {
				return err
			}
			if err := nd.WaitTopicPeers(ctx, t, want); err != nil {
				return err
			}
		}
		return nil
	}
	for i := range peers {
		g, err := testnet.NewGossipPeer(id, records/peers+1)
		if err != nil {
			return err
		}
		hostile = append(hostile, g)
		if err := join(g, i+1, topic, protocol.TopicMembers); err != nil {
			return err
		}
	}
	honest, err := testnet.NewGossipPeer(id, 64)
	if err != nil {
		return err
	}
	defer honest.Close()
	if err := join(honest, peers+1, topic); err != nil {
		return err
	}

	// Sample the pending set while the flood runs.
	var most atomic.Int64
	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if v := int64(gaugeValue(nd, "clearinghouse_records_pending")); v > most.Load() {
				most.Store(v)
			}
			select {
			case <-tick.C:
			case <-sampleCtx.Done():
				return
			}
		}
	}()

	began = time.Now()
	for i, raw := range flood {
		t := topic
		if applyEvery > 0 && i%applyEvery == 0 {
			t = protocol.TopicMembers
		}
		if err := hostile[i%peers].Publish(ctx, t, raw); err != nil {
			stopSampling()
			return err
		}
	}
	fmt.Fprintf(out, "%d hostile peers sent %d records in %v\n", peers, len(flood), time.Since(began).Round(time.Millisecond))

	// The honest member's record, before its parent.
	var fails []string
	key := tn.SigningKey(1)
	now := time.Now().Add(-time.Second)
	parent, err := protocol.Build(key, protocol.Draft{Network: id, Kind: protocol.KindStatement, Topic: topic, Seq: 1, Time: now,
		Body: &protocol.Statement{Title: "parent", Text: "Gossiped after its child."}})
	if err != nil {
		stopSampling()
		return err
	}
	child, err := protocol.Build(key, protocol.Draft{Network: id, Kind: protocol.KindStatement, Topic: topic, Seq: 2, Prev: parent.CID,
		Time: now, Body: &protocol.Statement{Title: "child", Text: "Gossiped before its parent."}})
	if err != nil {
		stopSampling()
		return err
	}
	sent := time.Now()
	for _, r := range []*protocol.Record{child, parent} {
		if err := honest.Publish(ctx, topic, r.Raw); err != nil {
			stopSampling()
			return err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	if err := nd.WaitRecords(wctx, parent.CID, child.CID); err != nil {
		fails = append(fails, "the honest out-of-order record was not stored")
		fmt.Fprintf(out, "honest record gossiped before its parent: NOT stored within %v\n", maxWait)
	} else {
		fmt.Fprintf(out, "honest record gossiped before its parent: stored %v after it was sent\n", time.Since(sent).Round(time.Millisecond))
	}
	for j, g := range hostile {
		score, err := nd.WaitGossipScore(wctx, g.ID(), node.GossipGraylistThreshold)
		if err != nil {
			fails = append(fails, fmt.Sprintf("hostile peer %d not graylisted", j))
			fmt.Fprintf(out, "hostile peer %d: gossip score %.0f, NOT below the graylist threshold %d\n", j, score, node.GossipGraylistThreshold)
			continue
		}
		fmt.Fprintf(out, "hostile peer %d: gossip score %.0f (graylist threshold %d), seen %v after the flood began\n",
			j, score, node.GossipGraylistThreshold, time.Since(began).Round(time.Millisecond))
	}
	stopSampling()
	<-sampled
	// Every flood record is a non-member's: a peer may have
	// PerPeerStrangers of those waiting.
	bound := min(peers*lim.PerPeerStrangers, lim.Records) + 1 // + the honest child
	fmt.Fprintf(out, "pending: at most %d records waiting (sampled every 20 ms); bound %d (%d peers x non-member quota %d, cap %d, + 1 honest)\n",
		most.Load(), bound, peers, lim.PerPeerStrangers, lim.Records)
	if int(most.Load()) > bound {
		fails = append(fails, fmt.Sprintf("%d records waiting, above the bound %d", most.Load(), bound))
	}
	var counts []string
	for _, r := range []protocol.Reason{protocol.ReasonUnknownAuthor, protocol.ReasonPendingFull, protocol.ReasonMissingDeps} {
		counts = append(counts, fmt.Sprintf("%s %.0f", r, counterValue(nd, "clearinghouse_records_rejected_total", string(r))))
	}
	fmt.Fprintf(out, "refusals: %s; evicted %.0f\n", strings.Join(counts, ", "), counterValue(nd, "clearinghouse_pending_dropped_total", "evicted"))
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	_, hwm, _ := procMemory(os.Getpid())
	fmt.Fprintf(out, "this process: heap in use %d MiB, peak RSS %d MiB\n", ms.HeapInuse>>20, hwm>>10)

	// Restart: only what may still complete is in the pending area.
	for _, g := range hostile {
		g.Close()
	}
	if err := tn.Restart(ctx, 0); err != nil {
		return err
	}
	kinds, err := pendingKinds(tn.Nodes[0].Store())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "after a restart, the pending area holds: %s\n", formatKinds(kinds))
	for k, n := range kinds {
		if !protocol.OpenToNonMembers(protocol.TopicMembers, k) {
			fails = append(fails, fmt.Sprintf("%d %s records, which can never complete, kept across a restart", n, k))
		}
	}
	skew.Store(int64(lim.TTL + time.Minute))
	if err := tn.Restart(ctx, 0); err != nil {
		return err
	}
	if kinds, err = pendingKinds(tn.Nodes[0].Store()); err != nil {
		return err
	}
	fmt.Fprintf(out, "after a restart past the pending TTL (%v): %s\n", lim.TTL, formatKinds(kinds))
	if len(kinds) > 0 {
		fails = append(fails, "records past the TTL kept across a restart")
	}
	if len(fails) > 0 {
		return fmt.Errorf("%w: %s", ErrFaultFailed, strings.Join(fails, "; "))
	}
	return nil
}

// pendingKinds counts the records of a store's pending area by kind.
func pendingKinds(st *store.Store) (map[string]int, error) {
	kinds := map[string]int{}
	err := st.Pending(func(e store.PendingEntry) error {
		r, err := protocol.Decode(e.Raw)
		if err != nil {
			kinds["undecodable"]++
			return nil
		}
		kinds[r.Env.Kind]++
		return nil
	})
	return kinds, err
}

func formatKinds(kinds map[string]int) string {
	if len(kinds) == 0 {
		return "nothing"
	}
	var parts []string
	for k, n := range kinds {
		parts = append(parts, fmt.Sprintf("%d %s", n, k))
	}
	return strings.Join(parts, ", ")
}

// gaugeValue returns the value of nd's unlabelled gauge name.
func gaugeValue(nd *node.Node, name string) float64 {
	mfs, err := nd.Registry().Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}

package cli

import (
	"context"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/clearinghouse-net/clearinghouse/node"
)

// syncReporter is what run needs of a node to tell when its first
// catch-up has ended; *node.Node has these methods.
type syncReporter interface {
	// Topics returns the topics the node has joined.
	Topics() []string
	// SyncStatus returns the sync progress of every topic with every peer.
	SyncStatus() []node.TopicSync
}

// catchUpPoll is how often run looks at the sync status until the first
// catch-up has ended. Tests shorten it.
var catchUpPoll = 500 * time.Millisecond

// logFirstCatchUp logs once when every topic the node has joined has been
// synced with a peer without error: the node then holds what its peers
// held. It returns when it has logged or ctx ends.
func logFirstCatchUp(ctx context.Context, n syncReporter, log *slog.Logger, started time.Time) {
	tick := time.NewTicker(catchUpPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		synced := map[string]bool{}
		peers := map[peer.ID]bool{}
		fetched := 0
		for _, s := range n.SyncStatus() {
			if !s.Last.IsZero() && s.Err == "" {
				synced[s.Topic] = true
				peers[s.Peer] = true
				fetched += s.Fetched
			}
		}
		topics := n.Topics()
		done := len(topics) > 0
		for _, t := range topics {
			done = done && synced[t]
		}
		if done {
			log.Info("first catch-up done", "topics", len(topics), "peers", len(peers), "fetched", fetched,
				"took", time.Since(started).Round(time.Millisecond))
			return
		}
	}
}

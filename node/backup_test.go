package node_test

import (
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// TestBackupUnderLoad: node 0 publishes without pause while a backup is
// taken; after node 0 is stopped and its store restored from the backup,
// every record acknowledged before the backup began is in it, and once
// running again the node catches up from node 1 on what it published
// after the backup.
func TestBackupUnderLoad(t *testing.T) {
	ctx := testContext(t)
	dataDir := t.TempDir()
	net := testnet.New(t, 2, testnet.WithDataDir(dataDir), testnet.WithFollow(slug))
	if err := net.WaitTopicMesh(ctx, topic); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		acked []cid.Cid
		wg    sync.WaitGroup
	)
	started := make(chan struct{})
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			r, err := net.Nodes[0].Publish(ctx, protocol.KindStatement, topic, statement(i))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			acked = append(acked, r.CID)
			if len(acked) == 50 {
				close(started)
			}
			mu.Unlock()
		}
	}
	wg.Go(func() { publish(0, 200) })
	<-started
	mu.Lock()
	before := append([]cid.Cid(nil), acked...)
	mu.Unlock()
	backupDir := filepath.Join(t.TempDir(), "backup")
	info, err := net.Nodes[0].Backup(backupDir)
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	publish(200, 220) // certainly after the backup
	if t.Failed() {
		t.FailNow()
	}
	// The genesis-time records aside, the backup holds what was
	// acknowledged before it and not the 20 published after it.
	if uint64(len(before)) > info.Records || info.Records > uint64(len(acked)-20) {
		t.Fatalf("backup has %d records; %d were acknowledged before it, %d in all, the last 20 after it", info.Records, len(before), len(acked))
	}
	// Node 1 holds everything node 0 published.
	if err := net.Nodes[1].WaitRecords(ctx, acked...); err != nil {
		t.Fatal(err)
	}

	if err := net.Nodes[0].Close(); err != nil {
		t.Fatal(err)
	}
	nodeDir := filepath.Join(dataDir, "node-0")
	log := slog.New(slog.DiscardHandler)
	if _, err := node.Restore(backupDir, nodeDir, false, log); !errors.Is(err, node.ErrRestoreTarget) {
		t.Fatalf("restore over a store without force: %v, want ErrRestoreTarget", err)
	}
	if _, err := node.Restore(backupDir, nodeDir, true, log); err != nil {
		t.Fatal(err)
	}
	if err := net.Restart(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	for _, c := range before {
		if ok, err := net.Nodes[0].Store().Has(c); err != nil || !ok {
			t.Fatalf("record %s acknowledged before the backup is not in the restored store (%v)", c, err)
		}
	}
	if err := net.Nodes[0].WaitRecords(ctx, acked...); err != nil {
		t.Fatal(err)
	}
}

package node_test

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/store"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// TestFailedWriteStopsNode makes the store's disk fail (writes to the
// write-ahead log return an error) while records are published and read:
// the publisher gets the error, no reader ever sees a record the store did
// not durably hold, the node stops with Err wrapping ErrStopped, and a
// restart on the same files rebuilds the state of what was durable.
func TestFailedWriteStopsNode(t *testing.T) {
	ctx := testContext(t)
	mem := vfs.NewMem()
	failing := errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpFileWrite && strings.HasSuffix(op.Path, ".log") {
			return errorfs.ErrInjected
		}
		return nil
	})}
	disk := errorfs.Wrap(mem, &failing)
	t0 := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := testnet.NewClock(t0)
	net := testnet.New(t, 2, testnet.WithTopology(testnet.None), testnet.WithFollow(slug),
		testnet.WithNodeOptions(func(i int) []node.Option {
			if i == 0 {
				return []node.Option{node.WithStoreFS(disk), node.WithClock(clock.Now)}
			}
			return nil
		}))
	nd := net.Nodes[0]
	publish := func(kind, tp string, body protocol.Body, deps ...cid.Cid) (*protocol.Record, error) {
		return nd.Publish(ctx, kind, tp, body, deps...)
	}
	must := func(r *protocol.Record, err error) *protocol.Record {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	must(publish(protocol.KindIssueOpen, protocol.TopicIndex, &protocol.IssueOpen{Slug: slug, Title: "Privacy"}))
	day := int64(24 * 3600 * 1000)
	ms := t0.UnixMilli()
	charter := must(publish(protocol.KindCharter, topic, &protocol.Charter{
		Title: "Durable", Aim: "A.", Purpose: "P.", Scope: []string{"s"}, Modalities: "M.", Significance: "S.",
		Convenors: [][]byte{net.PublicKey(0), net.PublicKey(1)},
		Phases: []protocol.Phase{
			{Stage: protocol.StageScoping, Start: ms, End: ms + 30*day},
			{Stage: protocol.StageConsultation, Start: ms + 30*day, End: ms + 90*day},
			{Stage: protocol.StageDecision, Start: ms + 90*day, End: ms + 120*day},
			{Stage: protocol.StageImplementation, Start: ms + 120*day, End: ms + 365*day},
		},
		MinNoticeSeconds: 14 * 24 * 3600, WindowSeconds: 14 * 24 * 3600,
		Rule: protocol.DecisionRule{Name: protocol.RuleConcurrentMajority, Threshold: 1},
	}))
	notice := func(k int) (*protocol.Record, error) {
		return publish(protocol.KindNotice, topic, &protocol.Notice{Process: protocol.LinkTo(charter.CID),
			Subject: protocol.SubjectConsultation, Date: ms + int64(30+k)*day, Text: "Notice."}, charter.CID)
	}
	for k := range 5 {
		must(notice(k))
	}

	// A reader: whatever process state it sees, the store holds every
	// record counted (a charter and notices, by the store's topic count).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var seen, violations int
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-nd.Done():
				return
			default:
			}
			p, err := nd.Process(charter.CID)
			if err != nil {
				t.Errorf("process: %v", err)
				return
			}
			st, err := nd.Store().Stats()
			if err != nil {
				return // the store closed under the reader
			}
			// 1 issue.open + the process's records, all stored.
			if int64(p.Len()+1) > int64(st.Records) {
				violations++
			}
			seen = max(seen, p.Len())
		}
	})

	failing.On()
	var failed error
	for k := 5; k < 50 && failed == nil; k++ {
		_, failed = notice(k)
	}
	if failed == nil {
		t.Fatal("publishes succeeded on a failing disk")
	}
	t.Logf("publish on the failing disk: %v", failed)
	select {
	case <-nd.Done():
	case <-ctx.Done():
		t.Fatal("the node did not stop after a failed write")
	}
	close(stop)
	wg.Wait()
	if !errors.Is(nd.Err(), node.ErrStopped) {
		t.Fatalf("Err() = %v, want ErrStopped", nd.Err())
	}
	if violations > 0 {
		t.Fatalf("a reader saw %d times more process records than the store held", violations)
	}
	p, err := nd.Process(charter.CID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Len() != 6 {
		t.Fatalf("after the failure readers see %d process records, want the 6 durable ones", p.Len())
	}
	if _, err := notice(99); err == nil {
		t.Fatal("publish on a stopped node succeeded")
	}

	// Restart on the same files, without the fault: the state is rebuilt
	// from what was durable.
	failing.Off()
	if err := net.Restart(ctx, 0); err != nil {
		t.Fatal(err)
	}
	nd = net.Nodes[0]
	p, err = nd.Process(charter.CID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Len() != 6 || seen > 6 {
		t.Fatalf("after the restart the process has %d records (readers saw up to %d), want 6", p.Len(), seen)
	}
	// And the node works again.
	if _, err := notice(100); err != nil {
		t.Fatal(err)
	}
	if p, _ := nd.Process(charter.CID); p.Len() != 7 {
		t.Fatalf("%d process records after a publish, want 7", p.Len())
	}
}

// TestCorruptBlockDetected damages one stored record's bytes behind the
// store's back: the node reads its records back with the trusted decode
// (protocol.DecodeTrusted, no canonical re-encoding), and the store's
// re-hash of every block it returns still catches the damage, so a
// restart fails with store.ErrCorrupt instead of loading a record that
// differs from what was signed; with the block repaired, it starts again.
func TestCorruptBlockDetected(t *testing.T) {
	ctx := testContext(t)
	mem := vfs.NewMem()
	net := testnet.New(t, 1, testnet.WithTopology(testnet.None),
		testnet.WithNodeOptions(func(int) []node.Option { return []node.Option{node.WithStoreFS(mem)} }))
	rec, err := net.Nodes[0].Publish(ctx, protocol.KindIssueOpen, protocol.TopicIndex, &protocol.IssueOpen{Slug: slug, Title: "Privacy"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := net.Nodes[0].Record(rec.CID); err != nil || !bytes.Equal(got.Raw, rec.Raw) {
		t.Fatalf("Record before the damage: %v", err)
	}
	if err := net.Nodes[0].Close(); err != nil {
		t.Fatal(err)
	}
	// The block key is 0x01 | binary CID (store/doc.go).
	setBlock := func(data []byte) {
		t.Helper()
		db, err := pebble.Open("store", &pebble.Options{FS: mem, FormatMajorVersion: pebble.FormatNewest})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Set(append([]byte{0x01}, rec.CID.Bytes()...), data, pebble.Sync); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Same length, one byte changed inside the title: still a well-formed
	// record that decodes, but not the bytes that were signed.
	bad := bytes.Replace(rec.Raw, []byte("Privacy"), []byte("Privacx"), 1)
	if _, err := protocol.DecodeTrusted(bad, rec.CID); err != nil {
		t.Fatalf("test bug: the damaged record does not decode: %v", err)
	}
	setBlock(bad)
	err = net.Restart(ctx, 0)
	if !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("restart on a damaged block: %v, want store.ErrCorrupt", err)
	}
	setBlock(rec.Raw)
	if err := net.Restart(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if got, err := net.Nodes[0].Record(rec.CID); err != nil || !bytes.Equal(got.Raw, rec.Raw) {
		t.Fatalf("Record after the repair: %v", err)
	}
}

package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// poolNode returns a Node with just what the verifier pool uses, and no
// worker running; the caller starts them.
func poolNode(t *testing.T, network cid.Cid, queue int) *Node {
	t.Helper()
	n := &Node{opts: defaults(), network: network, verifyJobs: make(chan *verifyJob, queue)}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	t.Cleanup(n.cancel)
	n.metrics = newMetrics(prometheus.NewRegistry(), n)
	return n
}

// poolRecords returns n statements of one author's chain, every fifth with
// a damaged signature.
func poolRecords(t *testing.T, network cid.Cid, count int) (raws [][]byte, forged []bool) {
	t.Helper()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	prev := cid.Undef
	for i := range count {
		r, err := protocol.Build(key, protocol.Draft{
			Network: network, Kind: protocol.KindStatement, Topic: "issue/pool", Seq: uint64(i + 1), Prev: prev,
			Time: time.Now().Add(-time.Minute), Body: &protocol.Statement{Title: "t", Text: "pool"},
		})
		if err != nil {
			t.Fatal(err)
		}
		prev = r.CID
		raw := r.Raw
		if i%5 == 4 {
			raw = bytes.Clone(raw)
			raw[bytes.Index(raw, r.Env.Sig)+9] ^= 0x04
		}
		raws = append(raws, raw)
		forged = append(forged, i%5 == 4)
	}
	return raws, forged
}

// TestVerifierBatches: records queued together are validated in batches
// of protocol.MaxSigBatch (100 queued before the worker starts: 64 + 36),
// each record gets its own verdict, and the batches are counted.
func TestVerifierBatches(t *testing.T) {
	network := protocol.RecordCID([]byte("pool network"))
	n := poolNode(t, network, 100)
	raws, forged := poolRecords(t, network, 100)
	jobs := make([]*verifyJob, len(raws))
	for i, raw := range raws {
		jobs[i] = &verifyJob{raw: raw, done: make(chan struct{})}
		n.verifyJobs <- jobs[i]
	}
	go n.runVerifier(n.ctx)
	for i, j := range jobs {
		<-j.done
		switch {
		case forged[i] && protocol.ReasonOf(j.err) != protocol.ReasonBadSignature:
			t.Fatalf("record %d (forged): %v, want bad-signature", i, j.err)
		case !forged[i] && (j.err != nil || !j.rec.CID.Equals(protocol.RecordCID(raws[i]))):
			t.Fatalf("record %d: %v", i, j.err)
		}
	}
	var m dto.Metric
	if err := n.metrics.batch.Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetHistogram().GetSampleCount(); got != 2 {
		t.Fatalf("%d batches, want 2 (64 + 36)", got)
	}
	if got := m.GetHistogram().GetSampleSum(); got != 100 {
		t.Fatalf("%v records in batches, want 100", got)
	}
}

// TestVerifierClosed: with the node closed, validateAll returns errClosed instead of waiting for workers that are gone, whether
// the records were queued or not.
func TestVerifierClosed(t *testing.T) {
	network := protocol.RecordCID([]byte("pool network"))
	n := poolNode(t, network, 4)
	raws, _ := poolRecords(t, network, 10)
	n.cancel()
	if r := n.validateAll(context.Background(), raws[:1])[0]; !errors.Is(r.err, errClosed) {
		t.Fatalf("validateAll of one record on a closed node: %v", r.err)
	}
	for i, r := range n.validateAll(context.Background(), raws) {
		if !errors.Is(r.err, errClosed) {
			t.Fatalf("validateAll record %d on a closed node: %v", i, r.err)
		}
	}

	// A caller whose context ends gets its context's error.
	n2 := poolNode(t, network, 4)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i, r := range n2.validateAll(ctx, raws) {
		if !errors.Is(r.err, context.Canceled) {
			t.Fatalf("validateAll record %d with an ended context: %v", i, r.err)
		}
	}
}

// TestParentsFirst: within a batch, a record follows its parents whatever
// the order it was given in; records unrelated keep their order.
func TestParentsFirst(t *testing.T) {
	network := protocol.RecordCID([]byte("pool network"))
	raws, _ := poolRecords(t, network, 4) // a chain: 0 <- 1 <- 2 <- 3
	res := make([]ingestResult, len(raws)+1)
	for i, raw := range raws {
		r, err := protocol.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		res[i].rec = r
	}
	// An unrelated record: another author's first.
	other, err := protocol.Build(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, ed25519.SeedSize)), protocol.Draft{
		Network: network, Kind: protocol.KindStatement, Topic: "issue/pool", Seq: 1,
		Time: time.Now(), Body: &protocol.Statement{Title: "t", Text: "other"},
	})
	if err != nil {
		t.Fatal(err)
	}
	res[4].rec = other
	got := parentsFirst([]int{3, 4, 1, 2, 0}, res)
	want := []int{0, 1, 2, 3, 4}
	if !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	if got := parentsFirst([]int{4, 0, 2, 1, 3}, res); !slices.Equal(got, []int{4, 0, 1, 2, 3}) {
		t.Fatalf("order %v, want [4 0 1 2 3]", got)
	}
}

package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	dto "github.com/prometheus/client_model/go"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

const slug = "privacy"

var topic = protocol.IssueTopic(slug)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func statement(i int) *protocol.Statement {
	return &protocol.Statement{Title: fmt.Sprintf("statement %d", i), Text: "Cross-border data flows need a global baseline."}
}

// TestGossipSparse: five nodes in a sparse topology; two of them publish
// 100 records each; every node ends with all 200, verified, with identical
// chains and heads.
func TestGossipSparse(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 5, testnet.WithTopology(testnet.Sparse(2, 7)), testnet.WithFollow(slug))
	if err := net.WaitTopicMesh(ctx, topic); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		cids []cid.Cid
		wg   sync.WaitGroup
	)
	errs := make(chan error, 2)
	rej, cancel := net.Nodes[1].SubscribeRejections()
	defer cancel()
	go func() {
		for r := range rej {
			if r.Reason != protocol.ReasonDuplicate && r.Reason != protocol.ReasonMissingDeps {
				t.Logf("node 1 refused: %v", r.Err)
			}
		}
	}()
	for _, p := range []int{0, 3} {
		wg.Go(func() {
			for i := range 100 {
				r, err := net.Nodes[p].Publish(ctx, protocol.KindStatement, topic, statement(i))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				cids = append(cids, r.CID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, nd := range net.Nodes {
		if err := nd.WaitRecords(ctx, cids...); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	want := snapshot(t, net.Nodes[0], net)
	if want.count != 200 {
		t.Fatalf("node 0 holds %d records on %s, want 200", want.count, topic)
	}
	for i, nd := range net.Nodes[1:] {
		if got := snapshot(t, nd, net); got.String() != want.String() {
			t.Fatalf("node %d differs from node 0:\n%s\nvs\n%s", i+1, got, want)
		}
	}
	for _, c := range cids {
		r, err := net.Nodes[4].Record(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Verify(); err != nil {
			t.Fatal(err)
		}
	}
}

// state is what must be identical across nodes holding the same records.
type state struct {
	count  int
	heads  []cid.Cid
	chains []string
}

func (s state) String() string {
	return fmt.Sprintf("count=%d heads=%v chains=%v", s.count, s.heads, s.chains)
}

func snapshot(t *testing.T, nd *node.Node, net *testnet.Network) state {
	t.Helper()
	st := nd.Store()
	heads, err := st.Heads(topic)
	if err != nil {
		t.Fatal(err)
	}
	s := state{heads: heads}
	recs, err := st.TopicRecords(topic, 0, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	s.count = len(recs)
	for _, k := range net.Keys {
		pub, _ := k.GetPublic().Raw()
		seq, head, err := st.ChainHead(pub, topic)
		if err != nil {
			t.Fatal(err)
		}
		s.chains = append(s.chains, fmt.Sprintf("%x:%d:%s", pub[:4], seq, head))
		for i := uint64(1); i <= seq; i++ {
			if _, err := st.ChainAt(pub, topic, i); err != nil {
				t.Fatalf("chain of %x has a gap at %d: %v", pub[:4], i, err)
			}
		}
	}
	return s
}

// rawPeer is a bare gossipsub peer (not a node) that can publish anything.
type rawPeer struct {
	host  host.Host
	topic *pubsub.Topic
}

func newRawPeer(t *testing.T, ctx context.Context, network cid.Cid) *rawPeer {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ps, err := pubsub.NewGossipSub(ctx, h,
		pubsub.WithMessageIdFn(func(m *pb.Message) string { return protocol.RecordCID(m.Data).KeyString() }),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign), pubsub.WithNoAuthor(),
		pubsub.WithFloodPublish(true),
		pubsub.WithMaxMessageSize(protocol.MaxRecordSize+4<<10),
	)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := ps.Join(protocol.PubsubTopic(network, topic))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Subscribe(); err != nil {
		t.Fatal(err)
	}
	return &rawPeer{host: h, topic: tp}
}

// waitPeers blocks until the raw peer sees k peers subscribed to its topic,
// so that its next publish reaches them.
func (rp *rawPeer) waitPeers(t *testing.T, ctx context.Context, k int) {
	t.Helper()
	h, err := rp.topic.EventHandler()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Cancel()
	peers := map[peer.ID]bool{}
	for len(peers) < k {
		ev, err := h.NextPeerEvent(ctx)
		if err != nil {
			t.Fatalf("raw peer sees %d of %d peers: %v", len(peers), k, err)
		}
		if ev.Type == pubsub.PeerJoin {
			peers[ev.Peer] = true
		} else {
			delete(peers, ev.Peer)
		}
	}
}

// TestRawPeerBadRecords: a raw gossipsub peer publishes a forged signature,
// a non-canonical encoding, a record of another network, an oversize record
// and garbage. Every node rejects each with the right reason, stores none,
// and keeps working.
func TestRawPeerBadRecords(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 3, testnet.WithFollow(slug))
	other := testnet.New(t, 1, testnet.WithKeySeed(9), testnet.WithFollow(slug))
	raw := newRawPeer(t, ctx, net.Nodes[0].NetworkID())
	for _, nd := range net.Nodes {
		if err := raw.host.Connect(ctx, nd.AddrInfo()); err != nil {
			t.Fatal(err)
		}
	}
	if err := net.WaitTopicMesh(ctx, topic); err != nil {
		t.Fatal(err)
	}
	raw.waitPeers(t, ctx, len(net.Nodes))

	// Valid material to corrupt: a record signed by a founder's key.
	key := net.SigningKey(1)
	good, err := protocol.Build(key, protocol.Draft{
		Network: net.Nodes[0].NetworkID(), Kind: protocol.KindStatement, Topic: topic,
		Seq: 1, Time: time.Now(), Body: statement(0),
	})
	if err != nil {
		t.Fatal(err)
	}
	forged := bytes.Clone(good.Raw)
	forged[len(forged)-1] ^= 0xff // last byte of the signature
	nonCanonical := bytes.Replace(good.Raw, []byte("cseq\x01"), []byte("cseq\x18\x01"), 1)
	foreign, err := protocol.Build(key, protocol.Draft{
		Network: other.Nodes[0].NetworkID(), Kind: protocol.KindStatement, Topic: topic,
		Seq: 1, Time: time.Now(), Body: statement(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	oversize := make([]byte, protocol.MaxRecordSize+100)
	copy(oversize, good.Raw)

	bad := []struct {
		name   string
		data   []byte
		reason protocol.Reason
	}{
		{"forged signature", forged, protocol.ReasonBadSignature},
		{"non-canonical", nonCanonical, protocol.ReasonNonCanonical},
		{"other network", foreign.Raw, protocol.ReasonWrongNetwork},
		{"oversize", oversize, protocol.ReasonOversize},
		{"garbage", []byte("\xff\x00garbage"), protocol.ReasonBadEncoding},
	}
	subs := make([]<-chan node.Rejection, len(net.Nodes))
	for i, nd := range net.Nodes {
		c, cancel := nd.SubscribeRejections()
		t.Cleanup(cancel)
		subs[i] = c
	}
	for _, b := range bad {
		if err := raw.topic.Publish(ctx, b.data); err != nil {
			t.Fatalf("%s: raw publish: %v", b.name, err)
		}
	}
	for i := range net.Nodes {
		want := map[protocol.Reason]int{}
		for _, b := range bad {
			want[b.reason]++
		}
		for len(want) > 0 {
			select {
			case r := <-subs[i]:
				if want[r.Reason] == 0 {
					t.Fatalf("node %d: unexpected rejection %v", i, r.Err)
				}
				if want[r.Reason]--; want[r.Reason] == 0 {
					delete(want, r.Reason)
				}
			case <-ctx.Done():
				t.Fatalf("node %d: rejections not seen: %v", i, want)
			}
		}
		for _, c := range []cid.Cid{protocol.RecordCID(forged), protocol.RecordCID(nonCanonical), foreign.CID} {
			if ok, _ := net.Nodes[i].Store().Has(c); ok {
				t.Fatalf("node %d stored a bad record %s", i, c)
			}
		}
		if got := counter(t, net.Nodes[i], "clearinghouse_records_rejected_total", "bad-signature"); got < 1 {
			t.Fatalf("node %d: rejected counter for bad-signature is %v", i, got)
		}
	}
	// Still working: the good record published by node 1 reaches everyone.
	r, err := net.Nodes[1].Publish(ctx, protocol.KindStatement, topic, statement(2))
	if err != nil {
		t.Fatal(err)
	}
	for i, nd := range net.Nodes {
		if err := nd.WaitRecords(ctx, r.CID); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
}

// counter sums a counter's samples whose labels contain value.
func counter(t *testing.T, nd *node.Node, name, value string) float64 {
	t.Helper()
	mfs, err := nd.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetValue() == value }) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// histogramCount is the number of observations of an unlabelled histogram.
func histogramCount(t *testing.T, nd *node.Node, name string) uint64 {
	t.Helper()
	return onlyMetric(t, nd, name).GetHistogram().GetSampleCount()
}

// onlyMetric returns the one sample of a metric without labels.
func onlyMetric(t *testing.T, nd *node.Node, name string) *dto.Metric {
	t.Helper()
	mfs, err := nd.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0]
		}
	}
	t.Fatalf("no metric %s without labels", name)
	return nil
}

// TestRestart: a node stopped and started on the same data directory still
// has every acknowledged record and its indexes, and its next record
// continues its chain.
func TestRestart(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 1, testnet.WithDataDir(t.TempDir()), testnet.WithFollow(slug))
	var cids []cid.Cid
	for i := range 50 {
		r, err := net.Nodes[0].Publish(ctx, protocol.KindStatement, topic, statement(i))
		if err != nil {
			t.Fatal(err)
		}
		cids = append(cids, r.CID)
	}
	before := snapshot(t, net.Nodes[0], net)
	if err := net.Restart(ctx, 0); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, net.Nodes[0], net)
	if before.String() != after.String() {
		t.Fatalf("indexes changed across restart:\n%s\n%s", before, after)
	}
	for _, c := range cids {
		r, err := net.Nodes[0].Record(c)
		if err != nil {
			t.Fatalf("record %s lost: %v", c, err)
		}
		if err := r.Verify(); err != nil {
			t.Fatal(err)
		}
	}
	r, err := net.Nodes[0].Publish(ctx, protocol.KindStatement, topic, statement(50))
	if err != nil {
		t.Fatal(err)
	}
	if r.Env.Seq != 51 || !r.PrevCID().Equals(cids[49]) {
		t.Fatalf("next record has seq %d prev %s, want 51 and %s", r.Env.Seq, r.PrevCID(), cids[49])
	}
}

// TestObserverRefusesWrites: an observer never signs.
func TestObserverRefusesWrites(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 2, testnet.WithObservers(1), testnet.WithFollow(slug))
	obs := net.Nodes[1]
	if !obs.IsObserver() {
		t.Fatal("node 1 is not an observer")
	}
	_, err := obs.Publish(ctx, protocol.KindStatement, topic, statement(0))
	if protocol.ReasonOf(err) != protocol.ReasonObserver || !strings.Contains(err.Error(), "observer") {
		t.Fatalf("observer publish: %v", err)
	}
	if err := net.WaitTopicMesh(ctx, topic); err != nil {
		t.Fatal(err)
	}
	r, err := net.Nodes[0].Publish(ctx, protocol.KindStatement, topic, statement(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := obs.WaitRecords(ctx, r.CID); err != nil {
		t.Fatal(err)
	}
}

// TestPendingUntilPastArrives: a record whose prev is missing waits, and is
// stored as soon as the prev arrives, whatever the delivery order.
func TestPendingUntilPastArrives(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 1, testnet.WithTopology(testnet.None))
	nd := net.Nodes[0]
	key := net.SigningKey(0)
	var recs []*protocol.Record
	prev := cid.Undef
	for i := range 5 {
		r, err := protocol.Build(key, protocol.Draft{
			Network: nd.NetworkID(), Kind: protocol.KindStatement, Topic: topic,
			Seq: uint64(i + 1), Prev: prev, Deps: []cid.Cid{prev}, Time: time.Now(), Body: statement(i),
		})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
		prev = r.CID
	}
	for _, i := range []int{4, 2, 3, 1} {
		if _, err := nd.Ingest(ctx, recs[i].Raw, topic, node.SourceSync); protocol.ReasonOf(err) != protocol.ReasonMissingDeps {
			t.Fatalf("record %d: %v, want missing-deps", i, err)
		}
	}
	if _, err := nd.Ingest(ctx, recs[0].Raw, topic, node.SourceSync); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if ok, _ := nd.Store().Has(r.CID); !ok {
			t.Fatalf("record %d still pending after its past arrived", r.Env.Seq)
		}
	}
	if _, err := nd.Ingest(ctx, recs[2].Raw, topic, node.SourceSync); protocol.ReasonOf(err) != protocol.ReasonDuplicate {
		t.Fatalf("re-ingest: %v, want duplicate", err)
	}
}

// TestPendingSurvivesRestart: records that wait for their causal past are
// kept across a restart and stored once their past arrives.
func TestPendingSurvivesRestart(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 1, testnet.WithDataDir(t.TempDir()), testnet.WithTopology(testnet.None))
	key := net.SigningKey(0)
	var recs []*protocol.Record
	prev := cid.Undef
	for i := range 3 {
		r, err := protocol.Build(key, protocol.Draft{
			Network: net.Nodes[0].NetworkID(), Kind: protocol.KindStatement, Topic: topic,
			Seq: uint64(i + 1), Prev: prev, Time: time.Now(), Body: statement(i),
		})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
		prev = r.CID
	}
	for _, r := range recs[1:] {
		if _, err := net.Nodes[0].Ingest(ctx, r.Raw, topic, node.SourceSync); protocol.ReasonOf(err) != protocol.ReasonMissingDeps {
			t.Fatalf("seq %d: %v, want missing-deps", r.Env.Seq, err)
		}
	}
	if err := net.Restart(ctx, 0); err != nil {
		t.Fatal(err)
	}
	nd := net.Nodes[0]
	if _, err := nd.Ingest(ctx, recs[0].Raw, topic, node.SourceSync); err != nil {
		t.Fatal(err)
	}
	if err := nd.WaitRecords(ctx, recs[1].CID, recs[2].CID); err != nil {
		t.Fatalf("records pending before the restart were lost: %v", err)
	}
}

// TestFollowPersists: an issue followed at runtime is followed again after
// a restart; an unfollowed one is not, and can be followed again at once;
// an issue the node follows by its configuration cannot be unfollowed.
func TestFollowPersists(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 1, testnet.WithDataDir(t.TempDir()), testnet.WithFollow(slug))
	following := func(s string) bool {
		return slices.Contains(net.Nodes[0].Topics(), protocol.IssueTopic(s))
	}
	if err := net.Nodes[0].Follow("later"); err != nil {
		t.Fatal(err)
	}
	if err := net.Restart(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if !following("later") || !following(slug) {
		t.Fatalf("after a restart the node follows %v", net.Nodes[0].Topics())
	}
	if err := net.Nodes[0].Unfollow(slug); !errors.Is(err, node.ErrFollowedByConfig) {
		t.Fatalf("unfollow of a configured issue: %v", err)
	}
	if err := net.Nodes[0].Unfollow("later"); err != nil {
		t.Fatal(err)
	}
	if following("later") {
		t.Fatal("still following after Unfollow")
	}
	if err := net.Nodes[0].Unfollow("never"); err != nil {
		t.Fatalf("unfollow of an issue not followed: %v", err)
	}
	// The topic was left cleanly: it can be joined and published on again.
	if err := net.Nodes[0].Follow("later"); err != nil {
		t.Fatalf("follow after unfollow: %v", err)
	}
	if _, err := net.Nodes[0].Publish(ctx, protocol.KindStatement, protocol.IssueTopic("later"), statement(1)); err != nil {
		t.Fatal(err)
	}
	if err := net.Nodes[0].Unfollow("later"); err != nil {
		t.Fatal(err)
	}
	if err := net.Restart(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if following("later") {
		t.Fatalf("an unfollowed issue is followed after a restart: %v", net.Nodes[0].Topics())
	}
}

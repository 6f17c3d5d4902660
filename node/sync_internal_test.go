package node

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// randomItems returns n distinct items with times spread over a day.
func randomItems(n int, seed uint64) []protocol.Item {
	r := rand.New(rand.NewPCG(seed, seed+1))
	out := make([]protocol.Item, n)
	for i := range out {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], r.Uint64())
		out[i] = protocol.Item{Time: 1_700_000_000_000 + r.Int64N(86_400_000), ID: sha256.Sum256(b[:])}
	}
	return out
}

// reconcileSets reconciles a set of have against a responder holding all,
// with the node's chunking, and returns what it found missing, the round
// trips and the bytes of every message both ways.
func reconcileSets(t testing.TB, server, client *protocol.ItemSet) (need [][32]byte, rounds, bytes int) {
	need, rounds, err := reconcileWith(client, math.MaxInt64, math.MaxInt, func(msg []protocol.Range) ([]protocol.Range, error) {
		b, _ := protocol.Marshal(protocol.SyncRequest{Type: protocol.SyncReconcile, Ranges: msg})
		if len(msg) > protocol.ReconcileMaxRanges || len(b) > protocol.SyncMaxFrame {
			t.Fatalf("request of %d ranges, %d bytes", len(msg), len(b))
		}
		resp, err := server.Respond(msg)
		if err != nil {
			return nil, err
		}
		rb, _ := protocol.Marshal(protocol.SyncResponse{Type: protocol.SyncReconcile, Ranges: resp})
		if len(rb) > protocol.SyncMaxFrame {
			t.Fatalf("response of %d ranges, %d bytes", len(resp), len(rb))
		}
		bytes += len(b) + len(rb)
		return resp, nil
	}, func(err error) { t.Fatal(err) })
	if err != nil {
		t.Fatal(err)
	}
	return need, rounds, bytes
}

// TestReconcileChunked: the node's chunked reconciliation finds exactly
// the missing items, with every message within the frame limits, from an
// empty set, a set missing a few, and a set missing many.
func TestReconcileChunked(t *testing.T) {
	all := randomItems(150_000, 1)
	times := map[[32]byte]int64{}
	for _, it := range all {
		times[it.ID] = it.Time
	}
	for _, tc := range []struct {
		name    string
		missing int
	}{{"equal", 0}, {"few", 10}, {"thousand", 1000}, {"half", 75_000}, {"empty", 150_000}} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(2, 3))
			perm := r.Perm(len(all))
			drop := map[int]bool{}
			for _, i := range perm[:tc.missing] {
				drop[i] = true
			}
			var have []protocol.Item
			want := map[[32]byte]bool{}
			for i, it := range all {
				if drop[i] {
					want[it.ID] = true
				} else {
					have = append(have, it)
				}
			}
			need, rounds, _ := reconcileSets(t, protocol.NewItemSet(slices.Clone(all)), protocol.NewItemSet(have))
			if len(need) != len(want) {
				t.Fatalf("found %d missing, want %d", len(need), len(want))
			}
			// Oldest first, in the responder's (time, id) order, whatever
			// round found each.
			if !slices.IsSortedFunc(need, func(a, b [32]byte) int {
				if ta, tb := times[a], times[b]; ta != tb {
					return cmp.Compare(ta, tb)
				}
				return bytes.Compare(a[:], b[:])
			}) {
				t.Fatalf("the %d ids needed are not in (time, id) order", len(need))
			}
			for _, id := range need {
				if !want[id] {
					t.Fatalf("reported %x, which is not missing", id[:4])
				}
			}
			t.Logf("%d missing of %d: %d round trips", tc.missing, len(all), rounds)
		})
	}
}

// BenchmarkReconcile1000of100000 reconciles a set lacking 1,000 of 100,000
// items: time per reconciliation, round trips and bytes exchanged.
//
// Run: go test ./node -run '^$' -bench BenchmarkReconcile -benchtime 20x
func BenchmarkReconcile1000of100000(b *testing.B) {
	all := randomItems(100_000, 7)
	r := rand.New(rand.NewPCG(8, 9))
	drop := map[int]bool{}
	for _, i := range r.Perm(len(all))[:1000] {
		drop[i] = true
	}
	var have []protocol.Item
	for i, it := range all {
		if !drop[i] {
			have = append(have, it)
		}
	}
	server, client := protocol.NewItemSet(all), protocol.NewItemSet(have)
	var rounds, bytes int
	for b.Loop() {
		var need [][32]byte
		need, rounds, bytes = reconcileSets(b, server, client)
		if len(need) != 1000 {
			b.Fatalf("found %d missing", len(need))
		}
	}
	b.ReportMetric(float64(rounds), "round-trips")
	b.ReportMetric(float64(bytes)/1024, "KiB-exchanged")
}

// FuzzReadFrame: any bytes read as a sync frame under the frame memory
// budget end in a request or an error, never a panic, and the budget is
// returned whatever happens.
func FuzzReadFrame(f *testing.F) {
	var ok bytes.Buffer
	_ = protocol.WriteFrame(&ok, &protocol.SyncRequest{Type: protocol.SyncFetch, Topic: "index", CIDs: [][]byte{{1, 2}}})
	f.Add(ok.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{0x80, 0x80, 0x80, 0x02, 0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var used int64
		b := newMemBudget(protocol.SyncMaxFrame, func(n int64) { used = n })
		var req protocol.SyncRequest
		_, _ = readFrame(bufio.NewReader(bytes.NewReader(data)), &req, b, nil, nil)
		if used != 0 {
			t.Fatalf("%d bytes of frame memory still held", used)
		}
	})
}

// TestMemBudget: the global frame memory is never over-committed; a waiter
// gets room when it is released, or gives up when told to.
func TestMemBudget(t *testing.T) {
	var used int64
	b := newMemBudget(10, func(n int64) { used = n })
	if !b.tryAcquire(6) || b.tryAcquire(5) || used != 6 {
		t.Fatalf("tryAcquire: used %d", used)
	}
	done := make(chan struct{})
	close(done)
	if b.acquire(5, done) {
		t.Fatal("acquire beyond the budget succeeded with done closed")
	}
	got := make(chan bool)
	go func() { got <- b.acquire(5, nil) }()
	b.release(6)
	if !<-got {
		t.Fatal("waiter not served after a release")
	}
	if b.release(5); used != 0 {
		t.Fatalf("used %d after every release", used)
	}
}

// TestFlights: a trigger that arrives while a session of its key runs is
// not dropped but kept, once, for when that session ends; fetch triggers
// add their CIDs up.
func TestFlights(t *testing.T) {
	f := flights{}
	a := syncTrigger{topic: "issue/a"}
	if !f.begin("k", a) {
		t.Fatal("first trigger of a key did not start")
	}
	for range 2 {
		if f.begin("k", a) {
			t.Fatal("trigger started beside a running session of its key")
		}
	}
	if !f.begin("other", a) {
		t.Fatal("a running key held up another")
	}
	if again := f.end("k"); again == nil || again.topic != a.topic {
		t.Fatalf("end returned %v, want the trigger kept while the session ran", again)
	}
	if !f.begin("k", a) {
		t.Fatal("key still busy after its session ended")
	}
	if again := f.end("k"); again != nil {
		t.Fatalf("end returned %v with nothing kept", again)
	}

	c1, c2, c3 := protocol.Item{ID: [32]byte{1}}.CID(), protocol.Item{ID: [32]byte{2}}.CID(), protocol.Item{ID: [32]byte{3}}.CID()
	f.begin("fetch", syncTrigger{cids: []cid.Cid{c1}})
	f.begin("fetch", syncTrigger{cids: []cid.Cid{c2, c1}})
	f.begin("fetch", syncTrigger{cids: []cid.Cid{c3, c2}})
	again := f.end("fetch")
	if again == nil || !slices.Equal(again.cids, []cid.Cid{c2, c1, c3}) {
		t.Fatalf("kept fetch %v, want the CIDs of the triggers that waited, once each", again)
	}
	if len(f) != 1 {
		t.Fatalf("%d keys left, want 1 (other)", len(f))
	}

	// Of limits (below), the wider wins: none over any, the later over
	// the earlier.
	for _, tc := range []struct{ kept, next, want int64 }{
		{0, 500, 0}, {500, 0, 0}, {500, 700, 700}, {700, 500, 700},
	} {
		f.begin("lim", syncTrigger{topic: "issue/a"})
		f.begin("lim", syncTrigger{topic: "issue/a", below: tc.kept})
		f.begin("lim", syncTrigger{topic: "issue/a", below: tc.next})
		if again := f.end("lim"); again == nil || again.below != tc.want {
			t.Errorf("kept %d, then %d: rerun %+v, want below %d", tc.kept, tc.next, again, tc.want)
		}
	}
}

// TestDiffersBelow: a pull-back covers every range of the answer that is
// not a skip, and no more.
func TestDiffersBelow(t *testing.T) {
	skip := func(tm int64) protocol.Range {
		return protocol.Range{Upper: protocol.Bound{Time: tm}, Mode: protocol.ModeSkip}
	}
	fp := func(tm int64, id ...byte) protocol.Range {
		return protocol.Range{Upper: protocol.Bound{Time: tm, ID: id}, Mode: protocol.ModeFingerprint, FP: make([]byte, 16)}
	}
	ids := protocol.Range{Upper: protocol.Infinity, Mode: protocol.ModeIDList}
	for _, tc := range []struct {
		answer []protocol.Range
		want   int64
	}{
		{[]protocol.Range{fp(100), skip(200)}, 100},
		{[]protocol.Range{skip(50), fp(100, 7), skip(200)}, 101},
		{[]protocol.Range{fp(100), skip(150), fp(180)}, 180},
		{[]protocol.Range{skip(100), ids}, 0},
		{[]protocol.Range{fp(100), {Upper: protocol.Infinity, Mode: protocol.ModeFingerprint, FP: make([]byte, 16)}}, 0},
	} {
		if got := differsBelow(tc.answer); got != tc.want {
			t.Errorf("differsBelow(%+v) = %d, want %d", tc.answer, got, tc.want)
		}
	}
}

// TestOpenerMayHoldMore: the responder of a reconciliation pulls back
// when the opener may hold items it lacks, and not when the opener holds
// nothing (a catch-up from scratch) or the sets are equal.
func TestOpenerMayHoldMore(t *testing.T) {
	all := randomItems(3000, 7)
	extra := randomItems(1, 8)
	for _, tc := range []struct {
		name              string
		opener, responder []protocol.Item
		want              bool
	}{
		{"opener empty", nil, all, false},
		{"equal", all, all, false},
		{"opener holds one more", append(slices.Clone(all), extra...), all, true},
		{"opener holds one the empty responder lacks", extra, nil, true},
		{"opener behind", all[:2000], all, true}, // the responder cannot tell
	} {
		t.Run(tc.name, func(t *testing.T) {
			opener, responder := protocol.NewItemSet(slices.Clone(tc.opener)), protocol.NewItemSet(slices.Clone(tc.responder))
			got := false
			msg := opener.Initiate()
			for rounds := 0; msg != nil; rounds++ {
				if rounds > 100 {
					t.Fatal("reconciliation does not end")
				}
				answer, err := responder.Respond(msg)
				if err != nil {
					t.Fatal(err)
				}
				got = got || openerMayHoldMore(msg, answer)
				_, msg, err = opener.Continue(answer)
				if err != nil {
					t.Fatal(err)
				}
			}
			if got != tc.want {
				t.Errorf("openerMayHoldMore = %v over the reconciliation, want %v", got, tc.want)
			}
		})
	}
}

// TestFallbackPeer: fallback rounds ask one peer per topic, every peer in
// turn, so that n rounds of a node with n peers ask each of them once;
// topics start at different peers.
func TestFallbackPeer(t *testing.T) {
	var peers []peer.ID
	for i := range 8 {
		peers = append(peers, peer.ID(fmt.Sprintf("peer-%d", i)))
	}
	first := map[peer.ID]bool{}
	for _, topic := range []string{"members", "index", "issue/a", "issue/b", "issue/c", "issue/d"} {
		asked := map[peer.ID]int{}
		for round := range len(peers) {
			// The order of the connected peers does not matter.
			shuffled := slices.Clone(peers)
			slices.Reverse(shuffled[:round%len(peers)])
			asked[fallbackPeer(shuffled, topic, round)]++
		}
		for _, p := range peers {
			if asked[p] != 1 {
				t.Fatalf("topic %s: %d rounds asked %s %d times, want every peer once: %v", topic, len(peers), p, asked[p], asked)
			}
		}
		first[fallbackPeer(peers, topic, 0)] = true
	}
	if len(first) < 2 {
		t.Errorf("every topic starts at the same peer")
	}
}

// TestSyncPlan: the periodic rounds of one topic over a run of intervals:
// a random peer, for the older records only, while it changes; every peer,
// every record, once it settles, also when a fallback round falls on that
// interval; nothing while unchanged; one peer in turn at a fallback round.
func TestSyncPlan(t *testing.T) {
	var peers []peer.ID
	for i := range 4 {
		peers = append(peers, peer.ID(fmt.Sprintf("peer-%d", i)))
	}
	const topic, settled, every = "issue/a", int64(12345), 5
	sc := &syncSchedule{}
	type want struct {
		sessions int
		below    int64
	}
	last := uint64(1)
	for round, tc := range []struct {
		arrived bool // a record arrived since the previous interval
		want    want
	}{
		{false, want{1, 0}},      // 1: first look at the topic
		{false, want{4, 0}},      // 2: not synced with every peer yet
		{false, want{0, 0}},      // 3: unchanged
		{true, want{1, settled}}, // 4: changing
		{true, want{1, settled}}, // 5: changing, and a fallback round
		{false, want{4, 0}},      // 6: settled
		{false, want{0, 0}},      // 7
		{true, want{1, settled}}, // 8
		{false, want{4, 0}},      // 9: settled
		{false, want{1, 0}},      // 10: a fallback round, unchanged
		{true, want{1, settled}}, // 11
		{true, want{1, settled}}, // 12
		{true, want{1, settled}}, // 13
		{true, want{1, settled}}, // 14
		{false, want{4, 0}},      // 15: settled, when a fallback round is due too
		{false, want{0, 0}},      // 16
		{false, want{0, 0}},      // 17
	} {
		if tc.arrived {
			last++
		}
		plan := sc.plan([]string{topic}, map[string]uint64{topic: last}, false, peers, every, settled)
		seen := map[peer.ID]bool{}
		for _, tr := range plan {
			seen[tr.peer] = true
			if tr.topic != topic || tr.below != tc.want.below {
				t.Errorf("round %d: trigger %+v, want topic %s below %d", round+1, tr, topic, tc.want.below)
			}
		}
		if len(plan) != tc.want.sessions || len(seen) != len(plan) {
			t.Errorf("round %d: %d sessions with %d peers, want %d", round+1, len(plan), len(seen), tc.want.sessions)
		}
	}
	// Blind (no topic stats): every topic with every peer.
	if plan := sc.plan([]string{topic, "members"}, nil, true, peers, every, settled); len(plan) != 8 {
		t.Errorf("blind round: %d sessions, want 8", len(plan))
	}
}

// TestThrottle: a key goes through at most once per period, keys do not
// hold each other up, and a full throttle forgets only keys past their
// period.
func TestThrottle(t *testing.T) {
	th := throttle{}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const every = time.Second
	if !th.allow("a", t0, every) || th.allow("a", t0.Add(every-1), every) || !th.allow("a", t0.Add(every), every) {
		t.Fatal("a key went through twice within its period, or not after it")
	}
	if !th.allow("b", t0.Add(every), every) {
		t.Fatal("one key held up another")
	}
	for i := range throttleKeys {
		th.allow(fmt.Sprint(i), t0, every)
	}
	// Full: the keys of t0 are past their period at t0+1.5s and go; "a"
	// and "b" (t0+1s) are not at t0+1.5s and stay.
	th.allow("new", t0.Add(3*every/2), every)
	if _, ok := th["0"]; ok {
		t.Error("a full throttle kept a key past its period")
	}
	if th.allow("a", t0.Add(3*every/2), every) {
		t.Error("a full throttle forgot a key within its period")
	}
}

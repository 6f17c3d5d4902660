package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/store"
)

// fullReplay is the state a node had before lazy loading: every stored
// record, in arrival order, through admit. The store is only read.
func fullReplay(t *testing.T, g *protocol.Genesis, st *store.Store) *fedState {
	t.Helper()
	s, err := newFedState(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	var after uint64
	for {
		metas, err := st.Since(after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(metas) == 0 {
			break
		}
		for _, m := range metas {
			after = m.Arrival
			raw, err := st.Get(m.CID)
			if err != nil {
				t.Fatal(err)
			}
			r, err := protocol.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			_ = s.admit(r) // a record no longer valid stays out, as on a node
		}
	}
	s.refreshMembers()
	return s
}

// compareWithReplay fails unless the node's derived state, as its readers
// see it (members, issues, every process's state and audit JSON), equals
// a full replay of its store, byte for byte. It returns the number of
// processes compared.
func compareWithReplay(t *testing.T, what string, nd *Node) int {
	t.Helper()
	want := fullReplay(t, nd.genesis, nd.store)
	js := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if a, b := js(nd.Members()), js(want.members.Members().Members()); !bytes.Equal(a, b) {
		t.Fatalf("%s: members differ from a full replay:\n%s\n%s", what, a, b)
	}
	if a, b := js(nd.Issues()), js(want.index.Issues()); !bytes.Equal(a, b) {
		t.Fatalf("%s: issues differ from a full replay:\n%s\n%s", what, a, b)
	}
	compared := 0
	slugs := map[string]bool{}
	for slug := range want.issues {
		slugs[slug] = true
	}
	for _, i := range nd.Issues() {
		slugs[i.Slug] = true
	}
	for slug := range slugs {
		got, err := nd.Processes(slug)
		if err != nil {
			t.Fatal(err)
		}
		var procs []*ProcessState
		if is := want.issues[slug]; is != nil {
			for _, p := range is.Processes() {
				procs = append(procs, processState(p, is.Topic()))
			}
		}
		if len(got) != len(procs) {
			t.Fatalf("%s: issue %s has %d processes, a full replay %d", what, slug, len(got), len(procs))
		}
		for i, p := range got {
			w := procs[i]
			if !p.CID().Equals(w.CID()) || p.Stage() != w.Stage() || !slices.Equal(p.Records(), w.Records()) ||
				!slices.Equal(p.Adopted(), w.Adopted()) || p.Topic() != w.Topic() {
				t.Fatalf("%s: process %s: stage %s, %d records, adopted %v; a full replay: %s, %d, %v",
					what, p.CID(), p.Stage(), p.Len(), p.Adopted(), w.Stage(), w.Len(), w.Adopted())
			}
			rep, err := nd.Audit(p.CID())
			if err != nil {
				t.Fatal(err)
			}
			a, err := rep.JSON()
			if err != nil {
				t.Fatal(err)
			}
			wp, _, _ := want.process(p.CID())
			b, err := wp.Audit(nil).JSON()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Fatalf("%s: audit of %s differs from a full replay's:\n%s\n---\n%s", what, p.CID(), a, b)
			}
			compared++
		}
	}
	return compared
}

// openOn starts a node whose store is on the in-memory file system fs.
func openOn(t *testing.T, ctx context.Context, fs vfs.FS, g *protocol.Genesis, key crypto.PrivKey, observer bool, clock func() time.Time) *Node {
	t.Helper()
	opts := []Option{WithIdentity(key), WithGenesis(g), WithStoreFS(fs), WithDataDir(t.TempDir()), WithObserver(observer),
		WithListenAddrs([]string{"/ip4/127.0.0.1/tcp/0"}), WithSyncInterval(time.Hour)}
	if clock != nil {
		opts = append(opts, WithClock(clock))
	}
	nd, err := New(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return nd
}

// TestLazyStateMatchesFullReplay: for every golden governance scenario,
// ingested in a random order, a restarted node (which loads the members
// and index topics at start and each issue when first needed) shows the
// members, issues, process states and audits, byte for byte, of a full
// replay of its store in arrival order; before any read, no issue is
// loaded.
func TestLazyStateMatchesFullReplay(t *testing.T) {
	compared := 0
	for _, sc := range loadScenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			key, _, err := crypto.GenerateEd25519Key(nil)
			if err != nil {
				t.Fatal(err)
			}
			fs := vfs.NewMem()
			nd := openOn(t, ctx, fs, sc.genesis, key, true, nil)
			rng := rand.New(rand.NewPCG(uint64(len(sc.records)), 3))
			for _, r := range shuffled(rng, sc.records) {
				if _, err := nd.Ingest(ctx, r.Raw, "", SourceSync); err != nil && protocol.ReasonOf(err) == "" {
					t.Fatal(err)
				}
			}
			before := compareWithReplay(t, "before the restart", nd)
			if err := nd.Close(); err != nil {
				t.Fatal(err)
			}
			nd = openOn(t, ctx, fs, sc.genesis, key, true, nil)
			defer nd.Close()
			issues := 0
			topics, err := nd.store.Topics()
			if err != nil {
				t.Fatal(err)
			}
			for _, ts := range topics {
				if _, ok := protocol.IssueSlug(ts.Topic); ok {
					issues++
				}
			}
			if got := len(nd.snapshot().unloaded); got != issues {
				t.Fatalf("after the restart %d issues are deferred, want all %d with records", got, issues)
			}
			after := compareWithReplay(t, "after the restart", nd)
			if after != before {
				t.Fatalf("%d processes after the restart, %d before", after, before)
			}
			if len(nd.snapshot().unloaded) != 0 {
				t.Fatalf("issues %v still deferred after every process was read", nd.snapshot().unloaded)
			}
			compared += after
		})
	}
	if compared == 0 {
		t.Fatal("no process was compared")
	}
}

// crossFixture is a federation of five founders, one per stakeholder
// group; the node signs with the first.
func crossFixture(t *testing.T) (*protocol.Genesis, crypto.PrivKey) {
	t.Helper()
	var founders []protocol.Member
	var keys []ed25519.PrivateKey
	for i := range 5 {
		seed := make([]byte, ed25519.SeedSize)
		seed[0], seed[1] = 0x1a, byte(i)
		k := ed25519.NewKeyFromSeed(seed)
		keys = append(keys, k)
		founders = append(founders, protocol.Member{Key: k.Public().(ed25519.PublicKey), Org: fmt.Sprintf("org %d", i),
			Group: protocol.DefaultGroups[i], Region: protocol.DefaultRegions[i]})
	}
	g := protocol.NewGenesis("lazy", founders, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, k := range keys {
		if err := g.Sign(k); err != nil {
			t.Fatal(err)
		}
	}
	key, err := crypto.UnmarshalEd25519PrivateKey(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	return g, key
}

// TestLazyStateCrossTopicAndCrash: records of two issues and their public
// topics that link across topics both ways; restarts with a full replay
// compared after each, new records published on issues not loaded yet
// (the apply loop loads them first), and a crash (the files as last
// synced, while publishes were in flight) restarted and compared the same
// way.
func TestLazyStateCrossTopicAndCrash(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	g, key := crossFixture(t)
	var mu sync.Mutex
	now := time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(11 * time.Second) // past protocol.MinCommentInterval
		return now
	}
	fs := vfs.NewCrashableMem()
	nd := openOn(t, ctx, fs, g, key, false, clock)
	// pub is called by one goroutine at a time; a failed publish fails
	// the test (with Errorf: it may run on a goroutine of its own) and
	// returns a record without CID.
	last := map[string]cid.Cid{}
	pub := func(nd *Node, kind, topic string, body protocol.Body, deps ...cid.Cid) *protocol.Record {
		t.Helper()
		r, err := nd.Publish(ctx, kind, topic, body, deps...)
		if err != nil {
			t.Errorf("publish %s on %s: %v", kind, topic, err)
			return &protocol.Record{}
		}
		last[topic] = r.CID
		return r
	}
	slugs := []string{"privacy", "jurisdiction"}
	for _, s := range slugs {
		pub(nd, protocol.KindIssueOpen, protocol.TopicIndex, &protocol.IssueOpen{Slug: s, Title: s})
	}
	ms := now.UnixMilli()
	day := int64(24 * 3600 * 1000)
	charters := map[string]cid.Cid{}
	for _, s := range slugs {
		charters[s] = pub(nd, protocol.KindCharter, protocol.IssueTopic(s), &protocol.Charter{
			Title: "Lazy " + s, Aim: "A.", Purpose: "P.", Scope: []string{"s"}, Modalities: "M.", Significance: "S.",
			Convenors: [][]byte{g.Founders[0].Key, g.Founders[1].Key},
			Phases: []protocol.Phase{
				{Stage: protocol.StageScoping, Start: ms, End: ms + 30*day},
				{Stage: protocol.StageConsultation, Start: ms + 30*day, End: ms + 90*day},
				{Stage: protocol.StageDecision, Start: ms + 90*day, End: ms + 120*day},
				{Stage: protocol.StageImplementation, Start: ms + 120*day, End: ms + 365*day},
			},
			MinNoticeSeconds: 14 * 24 * 3600, WindowSeconds: 14 * 24 * 3600,
			Rule: protocol.DecisionRule{Name: protocol.RuleConcurrentMajority, Threshold: 1},
		}).CID
	}
	if t.Failed() {
		t.FailNow()
	}
	// Rounds of records that link across topics: each issue's statement
	// links the other issue's and the public topics' newest records, each
	// public comment the other issue's newest record.
	round := func(nd *Node, k int) {
		for i, s := range slugs {
			other := slugs[1-i]
			pub(nd, protocol.KindStatement, protocol.IssueTopic(s), &protocol.Statement{Title: "Round", Text: fmt.Sprintf("Statement %d.", k)},
				last[protocol.IssueTopic(other)])
			if c, ok := last[protocol.PublicTopic(other)]; ok {
				pub(nd, protocol.KindStatement, protocol.IssueTopic(s), &protocol.Statement{Title: "Reply", Text: "Reply."}, c)
			}
			proc := protocol.LinkTo(charters[s])
			pub(nd, protocol.KindPublicComment, protocol.PublicTopic(s), &protocol.PublicComment{
				Process: &proc, Person: bytes.Repeat([]byte{byte(k)}, 16), Text: "A comment."},
				charters[s], last[protocol.IssueTopic(other)])
			pub(nd, protocol.KindNotice, protocol.IssueTopic(s), &protocol.Notice{Process: protocol.LinkTo(charters[s]),
				Subject: protocol.SubjectConsultation, Date: ms + int64(30+k)*day, Text: "Notice."}, charters[s], last[protocol.PublicTopic(other)])
		}
	}
	for k := range 5 {
		round(nd, k)
	}
	if t.Failed() {
		t.FailNow()
	}
	compareWithReplay(t, "before the restart", nd)
	if err := nd.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart: publish on the issues before any read loads them.
	nd = openOn(t, ctx, fs, g, key, false, clock)
	if len(nd.snapshot().unloaded) != len(slugs) {
		t.Fatalf("after the restart %d issues are deferred, want %d", len(nd.snapshot().unloaded), len(slugs))
	}
	round(nd, 5)
	if len(nd.snapshot().unloaded) != 0 {
		t.Fatalf("issues %v deferred after records were published on them", nd.snapshot().unloaded)
	}
	compareWithReplay(t, "after the restart and new records", nd)

	// A crash while publishes are in flight: the files as last synced.
	if err := nd.Close(); err != nil {
		t.Fatal(err)
	}
	nd = openOn(t, ctx, fs, g, key, false, clock)
	var wg sync.WaitGroup
	started := make(chan struct{})
	wg.Go(func() {
		for k := 6; k < 12; k++ {
			round(nd, k)
			if k == 7 {
				close(started)
			}
		}
	})
	<-started
	crashed := fs.CrashClone(vfs.CrashCloneCfg{}) // synced data only
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if err := nd.Close(); err != nil {
		t.Fatal(err)
	}
	nd = openOn(t, ctx, crashed, g, key, false, clock)
	defer nd.Close()
	// Reads by charter load the charter's issue, and only it.
	if _, err := nd.Process(cid.MustParse("bafyreifak774biegr3euw7ugblkqabvd7c6yri2oee2eg6qqzd4nchalka")); !errors.Is(err, ErrUnknownProcess) {
		t.Fatalf("a process never stored: %v, want ErrUnknownProcess", err)
	}
	if u := nd.snapshot().unloaded; len(u) != 2 {
		t.Fatalf("after reading an unknown process the deferred issues are %v, want both", u)
	}
	if _, err := nd.Process(charters[slugs[0]]); err != nil {
		t.Fatal(err)
	}
	if u := nd.snapshot().unloaded; len(u) != 1 || !u[slugs[1]] {
		t.Fatalf("after reading a process of %s the deferred issues are %v, want %s alone", slugs[0], u, slugs[1])
	}
	// Loading the first issue loaded part of the second (the records its
	// records link to): readers see none of it until it is whole.
	if len(nd.snapshot().bySlug[slugs[1]]) != 0 || nd.snapshot().procs[charters[slugs[1]]] != nil {
		t.Fatalf("a reader sees a process of %s, which is only partly loaded", slugs[1])
	}
	if _, err := nd.AuditLocal(charters[slugs[1]]); err != nil {
		t.Fatal(err)
	}
	if u := nd.snapshot().unloaded; len(u) != 0 {
		t.Fatalf("after an audit of %s the deferred issues are %v", slugs[1], u)
	}
	if n := compareWithReplay(t, "after a crash", nd); n != len(slugs) {
		t.Fatalf("%d processes after the crash, want %d", n, len(slugs))
	}
	st, err := nd.store.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after the crash the store holds %d records", st.Records)
}

package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/protocol/gov"
)

// scenario is a golden governance scenario of protocol/gov/testdata: its
// genesis and every record it built (TestGolden keeps the files true).
type scenario struct {
	name    string
	genesis *protocol.Genesis
	records []*protocol.Record
}

func loadScenarios(t *testing.T) []scenario {
	t.Helper()
	files, err := filepath.Glob("../protocol/gov/testdata/*.records.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden scenario records: %v", err)
	}
	var out []scenario
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var sr struct {
			Genesis []byte
			Records [][]byte
		}
		if err := json.Unmarshal(b, &sr); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		s := scenario{name: strings.TrimSuffix(filepath.Base(f), ".records.json")}
		if s.genesis, err = protocol.DecodeGenesis(sr.Genesis); err != nil {
			t.Fatalf("%s: genesis: %v", f, err)
		}
		for _, raw := range sr.Records {
			r, err := protocol.Decode(raw)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			s.records = append(s.records, r)
		}
		out = append(out, s)
	}
	return out
}

// shuffled returns the records in a random order with about one in five
// delivered twice.
func shuffled(rng *rand.Rand, recs []*protocol.Record) []*protocol.Record {
	out := slices.Clone(recs)
	for _, r := range recs {
		if rng.IntN(5) == 0 {
			out = append(out, r)
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// deliverer drives a fedState as the apply loop does: a record is checked
// once its parents are stored (else it waits, and is released when they
// are), duplicates are dropped, a second record at an author's chain slot
// is an equivocation, the parents' links and times are checked, then the
// state's own rules (admit).
type deliverer struct {
	st      *fedState
	stored  map[cid.Cid]*protocol.Record
	order   []*protocol.Record // stored, in the order stored
	slots   map[string]cid.Cid
	pending map[cid.Cid]*protocol.Record
	waiting map[cid.Cid][]cid.Cid
}

func newDeliverer(t *testing.T, g *protocol.Genesis) *deliverer {
	st, err := newFedState(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &deliverer{st: st, stored: map[cid.Cid]*protocol.Record{}, slots: map[string]cid.Cid{},
		pending: map[cid.Cid]*protocol.Record{}, waiting: map[cid.Cid][]cid.Cid{}}
}

func (d *deliverer) deliver(r *protocol.Record) {
	if d.stored[r.CID] != nil || d.pending[r.CID] != nil {
		return
	}
	var missing []cid.Cid
	for _, c := range r.Links() {
		if d.stored[c] == nil {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		d.pending[r.CID] = r
		for _, c := range missing {
			d.waiting[c] = append(d.waiting[c], r.CID)
		}
		return
	}
	if !d.apply(r) {
		return
	}
	for _, w := range d.waiting[r.CID] {
		if p := d.pending[w]; p != nil && !slices.ContainsFunc(p.Links(), func(c cid.Cid) bool { return d.stored[c] == nil }) {
			delete(d.pending, w)
			d.deliver(p)
		}
	}
	delete(d.waiting, r.CID)
}

func (d *deliverer) apply(r *protocol.Record) bool {
	slot := slotKey(r.Env.Author, r.Env.Topic, r.Env.Seq)
	if _, taken := d.slots[slot]; taken {
		return false
	}
	var parents []protocol.Parent
	for _, c := range r.Links() {
		parents = append(parents, parentOf(d.stored[c]))
	}
	if protocol.CheckParents(r, parents) != nil || d.st.admit(r) != nil {
		return false
	}
	d.stored[r.CID], d.slots[slot] = r, r.CID
	d.order = append(d.order, r)
	return true
}

// derived is what gov.Derive makes of a set of records: the canonical audit
// JSON of every process, by charter CID, and the open issues.
type derived struct {
	audits map[cid.Cid][]byte
	issues []gov.IssueInfo
}

// derive runs gov.Derive and gov.DeriveIndex over recs, with the roster of
// each record's causal past folded by protocol.DeriveMembers.
func derive(t *testing.T, g *protocol.Genesis, recs []*protocol.Record) derived {
	t.Helper()
	byCID := map[cid.Cid]*protocol.Record{}
	for _, r := range recs {
		byCID[r.CID] = r
	}
	founders := roster{protocol.DeriveMembers(g, nil)}
	rosterAt := func(r *protocol.Record) gov.Roster {
		var past []*protocol.Record
		seen := map[cid.Cid]bool{}
		stack := r.Links()
		for len(stack) > 0 {
			c := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[c] || byCID[c] == nil {
				continue
			}
			seen[c] = true
			past = append(past, byCID[c])
			stack = append(stack, byCID[c].Links()...)
		}
		if !slices.ContainsFunc(past, func(p *protocol.Record) bool { return p.Env.Topic == protocol.TopicMembers }) {
			return founders
		}
		return roster{protocol.DeriveMembers(g, past)}
	}
	out := derived{audits: map[cid.Cid][]byte{}}
	slugs := map[string]bool{}
	for _, r := range recs {
		if s, ok := protocol.IssueSlug(r.Env.Topic); ok {
			slugs[s] = true
		}
	}
	// Equivocators: two valid records at one chain slot, on any topic.
	members := protocol.DeriveMembers(g, recs)
	eq := map[string]bool{}
	slot := map[string]bool{}
	for _, r := range gov.Order(recs) {
		if r.Env.Topic != protocol.TopicMembers {
			continue
		}
		if known, err := members.Verdict(r.CID); !known || err != nil {
			continue
		}
		sk := slotKey(r.Env.Author, r.Env.Topic, r.Env.Seq)
		if slot[sk] {
			eq[string(r.Env.Author)] = true
		}
		slot[sk] = true
	}
	var issues []*gov.Issue
	for slug := range slugs {
		is, _, err := gov.Derive(g, slug, recs, rosterAt)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range is.Equivocations() {
			eq[string(e.Author)] = true
		}
		issues = append(issues, is)
	}
	x, _, err := gov.DeriveIndex(g, recs, rosterAt)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range x.Equivocations() {
		eq[string(e.Author)] = true
	}
	for _, is := range issues {
		// Effects count members of the whole set (docs/protocol.md 8.7).
		is.SetMembers(newWholeRoster(members, eq))
		for _, p := range is.Processes() {
			js, err := p.Audit(nil).JSON()
			if err != nil {
				t.Fatal(err)
			}
			out.audits[p.CID()] = js
		}
	}
	out.issues = x.Issues()
	return out
}

// setKey names a set of records.
func setKey(recs []*protocol.Record) string {
	keys := make([]string, len(recs))
	for i, r := range recs {
		keys[i] = r.CID.KeyString()
	}
	slices.Sort(keys)
	return strings.Join(keys, "")
}

// compare fails unless the node-side audits and issues equal want, byte
// for byte.
func compare(t *testing.T, what string, audits map[cid.Cid][]byte, issues []gov.IssueInfo, want derived) {
	t.Helper()
	if len(audits) != len(want.audits) {
		t.Fatalf("%s: %d processes, gov.Derive %d", what, len(audits), len(want.audits))
	}
	for c, js := range audits {
		if !bytes.Equal(js, want.audits[c]) {
			t.Fatalf("%s: audit of %s differs from gov.Derive's:\n%s\n---\n%s", what, c, js, want.audits[c])
		}
	}
	a, _ := json.Marshal(issues)
	b, _ := json.Marshal(want.issues)
	if !bytes.Equal(a, b) {
		t.Fatalf("%s: issues differ from gov.DeriveIndex's:\n%s\n%s", what, a, b)
	}
}

// TestDifferentialGolden: for every golden scenario and 1,000 random
// delivery orders of its records, with duplicates, the node's derived
// state (the fedState the apply loop drives, fed as the loop feeds it)
// gives byte for byte the audits and issues gov.Derive computes over the
// records the node stored. Then a few orders go through real nodes
// (Node.Ingest, store, snapshot, Node.Audit), compared the same way over
// what their stores hold.
func TestDifferentialGolden(t *testing.T) {
	orders := 1000
	if testing.Short() {
		orders = 100
	}
	compared := 0
	defer func() {
		if !t.Failed() && compared == 0 {
			t.Error("no process audit was compared")
		}
	}()
	for _, sc := range loadScenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			cache := map[string]derived{}
			rng := rand.New(rand.NewPCG(uint64(len(sc.records)), 7))
			for k := range orders {
				d := newDeliverer(t, sc.genesis)
				for _, r := range shuffled(rng, sc.records) {
					d.deliver(r)
				}
				key := setKey(d.order)
				want, ok := cache[key]
				if !ok {
					want = derive(t, sc.genesis, d.order)
					cache[key] = want
				}
				audits := map[cid.Cid][]byte{}
				for _, is := range d.st.issues {
					for _, p := range is.Processes() {
						audits[p.CID()], _ = p.Audit(nil).JSON()
					}
				}
				compare(t, fmt.Sprintf("order %d", k), audits, d.st.index.Issues(), want)
				compared += len(audits)
			}
			for k := range 2 {
				nodeOrder(t, sc, rand.New(rand.NewPCG(uint64(k), 11)))
			}
		})
	}
}

// nodeOrder ingests a scenario's records into a real in-memory node in a
// random order, with duplicates, and compares its audits and issues with
// gov.Derive over the records its store holds.
func nodeOrder(t *testing.T, sc scenario, rng *rand.Rand) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	nd, err := New(ctx, WithIdentity(key), WithGenesis(sc.genesis), WithInMemory(), WithObserver(true),
		WithListenAddrs([]string{"/ip4/127.0.0.1/tcp/0"}), WithSyncInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Close()
	for _, r := range shuffled(rng, sc.records) {
		if _, err := nd.Ingest(ctx, r.Raw, "", SourceSync); err != nil && protocol.ReasonOf(err) == "" {
			t.Fatal(err)
		}
	}
	var stored []*protocol.Record
	metas, err := nd.Store().Since(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range metas {
		raw, err := nd.Store().Get(m.CID)
		if err != nil {
			t.Fatal(err)
		}
		r, err := protocol.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, r)
	}
	if len(stored) == 0 {
		t.Fatal("the node stored none of the scenario's records")
	}
	want := derive(t, sc.genesis, stored)
	audits := map[cid.Cid][]byte{}
	slugs := map[string]bool{}
	for _, r := range stored {
		if s, ok := protocol.IssueSlug(r.Env.Topic); ok {
			slugs[s] = true
		}
	}
	for slug := range slugs {
		ps, err := nd.Processes(slug)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			rep, err := nd.Audit(p.CID())
			if err != nil {
				t.Fatal(err)
			}
			audits[p.CID()], _ = rep.JSON()
		}
	}
	compare(t, "real node", audits, nd.Issues(), want)
}

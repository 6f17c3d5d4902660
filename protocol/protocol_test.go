package protocol_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// fixedKey returns a deterministic key for test vectors.
func fixedKey(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

var vectorTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func devNetwork(t testing.TB, key ed25519.PrivateKey) cid.Cid {
	t.Helper()
	g, err := protocol.DevGenesis(key, "Test Org", vectorTime)
	if err != nil {
		t.Fatal(err)
	}
	id, err := g.NetworkID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func statement(t testing.TB, key ed25519.PrivateKey, net cid.Cid, seq uint64, prev cid.Cid, deps ...cid.Cid) *protocol.Record {
	t.Helper()
	r, err := protocol.Build(key, protocol.Draft{
		Network: net, Kind: protocol.KindStatement, Topic: protocol.IssueTopic("privacy"),
		Seq: seq, Prev: prev, Deps: deps, Time: vectorTime.Add(time.Duration(seq) * time.Second),
		Body: &protocol.Statement{Title: "Priorities", Text: "Data protection across borders."},
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRoundTrip(t *testing.T) {
	key := fixedKey(1)
	net := devNetwork(t, key)
	r1 := statement(t, key, net, 1, cid.Undef)
	r2 := statement(t, key, net, 2, r1.CID, r1.CID)

	for _, r := range []*protocol.Record{r1, r2} {
		got, err := protocol.Validate(r.Raw, net, vectorTime)
		if err != nil {
			t.Fatalf("validate own record: %v", err)
		}
		again, err := protocol.Marshal(&got.Env)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, r.Raw) {
			t.Fatalf("encode(decode(x)) != x")
		}
		if !protocol.RecordCID(again).Equals(r.CID) || !got.CID.Equals(r.CID) {
			t.Fatalf("CID not stable: %s vs %s", got.CID, r.CID)
		}
		if !protocol.IsRecordCID(got.CID) {
			t.Fatalf("CID %s is not a record CID", got.CID)
		}
	}
	if !r2.PrevCID().Equals(r1.CID) || len(r2.DepCIDs()) != 1 {
		t.Fatalf("links lost: prev %s deps %v", r2.PrevCID(), r2.DepCIDs())
	}
}

// mutate decodes r's envelope, applies f, re-signs with key if key is not
// nil, and returns the encoding.
func mutate(t *testing.T, r *protocol.Record, key ed25519.PrivateKey, f func(*protocol.Envelope)) []byte {
	t.Helper()
	env := r.Env
	f(&env)
	if key != nil {
		msg, err := protocol.SigningInput(&env)
		if err != nil {
			t.Fatal(err)
		}
		env.Sig = ed25519.Sign(key, msg)
	}
	raw, err := protocol.Marshal(&env)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestValidateRejects(t *testing.T) {
	key := fixedKey(1)
	net := devNetwork(t, key)
	other := devNetwork(t, fixedKey(2))
	good := statement(t, key, net, 1, cid.Undef)
	prevLink := protocol.LinkTo(good.CID)

	// A map with an extra key, then one with a non-canonical integer (seq
	// encoded in 2 bytes instead of 1), then indefinite length.
	var generic map[string]any
	if err := cbor.Unmarshal(good.Raw, &generic); err != nil {
		t.Fatal(err)
	}
	generic["extra"] = 1
	extraField, _ := cbor.Marshal(generic)
	nonCanonical := bytes.Replace(good.Raw, []byte("cseq\x01"), []byte("cseq\x18\x01"), 1)
	if bytes.Equal(nonCanonical, good.Raw) {
		t.Fatal("test bug: seq pattern not found")
	}
	bigBody := strings.Repeat("x", protocol.MaxBodySize)

	tests := []struct {
		name   string
		raw    []byte
		reason protocol.Reason
	}{
		{"garbage", []byte("not cbor at all"), protocol.ReasonBadEncoding},
		{"empty", nil, protocol.ReasonBadEncoding},
		{"truncated", good.Raw[:len(good.Raw)/2], protocol.ReasonBadEncoding},
		{"unknown field", extraField, protocol.ReasonBadEncoding},
		{"non-canonical int", nonCanonical, protocol.ReasonNonCanonical},
		{"oversize", make([]byte, protocol.MaxRecordSize+1), protocol.ReasonOversize},
		{"forged signature", mutate(t, good, nil, func(e *protocol.Envelope) { e.Sig = bytes.Repeat([]byte{7}, 64) }), protocol.ReasonBadSignature},
		{"altered body", mutate(t, good, nil, func(e *protocol.Envelope) {
			e.Body, _ = protocol.Marshal(&protocol.Statement{Title: "Priorities", Text: "changed"})
		}), protocol.ReasonBadSignature},
		{"signed by another key", mutate(t, good, fixedKey(3), func(*protocol.Envelope) {}), protocol.ReasonBadSignature},
		{"wrong network", mutate(t, good, key, func(e *protocol.Envelope) { e.Network = protocol.LinkTo(other) }), protocol.ReasonWrongNetwork},
		{"bad version", mutate(t, good, key, func(e *protocol.Envelope) { e.Version = 2 }), protocol.ReasonBadVersion},
		{"unknown kind", mutate(t, good, key, func(e *protocol.Envelope) { e.Kind = "poll" }), protocol.ReasonUnknownKind},
		{"malformed topic", mutate(t, good, key, func(e *protocol.Envelope) { e.Topic = "issue/Privacy!" }), protocol.ReasonWrongTopic},
		{"kind on wrong topic", mutate(t, good, key, func(e *protocol.Envelope) { e.Topic = protocol.TopicMembers }), protocol.ReasonWrongTopic},
		{"empty body text", mutate(t, good, key, func(e *protocol.Envelope) {
			e.Body, _ = protocol.Marshal(&protocol.Statement{Title: "t"})
		}), protocol.ReasonBadBody},
		{"body of wrong shape", mutate(t, good, key, func(e *protocol.Envelope) { e.Body, _ = protocol.Marshal(map[string]int{"title": 1}) }), protocol.ReasonBadBody},
		{"body oversize", mutate(t, good, key, func(e *protocol.Envelope) {
			e.Body, _ = protocol.Marshal(&protocol.Statement{Title: "t", Text: bigBody})
		}), protocol.ReasonOversize},
		{"seq 0", mutate(t, good, key, func(e *protocol.Envelope) { e.Seq = 0 }), protocol.ReasonBadLinks},
		{"seq 2 without prev", mutate(t, good, key, func(e *protocol.Envelope) { e.Seq = 2 }), protocol.ReasonBadLinks},
		{"seq 1 with prev", mutate(t, good, key, func(e *protocol.Envelope) { e.Prev = &prevLink }), protocol.ReasonBadLinks},
		{"duplicate deps", mutate(t, good, key, func(e *protocol.Envelope) { e.Deps = []protocol.Link{prevLink, prevLink} }), protocol.ReasonBadLinks},
		{"too many deps", mutate(t, good, key, func(e *protocol.Envelope) {
			var ds []cid.Cid
			for i := range protocol.MaxDeps + 1 {
				ds = append(ds, protocol.RecordCID([]byte{byte(i), byte(i >> 8)}))
			}
			e.Deps = protocol.SortLinks(ds)
		}), protocol.ReasonBadLinks},
		{"short author", mutate(t, good, nil, func(e *protocol.Envelope) { e.Author = e.Author[:31] }), protocol.ReasonBadEncoding},
		{"future time", mutate(t, good, key, func(e *protocol.Envelope) { e.Time = vectorTime.Add(time.Hour).UnixMilli() }), protocol.ReasonFutureTime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := protocol.Validate(tt.raw, net, vectorTime)
			if got := protocol.ReasonOf(err); got != tt.reason {
				t.Fatalf("reason %q, want %q (err: %v)", got, tt.reason, err)
			}
			if !errors.Is(err, protocol.ErrorFor(tt.reason)) {
				t.Fatalf("errors.Is(%v, sentinel %q) is false", err, tt.reason)
			}
			if protocol.ActionOf(err) != tt.reason.Action() {
				t.Fatalf("action %v, want %v", protocol.ActionOf(err), tt.reason.Action())
			}
		})
	}
}

func TestReasonsHaveActions(t *testing.T) {
	for _, r := range protocol.Reasons() {
		if r.Action() != protocol.Reject && r.Action() != protocol.Ignore {
			t.Errorf("reason %q has no action", r)
		}
		if protocol.ReasonOf(protocol.ErrorFor(r)) != r {
			t.Errorf("ReasonOf(ErrorFor(%q)) != %q", r, r)
		}
	}
	if protocol.ErrorFor("nonsense") != nil {
		t.Error("ErrorFor of an unknown reason is not nil")
	}
}

func TestTopics(t *testing.T) {
	net := devNetwork(t, fixedKey(1))
	tests := []struct {
		topic string
		class protocol.TopicClass
	}{
		{"index", protocol.ClassIndex},
		{"members", protocol.ClassMembers},
		{"issue/privacy", protocol.ClassIssue},
		{"issue/a-1", protocol.ClassIssue},
		{"issue/-a", 0},
		{"issue/", 0},
		{"issue/UPPER", 0},
		{"other", 0},
		{"issue/" + strings.Repeat("a", 64), 0},
	}
	for _, tt := range tests {
		if got := protocol.ClassOf(tt.topic); got != tt.class {
			t.Errorf("ClassOf(%q) = %d, want %d", tt.topic, got, tt.class)
		}
		if tt.class == 0 {
			continue
		}
		ps := protocol.PubsubTopic(net, tt.topic)
		back, ok := protocol.RecordTopic(net, ps)
		if !ok || back != tt.topic {
			t.Errorf("RecordTopic(PubsubTopic(%q)) = %q, %v", tt.topic, back, ok)
		}
		if _, ok := protocol.RecordTopic(devNetwork(t, fixedKey(2)), ps); ok {
			t.Errorf("topic %q of one network accepted by another", ps)
		}
	}
	if !strings.Contains(string(protocol.SyncProtocol(net)), net.String()) {
		t.Error("sync protocol id does not carry the network id")
	}
}

func TestGenesis(t *testing.T) {
	keys := make([]ed25519.PrivateKey, 5)
	var founders []protocol.Member
	for i := range keys {
		keys[i] = fixedKey(byte(10 + i))
		founders = append(founders, protocol.Member{
			Key: keys[i].Public().(ed25519.PublicKey), Org: "Org " + string(rune('A'+i)),
			Group: protocol.DefaultGroups[i], Region: protocol.DefaultRegions[i],
		})
	}
	g := protocol.NewGenesis("Test federation", founders, vectorTime)
	for _, k := range keys[:4] {
		if err := g.Sign(k); err != nil {
			t.Fatal(err)
		}
	}
	err := g.Verify()
	if !errors.Is(err, protocol.ErrGenesisIncomplete) || !strings.Contains(err.Error(), "Org E") {
		t.Fatalf("4 of 5 signatures: err = %v, want incomplete naming Org E", err)
	}
	if err := g.Sign(fixedKey(99)); err == nil {
		t.Fatal("a non-founder could sign the genesis")
	}
	if err := g.Sign(keys[4]); err != nil {
		t.Fatal(err)
	}
	if err := g.Verify(); err != nil {
		t.Fatalf("fully signed genesis: %v", err)
	}
	raw, err := g.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := protocol.DecodeGenesis(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Verify(); err != nil {
		t.Fatal(err)
	}
	id1, _ := g.NetworkID()
	id2, _ := back.NetworkID()
	if !id1.Equals(id2) || !id1.Equals(protocol.RecordCID(raw)) {
		t.Fatal("network id is not the CID of the encoded genesis")
	}
	// Tampering after signing breaks every signature.
	back.Name = "Other federation"
	if err := back.Verify(); protocol.ReasonOf(err) != protocol.ReasonBadSignature {
		t.Fatalf("tampered genesis: %v", err)
	}
}

func TestCheckParents(t *testing.T) {
	key, other := fixedKey(1), fixedKey(2)
	net := devNetwork(t, key)
	r1 := statement(t, key, net, 1, cid.Undef)
	o1 := statement(t, other, net, 1, cid.Undef)
	r2 := statement(t, key, net, 2, r1.CID, o1.CID)
	parent := func(r *protocol.Record) protocol.Parent {
		return protocol.Parent{CID: r.CID, Author: r.Env.Author, Topic: r.Env.Topic, Seq: r.Env.Seq, Time: r.Env.Time}
	}
	tests := []struct {
		name    string
		parents []protocol.Parent
		reason  protocol.Reason
	}{
		{"ok", []protocol.Parent{parent(o1), parent(r1)}, ""},
		{"missing dep", []protocol.Parent{parent(r1)}, protocol.ReasonMissingDeps},
		{"prev by another author", []protocol.Parent{parent(o1), {CID: r1.CID, Author: o1.Env.Author, Topic: r1.Env.Topic, Seq: 1, Time: r1.Env.Time}}, protocol.ReasonBadLinks},
		{"prev on another topic", []protocol.Parent{parent(o1), {CID: r1.CID, Author: r1.Env.Author, Topic: "issue/other", Seq: 1, Time: r1.Env.Time}}, protocol.ReasonBadLinks},
		{"seq gap", []protocol.Parent{parent(o1), {CID: r1.CID, Author: r1.Env.Author, Topic: r1.Env.Topic, Seq: 5, Time: r1.Env.Time}}, protocol.ReasonBadLinks},
		{"dep from the future", []protocol.Parent{parent(r1), {CID: o1.CID, Author: o1.Env.Author, Topic: o1.Env.Topic, Seq: 1, Time: r2.Env.Time + 1}}, protocol.ReasonBadTime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := protocol.CheckParents(r2, tt.parents)
			if got := protocol.ReasonOf(err); got != tt.reason {
				t.Fatalf("reason %q, want %q (%v)", got, tt.reason, err)
			}
		})
	}
}

// TestSlicedSigningInput: the signing input Verify cuts out of a record's
// bytes equals the re-encoded one for every length of the heads before
// "sig", and a record whose bytes are not its canonical encoding falls back.
func TestSlicedSigningInput(t *testing.T) {
	key := fixedKey(3)
	net := devNetwork(t, key)
	prev := protocol.RecordCID([]byte("prev"))
	for _, seq := range []uint64{1, 2, 23, 24, 255, 256, 65535, 65536, 1 << 32, 1<<64 - 1} {
		p := prev
		if seq == 1 {
			p = cid.Undef
		}
		r, err := protocol.Build(key, protocol.Draft{
			Network: net, Kind: protocol.KindStatement, Topic: "issue/x", Seq: seq, Prev: p,
			Deps: []cid.Cid{protocol.RecordCID([]byte("d"))}, Time: vectorTime,
			Body: &protocol.Statement{Title: "t", Text: "x"},
		})
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		got, ok := protocol.SlicedSigningInput(r.Raw, &r.Env)
		want, err := protocol.SigningInput(&r.Env)
		if err != nil || !ok || !bytes.Equal(got, want) {
			t.Fatalf("seq %d: sliced (ok %v) != encoded (err %v)", seq, ok, err)
		}
		if err := r.Verify(); err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		// Bytes that do not hold Env's signature where it belongs: the fast
		// path declines, and Verify falls back to re-encoding.
		forged := *r
		forged.Env.Sig = bytes.Repeat([]byte{1}, 64)
		if _, ok := protocol.SlicedSigningInput(r.Raw, &forged.Env); ok {
			t.Fatalf("seq %d: sliced with a signature that is not in the bytes", seq)
		}
		if err := forged.Verify(); protocol.ReasonOf(err) != protocol.ReasonBadSignature {
			t.Fatalf("seq %d: forged signature: %v", seq, err)
		}
	}
}

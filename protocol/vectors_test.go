package protocol_test

import (
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata files from the current code")

// vectorText renders the v1 test vectors: a dev genesis and two chained
// statements signed by the key with seed 0x01 repeated.
func vectorText(t *testing.T) string {
	key := fixedKey(1)
	g, err := protocol.DevGenesis(key, "Test Org", vectorTime)
	if err != nil {
		t.Fatal(err)
	}
	graw, _ := g.Encode()
	net, _ := g.NetworkID()
	r1 := statement(t, key, net, 1, cid.Undef)
	r2 := statement(t, key, net, 2, r1.CID, r1.CID)
	var b strings.Builder
	fmt.Fprintf(&b, "seed: %x\n", key.Seed())
	fmt.Fprintf(&b, "author: %x\n", key.Public())
	fmt.Fprintf(&b, "genesis: %x\n", graw)
	fmt.Fprintf(&b, "network: %s\n", net)
	for i, r := range []*protocol.Record{r1, r2} {
		fmt.Fprintf(&b, "record%d: %x\n", i+1, r.Raw)
		fmt.Fprintf(&b, "record%d-cid: %s\n", i+1, r.CID)
	}
	return b.String()
}

// TestVectors checks that the current code produces exactly the stored v1
// vectors, that they still decode and verify, and that docs/protocol.md
// quotes them.
func TestVectors(t *testing.T) {
	const file = "testdata/vectors-v1.txt"
	got := vectorText(t)
	if *rewrite {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("encoding changed; the v1 vectors no longer match:\n got:\n%s\nwant:\n%s", got, want)
	}
	fields := map[string]string{}
	for line := range strings.Lines(string(want)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ": ")
		fields[k] = v
	}
	graw, _ := hex.DecodeString(fields["genesis"])
	g, err := protocol.DecodeGenesis(graw)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Verify(); err != nil {
		t.Fatal(err)
	}
	net := cid.MustParse(fields["network"])
	for _, n := range []string{"record1", "record2"} {
		raw, _ := hex.DecodeString(fields[n])
		r, err := protocol.Validate(raw, net, vectorTime)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if r.CID.String() != fields[n+"-cid"] {
			t.Fatalf("%s: CID %s, want %s", n, r.CID, fields[n+"-cid"])
		}
		if fmt.Sprintf("%x", r.Env.Author) != fields["author"] {
			t.Fatalf("%s: author mismatch", n)
		}
	}
	doc, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(want)) {
		if !strings.Contains(string(doc), strings.TrimSpace(line)) {
			t.Errorf("docs/protocol.md does not quote vector line %.60q...", line)
		}
	}
}

// TestIPLDInterop decodes records with go-ipld-prime's DAG-CBOR codec (an
// independent implementation), re-encodes them and recomputes the CID: any
// IPLD tool must see the same bytes and the same CID.
func TestIPLDInterop(t *testing.T) {
	key := fixedKey(1)
	g, err := protocol.DevGenesis(key, "Test Org", vectorTime)
	if err != nil {
		t.Fatal(err)
	}
	graw, _ := g.Encode()
	net, _ := g.NetworkID()
	r1 := statement(t, key, net, 1, cid.Undef)
	r2 := statement(t, key, net, 2, r1.CID, r1.CID)
	for _, raw := range [][]byte{graw, r1.Raw, r2.Raw} {
		n, err := ipld.Decode(raw, dagcbor.Decode)
		if err != nil {
			t.Fatalf("go-ipld-prime cannot decode: %v", err)
		}
		again, err := ipld.Encode(n, dagcbor.Encode)
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(raw) {
			t.Fatalf("go-ipld-prime re-encodes differently:\n%x\n%x", raw, again)
		}
		lp := cidlink.LinkPrototype{Prefix: cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: 0x12, MhLength: 32}}
		c, err := lp.Prefix.Sum(raw)
		if err != nil {
			t.Fatal(err)
		}
		if c != protocol.RecordCID(raw) {
			t.Fatalf("CID differs: %s vs %s", c, protocol.RecordCID(raw))
		}
	}
	// The prev link of r2 is a real IPLD link.
	n, _ := ipld.Decode(r2.Raw, dagcbor.Decode)
	prev, err := n.LookupByString("prev")
	if err != nil {
		t.Fatal(err)
	}
	l, err := prev.AsLink()
	if err != nil {
		t.Fatalf("prev is not an IPLD link: %v", err)
	}
	if l.(cidlink.Link).Cid != r1.CID {
		t.Fatalf("prev link %s, want %s", l, r1.CID)
	}
}

package opendata_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	car "github.com/ipld/go-car/v2"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/node/api"
	"github.com/clearinghouse-net/clearinghouse/opendata"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// auditJSON returns n's canonical audit of the process chartered by c.
func auditJSON(t *testing.T, n *node.Node, c cid.Cid) []byte {
	t.Helper()
	rep, err := n.Audit(c)
	if err != nil {
		t.Fatal(err)
	}
	js, err := rep.JSON()
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// importInto imports an archive into n and requires every record stored.
func importInto(t *testing.T, n *node.Node, data []byte) *opendata.ImportReport {
	t.Helper()
	cr, err := opendata.NewCARReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := opendata.Import(testContext(t), n, cr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Failures) > 0 {
		t.Fatalf("import refused %d records: %v", len(rep.Failures), rep.Failures)
	}
	return rep
}

// requireSameAudit requires the observer's audit to equal every member's,
// byte for byte.
func requireSameAudit(t *testing.T, f *fixture, obs *node.Node) {
	t.Helper()
	ch := f.fp.Charter.CID
	got := auditJSON(t, obs, ch)
	for i, m := range f.net.Nodes {
		if want := auditJSON(t, m, ch); !bytes.Equal(got, want) {
			t.Fatalf("the observer's audit differs from member %d's:\n%s\n---\n%s", i, got, want)
		}
	}
	p, err := obs.Process(ch)
	if err != nil {
		t.Fatal(err)
	}
	if p.Stage() != protocol.StageConcluded || len(p.Adopted()) != 1 || !p.Adopted()[0].Equals(f.fp.Proposal.CID) {
		t.Fatalf("observer: stage %s, adopted %v", p.Stage(), p.Adopted())
	}
}

// TestRoundTripFederation: the whole federation exported by a member's
// HTTP API (CARv1) and imported into a fresh observer connected to no one
// gives the observer every record and the members' audit, byte for byte.
func TestRoundTripFederation(t *testing.T) {
	f := federation(t)
	src := f.net.Nodes[0]
	stats, err := src.Store().Stats()
	if err != nil {
		t.Fatal(err)
	}
	obs := observer(t, f)
	rep := importInto(t, obs, f.car)
	if rep.Version != 1 || rep.Blocks != int(stats.Records)+1 || rep.Stored != int(stats.Records) || rep.Held != 0 {
		t.Fatalf("import report %+v; the source holds %d records", rep, stats.Records)
	}
	if len(rep.Roots) != 1 || !rep.Roots[0].Equals(src.NetworkID()) {
		t.Fatalf("roots %v, want [network id %s]", rep.Roots, src.NetworkID())
	}
	got, err := obs.Store().Stats()
	if err != nil {
		t.Fatal(err)
	}
	if got.Records != stats.Records || got.Bytes != stats.Bytes {
		t.Fatalf("observer holds %d records (%d bytes), source %d (%d)", got.Records, got.Bytes, stats.Records, stats.Bytes)
	}
	requireSameAudit(t, f, obs)
	if len(obs.Members()) != 3 || len(obs.Issues()) != 1 {
		t.Fatalf("observer: %d members, %d issues", len(obs.Members()), len(obs.Issues()))
	}

	// The observer serves the same records, the genesis first and each
	// record after its parents (its own arrival order, which may differ
	// from the file's: the import is concurrent). Its API has no token:
	// an observer serves open data like every read.
	srv, err := api.New(obs)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	again, err := get(testContext(t), hs.URL+api.Prefix+"/export/car")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := causalCIDs(t, again), causalCIDs(t, f.car); !slices.Equal(got, want) {
		t.Fatalf("the observer's archive holds %d blocks, the member's %d", len(got), len(want))
	}

	// A second import stores nothing and refuses nothing.
	second := importInto(t, obs, f.car)
	if second.Stored != 0 || second.Held != int(stats.Records) {
		t.Fatalf("second import: %+v", second)
	}
}

// TestRoundTripCARv2: a CARv2 file with an index, read back by go-car's
// own reader (hashes checked) and imported.
func TestRoundTripCARv2(t *testing.T) {
	f := federation(t)
	src := f.net.Nodes[1]
	path := filepath.Join(t.TempDir(), "fed.car")
	file, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	sel := opendata.Selection{}
	roots, err := opendata.Roots(src.Genesis(), sel)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := opendata.NewCARv2File(file, roots)
	if err != nil {
		t.Fatal(err)
	}
	var calls []opendata.Progress
	if err := opendata.ExportCAR(testContext(t), v2.Writer(), src.Store(), src.Genesis(), sel,
		func(p opendata.Progress) { calls = append(calls, p) }); err != nil {
		t.Fatal(err)
	}
	if err := v2.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}
	if len(calls) == 0 || calls[len(calls)-1].Blocks != calls[len(calls)-1].Total {
		t.Fatalf("progress calls %+v", calls)
	}

	r, err := car.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Version != 2 || !r.Header.HasIndex() {
		t.Fatalf("version %d, index %v", r.Version, r.Header.HasIndex())
	}
	st, err := r.Inspect(true)
	if err != nil {
		t.Fatalf("go-car inspect: %v", err)
	}
	stats, _ := src.Store().Stats()
	if st.BlockCount != stats.Records+1 || len(st.Roots) != 1 {
		t.Fatalf("go-car sees %d blocks (want %d), roots %v", st.BlockCount, stats.Records+1, st.Roots)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	obs := observer(t, f)
	rep := importInto(t, obs, data)
	if rep.Version != 2 || rep.Stored != int(stats.Records) {
		t.Fatalf("import report %+v", rep)
	}
	requireSameAudit(t, f, obs)
}

// TestExportProcessAndTopic: a process archive has the charter as second
// root and holds the process's records and their causal past, enough for
// an observer to compute the same audit; a topic archive has the topic's
// heads as roots.
func TestExportProcessAndTopic(t *testing.T) {
	f := federation(t)
	ctx := testContext(t)
	ch := f.fp.Charter.CID
	data, err := get(ctx, f.api.URL+api.Prefix+"/export/car?process="+ch.String())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(f.api.URL + api.Prefix + "/export/car?process=" + ch.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "application/vnd.ipld.car; version=1" ||
		resp.Header.Get(api.HeaderBlocks) != strconv.Itoa(len(blocksOf(t, data))) {
		t.Fatalf("headers %v; the archive holds %d blocks", resp.Header, len(blocksOf(t, data)))
	}
	obs := observer(t, f)
	rep := importInto(t, obs, data)
	if len(rep.Roots) != 2 || !rep.Roots[1].Equals(ch) {
		t.Fatalf("roots %v, want [network, %s]", rep.Roots, ch)
	}
	requireSameAudit(t, f, obs)
	if has, _ := obs.Store().Has(f.fp.Open.CID); has {
		t.Fatal("the process archive holds the issue.open, which is not in the process's causal past")
	}

	data, err = get(ctx, f.api.URL+api.Prefix+"/export/car?topic=issue/"+slug)
	if err != nil {
		t.Fatal(err)
	}
	heads, err := f.net.Nodes[0].Store().Heads(protocol.IssueTopic(slug))
	if err != nil {
		t.Fatal(err)
	}
	cr, err := opendata.NewCARReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(cr.Roots()[1:], heads, cid.Cid.Equals) {
		t.Fatalf("topic roots %v, heads %v", cr.Roots(), heads)
	}
	// Every record of the topic is in the archive, after its parents.
	seen := map[cid.Cid]bool{}
	topicRecords := 0
	for {
		b, err := cr.Next()
		if err != nil {
			break
		}
		if b.CID.Equals(f.net.Nodes[0].NetworkID()) {
			seen[b.CID] = true
			continue
		}
		r, err := protocol.Decode(b.Data)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range r.Links() {
			if !seen[l] {
				t.Fatalf("block %s comes before its parent %s", b.CID, l)
			}
		}
		seen[b.CID] = true
		if r.Env.Topic == protocol.IssueTopic(slug) {
			topicRecords++
		}
	}
	ts, err := f.net.Nodes[0].Store().Topics()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ts {
		if s.Topic == protocol.IssueTopic(slug) && int(s.Records) != topicRecords {
			t.Fatalf("the topic archive holds %d records of the topic, the store %d", topicRecords, s.Records)
		}
	}

	for _, bad := range []struct{ query, want string }{
		{"?topic=issue/none", "Not Found"},
		{"?topic=Bad%20Topic", "Bad Request"},
		{"?process=bafyreihq6qcs5wmcu3isd57asj5o4mo64m52j52o2gxji4w7rprgcqande", "Not Found"},
		{"?process=nope", "Bad Request"},
		{"?topic=index&process=" + ch.String(), "Bad Request"},
	} {
		_, err := get(ctx, f.api.URL+api.Prefix+"/export/car"+bad.query)
		var se *statusError
		if !errors.As(err, &se) || !bytes.HasPrefix([]byte(se.Error()), []byte(bad.want)) {
			t.Errorf("%s: %v, want %s", bad.query, err, bad.want)
		}
	}
}

// TestImportWrongFederation: an archive of another federation is refused
// as a whole, before any record is read.
func TestImportWrongFederation(t *testing.T) {
	f := federation(t)
	other := testnet.New(t, 1, testnet.WithKeySeed(9))
	cr, err := opendata.NewCARReader(bytes.NewReader(f.car))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := opendata.Import(testContext(t), other.Nodes[0], cr, nil)
	if !errors.Is(err, opendata.ErrWrongFederation) || rep.Blocks != 0 {
		t.Fatalf("err %v, report %+v", err, rep)
	}
}

// causalCIDs requires an archive to start with the genesis its first root
// names and to hold each record after its parents, and returns its block
// CIDs, sorted.
func causalCIDs(t *testing.T, data []byte) []string {
	t.Helper()
	bs, roots := blocks(t, data)
	if len(bs) == 0 || !bs[0].CID.Equals(roots[0]) {
		t.Fatal("the first block is not the genesis")
	}
	seen := map[cid.Cid]bool{bs[0].CID: true}
	var out []string
	for _, b := range bs {
		out = append(out, b.CID.String())
		if seen[b.CID] {
			continue
		}
		r, err := protocol.Decode(b.Data)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range r.Links() {
			if !seen[l] {
				t.Fatalf("block %s comes before its parent %s", b.CID, l)
			}
		}
		seen[b.CID] = true
	}
	slices.Sort(out)
	return out
}

// TestImportCancelled: an import whose context ends says so.
func TestImportCancelled(t *testing.T) {
	f := federation(t)
	obs := observer(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cr, err := opendata.NewCARReader(bytes.NewReader(f.car))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := opendata.Import(ctx, obs, cr, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
}

// TestImportBadCID: a record filed under a CID that hashes its bytes but is
// not its record CID (another codec) is refused as bad-cid, and a record
// that links it waits in vain: missing-deps, naming it.
func TestImportBadCID(t *testing.T) {
	f := federation(t)
	bs, roots := blocks(t, f.car)
	last := f.fp.Records[len(f.fp.Records)-1]
	raw := cid.NewCidV1(cid.Raw, last.CID.Hash())
	child := statement(t, f, f.net.SigningKey(2), "issue/archive-e",
		time.UnixMilli(last.Env.Time).Add(time.Hour), last.CID)
	var kept []opendata.Block
	for _, b := range bs {
		if b.CID.Equals(last.CID) {
			b.CID = raw
		}
		kept = append(kept, b)
	}
	kept = append(kept, opendata.Block{CID: child.CID, Data: child.Raw})
	var buf bytes.Buffer
	cw, err := opendata.NewCARWriter(&buf, roots)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range kept {
		if err := cw.Put(b.CID, b.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := cw.Flush(); err != nil {
		t.Fatal(err)
	}
	cr, err := opendata.NewCARReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := opendata.Import(testContext(t), observer(t, f), cr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Failures) != 2 ||
		!rep.Failures[0].CID.Equals(raw) || rep.Failures[0].Reason != opendata.ReasonBadCID ||
		!rep.Failures[1].CID.Equals(child.CID) || rep.Failures[1].Reason != protocol.ReasonMissingDeps ||
		!strings.Contains(rep.Failures[1].Detail, last.CID.String()) {
		t.Fatalf("failures %v", rep.Failures)
	}
}

// blocksOf returns the blocks of an archive.
func blocksOf(t *testing.T, data []byte) []opendata.Block {
	bs, _ := blocks(t, data)
	return bs
}

package opendata_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/cmd/clearinghouse/cli"
	"github.com/clearinghouse-net/clearinghouse/opendata"
	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// The verify tests drive the real command line (package cli) on archives
// of the shared fixture, so they check exit codes and output as a user
// sees them.

// blocks returns the blocks of a CAR, in order, and its roots.
func blocks(t *testing.T, data []byte) ([]opendata.Block, []cid.Cid) {
	t.Helper()
	cr, err := opendata.NewCARReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var out []opendata.Block
	for {
		b, err := cr.Next()
		if errors.Is(err, io.EOF) {
			return out, cr.Roots()
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
}

// writeCAR writes a CARv1 of the blocks to path.
func writeCAR(t *testing.T, path string, roots []cid.Cid, bs []opendata.Block) {
	t.Helper()
	var buf bytes.Buffer
	cw, err := opendata.NewCARWriter(&buf, roots)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if err := cw.Put(b.CID, b.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := cw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// runCLI runs the clearinghouse command line and returns its exit code,
// stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(testContext(t), args, &out, &errb)
	return code, out.String(), errb.String()
}

// statement builds a statement on topic signed by key, seq 1.
func statement(t *testing.T, f *fixture, key ed25519.PrivateKey, topic string, at time.Time, deps ...cid.Cid) *protocol.Record {
	t.Helper()
	r, err := protocol.Build(key, protocol.Draft{
		Network: f.net.Nodes[0].NetworkID(), Kind: protocol.KindStatement, Topic: topic, Seq: 1,
		Deps: deps, Time: at, Body: &protocol.Statement{Title: "Archive test", Text: "A statement."},
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestVerifyClean: verify on a clean archive exits 0 and prints the audit
// of the process, the same bytes as the members' canonical audit.
func TestVerifyClean(t *testing.T) {
	f := federation(t)
	path := filepath.Join(t.TempDir(), "fed.car")
	if err := os.WriteFile(path, f.car, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "verify", path)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	want := auditJSON(t, f.net.Nodes[2], f.fp.Charter.CID)
	if !strings.Contains(out, "\n"+string(want)+"\n") {
		t.Fatalf("the output does not hold the members' audit as a line:\n%s\nwant:\n%s", out, want)
	}
	if !strings.Contains(out, "OK: everything verified") || strings.Contains(out, "FAIL") {
		t.Fatalf("output:\n%s", out)
	}

	// --json carries the same audit bytes.
	code, out, _ = runCLI(t, "verify", "--json", path)
	var v struct {
		OK     bool
		Valid  int
		Audits []struct {
			Process string
			Audit   json.RawMessage
		}
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 || !v.OK || len(v.Audits) != 1 {
		t.Fatalf("exit %d, %v: %s", code, err, out)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, v.Audits[0].Audit); err != nil || !bytes.Equal(compact.Bytes(), want) {
		t.Fatalf("--json audit differs: %s", v.Audits[0].Audit)
	}
}

// TestVerifyDefects: an archive with one flipped byte, one forged
// signature, one record whose parent is missing and one record by a
// non-member: verify reports each with its CID and reason and exits 1.
func TestVerifyDefects(t *testing.T) {
	f := federation(t)
	bs, roots := blocks(t, f.car)
	after := time.UnixMilli(f.fp.Records[len(f.fp.Records)-1].Env.Time).Add(time.Hour)

	// 1. A flipped byte in the last record (nothing depends on it).
	last := &bs[len(bs)-1]
	flipped := last.CID
	last.Data = bytes.Clone(last.Data)
	last.Data[len(last.Data)/2] ^= 0x01

	// 2. A forged signature: a member's record whose signature was
	// altered, filed under the CID of the altered bytes.
	forgedRec := statement(t, f, f.net.SigningKey(2), "issue/archive-a", after, f.fp.Charter.CID)
	raw := bytes.Clone(forgedRec.Raw)
	i := bytes.Index(raw, forgedRec.Env.Sig)
	raw[i+10] ^= 0x40
	forged := protocol.RecordCID(raw)

	// 3. A record whose parent is in neither the archive nor the store.
	ghost := protocol.RecordCID([]byte("a record that is not in the archive"))
	orphan := statement(t, f, f.net.SigningKey(2), "issue/archive-b", after, ghost)

	// 4. A record signed by a key that is no member.
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	nonMember := statement(t, f, stranger, "issue/archive-c", after, f.fp.Charter.CID)

	bs = append(bs,
		opendata.Block{CID: forged, Data: raw},
		opendata.Block{CID: orphan.CID, Data: orphan.Raw},
		opendata.Block{CID: nonMember.CID, Data: nonMember.Raw})
	path := filepath.Join(t.TempDir(), "bad.car")
	writeCAR(t, path, roots, bs)

	code, out, errs := runCLI(t, "verify", path)
	if code == 0 {
		t.Fatalf("exit 0 on a bad archive:\n%s", out)
	}
	want := []struct {
		cid    cid.Cid
		reason protocol.Reason
		detail string
	}{
		{flipped, opendata.ReasonHashMismatch, "do not hash"},
		{forged, protocol.ReasonBadSignature, ""},
		{orphan.CID, protocol.ReasonMissingDeps, ghost.String()},
		{nonMember.CID, protocol.ReasonNotMember, ""},
	}
	lines := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "FAIL ") {
			lines++
		}
	}
	if lines != len(want) {
		t.Fatalf("%d failures reported, want %d:\n%s", lines, len(want), out)
	}
	for _, w := range want {
		prefix := "FAIL " + w.cid.String() + " " + string(w.reason) + ": "
		found := false
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, prefix) && strings.Contains(l, w.detail) {
				found = true
			}
		}
		if !found {
			t.Errorf("no line %q...%q in:\n%s", prefix, w.detail, out)
		}
	}
	if !strings.Contains(errs, "4 failures") {
		t.Errorf("stderr: %s", errs)
	}
	// The rest of the process verifies: its audit is printed, without
	// the second conclusion, whose byte was flipped.
	if !strings.Contains(out, "audit of process "+f.fp.Charter.CID.String()) || !strings.Contains(out, `"stage":"implementation"`) {
		t.Errorf("no audit in:\n%s", out)
	}
}

// TestVerifyDir: a directory is verified as one set of archives; a record
// of a second file is judged against the records of the first.
func TestVerifyDir(t *testing.T) {
	f := federation(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.car"), f.car, 0o644); err != nil {
		t.Fatal(err)
	}
	_, roots := blocks(t, f.car)
	after := time.UnixMilli(f.fp.Records[len(f.fp.Records)-1].Env.Time).Add(time.Hour)
	ok := statement(t, f, f.net.SigningKey(1), "issue/archive-d", after, f.fp.Decision.CID)
	writeCAR(t, filepath.Join(dir, "b.car"), roots[:1], []opendata.Block{{CID: ok.CID, Data: ok.Raw}})
	code, out, errs := runCLI(t, "verify", dir)
	if code != 0 || !strings.Contains(out, "2 file(s)") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}

	// Not a CAR at all.
	if err := os.WriteFile(filepath.Join(dir, "c.car"), []byte("not a car"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, "verify", dir)
	if code == 0 || !strings.Contains(out, "ERROR "+filepath.Join(dir, "c.car")) {
		t.Fatalf("exit %d\n%s", code, out)
	}
	// An empty directory and a missing file are errors too.
	if code, _, _ := runCLI(t, "verify", t.TempDir()); code == 0 {
		t.Fatal("exit 0 on an empty directory")
	}
	if code, _, _ := runCLI(t, "verify", filepath.Join(dir, "none.car")); code == 0 {
		t.Fatal("exit 0 on a missing file")
	}
}

// TestVerifyNoGenesis: an archive whose first block is not the genesis
// named by its first root cannot be verified.
func TestVerifyNoGenesis(t *testing.T) {
	f := federation(t)
	bs, roots := blocks(t, f.car)
	path := filepath.Join(t.TempDir(), "nogenesis.car")
	writeCAR(t, path, roots, bs[1:])
	_, err := opendata.Verify(context.Background(), []string{path}, nil)
	if err == nil || !strings.Contains(err.Error(), string(opendata.ReasonBadGenesis)) {
		t.Fatalf("err %v", err)
	}
}

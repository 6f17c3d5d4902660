package node_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/node/api"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/store"
)

// restartRecordsEnv sets the number of stored records BenchmarkRestart
// restarts on (default restartRecordsDefault).
const restartRecordsEnv = "CLEARINGHOUSE_RESTART_RECORDS"

// restartRecordsDefault keeps `make bench` short; docs/benchmarks.md gives
// the figures at 1,000,000.
const restartRecordsDefault = 50_000

// restartChildEnv names the data directory the child process of
// BenchmarkRestart (TestRestartChild) starts a node on.
const restartChildEnv = "CLEARINGHOUSE_RESTART_CHILD"

// restartFixtureVersion names the fixture layout; a change of the
// generator must change it, so that cached fixtures are not reused.
const restartFixtureVersion = 1

// restartPerIssue is about how many records each issue of the fixture
// holds.
const restartPerIssue = 5_000

// BenchmarkRestart measures a node's restart on a store of many records
// (CLEARINGHOUSE_RESTART_RECORDS, default 50,000): from the start of
// node.New to the first answer of GET /api/v1/status on its HTTP API,
// against the time to open the store alone (store.Open, Stats, Close) in
// the same child process, just before. Each iteration runs in a fresh
// child process (the test binary running TestRestartChild), so its
// resident memory is that of the restarted node alone.
// Reported metrics:
//
//	open-ms     opening the store alone
//	api-ms      node.New until the API's first 200 (target < 2,000 at 1,000,000 records)
//	x-open      api-ms / open-ms
//	rss-MiB     the child's resident set once the API answered
//	issue-ms    the first read of one issue's processes, which loads that
//	            issue (about 5,000 records) from the store
//
// The fixture (a genesis of 256 founders, an issue per 5,000 records, each
// with a charter, notices, statements and public comments, every record
// signed and linked as nodes link them) is built once through the store's
// writer and cached in the temporary directory.
//
// Run: CLEARINGHOUSE_RESTART_RECORDS=1000000 go test ./node -run '^$' -bench BenchmarkRestart -benchtime 3x -timeout 60m
func BenchmarkRestart(b *testing.B) {
	records := restartRecordsDefault
	if v := os.Getenv(restartRecordsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			b.Fatalf("%s=%q: want a number >= 1000", restartRecordsEnv, v)
		}
		records = n
	}
	dir := restartFixture(b, records)
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	var sum restartResult
	b.ResetTimer()
	for range b.N {
		cmd := exec.Command(exe, "-test.run", "^TestRestartChild$", "-test.count", "1", "-test.v")
		cmd.Env = append(os.Environ(), restartChildEnv+"="+dir)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			b.Fatalf("child: %v\n%s", err, out.String())
		}
		r, err := parseRestartResult(out.Bytes())
		if err != nil {
			b.Fatalf("%v\n%s", err, out.String())
		}
		if r.Records != uint64(records) {
			b.Fatalf("the restarted node reports %d records, want %d", r.Records, records)
		}
		if r.Warnings > 0 {
			b.Fatalf("the restarted node logged %d warnings (stored records no longer valid?)\n%s", r.Warnings, out.String())
		}
		if r.ProcessRecords < 2 {
			b.Fatalf("the first issue's process has %d records: the fixture's notices were refused", r.ProcessRecords)
		}
		sum.Open += r.Open
		sum.API += r.API
		sum.Issue += r.Issue
		sum.RSS = max(sum.RSS, r.RSS)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(sum.Open.Milliseconds())/n, "open-ms")
	b.ReportMetric(float64(sum.API.Milliseconds())/n, "api-ms")
	b.ReportMetric(float64(sum.API)/float64(sum.Open), "x-open")
	b.ReportMetric(float64(sum.RSS)/(1<<20), "rss-MiB")
	b.ReportMetric(float64(sum.Issue.Milliseconds())/n, "issue-ms")
}

// restartResult is what TestRestartChild measured.
type restartResult struct {
	Open, API, Issue time.Duration
	RSS              int64 // bytes
	Records          uint64
	ProcessRecords   int
	// Warnings counts the node's warnings: a stored record found no
	// longer valid is one, and would make the fixture unrealistic.
	Warnings int
}

// warnCounter is a slog handler that counts records of level Warn and
// above and prints them, and drops everything else.
type warnCounter struct {
	mu sync.Mutex
	n  int
}

func (h *warnCounter) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

func (h *warnCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *warnCounter) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	fmt.Fprintf(os.Stderr, "warning: %s\n", r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(os.Stderr, "  %s\n", a)
		return true
	})
	return nil
}
func (h *warnCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *warnCounter) WithGroup(string) slog.Handler      { return h }

func parseRestartResult(out []byte) (restartResult, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "restart-result "); ok {
			var r restartResult
			err := json.Unmarshal([]byte(rest), &r)
			return r, err
		}
	}
	return restartResult{}, fmt.Errorf("the child printed no restart-result line")
}

// TestRestartChild is the child process of BenchmarkRestart; it is
// skipped unless CLEARINGHOUSE_RESTART_CHILD names a fixture.
func TestRestartChild(t *testing.T) {
	dir := os.Getenv(restartChildEnv)
	if dir == "" {
		t.Skip("the child process of BenchmarkRestart")
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var r restartResult

	// The store alone.
	t0 := time.Now()
	st, err := store.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	stats, err := st.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	r.Open = time.Since(t0)

	// The node, until its API answers.
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	warns := &warnCounter{}
	t1 := time.Now()
	nd, err := node.New(ctx, node.WithDataDir(dir), node.WithIdentity(key), node.WithObserver(true),
		node.WithListenAddrs([]string{"/ip4/127.0.0.1/tcp/0"}), node.WithMDNS(false), node.WithDHT(false),
		node.WithNATPortMap(false), node.WithLogger(slog.New(warns)))
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Close()
	srv, err := api.New(nd)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer srv.Close()
	wg.Go(func() { _ = srv.Serve(ctx, l) })
	resp, err := http.Get("http://" + l.Addr().String() + api.Prefix + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var sv api.StatusView
	err = json.NewDecoder(resp.Body).Decode(&sv)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status: %d %v", resp.StatusCode, err)
	}
	r.API = time.Since(t1)
	r.Records = sv.Records
	if sv.Records != stats.Records {
		t.Fatalf("the API reports %d records, the store %d", sv.Records, stats.Records)
	}
	r.RSS = residentBytes(t)

	// The first read of an issue loads it.
	t2 := time.Now()
	ps, err := nd.Processes(restartSlug(0))
	if err != nil {
		t.Fatal(err)
	}
	r.Issue = time.Since(t2)
	if len(ps) != 1 {
		t.Fatalf("issue %s has %d processes, want 1", restartSlug(0), len(ps))
	}
	r.ProcessRecords = ps[0].Len()
	r.Warnings = warns.count()
	js, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("restart-result %s\n", js)
}

// residentBytes returns the process's resident set size (VmRSS).
func residentBytes(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

func restartSlug(i int) string { return fmt.Sprintf("issue-%04d", i) }

// restartFixture returns the data directory (genesis file and store) of a
// federation with the given number of stored records, building it the
// first time (in the temporary directory, named by the fixture version and
// the count) and reusing it after.
func restartFixture(b *testing.B, records int) string {
	b.Helper()
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("clearinghouse-restart-v%d-%d", restartFixtureVersion, records))
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		return dir
	}
	t0 := time.Now()
	tmp := dir + ".building"
	if err := os.RemoveAll(tmp); err != nil {
		b.Fatal(err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		b.Fatal(err)
	}
	keys := benchKeys(256)
	var founders []protocol.Member
	for i, k := range keys {
		founders = append(founders, protocol.Member{
			Key: k.Public().(ed25519.PublicKey), Org: fmt.Sprintf("Bench organisation %d", i),
			Group: protocol.DefaultGroups[i%5], Region: protocol.DefaultRegions[i/5%5],
		})
	}
	g := protocol.NewGenesis("restart bench", founders, time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC))
	for _, k := range keys {
		if err := g.Sign(k); err != nil {
			b.Fatal(err)
		}
	}
	if err := g.Verify(); err != nil {
		b.Fatal(err)
	}
	raw, err := g.Encode()
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, node.GenesisFile), raw, 0o644); err != nil {
		b.Fatal(err)
	}
	network, err := g.NetworkID()
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(filepath.Join(tmp, "store"), store.WithMaxBatch(1024))
	if err != nil {
		b.Fatal(err)
	}
	w, err := st.Writer()
	if err != nil {
		b.Fatal(err)
	}
	issues := max(1, records/restartPerIssue)
	gen := &fixtureGen{network: network, keys: keys, base: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}

	// The index first (every issue opened), then the issues, built by one
	// goroutine per core and written in batches as they come.
	opens := make([]*protocol.Record, issues)
	idx := newChains()
	for i := range issues {
		opens[i] = gen.build(b, idx, i%len(keys), protocol.KindIssueOpen, protocol.TopicIndex, int64(i),
			&protocol.IssueOpen{Slug: restartSlug(i), Title: "Issue " + strconv.Itoa(i)})
	}
	write := func(recs []*protocol.Record) error {
		entries := make([]store.Entry, len(recs))
		for i, r := range recs {
			entries[i] = store.Entry{CID: r.CID, Data: r.Raw, Topic: r.Env.Topic, Kind: r.Env.Kind, Author: r.Env.Author,
				Seq: r.Env.Seq, Prev: r.PrevCID(), Deps: r.DepCIDs(), Time: r.Env.Time}
		}
		wait, err := w.EnqueueBatch(context.Background(), entries, gen.base.UnixMilli())
		if err != nil {
			return err
		}
		_, err = wait(context.Background())
		return err
	}
	if err := write(opens); err != nil {
		b.Fatal(err)
	}
	rest := records - issues
	batches := make(chan []*protocol.Record, 4)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range jobs {
				n := rest / issues
				if i < rest%issues {
					n++
				}
				gen.issue(b, i, opens[i], n, batches)
			}
		})
	}
	go func() {
		for i := range issues {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		close(batches)
	}()
	var werr error
	for recs := range batches {
		if werr == nil {
			werr = write(recs)
		}
	}
	if werr != nil {
		b.Fatal(werr)
	}
	stats, err := st.Stats()
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	if stats.Records != uint64(records) {
		b.Fatalf("the fixture holds %d records, want %d", stats.Records, records)
	}
	if err := os.WriteFile(filepath.Join(tmp, "complete"), nil, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		b.Fatal(err)
	}
	b.Logf("built the fixture of %d records in %s: %s", records, time.Since(t0).Round(time.Second), dir)
	return dir
}

// fixtureGen builds the fixture's records.
type fixtureGen struct {
	network cid.Cid
	keys    []ed25519.PrivateKey
	base    time.Time
}

// chains is each author's chain on one topic, and the topic's newest
// record.
type chains struct {
	seq  map[int]uint64
	prev map[int]cid.Cid
	last cid.Cid
}

func newChains() *chains { return &chains{seq: map[int]uint64{}, prev: map[int]cid.Cid{}} }

// build signs a record of author a on topic, after the author's previous
// one there, linking deps and the topic's newest record; its claimed time
// is the fixture's base plus step times 11 s (past the interval between
// two public comments of one author).
func (f *fixtureGen) build(b *testing.B, c *chains, a int, kind, topic string, step int64, body protocol.Body, deps ...cid.Cid) *protocol.Record {
	// The caller's deps are kept even when one is also the prev (a body
	// that references a record lists it in deps), as Publish keeps them.
	prev := c.prev[a]
	links := deps
	if last := c.last; last.Defined() && !last.Equals(prev) && !slices.ContainsFunc(deps, last.Equals) {
		links = append(slices.Clone(deps), last)
	}
	r, err := protocol.Build(f.keys[a], protocol.Draft{
		Network: f.network, Kind: kind, Topic: topic, Seq: c.seq[a] + 1, Prev: prev, Deps: links,
		Time: f.base.Add(time.Duration(step) * 11 * time.Second), Body: body,
	})
	if err != nil {
		b.Error(err)
		runtime.Goexit()
	}
	c.seq[a]++
	c.prev[a] = r.CID
	c.last = r.CID
	return r
}

// issue builds n records of issue i and sends them in batches: a charter
// (convened by two founders of different groups), then, by a seeded
// random author, a notice by the charter's author every 100th record,
// a public comment on the issue's public topic every 10th, and
// statements.
func (f *fixtureGen) issue(b *testing.B, i int, open *protocol.Record, n int, out chan<- []*protocol.Record) {
	rng := rand.New(rand.NewPCG(uint64(i), 17))
	slug := restartSlug(i)
	topic, public := protocol.IssueTopic(slug), protocol.PublicTopic(slug)
	on, pub := newChains(), newChains()
	convenor := i % len(f.keys)
	ms := f.base.UnixMilli()
	day := int64(24 * 3600 * 1000)
	step := int64(1000)
	batch := make([]*protocol.Record, 0, 1000)
	emit := func(r *protocol.Record) {
		batch = append(batch, r)
		if len(batch) == cap(batch) {
			out <- batch
			batch = make([]*protocol.Record, 0, 1000)
		}
	}
	charter := f.build(b, on, convenor, protocol.KindCharter, topic, step, &protocol.Charter{
		Title: "Process " + slug, Aim: "An aim.", Purpose: "A purpose.", Scope: []string{"scope"}, Modalities: "Open.", Significance: "Some.",
		Convenors: [][]byte{f.keys[convenor].Public().(ed25519.PublicKey), f.keys[(convenor+1)%len(f.keys)].Public().(ed25519.PublicKey)},
		Phases: []protocol.Phase{
			{Stage: protocol.StageScoping, Start: ms, End: ms + 300*day},
			{Stage: protocol.StageConsultation, Start: ms + 300*day, End: ms + 400*day},
			{Stage: protocol.StageDecision, Start: ms + 400*day, End: ms + 500*day},
			{Stage: protocol.StageImplementation, Start: ms + 500*day, End: ms + 900*day},
		},
		MinNoticeSeconds: 14 * 24 * 3600, WindowSeconds: 14 * 24 * 3600,
		Rule: protocol.DecisionRule{Name: protocol.RuleConcurrentMajority, Threshold: 1},
	}, open.CID)
	emit(charter)
	proc := protocol.LinkTo(charter.CID)
	for j := 1; j < n; j++ {
		step++
		a := rng.IntN(len(f.keys))
		switch {
		case j%100 == 0:
			emit(f.build(b, on, convenor, protocol.KindNotice, topic, step, &protocol.Notice{Process: proc,
				Subject: protocol.SubjectConsultation, Date: ms + 300*day + int64(j), Text: "A notice of the consultation."}, charter.CID))
		case j%10 == 5:
			person := make([]byte, 16)
			person[0], person[1] = byte(j), byte(j>>8)
			emit(f.build(b, pub, a, protocol.KindPublicComment, public, step, &protocol.PublicComment{Process: &proc, Person: person,
				Text: "A comment from the public on the process, a sentence or two long."}, charter.CID, on.last))
		default:
			emit(f.build(b, on, a, protocol.KindStatement, topic, step, &protocol.Statement{Title: "Statement",
				Text: "A statement of about the size of a short comment on a proposal, with a few sentences of text in it, so that the record is a few hundred bytes long as real ones are."}))
		}
	}
	if len(batch) > 0 {
		out <- batch
	}
}

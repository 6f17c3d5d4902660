package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files in testdata from the current code")

// golden compares got with testdata/name, or writes it there with
// -rewrite:
//
//	go test ./cmd/clearinghouse/cli -run 'TestGolden' -rewrite
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *rewrite {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -rewrite to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -rewrite to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// fixtureNow is the clock of the golden tests.
var fixtureNow = time.Date(2027, 2, 3, 12, 0, 0, 0, time.UTC)

// fixtureAPI answers GET requests with the API answers in fixtures, by
// path and query, as a node would.
func fixtureAPI(t *testing.T, fixtures map[string]string) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + strings.TrimPrefix(r.URL.RequestURI(), "/api/v1")
		b, ok := fixtures[key]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"error":{"code":"not-found","message":"no fixture for %s"}}`, key)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, b)
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

const (
	gKey0  = "5b2b7e3cd8bca1a0f7a1c1d7f2ad3c7f0e1f4b9d6c7a8e9f0a1b2c3d4e5f6a7b"
	gKey1  = "0a1b2c3d4e5f6a7b5b2b7e3cd8bca1a0f7a1c1d7f2ad3c7f0e1f4b9d6c7a8e9f"
	gKey2  = "ffffffffffffffff5b2b7e3cd8bca1a0f7a1c1d7f2ad3c7f0e1f4b9d6c7a8e9f"
	gProc  = "bafyreieaswyc4nfe6f5c46n7t6n4c44m7bylsnp2w3wv54hc26ipm7aswu"
	gRec   = "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
	gPeer0 = "12D3KooWAziycHB1S8VqeS3Y3GWUY7m8y7XTHDK7SUP3eK2hgGtC"
	gPeer1 = "12D3KooWECQfJswwuAiqQMbJUns7yi2tARygrKd6evfUr589eaHs"
)

// TestGoldenHumanOutput runs the read commands against fixed API answers
// on a fixed clock and compares their text output (tables with headers,
// human durations and times, plurals) and their --json output with
// testdata/human-*.golden.
func TestGoldenHumanOutput(t *testing.T) {
	members := `{"members":[` +
		`{"key":"` + gKey0 + `","org":"Zeta Ministry","group":"government","region":"africa","keys":[],"flags":[]},` +
		`{"key":"` + gKey1 + `","org":"acme corp","group":"private-sector","region":"asia-pacific","keys":[],"flags":[]}]}`
	url := fixtureAPI(t, map[string]string{
		"GET /status": `{"peerId":"` + gPeer0 + `","key":"` + gKey0 + `","role":"member","networkId":"` + gProc + `",` +
			`"federation":"Tour","devFederation":false,"listenAddrs":["/ip4/127.0.0.1/tcp/4001/p2p/` + gPeer0 + `"],"peers":1,` +
			`"topics":["index","issue/privacy","members"],"records":1,"bytes":4300,"lastArrival":1,"topicRecords":[],` +
			`"sync":[{"topic":"index","peer":"` + gPeer1 + `","lag":0,"fetched":1,"last":"2027-02-03T11:59:00.000Z"},` +
			`{"topic":"issue/privacy","peer":"` + gPeer1 + `","lag":2,"fetched":0,"last":"2027-02-03T10:30:00.000Z","error":"stream reset"}]}`,
		"GET /peers":   `{"peers":[{"id":"` + gPeer1 + `","addrs":["/ip4/127.0.0.1/tcp/40001"]}]}`,
		"GET /members": members,
		"GET /issues": `{"issues":[{"slug":"privacy","topic":"issue/privacy","title":"Privacy across borders","summary":"",` +
			`"open":"` + gRec + `","author":{"key":"` + gKey1 + `","org":"acme corp","group":"private-sector","region":"asia-pacific"},` +
			`"time":"2027-01-20T09:00:00.000Z","contenders":[],"following":true}]}`,
		"GET /issues/privacy/processes": `{"issue":"privacy","processes":[{"cid":"` + gProc + `","topic":"issue/privacy",` +
			`"title":"A global baseline","stage":"consultation","records":11,"adopted":[],"phases":[]}]}`,
		"GET /issues/dns/processes": `{"issue":"dns","processes":[]}`,
		"GET /processes/" + gProc: `{"cid":"` + gProc + `","topic":"issue/privacy","title":"A global baseline","stage":"consultation",` +
			`"records":11,"adopted":["` + gRec + `"],"phases":[` +
			`{"stage":"scoping","start":"2027-01-01T00:00:00.000Z","end":"2027-02-01T00:00:00.000Z"},` +
			`{"stage":"consultation","start":"2027-02-01T00:00:00.000Z","end":"2027-05-01T00:00:00.000Z"},` +
			`{"stage":"decision","start":"2027-05-01T00:00:00.000Z","end":"2027-05-01T01:30:00.000Z"}]}`,
		"GET /records/" + gRec: `{"cid":"` + gRec + `","kind":"process.notice","topic":"issue/privacy","author":"` + gKey1 + `","seq":3,` +
			`"prev":"` + gProc + `","deps":["` + gProc + `"],"time":"2027-02-01T08:15:00.000Z",` +
			`"body":{"date":1801612800000,"process":{"/":"` + gProc + `"},"subject":"consultation","text":"Opens"}}`,
	})
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"status", []string{"status"}},
		{"peers", []string{"peers"}},
		{"members", []string{"members"}},
		{"issue-list", []string{"issue", "list"}},
		{"process-list", []string{"process", "list", "privacy"}},
		{"process-list-empty", []string{"process", "list", "dns"}},
		{"process-show", []string{"process", "show", gProc}},
		{"record-get", []string{"record", "get", gRec}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			for _, format := range []string{"text", "json"} {
				var stdout, stderr bytes.Buffer
				a := &app{stdout: &stdout, stderr: &stderr, start: startNode, clock: func() time.Time { return fixtureNow }}
				args := append([]string{"--api", url, "--output", format}, tc.args...)
				if code := execute(t.Context(), newRoot(a), args, &stderr); code != 0 {
					t.Fatalf("%v: exit %d: %s", args, code, stderr.String())
				}
				fmt.Fprintf(&out, "$ clearinghouse %s\n%s", strings.Join(args[2:], " "), stdout.String())
				if format == "json" && !json.Valid(stdout.Bytes()) {
					t.Errorf("--json output is not JSON: %s", stdout.String())
				}
			}
			golden(t, "human-"+tc.name+".golden", out.String())
		})
	}
}

// TestHumanFormats: the helpers of the one output style.
func TestHumanFormats(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {350 * time.Millisecond, "350ms"}, {time.Second, "1s"}, {59*time.Minute + 59*time.Second, "59m 59s"},
		{time.Hour, "1h"}, {time.Hour + 30*time.Minute, "1h 30m"}, {14 * 24 * time.Hour, "14d"},
		{26 * time.Hour, "1d 2h"}, {-90 * time.Second, "1m 30s"},
	} {
		if got := humanDuration(tc.d); got != tc.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
	for _, tc := range []struct {
		n    int
		noun string
		want string
	}{
		{0, "record", "0 records"}, {1, "record", "1 record"}, {2, "peer", "2 peers"}, {3, "entry", "3 entries"},
		{2, "day", "2 days"}, {2, "match", "2 matches"}, {1, "round trip", "1 round trip"},
	} {
		if got := plural(tc.n, tc.noun); got != tc.want {
			t.Errorf("plural(%d, %q) = %q, want %q", tc.n, tc.noun, got, tc.want)
		}
	}
	now := fixtureNow
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{now.Add(-3 * 24 * time.Hour), "2027-01-31 12:00 UTC (3d ago)"},
		{now.Add(2*time.Hour + 500*time.Millisecond), "2027-02-03 14:00 UTC (in 2h)"},
		{now, "2027-02-03 12:00 UTC (now)"},
		{time.Time{}, "-"},
	} {
		if got := humanTime(tc.t, now); got != tc.want {
			t.Errorf("humanTime(%v) = %q, want %q", tc.t, got, tc.want)
		}
	}
	if got := jsonTime(time.Date(2027, 2, 3, 4, 5, 6, 0, time.FixedZone("x", 3600))); got != "2027-02-03T03:05:06.000Z" {
		t.Errorf("jsonTime = %q", got)
	}
}

// TestNoColor: colour only on a terminal and never with NO_COLOR or
// --no-color; a buffer is never a terminal.
func TestNoColor(t *testing.T) {
	a := &app{stdout: &bytes.Buffer{}}
	if a.style().color {
		t.Fatal("colour on a buffer")
	}
	tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no terminal:", err)
	}
	defer tty.Close()
	a = &app{stdout: tty}
	t.Setenv("TERM", "xterm")
	t.Setenv("NO_COLOR", "")
	if !a.style().color {
		t.Error("no colour on a terminal")
	}
	a.noColor = true
	if a.style().color {
		t.Error("colour with --no-color")
	}
	a.noColor = false
	t.Setenv("NO_COLOR", "1")
	if a.style().color {
		t.Error("colour with NO_COLOR set")
	}
}

// rfc3339ms is the one time format of the API's JSON.
var rfc3339ms = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

// timeKeys are the JSON keys that hold times, in the API's answers and in
// the audit. Record bodies keep their signed form (docs/api.md).
var timeKeys = []string{"time", "firstSeen", "last", "start", "end", "claimed", "date", "opens", "closes", "plannedStart", "plannedEnd", "started", "created"}

// shape returns the JSON shape of v: every key path with the JSON type
// of its value, times checked to be RFC 3339 with milliseconds ("time"),
// arrays as their first element's shape.
func shape(t *testing.T, prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		out[prefix] = "object"
		for k, e := range x {
			p := prefix + "." + k
			if s, ok := e.(string); ok && slices.Contains(timeKeys, k) {
				if !rfc3339ms.MatchString(s) {
					t.Errorf("%s = %q is not RFC 3339 with milliseconds in UTC", p, s)
				}
				out[p] = "time"
				continue
			}
			if _, ok := e.(float64); ok && slices.Contains(timeKeys, k) && !strings.Contains(p, ".body.") && !strings.Contains(p, ".charter.") {
				t.Errorf("%s is a number: times in the API's JSON are RFC 3339", p)
			}
			shape(t, p, e, out)
		}
	case []any:
		out[prefix] = "array"
		if len(x) > 0 {
			shape(t, prefix+"[]", x[0], out)
		}
	case string:
		out[prefix] = "string"
	case float64:
		out[prefix] = "number"
	case bool:
		out[prefix] = "bool"
	case nil:
		out[prefix] = "null"
	}
}

// TestGoldenJSONShapes drives a real node through the client commands
// and compares the shapes of their --json outputs (field names and
// types) with testdata/json-shapes.golden: field names are stable, and
// every time is RFC 3339 as docs/api.md says.
func TestGoldenJSONShapes(t *testing.T) {
	e := newAPIEnv(t)
	ex, err := os.ReadFile("../../../docs/examples/charter.toml")
	if err != nil {
		t.Fatal(err)
	}
	charter := regexp.MustCompile(`(?s)convenors = \[.*?\]`).ReplaceAllString(string(ex), `convenors = ["self", "`+e.keys[1]+`"]`)
	cf := filepath.Join(t.TempDir(), "charter.toml")
	if err := os.WriteFile(cf, []byte(charter), 0o600); err != nil {
		t.Fatal(err)
	}
	js := func(args ...string) string {
		return e.run(t, append(args, "--json")...).mustSucceed(t).stdout
	}
	var open, proc, notice struct{ CID string }
	outs := map[string]string{}
	outs["issue open"] = js("issue", "open", "privacy", "--title", "Privacy")
	_ = json.Unmarshal([]byte(outs["issue open"]), &open)
	outs["process charter"] = js("process", "charter", "--file", cf)
	_ = json.Unmarshal([]byte(outs["process charter"]), &proc)
	outs["notice"] = js("notice", "--process", proc.CID, "--subject", "consultation", "--date", "2027-02-01T00:00:00Z")
	_ = json.Unmarshal([]byte(outs["notice"]), &notice)
	outs["issue follow"] = js("issue", "follow", "privacy")
	// sync first: status then shows its sync entries in every run.
	sub := map[string]string{"PROCESS": proc.CID, "NOTICE": notice.CID}
	for _, args := range [][]string{{"sync", "--quiet"}, {"status"}, {"peers"}, {"members"}, {"issue", "list"}, {"process", "list", "privacy"},
		{"process", "show", "PROCESS"}, {"record", "get", "NOTICE"}, {"audit", "PROCESS"}, {"version"}} {
		label := strings.Join(args, " ")
		for i, a := range args {
			if v, ok := sub[a]; ok {
				args[i] = v
			}
		}
		outs[label] = js(args...)
	}
	dir := filepath.Join(t.TempDir(), "node")
	outs["init"] = runCLI(t, "--data-dir", dir, "init", "--json").mustSucceed(t).stdout
	outs["id"] = runCLI(t, "--data-dir", dir, "id", "--json").mustSucceed(t).stdout
	id := strings.TrimSpace(runCLI(t, "--data-dir", dir, "id").mustSucceed(t).stdout)
	id = strings.TrimPrefix(strings.SplitN(id, "\n", 2)[0], "peer id: ")
	gf := filepath.Join(t.TempDir(), "genesis.cbor")
	outs["genesis draft"] = runCLI(t, "genesis", "draft", "--name", "G", "--admit-groups", "1", "--out", gf,
		"--founder", id+",Org,civil-society,africa", "--json").mustSucceed(t).stdout
	outs["genesis sign"] = runCLI(t, "--data-dir", dir, "genesis", "sign", gf, "--json").mustSucceed(t).stdout
	outs["genesis verify"] = runCLI(t, "genesis", "verify", gf, "--json").mustSucceed(t).stdout
	var b strings.Builder
	keys := make([]string, 0, len(outs))
	for k := range outs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var v any
		if err := json.Unmarshal([]byte(outs[k]), &v); err != nil {
			t.Fatalf("%s --json: %v: %s", k, err, outs[k])
		}
		s := map[string]string{}
		shape(t, "", v, s)
		paths := make([]string, 0, len(s))
		for p := range s {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		fmt.Fprintf(&b, "$ clearinghouse %s --json\n", k)
		for _, p := range paths {
			name := p
			if name == "" {
				name = "."
			}
			fmt.Fprintf(&b, "  %s: %s\n", name, s[p])
		}
	}
	golden(t, "json-shapes.golden", b.String())
}

// TestBinName: hints name the program as a shell finds it: its bare name
// when $PATH leads to this very program, else the path it was run by.
func TestBinName(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	base := filepath.Base(os.Args[0])
	t.Setenv("PATH", t.TempDir())
	if got := binName(); got == base || got == "" {
		t.Errorf("binName() = %q off $PATH, want a path", got)
	}
	bin := t.TempDir()
	if err := os.Symlink(self, filepath.Join(bin, base)); err != nil {
		t.Skip(err)
	}
	t.Setenv("PATH", bin)
	if got := binName(); got != base {
		t.Errorf("binName() = %q with the program on $PATH, want %q", got, base)
	}
}

package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/clearinghouse-net/clearinghouse/config"
)

// TestErrorMessages is every error message an operator met in the first
// hour (issue 14), as input -> message -> exit status. Each message says
// what is wrong in the operator's terms and what to do; none is a Go
// layout string, a bare "not found" or "resource temporarily
// unavailable".
func TestErrorMessages(t *testing.T) {
	e := newAPIEnv(t)
	e.run(t, "issue", "open", "privacy", "--title", "Privacy").mustSucceed(t)
	ex, err := os.ReadFile("../../../docs/examples/charter.toml")
	if err != nil {
		t.Fatal(err)
	}
	charterText := regexp.MustCompile(`(?s)convenors = \[.*?\]`).ReplaceAllString(string(ex), `convenors = ["self", "`+e.keys[1]+`"]`)
	// write writes a file into a temporary directory and returns its path.
	write := func(t *testing.T, name, content string) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	proc := lastCID(t, e.run(t, "process", "charter", "--file", write(t, "c.toml", charterText)).mustSucceed(t).stdout)
	notice := lastCID(t, e.run(t, "notice", "--process", proc, "--subject", "consultation", "--date", "2027-02-01T00:00:00Z").mustSucceed(t).stdout)
	const unknownCID = "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"

	// runOn runs `run` on a data directory with config content, starting
	// a real node unless the command fails first.
	runOn := func(t *testing.T, content string, args ...string) result {
		dir := t.TempDir()
		runCLI(t, "--data-dir", dir, "init").mustSucceed(t)
		if err := os.WriteFile(config.DataDir{Path: dir}.ConfigPath(), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return runCLI(t, append([]string{"--data-dir", dir, "run", "--listen", "/ip4/127.0.0.1/tcp/0"}, args...)...)
	}

	tests := []struct {
		name string
		run  func(t *testing.T) result
		want []string // each in stderr, in this order
		code int
	}{
		{"record get of an unknown CID", func(t *testing.T) result { return e.run(t, "record", "get", unknownCID) },
			[]string{"record " + unknownCID + " is not on this node", "clearinghouse sync"}, exitError},
		{"process show of a record that is not a charter", func(t *testing.T) result { return e.run(t, "process", "show", notice) },
			[]string{notice + " is a process.notice record, not a process", "belongs to process " + proc, "process show " + proc}, exitError},
		{"process show of an unknown CID", func(t *testing.T) result { return e.run(t, "process", "show", unknownCID) },
			[]string{"no process " + unknownCID + " on this node", "the CID of its charter"}, exitError},
		{"stage before the notice date", func(t *testing.T) result {
			// A charter whose consultation is due, without a notice.
			c := strings.NewReplacer("2027-01-01T00:00:00Z", "2020-01-01T00:00:00Z", "2027-02-01T00:00:00Z", "2020-02-01T00:00:00Z").Replace(charterText)
			p := lastCID(t, e.run(t, "process", "charter", "--file", write(t, "c.toml", c)).mustSucceed(t).stdout)
			return e.run(t, "stage", "--process", p, "--to", "consultation")
		}, []string{"no notice of the consultation published at least 14d before its date", "(reason: not-allowed)"}, exitError},
		{"config key in the wrong table", func(t *testing.T) result { return runOn(t, "[api]\nconn_low = 3\n") },
			[]string{`config.toml:2: unknown key "api.conn_low" (conn_low is a key of the [network] table: did you mean "network.conn_low"?)`}, exitError},
		{"config validation error has its line", func(t *testing.T) result { return runOn(t, "[node]\n\nrole = \"boss\"\n") },
			[]string{`config.toml:3: node.role: must be "member" or "observer", not "boss"`}, exitError},
		{"api.listen port 0", func(t *testing.T) result { return runOn(t, "[api]\nlisten = \"127.0.0.1:0\"\n") },
			[]string{`config.toml:2: api.listen: invalid host:port "127.0.0.1:0"`, "cannot be 0"}, exitError},
		{"charter date as a string", func(t *testing.T) result {
			c := strings.Replace(charterText, "start = 2027-01-01T00:00:00Z", `start = "2027-01-01"`, 1)
			return e.run(t, "process", "charter", "--file", write(t, "c.toml", c))
		}, []string{`c.toml: phases[0].start = "2027-01-01" is a string, not a date-time`, "such as 2027-02-01T00:00:00Z"}, exitError},
		{"charter date without offset", func(t *testing.T) result {
			c := strings.Replace(charterText, "start = 2027-01-01T00:00:00Z", `start = 2027-01-01`, 1)
			return e.run(t, "process", "charter", "--file", write(t, "c.toml", c))
		}, []string{`c.toml: phases[0].start = 2027-01-01 has no time zone offset`}, exitError},
		{"charter date invalid", func(t *testing.T) result {
			c := strings.Replace(charterText, "start = 2027-01-01T00:00:00Z", `start = 2027-02-31T00:00:00Z`, 1)
			return e.run(t, "process", "charter", "--file", write(t, "c.toml", c))
		}, []string{`c.toml:32: phases.start: invalid datetime: "2027-02-31T00:00:00Z"`}, exitError},
		{"charter without aim", func(t *testing.T) result {
			c := regexp.MustCompile(`(?m)^aim = .*$`).ReplaceAllString(charterText, "")
			return e.run(t, "process", "charter", "--file", write(t, "c.toml", c))
		}, []string{"c.toml: the charter states no aim"}, exitError},
		{"charter on an issue that is not open", func(t *testing.T) result {
			return e.run(t, "process", "charter", "--file", write(t, "c.toml", charterText), "--issue", "privcy")
		}, []string{`issue "privcy" is not open on this federation's index`, "issue open privcy"}, exitError},
		{"follow an issue that is not open", func(t *testing.T) result { return e.run(t, "issue", "follow", "nosuchissue") },
			[]string{`issue "nosuchissue" is not open on this federation's index`, "issue follow nosuchissue --force"}, exitError},
		{"second run on a data directory", func(t *testing.T) result {
			dir := t.TempDir()
			runCLI(t, "--data-dir", dir, "init").mustSucceed(t)
			unlock, err := lockDataDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer unlock()
			var stdout, stderr bytes.Buffer
			a := &app{stdout: &stdout, stderr: &stderr, start: func(context.Context, nodeParams) (runningNode, error) {
				t.Error("the node was started")
				return nil, nil
			}}
			code := execute(t.Context(), newRoot(a), []string{"--data-dir", dir, "run"}, &stderr)
			return result{stdout.String(), stderr.String(), code}
		}, []string{"is in use by process " + fmt.Sprint(os.Getpid()), "stop that one first"}, exitError},
		{"busy API port", func(t *testing.T) result {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			return runOn(t, "[api]\nlisten = \""+l.Addr().String()+"\"\n")
		}, []string{"api.listen 127.0.0.1:", "config.toml): address already in use; is another node running on this machine?", "--api-listen"}, exitError},
		{"unknown command", func(t *testing.T) result { return runCLI(t, "stauts") },
			[]string{`unknown command "stauts" (did you mean "status"?)`, "Usage:"}, exitUsage},
		{"bad --output", func(t *testing.T) result { return runCLI(t, "version", "-o", "yaml") },
			[]string{`--output "yaml": want text or json`}, exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.run(t)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstderr:\n%s", r.code, tt.code, r.stderr)
			}
			rest := r.stderr
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("stderr lacks %q (in this order):\n%s", w, r.stderr)
				}
				rest = rest[i+len(w):]
			}
			if !strings.HasPrefix(r.stderr, "clearinghouse: ") {
				t.Errorf("stderr does not start with \"clearinghouse: \":\n%s", r.stderr)
			}
			for _, bad := range []string{"2006-01-02", "resource temporarily unavailable", "store: not found", "unknown process", "0d", "node started"} {
				if strings.Contains(r.stderr, bad) {
					t.Errorf("stderr has %q:\n%s", bad, r.stderr)
				}
			}
			if tt.code != exitOK && r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
		})
	}
}

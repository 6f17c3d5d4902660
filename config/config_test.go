package config_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/clearinghouse-net/clearinghouse/config"
)

func TestDefaultIsValid(t *testing.T) {
	if err := config.Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
}

func TestDefaultReturnsFreshSlices(t *testing.T) {
	a := config.Default()
	a.Network.Listen[0] = "changed"
	if b := config.Default(); b.Network.Listen[0] == "changed" {
		t.Fatal("Default shares its slices between calls")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*config.Config)
		key    string // key path the error must name
		want   string // substring of the message
	}{
		{"role", func(c *config.Config) { c.Node.Role = "admin" }, "node.role", `not "admin"`},
		{"empty role", func(c *config.Config) { c.Node.Role = "" }, "node.role", "must be"},
		{"listen", func(c *config.Config) { c.Network.Listen = []string{"/ip4/127.0.0.1/tcp/1", "/ip4/1.2.3"} }, "network.listen[1]", `invalid multiaddr "/ip4/1.2.3"`},
		{"listen not multiaddr", func(c *config.Config) { c.Network.Listen = []string{"127.0.0.1:4001"} }, "network.listen[0]", "invalid multiaddr"},
		{"bootstrap without peer id", func(c *config.Config) { c.Network.Bootstrap = []string{"/ip4/127.0.0.1/tcp/4001"} }, "network.bootstrap[0]", "/p2p/<peer id>"},
		{"bootstrap bad peer id", func(c *config.Config) { c.Network.Bootstrap = []string{"/ip4/127.0.0.1/tcp/4001/p2p/nope"} }, "network.bootstrap[0]", "invalid peer address"},
		{"conn_low zero", func(c *config.Config) { c.Network.ConnLow = 0 }, "network.conn_low", "must be >= 1"},
		{"conn_high below low", func(c *config.Config) { c.Network.ConnLow, c.Network.ConnHigh = 10, 5 }, "network.conn_high", "must be >= network.conn_low (10), not 5"},
		{"api no port", func(c *config.Config) { c.API.Listen = "127.0.0.1" }, "api.listen", "missing port"},
		{"api port not a number", func(c *config.Config) { c.API.Listen = "localhost:http" }, "api.listen", "port must be a number"},
		{"api port zero", func(c *config.Config) { c.API.Listen = "127.0.0.1:0" }, "api.listen", "cannot be 0"},
		{"api port too big", func(c *config.Config) { c.API.Listen = "localhost:70000" }, "api.listen", "port must be a number"},
		{"log level", func(c *config.Config) { c.Log.Level = "verbose" }, "log.level", `not "verbose"`},
		{"log format", func(c *config.Config) { c.Log.Format = "xml" }, "log.format", `not "xml"`},
		{"follow uppercase", func(c *config.Config) { c.Topics.Follow = []string{"privacy", "Privacy"} }, "topics.follow[1]", `invalid issue slug "Privacy"`},
		{"follow leading dash", func(c *config.Config) { c.Topics.Follow = []string{"-x"} }, "topics.follow[0]", "invalid issue slug"},
		{"follow too long", func(c *config.Config) { c.Topics.Follow = []string{strings.Repeat("a", 64)} }, "topics.follow[0]", "invalid issue slug"},
		{"follow empty", func(c *config.Config) { c.Topics.Follow = []string{""} }, "topics.follow[0]", "invalid issue slug"},
		{"blocked not a key", func(c *config.Config) { c.Comments.Blocked = []string{strings.Repeat("ab", 32), "spammer"} }, "public.blocked[1]", "neither an ed25519 key"},
		{"blocked short hex", func(c *config.Config) { c.Comments.Blocked = []string{strings.Repeat("ab", 31)} }, "public.blocked[0]", "neither an ed25519 key"},
		{"blocked rsa peer id", func(c *config.Config) {
			c.Comments.Blocked = []string{"QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"}
		}, "public.blocked[0]", "public key is not embedded"},
		{"sync zero", func(c *config.Config) { c.Sync.Interval = 0 }, "sync.interval", "must be > 0"},
		{"sync negative", func(c *config.Config) { c.Sync.Interval = config.Duration(-time.Second) }, "sync.interval", "must be > 0"},
		{"cache too small", func(c *config.Config) { c.Store.CacheMB = 7 }, "store.cache_mb", "must be >= 8, not 7"},
		{"pending records zero", func(c *config.Config) { c.Pending.Records = 0 }, "pending.records", "must be >= 1"},
		{"pending per peer above records", func(c *config.Config) { c.Pending.PerPeer = c.Pending.Records + 1 }, "pending.per_peer", "must be in [1, pending.records]"},
		{"pending strangers above per peer", func(c *config.Config) { c.Pending.PerPeerStrangers = c.Pending.PerPeer + 1 }, "pending.per_peer_strangers", "must be in [1, pending.per_peer]"},
		{"pending per author zero", func(c *config.Config) { c.Pending.PerAuthor = 0 }, "pending.per_author", "must be in [1, pending.records]"},
		{"pending ttl zero", func(c *config.Config) { c.Pending.TTL = 0 }, "pending.ttl", "must be > 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			tt.modify(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Validate() = %v (%T), want a *config.Error", err, err)
			}
			if ce.Key != tt.key {
				t.Errorf("key = %q, want %q (error %q)", ce.Key, tt.key, err)
			}
			if !strings.HasPrefix(err.Error(), "config: "+tt.key+": ") {
				t.Errorf("error %q does not start with %q", err, "config: "+tt.key+": ")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	c := config.Default()
	c.Node.Role = config.RoleObserver
	c.Network.Listen = nil
	c.Network.Bootstrap = []string{"/ip4/192.0.2.7/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"}
	c.Network.ConnLow, c.Network.ConnHigh = 1, 1
	c.API.Listen = ":5080"
	c.Log.Level, c.Log.Format = "debug", "json"
	c.Topics.Follow = []string{"privacy", "a", "x-1", strings.Repeat("a", 63)}
	c.Comments.Blocked = []string{"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA", strings.Repeat("0f", 32)}
	c.Store.CacheMB = config.MinCacheMB
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
}

func TestValidateReportsAll(t *testing.T) {
	c := config.Default()
	c.Sync.Interval = 0
	c.Store.CacheMB = 1
	c.Log.Level = "loud"
	err := c.Validate()
	for _, key := range []string{"log.level", "sync.interval", "store.cache_mb"} {
		if !strings.Contains(err.Error(), "config: "+key+": ") {
			t.Errorf("error %q does not name %s", err, key)
		}
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != 3 {
		t.Errorf("got %d lines, want 3: %q", got, err)
	}
}

// writeFile writes a config file in a new temporary directory.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), config.ConfigFile)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoad(t *testing.T) {
	path := writeFile(t, `
[node]
role = "observer"
name = "Example NGO"

[network]
listen = ["/ip4/0.0.0.0/tcp/4001"]
conn_high = 200

[topics]
follow = ["privacy"]

[sync]
interval = "1m30s"

[metrics]
enabled = false
`)
	got, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := config.Default()
	want.Node = config.Node{Role: "observer", Name: "Example NGO"}
	want.Network.Listen = []string{"/ip4/0.0.0.0/tcp/4001"}
	want.Network.ConnHigh = 200
	want.Topics.Follow = []string{"privacy"}
	want.Sync.Interval = config.Duration(90 * time.Second)
	want.Metrics.Enabled = false
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Load =\n%+v\nwant\n%+v", got, want)
	}
}

func TestLoadDottedKeys(t *testing.T) {
	path := writeFile(t, "node.role = \"observer\"\nstore = { cache_mb = 16 }\n")
	got, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Node.Role != "observer" || got.Store.CacheMB != 16 {
		t.Fatalf("Load = %+v", got)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []string // substrings of the error, after the file name
		line    int      // 0: not checked
		col     int      // 0: not checked
		is      error    // nil: not checked
	}{
		{
			name:    "syntax",
			content: "[network]\nlisten = [\"/ip4/127.0.0.1/tcp/1\"\nconn_low = 3\n",
			want:    []string{":3:1: network.listen: "},
			line:    3,
			col:     1,
		},
		{
			name:    "unterminated string",
			content: "[log]\nlevel = \"info\n",
			want:    []string{"log.level"},
			line:    2,
			col:     14,
		},
		{
			name:    "unknown key",
			content: "[network]\nlistn = []\n",
			want:    []string{`unknown key "network.listn"`},
			is:      config.ErrUnknownKey,
		},
		{
			name:    "unknown section",
			content: "[netwrk]\nlisten = []\n",
			want:    []string{`unknown key "netwrk"`},
			is:      config.ErrUnknownKey,
		},
		{
			name:    "unknown top-level key",
			content: "verbose = true\n",
			want:    []string{`unknown key "verbose"`},
			is:      config.ErrUnknownKey,
		},
		{
			name:    "key case matters",
			content: "[log]\nLevel = \"debug\"\n",
			want:    []string{`unknown key "log.Level"`},
		},
		{
			name:    "wrong type int",
			content: "[network]\nconn_low = \"many\"\n",
			want:    []string{"network.conn_low: ", "incompatible types"},
			line:    2,
		},
		{
			name:    "wrong type string",
			content: "[node]\n\nrole = 1\n",
			want:    []string{"node.role: ", "incompatible types"},
			line:    3,
		},
		{
			name:    "wrong type array",
			content: "[topics]\nfollow = \"privacy\"\n",
			want:    []string{"topics.follow: "},
		},
		{
			name:    "wrong type array element",
			content: "[network]\nlisten = [4001]\n",
			want:    []string{"network.listen: "},
		},
		{
			name:    "wrong type bool",
			content: "[metrics]\nenabled = \"yes\"\n",
			want:    []string{"metrics.enabled: "},
		},
		{
			name:    "section not a table",
			content: "sync = 5\n",
			want:    []string{"sync: must be a table ([sync]), not an integer"},
		},
		{
			name:    "dotted key below a value",
			content: "node.role.x = 3\n",
			want:    []string{"node.role: ", "incompatible types"},
		},
		{
			name:    "array of tables",
			content: "[[node]]\nrole = \"member\"\n",
			want:    []string{"node: must be a table ([node]), not an array of tables"},
		},
		{
			name:    "table where value expected",
			content: "[node.role]\nx = 1\n",
			want:    []string{"node.role: "},
		},
		{
			name:    "duration without unit",
			content: "[sync]\ninterval = 30\n",
			want:    []string{"sync.interval: ", `invalid duration "30"`},
			line:    2,
			col:     12,
		},
		{
			name:    "duration garbage",
			content: "[sync]\ninterval = \"soon\"\n",
			want:    []string{"sync.interval: ", `invalid duration "soon"`},
		},
		{
			name:    "invalid value",
			content: "[sync]\ninterval = \"0s\"\n",
			want:    []string{"sync.interval: must be > 0"},
		},
		{
			name:    "invalid listen",
			content: "[network]\nlisten = [\"/ip4/127.0.0.1/tcp/4001\", \"/ip4/nope\"]\n",
			want:    []string{`network.listen[1]: invalid multiaddr "/ip4/nope"`},
		},
		{
			name:    "several problems",
			content: "[network]\nlistn = []\nconn_low = \"x\"\n[store]\ncachemb = 1\n",
			want:    []string{`unknown key "network.listn"`, "network.conn_low: ", `unknown key "store.cachemb"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.content)
			_, err := config.Load(path)
			if err == nil {
				t.Fatal("Load = nil error")
			}
			msg := err.Error()
			for _, line := range strings.Split(msg, "\n") {
				if !strings.HasPrefix(line, "config: "+path+":") {
					t.Errorf("error line %q does not name the file %s", line, path)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *config.Error", err)
			}
			if ce.File != path {
				t.Errorf("File = %q, want %q", ce.File, path)
			}
			if tt.line != 0 && ce.Line != tt.line {
				t.Errorf("Line = %d, want %d (error %q)", ce.Line, tt.line, msg)
			}
			if tt.col != 0 && ce.Column != tt.col {
				t.Errorf("Column = %d, want %d (error %q)", ce.Column, tt.col, msg)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
		})
	}
}

func TestLoadSyntaxErrorKeepsParseError(t *testing.T) {
	_, err := config.Load(writeFile(t, "[node\n"))
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v does not wrap a toml.ParseError", err)
	}
}

func TestLoadExactMessages(t *testing.T) {
	path := writeFile(t, "[network]\nlistn = []\n")
	_, err := config.Load(path)
	if want := `config: ` + path + `:2: unknown key "network.listn"`; err == nil || err.Error() != want {
		t.Errorf("unknown key: got %v, want %s", err, want)
	}

	// Every problem has its line, also those Validate finds, and an
	// unknown key that is a key of another table, or a misspelling,
	// says which key was meant.
	for _, tc := range []struct{ content, want string }{
		{"[api]\nconn_low = 3\n", `:2: unknown key "api.conn_low" (conn_low is a key of the [network] table: did you mean "network.conn_low"?)`},
		{"[network]\n\nconnLow = 3\n", `:3: unknown key "network.connLow" (did you mean "network.conn_low"?)`},
		{"[Network]\n", `:1: unknown key "Network" (did you mean [network]?)`},
		{"[node]\nrole = \"boss\"\n", `:2: node.role: must be "member" or "observer", not "boss"`},
		{"[network]\nlisten = [\n  \"/ip4/nope\",\n]\n", `:2: network.listen[0]: invalid multiaddr "/ip4/nope"`},
		{"[api]\nlisten = \"127.0.0.1:0\"\n", `:2: api.listen: invalid host:port "127.0.0.1:0": port must be a number from 1 to 65535 (clients find the API at this address, so it cannot be 0)`},
		{"sync.interval = \"0s\"\n", `:1: sync.interval: must be > 0, not 0s`},
	} {
		path = writeFile(t, tc.content)
		_, err = config.Load(path)
		if err == nil || !strings.HasPrefix(err.Error(), "config: "+path+tc.want) {
			t.Errorf("%q: got %v, want config: %s%s", tc.content, err, path, tc.want)
		}
	}

	path = writeFile(t, "[network]\nconn_low = \"x\"\n")
	_, err = config.Load(path)
	want := `config: ` + path + `:2: network.conn_low: incompatible types: TOML value has type string; destination has type integer`
	if err == nil || err.Error() != want {
		t.Errorf("wrong type: got %v, want %s", err, want)
	}
}

func TestLoadUnreadable(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope.toml")
		_, err := config.Load(path)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Load = %v, want fs.ErrNotExist", err)
		}
		if want := "config: read " + path + ": "; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("error %q does not start with %q", err, want)
		}
	})
	t.Run("permission denied", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root can read any file")
		}
		path := writeFile(t, "")
		if err := os.Chmod(path, 0); err != nil {
			t.Fatal(err)
		}
		_, err := config.Load(path)
		if !errors.Is(err, fs.ErrPermission) {
			t.Fatalf("Load = %v, want fs.ErrPermission", err)
		}
		if want := "config: read " + path + ": permission denied"; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
	})
}

func TestLoadEmptyFileIsDefault(t *testing.T) {
	got, err := config.Load(writeFile(t, "# nothing set\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, config.Default()) {
		t.Fatalf("Load(empty) = %+v, want Default()", got)
	}
}

func TestWriteDefaultRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), config.ConfigFile)
	if err := config.WriteDefault(path); err != nil {
		t.Fatal(err)
	}
	got, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, config.Default()) {
		t.Fatalf("Load(WriteDefault) =\n%+v\nwant Default() =\n%+v", got, config.Default())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&^0o644 != 0 {
		t.Errorf("mode %v, want at most 0644", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	for _, want := range []string{"# Default: 64.", "listen = [", "in MiB", "[sync]"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("written file lacks %q", want)
		}
	}
}

func TestWriteDefaultRefusesOverwrite(t *testing.T) {
	path := writeFile(t, "# mine\n")
	err := config.WriteDefault(path)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("WriteDefault over a file = %v, want fs.ErrExist", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "# mine\n" {
		t.Fatalf("file was changed to %q", data)
	}
}

// TestParseRelayKey: a peer id and the hex of the key it embeds are the
// same relaying key.
func TestParseRelayKey(t *testing.T) {
	const id = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
	fromID, err := config.ParseRelayKey(id)
	if err != nil || len(fromID) != 32 {
		t.Fatalf("ParseRelayKey(peer id) = %x, %v", fromID, err)
	}
	fromHex, err := config.ParseRelayKey(" " + hex.EncodeToString(fromID) + "\n")
	if err != nil || !bytes.Equal(fromHex, fromID) {
		t.Fatalf("ParseRelayKey(hex) = %x, %v; want %x", fromHex, err, fromID)
	}
	for _, s := range []string{"", "zz", strings.Repeat("g", 64), hex.EncodeToString(fromID) + "00"} {
		if k, err := config.ParseRelayKey(s); err == nil {
			t.Errorf("ParseRelayKey(%q) = %x, want an error", s, k)
		}
	}
}

func TestDurationText(t *testing.T) {
	var d config.Duration
	if err := d.UnmarshalText([]byte("1h2m3s")); err != nil {
		t.Fatal(err)
	}
	if d.Std() != time.Hour+2*time.Minute+3*time.Second {
		t.Fatalf("got %v", d)
	}
	b, _ := d.MarshalText()
	if string(b) != "1h2m3s" {
		t.Fatalf("MarshalText = %q", b)
	}
	if err := d.UnmarshalText([]byte("3")); err == nil {
		t.Fatal(`UnmarshalText("3") = nil, want an error`)
	}
}

// FuzzLoad checks that no file content makes Load panic, and that whatever
// Load accepts is valid.
func FuzzLoad(f *testing.F) {
	f.Add([]byte("[network]\nlisten = [\"/ip4/127.0.0.1/tcp/1\"]\n"))
	f.Add([]byte("[sync]\ninterval = \"1s\"\n[store]\ncache_mb = 9\n"))
	f.Add([]byte("node = { role = \"observer\" }\nnode.name = 3\n"))
	f.Add([]byte("[[node]]\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "fuzz.toml")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err == nil {
			if verr := cfg.Validate(); verr != nil {
				t.Fatalf("Load accepted an invalid config: %v", verr)
			}
		}
	})
}

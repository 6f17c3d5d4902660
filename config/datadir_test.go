package config_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/clearinghouse-net/clearinghouse/config"
)

func TestResolveDataDir(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)

	t.Setenv(config.EnvDataDir, "")
	got, err := config.ResolveDataDir("")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(home, config.DefaultDirName); got != want {
		t.Errorf("default: got %q, want %q", got, want)
	}

	env := filepath.Join(home, "from-env")
	t.Setenv(config.EnvDataDir, env)
	if got, _ := config.ResolveDataDir(""); got != env {
		t.Errorf("env: got %q, want %q", got, env)
	}

	flag := filepath.Join(home, "from-flag")
	if got, _ := config.ResolveDataDir(flag); got != flag {
		t.Errorf("flag: got %q, want %q", got, flag)
	}

	t.Chdir(home)
	if got, _ := config.ResolveDataDir("rel"); got != filepath.Join(home, "rel") {
		t.Errorf("relative flag: got %q, want it made absolute", got)
	}
}

func TestDataDirPaths(t *testing.T) {
	d := config.DataDir{Path: "/srv/ch"}
	for got, want := range map[string]string{
		d.ConfigPath():  "/srv/ch/config.toml",
		d.KeyPath():     "/srv/ch/identity.key",
		d.GenesisPath(): "/srv/ch/genesis.cbor",
		d.TokenPath():   "/srv/ch/api.token",
		d.StorePath():   "/srv/ch/store",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "ch")
	dd := config.DataDir{Path: dir}

	created, err := config.Init(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Fatal("first Init: created = false")
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v, want 0700", fi.Mode().Perm())
	}
	for _, p := range []string{dd.KeyPath(), dd.TokenPath()} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	cfg, err := config.Load(dd.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	key, err := config.LoadIdentity(dd.KeyPath())
	if err != nil {
		t.Fatal(err)
	}
	if key.Type() != crypto.Ed25519 {
		t.Fatalf("key type %v", key.Type())
	}
	tok, err := config.LoadToken(dd.TokenPath())
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 2*config.TokenBytes {
		t.Errorf("token %q has %d characters, want %d", tok, len(tok), 2*config.TokenBytes)
	}
	keyBytes, _ := os.ReadFile(dd.KeyPath())

	// Idempotent: nothing created, nothing changed.
	created, err = config.Init(dir)
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Fatal("second Init: created = true")
	}
	if again, _ := os.ReadFile(dd.KeyPath()); !bytes.Equal(again, keyBytes) {
		t.Fatal("second Init changed the key")
	}
	if tok2, _ := config.LoadToken(dd.TokenPath()); tok2 != tok {
		t.Fatal("second Init changed the token")
	}

	// A missing file is made again; the key is left alone.
	if err := os.Remove(dd.TokenPath()); err != nil {
		t.Fatal(err)
	}
	made, err := config.InitFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(made) != 1 || made[0] != dd.TokenPath() {
		t.Fatalf("InitFiles made %v, want only %s", made, dd.TokenPath())
	}
	if again, _ := os.ReadFile(dd.KeyPath()); !bytes.Equal(again, keyBytes) {
		t.Fatal("InitFiles changed the key")
	}
}

func TestInitNeverOverwritesKey(t *testing.T) {
	dir := t.TempDir()
	dd := config.DataDir{Path: dir}
	// Even a key file Init could not use stays as it is.
	if err := os.WriteFile(dd.KeyPath(), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	made, err := config.InitFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{dd.ConfigPath(), dd.TokenPath()}
	if strings.Join(made, ",") != strings.Join(want, ",") {
		t.Fatalf("made %v, want %v", made, want)
	}
	if data, _ := os.ReadFile(dd.KeyPath()); string(data) != "not a key" {
		t.Fatalf("key overwritten with %q", data)
	}
}

func TestLoadIdentityPermissions(t *testing.T) {
	dir := t.TempDir()
	if _, err := config.Init(dir); err != nil {
		t.Fatal(err)
	}
	dd := config.DataDir{Path: dir}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o620, 0o602, 0o644, 0o666} {
		for _, p := range []string{dd.KeyPath(), dd.TokenPath()} {
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
		}
		_, err := config.LoadIdentity(dd.KeyPath())
		if !errors.Is(err, config.ErrInsecureMode) {
			t.Fatalf("mode %04o: LoadIdentity = %v, want ErrInsecureMode", mode, err)
		}
		for _, want := range []string{dd.KeyPath(), "chmod 600 " + dd.KeyPath(), fmt.Sprintf("has mode %04o", mode)} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
		if _, err := config.LoadToken(dd.TokenPath()); !errors.Is(err, config.ErrInsecureMode) {
			t.Fatalf("mode %04o: LoadToken = %v, want ErrInsecureMode", mode, err)
		}
	}
	if err := os.Chmod(dd.KeyPath(), 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := config.LoadIdentity(dd.KeyPath()); err != nil {
		t.Fatalf("mode 0400: %v", err)
	}
}

func TestLoadIdentityMessage(t *testing.T) {
	dir := t.TempDir()
	if _, err := config.Init(dir); err != nil {
		t.Fatal(err)
	}
	path := config.DataDir{Path: dir}.KeyPath()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := config.LoadIdentity(path)
	want := "config: secret file is accessible by group or others: " + path +
		" has mode 0644 (readable or writable by group or others); fix with: chmod 600 " + path
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestLoadIdentityRejects(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	secp, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := crypto.MarshalPrivateKey(secp)
	if err != nil {
		t.Fatal(err)
	}
	_, err = config.LoadIdentity(write("secp.key", raw))
	if !errors.Is(err, config.ErrKeyType) {
		t.Errorf("secp256k1 key: got %v, want ErrKeyType", err)
	}

	p := write("garbage.key", []byte("garbage"))
	if _, err = config.LoadIdentity(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("garbage key: got %v, want an error naming %s", err, p)
	}

	p = filepath.Join(dir, "missing.key")
	if _, err = config.LoadIdentity(p); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), p) {
		t.Errorf("missing key: got %v", err)
	}
}

func TestLoadToken(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		content string
		ok      bool
	}{
		{strings.Repeat("ab", 16) + "\n", true},
		{"  " + strings.Repeat("x", 40) + "  \n", true},
		{"", false},
		{"short\n", false},
		{strings.Repeat("a", 20) + " " + strings.Repeat("b", 20), false},
	} {
		p := filepath.Join(dir, "api.token")
		if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
			t.Fatal(err)
		}
		tok, err := config.LoadToken(p)
		if tt.ok && (err != nil || tok != strings.TrimSpace(tt.content)) {
			t.Errorf("%q: got %q, %v", tt.content, tok, err)
		}
		if !tt.ok && !errors.Is(err, config.ErrBadToken) {
			t.Errorf("%q: got %v, want ErrBadToken", tt.content, err)
		}
	}
}

package config

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// minTokenLen is the shortest API token LoadToken accepts, in characters.
const minTokenLen = 32

// LoadIdentity reads the node's identity key from path: a libp2p private key
// in crypto.MarshalPrivateKey form, which must be ed25519 ([ErrKeyType]
// otherwise). It refuses a file that its group or others can read or write
// ([ErrInsecureMode]; the message gives the chmod command that fixes it).
func LoadIdentity(path string) (crypto.PrivKey, error) {
	data, err := readSecret(path)
	if err != nil {
		return nil, err
	}
	k, err := crypto.UnmarshalPrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("config: identity key %s: %w", path, err)
	}
	if k.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("%w: %s holds a %s key", ErrKeyType, path, k.Type())
	}
	return k, nil
}

// LoadToken reads the HTTP API bearer token from path: the file's content
// without surrounding white space, at least 32 characters without inner
// white space ([ErrBadToken] otherwise). It refuses a file that its group
// or others can read or write ([ErrInsecureMode]).
func LoadToken(path string) (string, error) {
	data, err := readSecret(path)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(data))
	if len(tok) < minTokenLen || strings.ContainsFunc(tok, isSpace) {
		return "", fmt.Errorf("%w: %s must hold one token of at least %d characters without spaces", ErrBadToken, path, minTokenLen)
	}
	return tok, nil
}

func isSpace(r rune) bool { return strings.ContainsRune(" \t\r\n\v\f", r) }

// readSecret reads a file that only its owner may access. The mode is
// checked on the open file, so the file checked is the file read.
func readSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileOpError("read", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileOpError("stat", path, err)
	}
	// Windows has no Unix permission bits to check.
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("%w: %s has mode %04o (readable or writable by group or others); fix with: chmod 600 %s",
			ErrInsecureMode, path, perm, path)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fileOpError("read", path, err)
	}
	return data, nil
}

// writeNewIdentity writes a new ed25519 identity key to path (mode 0600),
// refusing to overwrite an existing file.
func writeNewIdentity(path string) error {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return fmt.Errorf("config: generate identity key: %w", err)
	}
	data, err := crypto.MarshalPrivateKey(k)
	if err != nil {
		return fmt.Errorf("config: encode identity key: %w", err)
	}
	return writeNewFile(path, data, secretMode)
}

// writeNewToken writes a new API token (TokenBytes random bytes,
// hex-encoded, and a newline) to path (mode 0600), refusing to overwrite an
// existing file.
func writeNewToken(path string) error {
	b := make([]byte, TokenBytes)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("config: generate api token: %w", err)
	}
	return writeNewFile(path, []byte(hex.EncodeToString(b)+"\n"), secretMode)
}

// ParseRelayKey reads a relaying key (public.blocked, "public block") as
// an operator writes it: an ed25519 public key as 64 hex digits (as the
// API and the record pages show authors) or a libp2p peer id
// ("12D3KooW...", which embeds an ed25519 key).
func ParseRelayKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 64 {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	id, err := peer.Decode(s)
	if err != nil {
		return nil, fmt.Errorf("%q is neither an ed25519 key in 64 hex digits nor a peer id", s)
	}
	pk, err := id.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("peer id %s: %w", s, err)
	}
	if pk.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("peer id %s is not an ed25519 key", s)
	}
	return pk.Raw()
}

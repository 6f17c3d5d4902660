package api

import (
	"bytes"
	"encoding/hex"
	"net/http"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/clearinghouse-net/clearinghouse/config"
	"github.com/clearinghouse-net/clearinghouse/node"
)

// The block list of relaying keys (node/blocks.go): read by anyone, changed
// with the token on a member node. An observer's server has no write
// route; its operator blocks keys in public.blocked of config.toml.

// BlockView is an entry of the block list.
type BlockView struct {
	// Key is the blocked key, hex.
	Key string `json:"key"`
	// Peer is the same key as a libp2p peer id.
	Peer string `json:"peer"`
	// Since is when it was blocked, RFC 3339; empty for a key blocked by
	// the configuration only.
	Since  string `json:"since,omitempty"`
	Reason string `json:"reason"`
	// Config reports whether the configuration blocks it (public.blocked).
	Config bool `json:"config"`
}

// BlockRequest is the optional body of PUT /public/blocks/{key}.
type BlockRequest struct {
	// Reason is the operator's note (at most node.MaxBlockReason bytes).
	Reason string `json:"reason"`
}

func blockView(b node.BlockInfo) BlockView {
	v := BlockView{Key: hex.EncodeToString(b.Key), Reason: b.Reason, Config: b.Config}
	if pk, err := crypto.UnmarshalEd25519PublicKey(b.Key); err == nil {
		if id, err := peer.IDFromPublicKey(pk); err == nil {
			v.Peer = id.String()
		}
	}
	if !b.Since.IsZero() {
		v.Since = b.Since.UTC().Format(TimeLayout)
	}
	return v
}

func (s *Server) blocks(w http.ResponseWriter, _ *http.Request) {
	out := []BlockView{}
	for _, b := range s.n.Blocks() {
		out = append(out, blockView(b))
	}
	writeJSON(w, http.StatusOK, out)
}

// blockKey reads the {key} of a block route, or answers 400.
func blockKey(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	key, err := config.ParseRelayKey(r.PathValue("key"))
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "key: "+err.Error(), "")
		return nil, false
	}
	return key, true
}

func (s *Server) block(w http.ResponseWriter, r *http.Request) {
	key, ok := blockKey(w, r)
	if !ok {
		return
	}
	raw, err := readBody(w, r)
	if err != nil {
		writeBodyError(w, err)
		return
	}
	var req BlockRequest
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := decodeStrict(bytes.NewReader(raw), &req); err != nil {
			writeError(w, http.StatusBadRequest, CodeBadRequest, "request body: "+err.Error(), "")
			return
		}
		if err := checkDuplicateKeys(raw); err != nil {
			writeError(w, http.StatusBadRequest, CodeBadRequest, "request body: "+err.Error(), "")
			return
		}
	}
	b, err := s.n.Block(key, req.Reason)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, blockView(b))
}

func (s *Server) unblock(w http.ResponseWriter, r *http.Request) {
	key, ok := blockKey(w, r)
	if !ok {
		return
	}
	if err := s.n.Unblock(key); err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"key": hex.EncodeToString(key), "blocked": false})
}

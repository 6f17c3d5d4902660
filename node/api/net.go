package api

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/clearinghouse-net/clearinghouse/node"
)

// NetView is the network part of GET /status.
type NetView struct {
	// Reachability is "public", "private" or "unknown" (AutoNAT's answer,
	// or network.reachability when forced).
	Reachability string `json:"reachability"`
	// Addrs are the addresses other peers can dial, each ending in
	// /p2p/<peer id>; relay addresses end in /p2p-circuit/p2p/<peer id>.
	Addrs []string `json:"addrs"`
	// Relays are the peer ids of the relays holding a reservation for
	// this node.
	Relays []string `json:"relays"`
	// Peers are the connected peers, sorted by id.
	Peers []NetPeerView `json:"peers"`
}

// NetPeerView is one connected peer in NetView.
type NetPeerView struct {
	ID string `json:"id"`
	// Addr is the remote address of the best connection.
	Addr string `json:"addr"`
	// Conn is "direct" or "relayed".
	Conn string `json:"conn"`
	// Member reports whether the peer's key is a member's current key.
	Member bool `json:"member"`
}

// netView converts a node.NetStatus.
func netView(st node.NetStatus) NetView {
	v := NetView{Reachability: st.Reachability, Addrs: []string{}, Relays: []string{}, Peers: []NetPeerView{}}
	for _, a := range st.Addrs {
		v.Addrs = append(v.Addrs, a.String())
	}
	for _, r := range st.Relays {
		v.Relays = append(v.Relays, r.String())
	}
	for _, p := range st.Peers {
		pv := NetPeerView{ID: p.ID.String(), Conn: "relayed", Member: p.Member}
		if p.Addr != nil {
			pv.Addr = p.Addr.String()
		}
		if p.Direct {
			pv.Conn = "direct"
		}
		v.Peers = append(v.Peers, pv)
	}
	return v
}

// BackupRequest is the body of POST /backup.
type BackupRequest struct {
	// Dir is the absolute path, on the node's machine, of the directory to
	// write the backup to; it must not exist or be empty.
	Dir string `json:"dir"`
}

// backup writes a consistent backup of the running node's store (a pebble
// checkpoint), its genesis and a manifest to the directory asked for, and
// answers with the manifest (node.BackupInfo).
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	var req BackupRequest
	if err := decodeStrict(r.Body, &req); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "body must be {\"dir\": \"/absolute/path\"}: "+err.Error(), "")
		return
	}
	if !filepath.IsAbs(req.Dir) {
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("dir %q must be an absolute path on the node's machine", req.Dir), "")
		return
	}
	info, err := s.n.Backup(filepath.Clean(req.Dir))
	if errors.Is(err, node.ErrBackupTarget) {
		writeError(w, http.StatusConflict, CodeConflict, err.Error(), "")
		return
	}
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

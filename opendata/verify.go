package opendata

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// Audit is the canonical audit of one process found in an archive.
type Audit struct {
	// Process is the charter's CID.
	Process cid.Cid
	// Title is the charter's title.
	Title string
	// JSON is the canonical audit (docs/protocol.md section 8.6): the same
	// bytes as any node holding the same records serves at
	// GET /api/v1/processes/{cid}/audit.
	JSON []byte
}

// VerifyReport is the outcome of Verify.
type VerifyReport struct {
	// Files are the archives read, in order.
	Files []string
	// Network is the federation's network id, from the first archive.
	Network cid.Cid
	// Federation is the genesis name.
	Federation string
	// Import sums what the archives held: blocks, records verified
	// (Stored), duplicates across files (Held), and every failure.
	Import ImportReport
	// Errors are the problems that stopped the reading of a file.
	Errors []string
	// Audits are the audits of every process the archives hold, by charter
	// CID.
	Audits []Audit
}

// OK reports whether everything verified: every block of every file read
// and every record valid.
func (r *VerifyReport) OK() bool { return len(r.Errors) == 0 && len(r.Import.Failures) == 0 }

// Verify checks archives offline. The first block of the first file must
// be the genesis its first root names (docs/protocol.md section 12): it is
// decoded and its founders' signatures checked. Then every record of every
// file, in order, goes through the ingest path of a private observer node
// of that federation, in memory, that accepts and dials no connection: a
// block's hash, its canonical encoding, its signature, its links and its
// author's chain, and its validity in its causal past (membership and the
// governance rules) are checked exactly as a node checks gossip. The
// report lists every failure with its CID and reason, and the canonical
// audit of every process. The error is for what prevents verification
// altogether (no file, no genesis, ctx's end).
func Verify(ctx context.Context, paths []string, log *slog.Logger) (*VerifyReport, error) {
	if len(paths) == 0 {
		return nil, errors.New("opendata: no archive to verify")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rep := &VerifyReport{Files: paths}
	f, err := os.Open(paths[0])
	if err != nil {
		return nil, fmt.Errorf("opendata: %w", err)
	}
	defer f.Close()
	cr, err := NewCARReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", paths[0], err)
	}
	g, err := readGenesis(cr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", paths[0], err)
	}
	rep.Network, _ = g.NetworkID()
	rep.Federation = g.Name

	n, err := offlineNode(ctx, g, log)
	if err != nil {
		return nil, err
	}
	defer n.Close()

	add := func(path string, cr *CARReader, extra int) error {
		ir, err := Import(ctx, n, cr, nil)
		if ir != nil {
			rep.Import.Blocks += ir.Blocks + extra
			rep.Import.Stored += ir.Stored
			rep.Import.Held += ir.Held
			rep.Import.Failures = append(rep.Import.Failures, ir.Failures...)
			rep.Import.Slugs = append(rep.Import.Slugs, ir.Slugs...)
			if rep.Import.Version == 0 {
				rep.Import.Version, rep.Import.Roots = ir.Version, ir.Roots
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %v", path, err))
		}
		return nil
	}
	if err := add(paths[0], cr, 1); err != nil {
		return nil, err
	}
	for _, p := range paths[1:] {
		f, err := os.Open(p)
		if err != nil {
			rep.Errors = append(rep.Errors, err.Error())
			continue
		}
		cr, err := NewCARReader(f)
		if err == nil {
			err = add(p, cr, 0)
		} else {
			rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %v", p, err))
			err = nil
		}
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	slices.Sort(rep.Import.Slugs)
	rep.Import.Slugs = slices.Compact(rep.Import.Slugs)
	for _, slug := range rep.Import.Slugs {
		ps, err := n.Processes(slug)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			a, err := n.Audit(p.CID())
			if err != nil {
				return nil, err
			}
			js, err := a.JSON()
			if err != nil {
				return nil, err
			}
			rep.Audits = append(rep.Audits, Audit{Process: p.CID(), Title: p.Charter().Title, JSON: js})
		}
	}
	slices.SortFunc(rep.Audits, func(a, b Audit) int { return strings.Compare(a.Process.KeyString(), b.Process.KeyString()) })
	return rep, nil
}

// readGenesis reads the first block, which must be the genesis named by
// the first root, and checks it.
func readGenesis(cr *CARReader) (*protocol.Genesis, error) {
	roots := cr.Roots()
	if len(roots) == 0 {
		return nil, fmt.Errorf("%s: the archive has no roots; the first must be the network id", ReasonBadGenesis)
	}
	b, err := cr.Next()
	if err != nil {
		return nil, fmt.Errorf("%s: no first block: %w", ReasonBadGenesis, err)
	}
	if !b.CID.Equals(roots[0]) {
		return nil, fmt.Errorf("%s: the first block is %s, not the genesis %s named by the first root", ReasonBadGenesis, b.CID, roots[0])
	}
	if !b.HashOK() {
		return nil, fmt.Errorf("%s %s: the genesis block's bytes do not hash to the network id", roots[0], ReasonHashMismatch)
	}
	g, err := protocol.DecodeGenesis(b.Data)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", roots[0], ReasonBadGenesis, err)
	}
	if err := g.Verify(); err != nil {
		return nil, fmt.Errorf("%s %s: %w", roots[0], ReasonBadGenesis, err)
	}
	if id, err := g.NetworkID(); err != nil || !id.Equals(roots[0]) {
		return nil, fmt.Errorf("%s %s: the genesis does not re-encode to its CID", roots[0], ReasonBadGenesis)
	}
	return g, nil
}

// OfflineNodeOptions are the node options of a node that takes part in
// no network: it listens on one loopback port (libp2p needs one), refuses
// every connection in and out, and never syncs. Import and verify run
// such a node.
func OfflineNodeOptions() []node.Option {
	return []node.Option{
		node.WithListenAddrs([]string{"/ip4/127.0.0.1/tcp/0"}),
		node.WithConnectionGater(isolated{}),
		node.WithSyncInterval(0),
	}
}

// offlineNode starts an in-memory offline observer of g's federation.
func offlineNode(ctx context.Context, g *protocol.Genesis, log *slog.Logger) (*node.Node, error) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("opendata: %w", err)
	}
	n, err := node.New(ctx, append(OfflineNodeOptions(),
		node.WithIdentity(key),
		node.WithInMemory(),
		node.WithGenesis(g),
		node.WithObserver(true),
		node.WithLogger(log),
	)...)
	if err != nil {
		return nil, fmt.Errorf("opendata: start the verifying node: %w", err)
	}
	return n, nil
}

// isolated is a connection gater that refuses every connection.
type isolated struct{}

func (isolated) InterceptPeerDial(peer.ID) bool                      { return false }
func (isolated) InterceptAddrDial(peer.ID, multiaddr.Multiaddr) bool { return false }
func (isolated) InterceptAccept(network.ConnMultiaddrs) bool         { return false }
func (isolated) InterceptSecured(network.Direction, peer.ID, network.ConnMultiaddrs) bool {
	return false
}
func (isolated) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return false, 0 }

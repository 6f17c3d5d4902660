package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/config"
	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// installing is a verified genesis that init --genesis is to install.
type installing struct {
	g    *protocol.Genesis
	data []byte // canonical encoding of g
	id   cid.Cid
}

// prepareGenesis reads the genesis file path for init --genesis and
// verifies it fully: an incomplete genesis is refused with an error naming
// the founders who have not signed.
func prepareGenesis(path string) (*installing, error) {
	g, err := readGenesis(path)
	if err != nil {
		return nil, err
	}
	if err := g.Verify(); err != nil {
		if errors.Is(err, protocol.ErrGenesisIncomplete) {
			return nil, fmt.Errorf("init --genesis: %s cannot be installed until every founder has signed it: %w", path, err)
		}
		return nil, fmt.Errorf("init --genesis: %s: %w", path, err)
	}
	data, err := g.Encode()
	if err != nil {
		return nil, fmt.Errorf("init --genesis: %w", err)
	}
	id, err := g.NetworkID()
	if err != nil {
		return nil, fmt.Errorf("init --genesis: %w", err)
	}
	return &installing{g: g, data: data, id: id}, nil
}

// install installs the genesis in dd and prints what it did to w.
func (in *installing) install(w io.Writer, dd config.DataDir, next string) error {
	already, err := installGenesis(dd, in.g, in.data)
	if err != nil {
		return err
	}
	if already {
		fmt.Fprintf(w, "genesis already installed: %s\n", dd.GenesisPath())
	} else {
		fmt.Fprintf(w, "installed genesis: %s\n", dd.GenesisPath())
	}
	fmt.Fprintf(w, "federation: %s\n", in.g.Name)
	fmt.Fprintf(w, "network id: %s\n", in.id)
	founder := false
	if key, err := config.LoadIdentity(dd.KeyPath()); err == nil {
		if raw, err := key.GetPublic().Raw(); err == nil {
			founder = isFounder(in.g, raw)
		}
	}
	if founder {
		fmt.Fprintln(w, "this node is a founder: it is a member from the start")
	} else {
		fmt.Fprintln(w, "this node is not a founder: it joins as an observer or applies for membership (member.apply)")
	}
	fmt.Fprintf(w, "next: %s\n", next)
	return nil
}

// installGenesis copies the verified genesis g (encoded as data) to the
// data directory's genesis path. It refuses to replace a different genesis
// already there. It reports whether the file was already installed.
func installGenesis(dd config.DataDir, g *protocol.Genesis, data []byte) (already bool, err error) {
	dest := dd.GenesisPath()
	old, err := os.ReadFile(dest)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return false, fmt.Errorf("init --genesis: %w", err)
	case bytes.Equal(old, data):
		return true, nil
	default:
		newID, err := g.NetworkID()
		if err != nil {
			return false, fmt.Errorf("init --genesis: %w", err)
		}
		oldG, err := protocol.DecodeGenesis(old)
		if err != nil {
			return false, fmt.Errorf("init --genesis: %s exists but is not a valid genesis (%w); not replacing it: move it away first", dest, err)
		}
		oldID, err := oldG.NetworkID()
		if err != nil {
			return false, fmt.Errorf("init --genesis: %w", err)
		}
		msg := fmt.Sprintf("init --genesis: %s already holds the genesis of network %s (%q), not of network %s (%q); refusing to replace it",
			dest, oldID, oldG.Name, newID, g.Name)
		if protocol.IsDevGenesis(oldG) {
			msg += "\nit is the one-member dev federation this node founded when it was started without a genesis;" +
				" to join the new federation use a new data directory, or discard the dev federation by removing " +
				dest + " and " + dd.StorePath()
		} else {
			msg += "\na data directory belongs to one federation: use a new data directory to join another"
		}
		return false, errors.New(msg)
	}
	if err := writeFileAtomic(dest, data, genesisMode); err != nil {
		return false, fmt.Errorf("init --genesis: %w", err)
	}
	return false, nil
}

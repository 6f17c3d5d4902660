package cli

import (
	"context"

	"github.com/clearinghouse-net/clearinghouse/config"
	"github.com/clearinghouse-net/clearinghouse/node"
)

// startNode starts a node from p through the node package.
func startNode(ctx context.Context, p nodeParams) (runningNode, error) {
	cfg := p.config
	n, err := node.New(ctx,
		node.WithIdentity(p.identity),
		// The node opens the store at dir/store and loads or creates the
		// genesis at dir/genesis.cbor: config.DataDir's StorePath and
		// GenesisPath.
		node.WithDataDir(p.dataDir.Path),
		node.WithListenAddrs(cfg.Network.Listen),
		node.WithBootstrap(cfg.Network.Bootstrap),
		node.WithObserver(cfg.Node.Role == config.RoleObserver),
		node.WithFollow(cfg.Topics.Follow),
		node.WithLogger(p.logger),
		node.WithConnLimits(cfg.Network.ConnLow, cfg.Network.ConnHigh),
		node.WithOrganisation(cfg.Node.Name),
		node.WithRecoverChain(p.recoverChain),
	)
	if err != nil {
		return nil, err // not n: a nil *node.Node in an interface is not nil
	}
	return n, nil
}

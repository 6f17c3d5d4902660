package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"

	"github.com/clearinghouse-net/clearinghouse/config"
	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/node/api"
)

// startNode starts a node from p through the node package, and its HTTP
// API on api.listen.
func startNode(ctx context.Context, p nodeParams) (_ runningNode, err error) {
	cfg := p.config
	// The API's port first: a port another process holds is reported
	// before the node starts (and logs that it did).
	l, err := net.Listen("tcp", cfg.API.Listen)
	if err != nil {
		return nil, fmt.Errorf("api.listen %s (in %s): %w; is another node running on this machine? "+
			"give this one another api.listen (or run --api-listen HOST:PORT)", cfg.API.Listen, p.dataDir.ConfigPath(), unwrapOpError(err))
	}
	defer func() {
		if err != nil {
			_ = l.Close()
		}
	}()
	var blocked [][]byte
	for _, k := range cfg.Comments.Blocked {
		key, err := config.ParseRelayKey(k) // validated with the rest of the configuration
		if err != nil {
			return nil, fmt.Errorf("config: public.blocked: %w", err)
		}
		blocked = append(blocked, key)
	}
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
		node.WithBlockedRelays(blocked),
		node.WithLogger(p.logger),
		node.WithConnLimits(cfg.Network.ConnLow, cfg.Network.ConnHigh),
		node.WithOrganisation(cfg.Node.Name),
		node.WithRecoverChain(p.recoverChain),
		node.WithSyncInterval(cfg.Sync.Interval.Std()),
		node.WithPending(node.PendingLimits{Records: cfg.Pending.Records, Bytes: node.DefaultPendingBytes,
			PerPeer: cfg.Pending.PerPeer, PerPeerStrangers: cfg.Pending.PerPeerStrangers,
			PerAuthor: cfg.Pending.PerAuthor, TTL: cfg.Pending.TTL.Std()}),
		node.WithStoreCache(int64(cfg.Store.CacheMB)<<20),
		node.WithAnnounce(cfg.Network.Announce),
		node.WithReachability(reachability(cfg.Network.Reachability)),
		node.WithRelayService(cfg.Network.RelayService),
		node.WithNATPortMap(cfg.Network.NATPortMap),
		node.WithDHT(cfg.Network.DHT),
		node.WithMDNS(cfg.Network.MDNS),
		node.WithWantPeers(cfg.Network.WantPeers),
		node.WithResourceLimits(int64(cfg.Network.ResourceMemoryMB)<<20, cfg.Network.ResourceFDs),
	)
	if err != nil {
		return nil, err // not n: a nil *node.Node in an interface is not nil
	}
	defer func() {
		if err != nil {
			_ = n.Close()
		}
	}()

	// The API, after the node it serves. An observer has no write routes
	// and needs no token.
	aopts := []api.Option{api.WithLogger(p.logger.With("component", "api")), api.WithMetrics(cfg.Metrics.Enabled)}
	if !n.IsObserver() {
		tok, err := config.LoadToken(p.dataDir.TokenPath())
		if err != nil {
			return nil, err
		}
		aopts = append(aopts, api.WithToken(tok))
	}
	srv, err := api.New(n, aopts...)
	if err != nil {
		return nil, err
	}
	wn := &nodeWithAPI{Node: n, api: srv, addr: l.Addr().String()}
	wn.wg.Go(func() {
		if err := srv.Serve(context.Background(), l); err != nil {
			p.logger.Error("api server stopped", "err", err)
		}
	})
	return wn, nil
}

// unwrapOpError returns the cause of a *net.OpError ("address already in
// use"), whose own message repeats the address.
func unwrapOpError(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		var se *os.SyscallError
		if errors.As(oe.Err, &se) {
			return se.Err
		}
		return oe.Err
	}
	return err
}

// nodeWithAPI is a running node with its HTTP API.
type nodeWithAPI struct {
	*node.Node
	api  *api.Server
	addr string
	wg   sync.WaitGroup // the API's Serve
}

// APIAddr returns the host:port the API listens on.
func (n *nodeWithAPI) APIAddr() string { return n.addr }

// Close stops the API, then the node.
func (n *nodeWithAPI) Close() error {
	err := n.api.Close()
	n.wg.Wait()
	return errors.Join(err, n.Node.Close())
}

// reachability maps network.reachability to node.WithReachability.
func reachability(s string) string {
	if s == "auto" {
		return ""
	}
	return s
}

package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	p2pprotocol "github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// dhtPrefix returns the protocol prefix of a federation's private DHT:
// "/clearinghouse/<network id>". Its protocol is dhtProtocol; a federation's
// DHT never answers, or asks, a peer of another federation or of the public
// IPFS DHT.
func dhtPrefix(network cid.Cid) p2pprotocol.ID {
	return p2pprotocol.ID("/clearinghouse/" + network.String())
}

// dhtProtocol returns the protocol id of a federation's private DHT.
func dhtProtocol(network cid.Cid) p2pprotocol.ID {
	return dhtPrefix(network) + "/kad/1.0.0"
}

// protocolID converts a protocol name.
func protocolID(s string) p2pprotocol.ID { return p2pprotocol.ID(s) }

// RendezvousKey returns the DHT rendezvous key on which the nodes of a
// federation advertise themselves and find each other: for topic "" the
// federation's own key, "clearinghouse/<network id>", and for a record
// topic, "clearinghouse/<network id>/<topic>" (the nodes following that
// issue). The DHT stores provider records under the CID of the key.
func RendezvousKey(network cid.Cid, topic string) string {
	if topic == "" {
		return "clearinghouse/" + network.String()
	}
	return "clearinghouse/" + network.String() + "/" + topic
}

// discovery finds and keeps peers: it dials the bootstrap peers, with
// backoff, for as long as the node has fewer peers than it wants; it
// advertises the node on the federation's and its followed topics'
// rendezvous keys in the private DHT and dials the peers it finds there;
// and, if enabled, it finds peers on the LAN by mDNS. One goroutine (run)
// owns all of it but the DHT and mDNS services.
type discovery struct {
	n    *Node
	dht  *dht.IpfsDHT // nil without WithDHT
	rd   *drouting.RoutingDiscovery
	mdns interface{ Close() error }
	// advertised maps a rendezvous key to when its advertisement expires.
	advertised map[string]time.Time
	// hook, if set by a test before New returns, is called after each
	// dial of a bootstrap peer.
	hook func(peer.ID, error)

	mu       sync.Mutex // guards attempts
	attempts map[peer.ID]int
}

// newDiscovery starts the DHT and mDNS of a node whose host is running.
func newDiscovery(n *Node) (*discovery, error) {
	o := n.opts
	d := &discovery{n: n, advertised: map[string]time.Time{}, attempts: map[peer.ID]int{}, hook: o.bootstrapHook}
	if o.dht {
		mode := dht.ModeAuto
		if o.reachability == ReachabilityPublic {
			mode = dht.ModeServer
		}
		kad, err := dht.New(n.host,
			dht.ProtocolPrefix(dhtPrefix(n.network)),
			dht.Mode(mode),
			// Rendezvous needs provider records only; no values, no
			// IPFS validators.
			dht.DisableValues(),
			dht.BootstrapPeers(o.bootstrap...),
		)
		if err != nil {
			return nil, fmt.Errorf("node: dht: %w", err)
		}
		d.dht = kad
		d.rd = drouting.NewRoutingDiscovery(kad)
	}
	if o.mdns {
		svc := mdns.NewMdnsService(n.host, mdnsService(n.network), mdnsNotifee{d})
		if err := svc.Start(); err != nil {
			if d.dht != nil {
				_ = d.dht.Close()
			}
			return nil, fmt.Errorf("node: mdns: %w", err)
		}
		d.mdns = svc
	}
	return d, nil
}

// mdnsService returns the DNS-SD service name a federation's nodes announce
// themselves under by mDNS: "_ch-<the network id's last 8 characters>._udp"
// (a DNS-SD service name is at most 15 characters). Nodes of two
// federations on one LAN that share it connect but never exchange records
// (their topics and protocols differ).
func mdnsService(network cid.Cid) string {
	s := network.String()
	return "_ch-" + s[len(s)-8:] + "._udp"
}

// mdnsNotifee dials the peers mDNS finds on the LAN.
type mdnsNotifee struct{ d *discovery }

// HandlePeerFound is called by the mDNS service, from its own goroutine,
// for each peer found; it dials in the background.
func (m mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	n := m.d.n
	if ai.ID == n.host.ID() || n.ctx.Err() != nil {
		return
	}
	n.wg.Go(func() {
		ctx, cancel := context.WithTimeout(n.ctx, dialTimeout)
		defer cancel()
		if err := n.host.Connect(ctx, ai); err != nil {
			n.log.Debug("mdns peer unreachable", "peer", ai.ID, "err", err)
		}
	})
}

// close stops the DHT and mDNS.
func (d *discovery) close() error {
	var errs []error
	if d.mdns != nil {
		errs = append(errs, d.mdns.Close())
	}
	if d.dht != nil {
		errs = append(errs, d.dht.Close())
	}
	return errors.Join(errs...)
}

// peerChanged wakes the discovery loop; it never blocks.
func (n *Node) peerChanged() {
	select {
	case n.peerWake <- struct{}{}:
	default:
	}
}

// dialTimeout bounds one dial of a bootstrap or discovered peer.
const dialTimeout = 15 * time.Second

// connected returns the number of peers the node has a connection to.
func (d *discovery) connected() int { return len(d.n.host.Network().Peers()) }

// run is the discovery loop. While the node has fewer peers than it wants
// it works in rounds separated by a backoff that doubles from the minimum
// to the maximum; once it has enough, it only refreshes its
// advertisements and looks for the followers of its topics every
// DefaultDiscoveryInterval. A drop below the wanted count starts rounds
// again at once, from the minimum backoff.
func (d *discovery) run(ctx context.Context) {
	o := d.n.opts
	backoff := o.bootMin
	timer := time.NewTimer(0)
	defer timer.Stop()
	satisfied := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.n.peerWake:
			enough := d.connected() >= o.wantPeers
			if enough || !satisfied {
				continue // nothing new: the timer is running
			}
			// Lost peers: start again at once.
			satisfied, backoff = false, o.bootMin
		case <-timer.C:
		}
		d.round(ctx)
		if ctx.Err() != nil {
			return
		}
		satisfied = d.connected() >= o.wantPeers
		next := DefaultDiscoveryInterval
		if !satisfied {
			next = backoff
			backoff = min(2*backoff, o.bootMax)
		} else {
			backoff = o.bootMin
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// round is one round of the discovery loop: dial the bootstrap peers not
// connected (only while below the wanted count), refresh the DHT
// advertisements, and dial the peers found on the rendezvous keys.
func (d *discovery) round(ctx context.Context) {
	n := d.n
	n.protectMembers()
	if d.connected() < n.opts.wantPeers {
		d.dialBootstrap(ctx)
	}
	if d.dht == nil {
		return
	}
	keys := []string{RendezvousKey(n.network, "")}
	for _, t := range n.Topics() {
		if protocol.ClassOf(t) == protocol.ClassIssue {
			keys = append(keys, RendezvousKey(n.network, t))
		}
	}
	if d.dht.RoutingTable().Size() == 0 {
		return // nobody to ask or tell yet
	}
	now := time.Now()
	for _, k := range keys {
		if now.Before(d.advertised[k]) {
			continue
		}
		actx, cancel := context.WithTimeout(ctx, dialTimeout)
		ttl, err := d.rd.Advertise(actx, k)
		cancel()
		if err != nil {
			n.log.Debug("dht advertise failed", "key", k, "err", err)
			continue
		}
		// Renew at half the TTL.
		d.advertised[k] = now.Add(ttl / 2)
	}
	for _, k := range keys {
		d.dialFound(ctx, k)
	}
}

// dialBootstrap dials, in parallel, each bootstrap peer the node is not
// connected to, and waits for the dials.
func (d *discovery) dialBootstrap(ctx context.Context) {
	n := d.n
	var wg sync.WaitGroup
	for _, ai := range n.opts.bootstrap {
		if n.host.Network().Connectedness(ai.ID) == network.Connected {
			continue
		}
		wg.Go(func() {
			// This loop paces the retries; the swarm's own dial backoff
			// (seconds, growing) would refuse a dial of a peer that has
			// just come back.
			if sw, ok := n.host.Network().(*swarm.Swarm); ok {
				sw.Backoff().Clear(ai.ID)
			}
			dctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			err := n.host.Connect(dctx, ai)
			d.mu.Lock()
			d.attempts[ai.ID]++
			attempt := d.attempts[ai.ID]
			if err == nil {
				d.attempts[ai.ID] = 0
			}
			d.mu.Unlock()
			n.metrics.bootstrapDial(err)
			switch {
			case err == nil:
				n.log.Info("connected to bootstrap peer", "peer", ai.ID, "attempt", attempt)
			case attempt == 1:
				n.log.Warn("bootstrap peer unreachable; retrying with backoff", "peer", ai.ID, "err", err)
			default:
				n.log.Debug("bootstrap peer still unreachable", "peer", ai.ID, "attempt", attempt, "err", err)
			}
			if d.hook != nil {
				d.hook(ai.ID, err)
			}
		})
	}
	wg.Wait()
}

// dialFound dials the peers the DHT knows as providers of a rendezvous
// key, up to DefaultDiscoveryDials of them not yet connected.
func (d *discovery) dialFound(ctx context.Context, key string) {
	n := d.n
	fctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	found, err := d.rd.FindPeers(fctx, key)
	if err != nil {
		n.log.Debug("dht find peers failed", "key", key, "err", err)
		return
	}
	var wg sync.WaitGroup
	dials := 0
	for ai := range found {
		if ai.ID == n.host.ID() || n.host.Network().Connectedness(ai.ID) == network.Connected || dials == DefaultDiscoveryDials {
			continue
		}
		dials++
		wg.Go(func() {
			dctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			if err := n.host.Connect(dctx, ai); err != nil {
				n.log.Debug("discovered peer unreachable", "peer", ai.ID, "key", key, "err", err)
				return
			}
			n.log.Debug("connected to discovered peer", "peer", ai.ID, "key", key)
		})
	}
	wg.Wait()
}

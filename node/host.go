package node

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// Reachability of a node from the internet, as forced by WithReachability
// or learnt from AutoNAT.
const (
	// ReachabilityUnknown means AutoNAT has not decided yet (or the node
	// has too few peers to ask).
	ReachabilityUnknown = "unknown"
	// ReachabilityPublic means other peers can dial the node directly.
	ReachabilityPublic = "public"
	// ReachabilityPrivate means the node is behind a NAT or firewall: it
	// reserves relay slots and upgrades relayed connections by hole
	// punching.
	ReachabilityPrivate = "private"
)

// memberTag is the connection manager tag of a member's connections.
const memberTag = "clearinghouse-member"

// hostNet is the part of the node about the libp2p host: the connection
// manager, what the node learnt about its reachability, and the peers it
// protects.
type hostNet struct {
	cm *connmgr.BasicConnMgr
	// emitter publishes AutoNAT v2's verdict as the reachability event
	// that the DHT, the relay service and AutoRelay follow (only
	// AutoNAT v1 emits it otherwise).
	emitter event.Emitter

	mu           sync.Mutex // guards reachability and reachableV2
	reachability string     // from the reachability event (AutoNAT v1, or v2's verdict re-emitted), or forced
	reachableV2  int        // addresses AutoNAT v2 confirmed reachable
}

// relayResources are the limits of the circuit relay v2 service a publicly
// reachable node offers. A relayed connection only has to carry the DCUtR
// exchange that upgrades it to a direct one (and, failing that, identify
// and small sync sessions); bulk data never flows through a relay for long.
func relayResources() relayv2.Resources {
	r := relayv2.DefaultResources()
	r.Limit = &relayv2.RelayLimit{Duration: DefaultRelayDuration, Data: DefaultRelayData}
	r.ReservationTTL = time.Hour
	r.MaxReservations = DefaultRelayReservations
	r.MaxCircuits = DefaultRelayCircuits
	r.MaxReservationsPerIP = 8
	r.MaxReservationsPerASN = 32
	return r
}

// resourceLimits returns the resource manager's limits: libp2p's scaling
// defaults for the memory and file descriptors given, plus explicit limits
// on the node's own protocols (sync, gossipsub, the DHT) so that no one of
// them can take the whole budget.
func resourceLimits(network cid.Cid, memory int64, fds int) rcmgr.ConcreteLimitConfig {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	// Sync: a handful of sessions per peer, each with bounded buffers.
	limits.AddProtocolLimit(protocol.SyncProtocol(network),
		rcmgr.BaseLimit{StreamsInbound: 256, StreamsOutbound: 256, Streams: 512, Memory: 64 << 20},
		rcmgr.BaseLimitIncrease{StreamsInbound: 64, StreamsOutbound: 64, Streams: 128, Memory: 16 << 20})
	limits.AddProtocolPeerLimit(protocol.SyncProtocol(network),
		rcmgr.BaseLimit{StreamsInbound: 8, StreamsOutbound: 8, Streams: 16, Memory: 8 << 20},
		rcmgr.BaseLimitIncrease{})
	// The sync streams also join the service scope syncService (sync.go),
	// with the same limits, so the service's view of them is bounded too.
	limits.AddServiceLimit(syncService,
		rcmgr.BaseLimit{StreamsInbound: 256, StreamsOutbound: 256, Streams: 512, Memory: 64 << 20},
		rcmgr.BaseLimitIncrease{StreamsInbound: 64, StreamsOutbound: 64, Streams: 128, Memory: 16 << 20})
	limits.AddServicePeerLimit(syncService,
		rcmgr.BaseLimit{StreamsInbound: 8, StreamsOutbound: 8, Streams: 16, Memory: 8 << 20},
		rcmgr.BaseLimitIncrease{})
	// Gossipsub keeps one long-lived stream each way per peer.
	for _, p := range []string{"/meshsub/1.2.0", "/meshsub/1.1.0", "/meshsub/1.0.0"} {
		limits.AddProtocolPeerLimit(protocolID(p),
			rcmgr.BaseLimit{StreamsInbound: 4, StreamsOutbound: 4, Streams: 8, Memory: 16 << 20},
			rcmgr.BaseLimitIncrease{})
	}
	limits.AddProtocolPeerLimit(dhtProtocol(network),
		rcmgr.BaseLimit{StreamsInbound: 16, StreamsOutbound: 16, Streams: 32, Memory: 4 << 20},
		rcmgr.BaseLimitIncrease{})
	return limits.Scale(memory, fds)
}

// newHost starts the libp2p host: TCP and QUIC, the connection manager,
// the resource manager, AutoNAT (v1 and v2), the relay service, AutoRelay
// and DCUtR hole punching, and the announce addresses.
func (n *Node) newHost(reg prometheus.Registerer) (host.Host, error) {
	o := n.opts
	cm, err := connmgr.NewConnManager(o.connLow, o.connHigh, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("node: connection manager: %w", err)
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(resourceLimits(n.network, o.rcMemory, o.rcFDs)))
	if err != nil {
		return nil, fmt.Errorf("node: resource manager: %w", err)
	}
	n.net = &hostNet{cm: cm, reachability: ReachabilityUnknown}
	hopts := []libp2p.Option{
		libp2p.Identity(o.identity),
		libp2p.ListenAddrs(o.listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.ConnectionManager(cm),
		libp2p.ResourceManager(rm),
		libp2p.PrometheusRegisterer(reg),
		// Relayed connections need the circuit transport; a node that
		// reserves slots or is dialled through a relay uses it.
		libp2p.EnableRelay(),
	}
	if o.autoNAT {
		hopts = append(hopts, libp2p.EnableAutoNATv2(), libp2p.EnableNATService())
	}
	if len(o.announce) > 0 {
		announce := o.announce
		hopts = append(hopts, libp2p.AddrsFactory(func(addrs []multiaddr.Multiaddr) []multiaddr.Multiaddr {
			// The announced addresses replace the direct ones; relay
			// addresses (from reservations) stay.
			out := slices.Clone(announce)
			for _, a := range addrs {
				if isRelayed(a) {
					out = append(out, a)
				}
			}
			return out
		}))
	}
	switch o.reachability {
	case ReachabilityPublic:
		hopts = append(hopts, libp2p.ForceReachabilityPublic())
		n.net.reachability = ReachabilityPublic
	case ReachabilityPrivate:
		hopts = append(hopts, libp2p.ForceReachabilityPrivate())
		n.net.reachability = ReachabilityPrivate
	}
	if o.relayService {
		// libp2p runs the service only while the node is reachable.
		hopts = append(hopts, libp2p.EnableRelayService(relayv2.WithResources(relayResources())))
	}
	if o.autoRelay {
		hopts = append(hopts, libp2p.EnableAutoRelayWithPeerSource(n.relayCandidates,
			autorelay.WithMinCandidates(1),
			autorelay.WithNumRelays(DefaultRelayReservationsWanted),
			autorelay.WithBootDelay(o.relayBootDelay),
			autorelay.WithMinInterval(o.relayBootDelay),
			autorelay.WithBackoff(time.Minute),
		))
		hopts = append(hopts, libp2p.EnableHolePunching())
	}
	if o.natPortMap {
		hopts = append(hopts, libp2p.NATPortMap())
	}
	if o.gater != nil {
		hopts = append(hopts, libp2p.ConnectionGater(o.gater))
	}
	// Options of WithHostOptions come last, so they win (the benchmark and
	// the simulated network give their own transports and addresses).
	hopts = append(hopts, o.hostOpts...)
	h, err := libp2p.New(hopts...)
	if err != nil {
		return nil, fmt.Errorf("node: start libp2p host: %w", err)
	}
	return h, nil
}

// startHostEvents follows the host's reachability (AutoNAT), wakes the
// discovery loop when peers come and go, and protects the connections of
// members from the connection manager. Its goroutine runs until Close.
func (n *Node) startHostEvents() error {
	sub, err := n.host.EventBus().Subscribe([]any{
		new(event.EvtLocalReachabilityChanged),
		new(event.EvtHostReachableAddrsChanged),
		new(event.EvtPeerConnectednessChanged),
	})
	if err != nil {
		return fmt.Errorf("node: subscribe to host events: %w", err)
	}
	if n.opts.reachability == "" {
		if n.net.emitter, err = n.host.EventBus().Emitter(new(event.EvtLocalReachabilityChanged), eventbus.Stateful); err != nil {
			sub.Close()
			return fmt.Errorf("node: reachability emitter: %w", err)
		}
	}
	// Members' connections are protected as they are added, before the
	// host's connectedness event, so nothing can trim them in between.
	// The notifiee is called synchronously by the swarm: it must not
	// block (isMemberPeer reads the current member set).
	n.host.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) { n.protectIfMember(c.RemotePeer()) },
	})
	// Peers connected before the notifiee.
	for _, p := range n.host.Network().Peers() {
		n.protectIfMember(p)
	}
	n.wg.Go(func() {
		defer sub.Close()
		if n.net.emitter != nil {
			defer n.net.emitter.Close()
		}
		for {
			select {
			case <-n.ctx.Done():
				return
			case ev, ok := <-sub.Out():
				if !ok {
					return
				}
				n.hostEvent(ev)
			}
		}
	})
	return nil
}

// hostEvent handles one event of startHostEvents.
func (n *Node) hostEvent(ev any) {
	switch e := ev.(type) {
	case event.EvtLocalReachabilityChanged:
		if n.opts.reachability != "" {
			return // forced
		}
		r := ReachabilityUnknown
		switch e.Reachability {
		case network.ReachabilityPublic:
			r = ReachabilityPublic
		case network.ReachabilityPrivate:
			r = ReachabilityPrivate
		}
		n.net.mu.Lock()
		n.net.reachability = r
		n.net.mu.Unlock()
		n.log.Info("reachability changed", "reachability", r)
	case event.EvtHostReachableAddrsChanged:
		n.net.mu.Lock()
		n.net.reachableV2 = len(e.Reachable)
		n.net.mu.Unlock()
		n.log.Debug("reachable addresses changed", "reachable", e.Reachable, "unreachable", e.Unreachable)
		// AutoNAT v2 confirmed or refuted addresses: that is the node's
		// reachability, for the components that follow the v1 event.
		r := network.ReachabilityUnknown
		switch {
		case len(e.Reachable) > 0:
			r = network.ReachabilityPublic
		case len(e.Unreachable) > 0:
			r = network.ReachabilityPrivate
		}
		if n.net.emitter != nil && r != network.ReachabilityUnknown {
			if err := n.net.emitter.Emit(event.EvtLocalReachabilityChanged{Reachability: r}); err != nil {
				n.log.Warn("reachability event not emitted", "err", err)
			}
		}
	case event.EvtPeerConnectednessChanged:
		n.peerChanged()
	}
}

// protectIfMember protects the connections to p from the connection
// manager's trimming if p's key is a member's current key.
func (n *Node) protectIfMember(p peer.ID) {
	if n.isMemberPeer(p) {
		n.net.cm.Protect(p, memberTag)
	}
}

// protectMembers protects the connections of every connected member, for
// members admitted after they connected.
func (n *Node) protectMembers() {
	for _, p := range n.host.Network().Peers() {
		n.protectIfMember(p)
	}
}

// isMemberPeer reports whether p's key is a current key of a member of the
// federation.
func (n *Node) isMemberPeer(p peer.ID) bool {
	pk, err := p.ExtractPublicKey()
	if err != nil {
		return false
	}
	raw, err := pk.Raw()
	if err != nil {
		return false
	}
	for _, m := range n.Members() {
		if m.Removed == nil && string(m.Key) == string(raw) {
			return true
		}
	}
	return false
}

// relayCandidates is AutoRelay's peer source: the connected peers, which
// AutoRelay asks for a relay reservation if they speak the relay hop
// protocol (public members do).
func (n *Node) relayCandidates(ctx context.Context, num int) <-chan peer.AddrInfo {
	peers := n.host.Network().Peers()
	out := make(chan peer.AddrInfo, len(peers))
	defer close(out)
	for _, p := range peers {
		if len(out) == num {
			break
		}
		ai := n.host.Peerstore().PeerInfo(p)
		ai.Addrs = slices.DeleteFunc(ai.Addrs, isRelayed)
		if len(ai.Addrs) > 0 {
			out <- ai
		}
	}
	return out
}

// isRelayed reports whether a is a circuit relay address.
func isRelayed(a multiaddr.Multiaddr) bool {
	_, err := a.ValueForProtocol(multiaddr.P_CIRCUIT)
	return err == nil
}

// PeerConn describes the node's connections to one peer.
type PeerConn struct {
	// ID is the peer's id.
	ID peer.ID
	// Addr is the remote address of the peer's best connection (a direct
	// one if there is one).
	Addr multiaddr.Multiaddr
	// Direct reports whether the node has a direct (not relayed)
	// connection to the peer.
	Direct bool
	// Member reports whether the peer's key is a member's current key.
	Member bool
}

// NetStatus is what the node knows about its place on the network.
type NetStatus struct {
	// Reachability is ReachabilityPublic, ReachabilityPrivate or
	// ReachabilityUnknown.
	Reachability string
	// Addrs are the addresses other peers can dial, each ending in
	// /p2p/<peer id>: the announced ones if any, else the listen addresses
	// with wildcards expanded and the ports bound, plus the relay
	// addresses of its reservations.
	Addrs []multiaddr.Multiaddr
	// Relays are the relays that hold a reservation for the node.
	Relays []peer.ID
	// Peers are the connected peers, sorted by id.
	Peers []PeerConn
}

// NetStatus returns the node's reachability, dialable addresses, relay
// reservations and, for each connected peer, whether the connection is
// direct or relayed.
func (n *Node) NetStatus() NetStatus {
	n.net.mu.Lock()
	r := n.net.reachability
	if r != ReachabilityPublic && n.net.reachableV2 > 0 && n.opts.reachability == "" {
		r = ReachabilityPublic
	}
	n.net.mu.Unlock()
	st := NetStatus{Reachability: r, Addrs: n.Addrs()}
	for _, a := range n.host.Addrs() {
		if !isRelayed(a) {
			continue
		}
		// /ip4/.../p2p/<relay>/p2p-circuit
		if v, err := a.ValueForProtocol(multiaddr.P_P2P); err == nil {
			if id, err := peer.Decode(v); err == nil && !slices.Contains(st.Relays, id) {
				st.Relays = append(st.Relays, id)
			}
		}
	}
	for _, p := range n.host.Network().Peers() {
		pc := PeerConn{ID: p, Member: n.isMemberPeer(p)}
		for _, c := range n.host.Network().ConnsToPeer(p) {
			direct := !isRelayed(c.RemoteMultiaddr())
			if pc.Addr == nil || (direct && !pc.Direct) {
				pc.Addr, pc.Direct = c.RemoteMultiaddr(), direct
			}
		}
		st.Peers = append(st.Peers, pc)
	}
	slices.SortFunc(st.Peers, func(a, b PeerConn) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return st
}

package cli

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/clearinghouse-net/clearinghouse/config"
)

// dialableAddrs returns the addresses another node can dial this one on,
// as the configuration says, each ending in /p2p/<id>: network.announce if
// set; otherwise network.listen with each wildcard IP replaced by the
// addresses of this machine's interfaces. A listen address with port 0
// gets its port only when the node starts, so it is left out, and a note
// says so (the running node's `status` shows the bound ports).
func dialableAddrs(c config.Network, id peer.ID) (addrs, notes []string, err error) {
	if len(c.Announce) > 0 {
		addrs, err = p2pAddrs(c.Announce, id)
		return addrs, nil, err
	}
	listen := c.Listen
	if len(listen) == 0 { // the documented meaning of an empty list
		listen = config.DefaultListenAddrs()
	}
	ifaces, ierr := manet.InterfaceMultiaddrs()
	var out []string
	for _, s := range listen {
		a, err := multiaddr.NewMultiaddr(s)
		if err != nil {
			return nil, nil, fmt.Errorf("listen address %q: %w", s, err)
		}
		if portZero(a) {
			notes = append(notes, fmt.Sprintf("%s: the port is chosen when the node starts; see `clearinghouse status`", s))
			continue
		}
		if !manet.IsIPUnspecified(a) {
			out = append(out, s)
			continue
		}
		if ierr != nil {
			return nil, nil, fmt.Errorf("interface addresses for %s: %w", s, ierr)
		}
		resolved, err := manet.ResolveUnspecifiedAddress(a, ifaces)
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s: no interface address to expand it to: %v", s, err))
			continue
		}
		for _, r := range resolved {
			if manet.IsIP6LinkLocal(r) {
				continue // needs a zone; nobody else can dial it
			}
			out = append(out, r.String())
		}
	}
	addrs, err = p2pAddrs(out, id)
	return addrs, notes, err
}

// portZero reports whether a has a TCP or UDP port 0.
func portZero(a multiaddr.Multiaddr) bool {
	for _, p := range []int{multiaddr.P_TCP, multiaddr.P_UDP} {
		if v, err := a.ValueForProtocol(p); err == nil && v == "0" {
			return true
		}
	}
	return false
}

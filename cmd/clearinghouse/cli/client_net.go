package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/clearinghouse-net/clearinghouse/node/api"
)

// printNet prints the network part of the status: reachability, relay
// reservations and, per peer, whether the connection is direct or relayed.
func printNet(w io.Writer, s api.StatusView) {
	reach := s.Net.Reachability
	if reach == "" {
		reach = "unknown"
	}
	fmt.Fprintf(w, "reachability: %s\n", reach)
	relays := "none"
	if len(s.Net.Relays) > 0 {
		relays = strings.Join(s.Net.Relays, ", ")
	}
	fmt.Fprintf(w, "relays:      %s\n", relays)
	for _, p := range s.Net.Peers {
		role := ""
		if p.Member {
			role = " member"
		}
		fmt.Fprintf(w, "peer:        %s %s%s %s\n", p.ID, p.Conn, role, p.Addr)
	}
}

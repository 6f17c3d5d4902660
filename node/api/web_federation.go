package api

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
)

// federationView is the federation page's data.
type federationView struct {
	Regions         []string
	Rows            []fedRow
	Members         []webParty
	PeerID, Network string
	Observer        bool
	Org             string
	Records         uint64
	Topics          []string
	Peers           []fedPeer
	Sync            []SyncView
}

// fedRow is one group's members by region.
type fedRow struct {
	Group string
	Cells [][]string // organisations, by region
	Total int
}

type fedPeer struct {
	ID    string
	Addrs []string
}

func (s *Server) webFederation(w http.ResponseWriter, r *http.Request) {
	n := s.n
	g := n.Genesis()
	v := federationView{PeerID: n.ID().String(), Network: n.NetworkID().String(), Observer: n.IsObserver(),
		Topics: n.Topics()}
	if st, err := n.Store().Stats(); err == nil {
		v.Records = st.Records
	}
	groups, regions := slices.Clone(g.Groups), slices.Clone(g.Regions)
	members := n.Members()
	for _, m := range members {
		if !slices.Contains(groups, m.Group) {
			groups = append(groups, m.Group)
		}
		if !slices.Contains(regions, m.Region) {
			regions = append(regions, m.Region)
		}
		v.Members = append(v.Members, webParty{Org: m.Org, Group: m.Group, Region: m.Region, Member: true})
	}
	slices.SortFunc(v.Members, func(a, b webParty) int {
		return cmp.Or(strings.Compare(a.Group, b.Group), strings.Compare(a.Org, b.Org))
	})
	v.Regions = regions
	for _, gr := range groups {
		row := fedRow{Group: gr, Cells: make([][]string, len(regions))}
		for _, m := range v.Members {
			if m.Group == gr {
				i := slices.Index(regions, m.Region)
				row.Cells[i] = append(row.Cells[i], m.Org)
				row.Total++
			}
		}
		v.Rows = append(v.Rows, row)
	}
	if !v.Observer {
		v.Org = s.partyOf(n.MemberSet(), s.nodeKey()).Org
	}
	for _, p := range n.Host().Network().Peers() {
		fp := fedPeer{ID: p.String()}
		for _, c := range n.Host().Network().ConnsToPeer(p) {
			fp.Addrs = append(fp.Addrs, c.RemoteMultiaddr().String())
		}
		v.Peers = append(v.Peers, fp)
	}
	slices.SortFunc(v.Peers, func(a, b fedPeer) int { return strings.Compare(a.ID, b.ID) })
	for _, ts := range n.SyncStatus() {
		sv := SyncView{Topic: ts.Topic, Peer: ts.Peer.String(), Lag: ts.Lag, Fetched: ts.Fetched, Error: ts.Err}
		if !ts.Last.IsZero() {
			sv.Last = webTime(ts.Last.UnixMilli())
		}
		v.Sync = append(v.Sync, sv)
	}
	s.renderLive(w, r, http.StatusOK, "federation", text("fed.title"), "", v)
}

package api

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/protocol/gov"
)

// The web view: read-only HTML pages of the issues, processes and audits
// the node holds, for people rather than programs. It is rendered on the
// server from the same state as the JSON API (html/template escapes every
// text that comes from records), uses no script and loads nothing from
// elsewhere.
//
//	GET /                 the federation and its issues
//	GET /issues/{slug}    an issue and its processes
//	GET /processes/{cid}  a process: principles P1-P4, participation
//	                      matrix, stages, notices, proposals with feedback
//	                      by stance

//go:embed web/*.html
var webFS embed.FS

var webFuncs = template.FuncMap{
	"ok": func(ok bool) template.HTML {
		if ok {
			return `<span class="ok">met</span>`
		}
		return `<span class="fail">not met</span>`
	},
	"status": func(s string) template.HTML {
		switch s {
		case gov.StatusMet:
			return `<span class="ok">met</span>`
		case gov.StatusNotYet:
			return `<span class="muted">not yet</span>`
		}
		return `<span class="fail">not met</span>`
	},
	"yes": func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	},
	"join":  func(s []string) string { return strings.Join(s, ", ") },
	"ms":    webTime,
	"deref": func(p *int64) int64 { return *p },
	"dur":   webDuration,
}

// webPages holds one template set per page, each with the layout.
var webPages = func() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, page := range []string{"home", "issue", "process", "error"} {
		out[page] = template.Must(template.New(page).Funcs(webFuncs).ParseFS(webFS, "web/layout.html", "web/"+page+".html"))
	}
	return out
}()

// webTime formats unix milliseconds for people, in UTC.
func webTime(ms int64) string {
	if ms == 0 {
		return "–"
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04 UTC")
}

// webDuration formats seconds as days and hours.
func webDuration(s int64) string {
	d, h := s/86400, s%86400/3600
	switch {
	case d == 0 && h == 0:
		return (time.Duration(s) * time.Second).String()
	case d == 0:
		return fmt.Sprintf("%d h", h)
	case h == 0:
		return fmt.Sprintf("%d days", d)
	}
	return fmt.Sprintf("%d days %d h", d, h)
}

// webPage is what every page's layout shows, with the page's own Data.
type webPage struct {
	Title, Federation, Network, Node, Role string
	Dev                                    bool
	Data                                   any
}

func (s *Server) webRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", s.webHome)
	mux.HandleFunc("GET /issues/{slug}", s.webIssue)
	mux.HandleFunc("GET /processes/{cid}", s.webProcess)
}

// render writes page with data, or an error page if rendering fails.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, page, title string, data any) {
	n := s.n
	role := "member"
	if n.IsObserver() {
		role = "observer"
	}
	id := n.ID().String()
	p := webPage{Title: title, Federation: n.Genesis().Name, Network: n.NetworkID().String(),
		Node: id[max(0, len(id)-8):], Role: role, Dev: n.IsDevFederation(), Data: data}
	var buf bytes.Buffer
	if err := webPages[page].ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.Error("web page failed", "path", r.URL.Path, "err", err)
		http.Error(w, "internal error: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) webError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, r, status, "error", msg, msg)
}

// webIssue is an issue as the pages show it.
type webIssue struct {
	Slug, Title, Summary, Time string
	Org, Group, Region         string
	Contenders                 []string
	Following                  bool
	Processes                  int
}

func (s *Server) issueOf(i gov.IssueInfo, topics []string) webIssue {
	v := webIssue{Slug: i.Slug, Title: i.Title, Summary: i.Summary, Time: webTime(i.Time),
		Org: i.Author.Org, Group: i.Author.Group, Region: i.Author.Region,
		Contenders: cidStrings(i.Contenders), Following: slices.Contains(topics, protocol.IssueTopic(i.Slug))}
	if v.Following {
		if ps, err := s.n.Processes(i.Slug); err == nil {
			v.Processes = len(ps)
		}
	}
	return v
}

func (s *Server) webHome(w http.ResponseWriter, r *http.Request) {
	st, err := s.n.Store().Stats()
	if err != nil {
		s.webError(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	topics := s.n.Topics()
	data := struct {
		Issues                  []webIssue
		Members, Peers, Records int
	}{Members: len(s.n.Members()), Peers: len(s.n.Host().Network().Peers()), Records: int(st.Records)}
	for _, i := range s.n.Issues() {
		data.Issues = append(data.Issues, s.issueOf(i, topics))
	}
	s.render(w, r, http.StatusOK, "home", "Issues", data)
}

func (s *Server) webIssue(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	i := slices.IndexFunc(s.n.Issues(), func(i gov.IssueInfo) bool { return i.Slug == slug })
	if !protocol.ValidSlug(slug) || i < 0 {
		s.webError(w, r, http.StatusNotFound, fmt.Sprintf("No open issue %q", slug))
		return
	}
	type proc struct {
		CID, Title, Stage string
		Records, Adopted  int
	}
	data := struct {
		webIssue
		Processes []proc
	}{webIssue: s.issueOf(s.n.Issues()[i], s.n.Topics())}
	if data.Following {
		ps, err := s.n.Processes(slug)
		if err != nil {
			s.webError(w, r, http.StatusInternalServerError, err.Error())
			return
		}
		for _, p := range ps {
			data.Processes = append(data.Processes, proc{CID: p.CID().String(), Title: p.Charter().Title,
				Stage: p.Stage(), Records: p.Len(), Adopted: len(p.Adopted())})
		}
	}
	s.render(w, r, http.StatusOK, "issue", data.Title, data)
}

// matrixRow is one stakeholder group's row of the participation matrix.
type matrixRow struct {
	Group string
	Cells []int // by region, in the order of the page's Regions
	Total int
}

func (s *Server) webProcess(w http.ResponseWriter, r *http.Request) {
	c, err := cid.Decode(r.PathValue("cid"))
	if err != nil {
		s.webError(w, r, http.StatusNotFound, fmt.Sprintf("%q is not a process id", r.PathValue("cid")))
		return
	}
	rep, err := s.n.Audit(c)
	if err != nil {
		s.webError(w, r, http.StatusNotFound, fmt.Sprintf("This node holds no process %s", c))
		return
	}
	data := struct {
		R                                     *gov.Report
		Slug                                  string
		Regions                               []string
		Matrix                                []matrixRow
		LateNotices, ShortWindows, Unanswered int
	}{R: rep, Slug: strings.TrimPrefix(rep.Topic, "issue/")}
	// Rows and columns: every group and region with members, then any
	// other that appears in the matrix.
	groups := coverageNames(rep.P1)
	data.Regions = coverageNames(rep.P3)
	for _, cell := range rep.Matrix {
		if !slices.Contains(groups, cell.Group) {
			groups = append(groups, cell.Group)
		}
		if !slices.Contains(data.Regions, cell.Region) {
			data.Regions = append(data.Regions, cell.Region)
		}
	}
	for _, g := range groups {
		row := matrixRow{Group: g, Cells: make([]int, len(data.Regions))}
		for _, cell := range rep.Matrix {
			if cell.Group == g {
				row.Cells[slices.Index(data.Regions, cell.Region)] += cell.Members
				row.Total += cell.Members
			}
		}
		data.Matrix = append(data.Matrix, row)
	}
	for _, n := range rep.P2.Notices {
		if !n.OK {
			data.LateNotices++
		}
	}
	for _, win := range rep.P2.Windows {
		if !win.OK {
			data.ShortWindows++
		}
	}
	for _, o := range rep.P2.Objections {
		if !o.Answered {
			data.Unanswered++
		}
	}
	s.render(w, r, http.StatusOK, "process", rep.Title, data)
}

// coverageNames returns the names of a coverage's entries and of the
// groups (regions) without members (absent).
func coverageNames(c gov.Coverage) []string {
	var out []string
	for _, e := range c.Entries {
		out = append(out, e.Name)
	}
	return append(out, c.Absent...)
}

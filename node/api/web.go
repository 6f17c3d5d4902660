package api

import (
	"bytes"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/protocol/gov"
)

// The web app: HTML pages of the federation, its issues, processes and
// records, for people rather than programs. Pages are rendered on the
// server from the same state as the JSON API (html/template escapes every
// text that comes from records) and read without script; two small
// scripts (web/static) add live updates and nothing else. Every fixed
// string is in web_text.go. Member nodes add forms to act (web_act.go),
// every node forms for public comments (web_public.go).
//
//	GET /                  the issues, with their processes, stages and next deadlines
//	GET /federation        members by group x region, this node, peers, sync state
//	GET /issues/{slug}     an issue, its processes and public comments
//	GET /processes/{cid}   a process: charter, timeline, proposals by clause
//	                       with diffs, feedback, objections, endorsements,
//	                       delegations, the audit with its evidence
//	GET /records/{cid}     one record, decoded, its signature checked
//	GET /static/...        the style sheet and the live-update script

//go:embed web/*.html web/static/*
var webFS embed.FS

// webStatic is the directory of the static files.
var webStatic = func() fs.FS {
	sub, err := fs.Sub(webFS, "web/static")
	if err != nil {
		panic(err) // the directory is embedded above
	}
	return sub
}()

// webTemplates are the page names; each is parsed with the layout.
var webTemplates = []string{"home", "federation", "issue", "process", "record", "login", "error"}

// webPages holds one template set per page, each with the layout.
var webPages = func() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, page := range webTemplates {
		out[page] = template.Must(template.New(page).Funcs(textFuncs).Funcs(webFuncs).
			ParseFS(webFS, "web/layout.html", "web/forms.html", "web/"+page+".html"))
	}
	return out
}()

var webFuncs = template.FuncMap{
	"join":  func(s []string) string { return strings.Join(s, ", ") },
	"ms":    webTime,
	"day":   webDay,
	"dur":   webDuration,
	"short": shortCID,
	"tail":  func(c string) string { return c[max(0, len(c)-8):] },
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	},
	"deref": func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	},
	"yesno": func(b bool) string {
		if b {
			return text("yes")
		}
		return text("no")
	},
	"pct": func(f float64) template.CSS { return template.CSS(fmt.Sprintf("%.2f%%", f)) },
	"add": func(a, b int) int { return a + b },
}

// webTime formats unix milliseconds for people, in UTC.
func webTime(ms int64) string {
	if ms == 0 {
		return "–"
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04 UTC")
}

// webDay formats unix milliseconds as a date, in UTC.
func webDay(ms int64) string {
	if ms == 0 {
		return "–"
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02")
}

// webDuration formats seconds with their two largest units, as the
// command line does: "14d", "1d 2h", "1h", "59m 59s", "0s".
func webDuration(s int64) string { return gov.FormatDuration(time.Duration(s) * time.Second) }

// shortCID returns the last 8 characters of a CID string, enough to tell
// records apart on a page (the link carries the whole CID).
func shortCID(c string) string { return "…" + c[max(0, len(c)-8):] }

// webOptions are the options of the web pages.
type webOptions struct {
	clock func() time.Time
	// personBurst and personEvery bound public comments per person
	// (web_public.go).
	personBurst int
	personEvery time.Duration
}

// WithWebClock sets the clock the pages use for "today" and deadlines,
// and public comments for their time (default time.Now). Give it the
// node's clock (node.WithClock) in tests.
func WithWebClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("api: nil web clock")
		}
		o.web.clock = now
		return nil
	}
}

// webServer is the state of the web pages: sessions, rate limits and a
// cache of decoded records.
type webServer struct {
	now      func() time.Time
	sessions *sessions
	limits   *commentLimits
	records  recordCache
	audits   auditCache
	static   http.Handler
}

// webPage is what every page's layout shows, with the page's own Data.
type webPage struct {
	Title, Federation, Network, Node, Role string
	Observer, Dev, SignedIn                bool
	// Org is the organisation of a member node, CSRF the token its forms
	// carry, Live the topic whose records the live script follows.
	Org, CSRF, Live string
	Flash, Error    string
	// After is the store's last arrival when the page was made: the
	// cursor the live script follows the event stream from.
	After uint64
	Data  any
}

func (s *Server) webRoutes(mux *http.ServeMux) {
	o := s.opts.web
	if o.clock == nil {
		o.clock = time.Now
	}
	s.web = &webServer{now: o.clock, sessions: newSessions(o.clock), limits: newCommentLimits(o),
		static: http.StripPrefix("/static/", http.FileServerFS(webStatic))}
	mux.HandleFunc("GET /{$}", s.webHome)
	mux.HandleFunc("GET /federation", s.webFederation)
	mux.HandleFunc("GET /issues/{slug}", s.webIssue)
	mux.HandleFunc("GET /processes/{cid}", s.webProcess)
	mux.HandleFunc("GET /records/{cid}", s.webRecord)
	mux.HandleFunc("GET /static/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		s.web.static.ServeHTTP(w, r)
	})
	s.publicRoutes(mux)
	if !s.n.IsObserver() { // an observer has no member forms and no routes for them
		s.sessionRoutes(mux)
		s.actRoutes(mux)
	}
}

// render writes page with data, or an error page if rendering fails.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, page, title string, data any) {
	s.renderLive(w, r, status, page, title, "", data)
}

// renderLive is render for a page that follows the records of topics (a
// space-separated list) live.
func (s *Server) renderLive(w http.ResponseWriter, r *http.Request, status int, page, title, topic string, data any) {
	n := s.n
	id := n.ID().String()
	p := webPage{Title: title, Federation: n.Genesis().Name, Network: n.NetworkID().String(),
		Node: id[max(0, len(id)-8):], Role: text("node.member"), Observer: n.IsObserver(),
		Dev: n.IsDevFederation(), Live: topic, Data: data}
	// The live script's fetches must not take the outcome meant for the
	// page the browser shows.
	if r.Header.Get("X-Live") == "" {
		p.Flash, p.Error = takeFlash(w, r)
	}
	if st, err := n.Store().Stats(); err == nil {
		p.After = st.LastArrival
	}
	if p.Observer {
		p.Role = text("node.obs")
	} else {
		p.Org = s.partyOf(s.n.MemberSet(), s.nodeKey()).Org
		if sess := s.web.sessions.get(r); sess != nil {
			p.SignedIn, p.CSRF = true, sess.csrf
		}
	}
	// Public comment forms are on every node and carry their own token.
	if p.CSRF == "" {
		p.CSRF = s.web.sessions.anonCSRF(w, r)
	}
	var buf bytes.Buffer
	if err := webPages[page].ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.Error("web page failed", "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) webError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, r, status, "error", msg, msg)
}

// nodeKey returns the node's record signing key, nil on an observer.
func (s *Server) nodeKey() []byte {
	if s.n.IsObserver() {
		return nil
	}
	pub, err := s.n.ID().ExtractPublicKey()
	if err != nil {
		return nil
	}
	raw, err := pub.Raw()
	if err != nil {
		return nil
	}
	return raw
}

// webParty is a record's author as the pages show it: an organisation.
type webParty struct {
	Org, Group, Region, Key string
	// Member reports whether the key is or was a member key.
	Member bool
}

// partyOf returns the organisation that holds or held key.
func (s *Server) partyOf(set *protocol.MemberSet, key []byte) webParty {
	k := hex.EncodeToString(key)
	if m, ok := set.KeyHistory(key); ok {
		return webParty{Org: m.Org, Group: m.Group, Region: m.Region, Key: k, Member: true}
	}
	return webParty{Org: text("rec.nonmember") + " " + k[:min(len(k), 12)], Key: k}
}

// parties looks up authors once per page.
type parties struct {
	s   *Server
	set *protocol.MemberSet
	m   map[string]webParty
}

func (s *Server) newParties() *parties {
	return &parties{s: s, set: s.n.MemberSet(), m: map[string]webParty{}}
}

func (p *parties) of(key []byte) webParty {
	if v, ok := p.m[string(key)]; ok {
		return v
	}
	v := p.s.partyOf(p.set, key)
	p.m[string(key)] = v
	return v
}

// recordCache keeps decoded records by CID: records never change, so a
// cached one is always right. It is emptied when it grows past its bound.
type recordCache struct {
	mu sync.Mutex
	m  map[cid.Cid]*protocol.Record
}

const recordCacheSize = 200_000

// cachedRecord returns a stored record, decoded, from the cache if it can.
func (s *Server) cachedRecord(c cid.Cid) (*protocol.Record, error) {
	rc := &s.web.records
	rc.mu.Lock()
	r, ok := rc.m[c]
	rc.mu.Unlock()
	if ok {
		return r, nil
	}
	r, err := s.n.Record(c)
	if err != nil {
		return nil, err
	}
	rc.mu.Lock()
	if rc.m == nil || len(rc.m) >= recordCacheSize {
		rc.m = make(map[cid.Cid]*protocol.Record)
	}
	rc.m[c] = r
	rc.mu.Unlock()
	return r, nil
}

// auditCache keeps the latest local audit of each process with the
// store's last arrival when it was made: while nothing arrives, the audit
// cannot change.
type auditCache struct {
	mu sync.Mutex
	m  map[cid.Cid]cachedAudit
}

type cachedAudit struct {
	arrival uint64
	rep     *gov.Report
}

// maxCachedAudits bounds the audits kept.
const maxCachedAudits = 64

// localAudit returns the local audit of a process (node.AuditLocal), cached.
// The report is shared: callers must not change it.
func (s *Server) localAudit(c cid.Cid) (*gov.Report, error) {
	st, err := s.n.Store().Stats()
	if err != nil {
		return nil, err
	}
	ac := &s.web.audits
	ac.mu.Lock()
	e, ok := ac.m[c]
	ac.mu.Unlock()
	if ok && e.arrival == st.LastArrival {
		return e.rep, nil
	}
	rep, err := s.n.AuditLocal(c)
	if err != nil {
		return nil, err
	}
	ac.mu.Lock()
	if ac.m == nil || len(ac.m) >= maxCachedAudits {
		ac.m = make(map[cid.Cid]cachedAudit)
	}
	ac.m[c] = cachedAudit{st.LastArrival, rep}
	ac.mu.Unlock()
	return rep, nil
}

// prefetch reads and decodes the records of cids the cache lacks, in
// batches (node.Records: one store iterator per batch, in key order) on
// every core, so the first view of a large process neither decodes 10,000
// records on one core nor pays 10,000 point lookups. Errors are left for
// cachedRecord to report.
func (s *Server) prefetch(cids []cid.Cid) {
	rc := &s.web.records
	var missing []cid.Cid
	rc.mu.Lock()
	for _, c := range cids {
		if _, ok := rc.m[c]; !ok {
			missing = append(missing, c)
		}
	}
	rc.mu.Unlock()
	if len(missing) < minPrefetch {
		return
	}
	// Each worker reads a run of neighbouring keys.
	slices.SortFunc(missing, func(a, b cid.Cid) int { return strings.Compare(a.KeyString(), b.KeyString()) })
	workers := max(1, min(runtime.GOMAXPROCS(0), len(missing)/256))
	var wg sync.WaitGroup
	for w := range workers {
		part := missing[w*len(missing)/workers : (w+1)*len(missing)/workers]
		wg.Go(func() {
			got := make([]*protocol.Record, 0, len(part))
			_ = s.n.Records(part, func(_ cid.Cid, r *protocol.Record, err error) {
				if err == nil {
					got = append(got, r)
				}
			})
			rc.mu.Lock()
			if rc.m == nil || len(rc.m)+len(got) > recordCacheSize {
				rc.m = make(map[cid.Cid]*protocol.Record, len(got))
			}
			for _, r := range got {
				rc.m[r.CID] = r
			}
			rc.mu.Unlock()
		})
	}
	wg.Wait()
}

// minPrefetch is the fewest uncached records prefetch reads as a batch;
// fewer are read one by one as the page needs them.
const minPrefetch = 64

// webIssue is an issue as the pages show it.
type webIssue struct {
	Slug, Title, Summary string
	Time                 int64
	By                   webParty
	Contenders           []string
	Following            bool
	Processes            []webProcRow
}

// webProcRow is a process in a list: enough to tell two of the same
// title apart (charter date, convenor, short id).
type webProcRow struct {
	CID, Title, Stage, Convenor string
	Chartered                   int64
	Records, Adopted            int
	Next                        deadline
	SameTitle                   bool
}

// deadline is the next date of a process after now.
type deadline struct {
	What string
	At   int64
}

func (s *Server) issueOf(i gov.IssueInfo, topics []string, ps *parties, withProcs bool) webIssue {
	v := webIssue{Slug: i.Slug, Title: i.Title, Summary: i.Summary, Time: i.Time, By: ps.of(i.Author.Key),
		Contenders: cidStrings(i.Contenders), Following: slices.Contains(topics, protocol.IssueTopic(i.Slug))}
	if !v.Following || !withProcs {
		return v
	}
	procs, err := s.n.Processes(i.Slug)
	if err != nil {
		return v
	}
	now := s.web.now().UnixMilli()
	titles := map[string]int{}
	for _, p := range procs {
		titles[p.Charter().Title]++
	}
	for _, p := range procs {
		row := webProcRow{CID: p.CID().String(), Title: p.Charter().Title, Stage: p.Stage(),
			Records: p.Len(), Adopted: len(p.Adopted()), SameTitle: titles[p.Charter().Title] > 1}
		if ch, err := s.cachedRecord(p.CID()); err == nil {
			row.Chartered = ch.Env.Time
			row.Convenor = ps.of(ch.Env.Author).Org
		}
		row.Next = s.nextDeadline(p, now)
		v.Processes = append(v.Processes, row)
	}
	return v
}

// nextDeadline returns the first planned phase boundary or comment window
// close after now.
func (s *Server) nextDeadline(p *node.ProcessState, now int64) deadline {
	var best deadline
	consider := func(what string, at int64) {
		if at > now && (best.At == 0 || at < best.At) {
			best = deadline{What: what, At: at}
		}
	}
	for _, ph := range p.Charter().Phases {
		consider(text("deadline.starts", ph.Stage), ph.Start)
		consider(text("deadline.ends", ph.Stage), ph.End)
	}
	if rep, err := s.n.Audit(p.CID()); err == nil {
		// The window of a version replaced by a later one is no deadline.
		replaced := map[string]bool{}
		for _, pi := range rep.Proposals {
			replaced[pi.Replaces] = true
		}
		for _, pi := range rep.Proposals {
			if !replaced[pi.Record] {
				consider(text("deadline.closes"), pi.Closes)
			}
		}
	}
	return best
}

func (s *Server) webHome(w http.ResponseWriter, r *http.Request) {
	st, err := s.n.Store().Stats()
	if err != nil {
		s.webError(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	topics := s.n.Topics()
	ps := s.newParties()
	data := struct {
		Issues                  []webIssue
		Members, Peers, Records int
		Network                 string
	}{Members: len(s.n.Members()), Peers: len(s.n.Host().Network().Peers()), Records: int(st.Records),
		Network: s.n.NetworkID().String()}
	for _, i := range s.n.Issues() {
		data.Issues = append(data.Issues, s.issueOf(i, topics, ps, true))
	}
	s.renderLive(w, r, http.StatusOK, "home", text("home.title"), "*", data)
}

func (s *Server) webIssue(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	info, ok := s.issueInfo(slug)
	if !protocol.ValidSlug(slug) || !ok {
		s.webError(w, r, http.StatusNotFound, text("err.noissue", slug))
		return
	}
	data := struct {
		webIssue
		Public *publicView
	}{webIssue: s.issueOf(info, s.n.Topics(), s.newParties(), true)}
	data.Public = s.publicComments(slug, nil)
	s.renderLive(w, r, http.StatusOK, "issue", info.Title, protocol.IssueTopic(slug)+" "+protocol.PublicTopic(slug), data)
}

// issueInfo returns the open issue of slug.
func (s *Server) issueInfo(slug string) (gov.IssueInfo, bool) {
	is := s.n.Issues()
	i := slices.IndexFunc(is, func(i gov.IssueInfo) bool { return i.Slug == slug })
	if i < 0 {
		return gov.IssueInfo{}, false
	}
	return is[i], true
}

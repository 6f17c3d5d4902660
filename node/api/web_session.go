package api

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Sign-in on a member node: the operator's staff sign in with the node's
// API token; the server keeps the session and gives the browser only a
// random session id in a cookie (HttpOnly, SameSite=Strict, Secure over
// TLS). The token never reaches a page. Every form carries a CSRF token:
// the session's for member forms; for public comments (no session) a
// random one that must equal a cookie of the same value (double submit).
// A POST whose Origin header names another site is refused as well.

const (
	sessionCookie = "ch_session"
	csrfCookie    = "ch_csrf"
	// sessionTTL is how long a session lasts without use.
	sessionTTL = 12 * time.Hour
	// maxSessions bounds the sessions kept; the oldest go first.
	maxSessions = 1000
)

// session is one signed-in browser.
type session struct {
	csrf    string
	expires time.Time
}

// sessions are the node's web sessions, guarded by mu.
type sessions struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*session
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{now: now, m: map[string]*session{}}
}

// randomToken returns 32 random bytes, base64url.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session and sets its cookie.
func (ss *sessions) create(w http.ResponseWriter, r *http.Request) *session {
	id := randomToken()
	now := ss.now()
	sess := &session{csrf: randomToken(), expires: now.Add(sessionTTL)}
	ss.mu.Lock()
	for k, s := range ss.m {
		if now.After(s.expires) {
			delete(ss.m, k)
		}
	}
	for k := range ss.m { // still full: drop any one
		if len(ss.m) < maxSessions {
			break
		}
		delete(ss.m, k)
	}
	ss.m[id] = sess
	ss.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: int(sessionTTL.Seconds())})
	return sess
}

// get returns the request's live session, or nil.
func (ss *sessions) get(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[c.Value]
	if !ok {
		return nil
	}
	now := ss.now()
	if now.After(s.expires) {
		delete(ss.m, c.Value)
		return nil
	}
	s.expires = now.Add(sessionTTL)
	return s
}

// end ends the request's session and clears its cookie.
func (ss *sessions) end(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		ss.mu.Lock()
		delete(ss.m, c.Value)
		ss.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: -1})
}

// anonCSRF returns the request's double-submit CSRF token, setting its
// cookie if the request has none.
func (ss *sessions) anonCSRF(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	v := randomToken()
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	return v
}

// checkCSRF reports whether a form POST comes from this site: its Origin
// (if sent) is this host, and its csrf field equals the session's token
// (sess non-nil) or the CSRF cookie.
func checkCSRF(r *http.Request, sess *session) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	got := r.PostFormValue("csrf")
	want := ""
	if sess != nil {
		want = sess.csrf
	} else if c, err := r.Cookie(csrfCookie); err == nil {
		want = c.Value
	}
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// sessionRoutes are the sign-in routes of a member node.
func (s *Server) sessionRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		s.render(w, r, http.StatusOK, "login", text("login.title"), struct{ Bad bool }{})
	})
	mux.HandleFunc("POST /login", s.webLogin)
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
		if !checkCSRF(r, s.web.sessions.get(r)) {
			s.webError(w, r, http.StatusForbidden, text("csrf.bad"))
			return
		}
		s.web.sessions.end(w, r)
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
}

func (s *Server) webLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if !checkCSRF(r, nil) {
		s.webError(w, r, http.StatusForbidden, text("csrf.bad"))
		return
	}
	// Wrong tokens are limited per client like comments, so the token
	// cannot be guessed at speed.
	if !s.web.limits.loginAllowed(clientIP(r)) {
		s.webError(w, r, http.StatusTooManyRequests, text("pub.limited"))
		return
	}
	got := r.PostFormValue("token")
	if subtle.ConstantTimeCompare([]byte(got), []byte(s.opts.token)) != 1 {
		s.web.limits.loginFailed(clientIP(r))
		s.render(w, r, http.StatusUnauthorized, "login", text("login.title"), struct{ Bad bool }{true})
		return
	}
	s.web.sessions.create(w, r)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// The outcome of a form is shown once on the page the browser is sent
// back to, carried by a short-lived cookie rather than the URL, so that no
// link can make a page claim something was published.
const (
	flashCookie = "ch_flash"
	// maxFlash bounds the message kept, in bytes.
	maxFlash = 512
)

// redirectDone sends the browser back to back (a path on this site) with
// the kind of record published.
func (s *Server) redirectDone(w http.ResponseWriter, r *http.Request, back, kind string) {
	setFlash(w, r, "done:"+kind)
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// redirectFailed sends the browser back with why nothing was published.
func (s *Server) redirectFailed(w http.ResponseWriter, r *http.Request, back, msg string) {
	setFlash(w, r, "failed:"+msg)
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func setFlash(w http.ResponseWriter, r *http.Request, v string) {
	if len(v) > maxFlash {
		v = v[:maxFlash]
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: url.QueryEscape(v), Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: 60})
}

// takeFlash returns the outcome to show, if any, and clears it.
func takeFlash(w http.ResponseWriter, r *http.Request) (done, failed string) {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return "", ""
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: "", Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: -1})
	v, err := url.QueryUnescape(c.Value)
	if err != nil {
		return "", ""
	}
	if k, ok := strings.CutPrefix(v, "done:"); ok {
		return k, ""
	}
	f, _ := strings.CutPrefix(v, "failed:")
	return "", f
}

package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/clearinghouse-net/clearinghouse/node"
)

// Prefix is the path prefix of every API route except /metrics.
const Prefix = "/api/v1"

// Defaults of the server's options.
const (
	// DefaultHeartbeat is how often the event stream sends a comment to
	// keep idle connections open.
	DefaultHeartbeat = 15 * time.Second
	// DefaultShutdownTimeout bounds how long Close waits for requests in
	// flight.
	DefaultShutdownTimeout = 5 * time.Second
	// defaultPageLimit and maxPageLimit bound the page size of record lists.
	defaultPageLimit = 100
	maxPageLimit     = 1000
	// maxRequestBody bounds a POST body, in bytes.
	maxRequestBody = 1 << 20
)

// ErrNoToken is returned by New when a member node is given no token.
var ErrNoToken = errors.New("api: a token is required on a member node (WithToken)")

// Option configures a Server.
type Option func(*options) error

type options struct {
	noMetrics bool // GET /metrics is not served
	token     string
	logger    *slog.Logger
	heartbeat time.Duration
	web       webOptions // the web pages' (web.go)
	limits    Limits
}

// WithToken sets the bearer token every write must present. It is
// required unless the node is an observer.
func WithToken(token string) Option {
	return func(o *options) error {
		if token == "" || strings.ContainsAny(token, " \t\r\n") {
			return errors.New("api: token must be non-empty and without white space")
		}
		o.token = token
		return nil
	}
}

// WithLogger sets the logger (default: discarded).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("api: nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithMetrics says whether GET /metrics serves the node's Prometheus
// metrics (default true).
func WithMetrics(enabled bool) Option {
	return func(o *options) error { o.noMetrics = !enabled; return nil }
}

// WithHeartbeat sets how often an idle event stream sends a comment line
// (default DefaultHeartbeat); it must be positive.
func WithHeartbeat(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return errors.New("api: heartbeat must be > 0")
		}
		o.heartbeat = d
		return nil
	}
}

// Server is the HTTP API of one node. Create it with [New]; the caller
// must call [Server.Close], which also ends open event streams.
type Server struct {
	n       *node.Node
	opts    options
	log     *slog.Logger
	handler http.Handler
	web     *webServer // the web pages' state (web.go)

	ctx    context.Context // cancelled by Close; ends event streams
	cancel context.CancelFunc

	metrics *apiMetrics
	streams chan struct{} // a token per event stream open (MaxEventStreams)
	evCache eventCache    // record events rendered for event streams

	mu     sync.Mutex // guards srv and closed
	srv    *http.Server
	closed bool
}

// New returns the API server of n. It does not listen; use Handler or
// Serve.
func New(n *node.Node, opts ...Option) (*Server, error) {
	if n == nil {
		return nil, errors.New("api: nil node")
	}
	o := options{logger: slog.New(slog.DiscardHandler), heartbeat: DefaultHeartbeat, limits: DefaultLimits()}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.token == "" && !n.IsObserver() {
		return nil, ErrNoToken
	}
	m, err := newAPIMetrics(n.Registry())
	if err != nil {
		return nil, err
	}
	s := &Server{n: n, opts: o, log: o.logger, metrics: m, streams: make(chan struct{}, o.limits.MaxEventStreams)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.handler = s.routes()
	return s, nil
}

// Handler returns the server's HTTP handler, for use with any http.Server
// or httptest.Server.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves the API on l until ctx ends or Close is called; it closes
// l. It returns nil after a clean shutdown. The server applies the
// options' Limits (timeouts, connection cap); a Handler mounted on another
// http.Server gets only the per-request ones.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	lim := s.opts.limits
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ConnState:         newConnLimiter(lim.MaxConns, s.metrics.connsDropped).track,
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.mu.Lock()
	if s.closed || s.srv != nil {
		s.mu.Unlock()
		l.Close()
		return errors.New("api: server closed or already serving")
	}
	s.srv = srv
	s.mu.Unlock()

	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("api: serve: %w", err)
}

// Close ends open event streams and shuts the server down, waiting up to
// DefaultShutdownTimeout for requests in flight. It is safe to call more
// than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	srv := s.srv
	s.mu.Unlock()
	s.cancel()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), DefaultShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("api: shutdown: %w", err)
	}
	return nil
}

// routes builds the router. Writes are registered only on a member node.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	get := func(path string, h http.HandlerFunc) { mux.HandleFunc("GET "+Prefix+path, h) }
	get("/status", s.status)
	get("/peers", s.peers)
	get("/members", s.members)
	get("/issues", s.issues)
	get("/issues/{slug}/processes", s.processes)
	get("/processes/{cid}", s.process)
	get("/processes/{cid}/audit", s.audit)
	get("/records/{cid}", s.record)
	get("/topics/{rest...}", s.topicRecords)
	get("/events", s.events)
	get("/public/blocks", s.blocks)
	s.exportRoutes(mux)
	if !s.opts.noMetrics {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.n.Registry(), promhttp.HandlerOpts{}))
	}
	s.webRoutes(mux)

	if s.n.IsObserver() {
		// Sync fetches and verifies; it signs nothing, so an observer
		// serves it without a token (the API listens on loopback).
		mux.HandleFunc("POST "+Prefix+"/sync", s.sync)
		// No write route exists; every write attempt gets this answer.
		mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				writeError(w, http.StatusNotFound, CodeNotFound, "no such route: "+r.URL.Path, "")
				return
			}
			writeError(w, http.StatusForbidden, CodeObserver, "this node is a read-only observer: it serves no writes", "observer")
		})
	} else {
		mux.Handle("POST "+Prefix+"/records", s.auth(s.publish))
		mux.Handle("POST "+Prefix+"/issues/{slug}/follow", s.auth(s.follow))
		mux.Handle("DELETE "+Prefix+"/issues/{slug}/follow", s.auth(s.unfollow))
		mux.Handle("POST "+Prefix+"/sync", s.auth(s.sync))
		mux.Handle("POST "+Prefix+"/backup", s.auth(s.backup))
		mux.Handle("PUT "+Prefix+"/public/blocks/{key}", s.auth(s.block))
		mux.Handle("DELETE "+Prefix+"/public/blocks/{key}", s.auth(s.unblock))
		mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, CodeNotFound, "no such route: "+r.Method+" "+r.URL.Path, "")
		})
	}
	return s.jsonErrors(mux)
}

// auth requires the bearer token, compared in constant time.
func (s *Server) auth(h http.HandlerFunc) http.Handler {
	want := []byte(s.opts.token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="clearinghouse"`)
			writeError(w, http.StatusUnauthorized, CodeUnauthorized, "missing or wrong bearer token (see api.token in the data directory)", "")
			return
		}
		h(w, r)
	})
}

// jsonErrors answers requests no route takes with JSON errors: 405 with
// an Allow header when the path exists for another method, 404 otherwise.
// (The catch-all routes under Prefix and the mux's own answers would say
// 404 or plain-text 405.)
func (s *Server) jsonErrors(mux *http.ServeMux) http.Handler {
	fallback := func(pattern string) bool { return pattern == "" || strings.HasSuffix(pattern, Prefix+"/") }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); !fallback(pattern) {
			mux.ServeHTTP(w, r)
			return
		}
		if s.n.IsObserver() && r.Method != http.MethodGet && r.Method != http.MethodHead {
			mux.ServeHTTP(w, r) // the observer answer
			return
		}
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, p := mux.Handler(probe); !fallback(p) {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, r.Method+" not allowed on "+r.URL.Path, "")
			return
		}
		writeError(w, http.StatusNotFound, CodeNotFound, "no such route: "+r.Method+" "+r.URL.Path, "")
	})
}

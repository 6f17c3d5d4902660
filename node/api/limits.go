package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// Limits bound what HTTP clients can make the server hold: time,
// connections, bytes. docs/api.md, "Limits", lists them with the status
// codes a client sees.
type Limits struct {
	// ReadHeaderTimeout bounds reading a request's headers. Default 10 s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included: a slow
	// body is cut. Default 30 s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response, from the end of the request
	// headers. The event stream is exempt (it has EventWriteTimeout per
	// write instead), and POST /sync has SyncTimeout. Default 30 s.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long. Default
	// 60 s.
	IdleTimeout time.Duration
	// MaxConns bounds open connections. A connection beyond it makes the
	// server close its oldest idle (or not yet active) connection; if every
	// connection is active, the new one is closed at once. Default 4096.
	MaxConns int
	// MaxEventStreams bounds concurrent GET /events streams; more get 503.
	// Default 2048.
	MaxEventStreams int
	// EventBuffer is the send buffer of one event stream, in bytes: events
	// are written into it and flushed to the client. Default 16 KiB.
	EventBuffer int
	// EventWriteTimeout bounds one flush of an event stream's buffer: a
	// client that does not read for this long has fallen behind and is
	// dropped; it resumes with Last-Event-ID. Default 10 s.
	EventWriteTimeout time.Duration
	// SyncTimeout bounds POST /sync, which syncs with every peer under the
	// node's sync budgets. Default 5 min.
	SyncTimeout time.Duration
}

// DefaultLimits returns the default HTTP limits.
func DefaultLimits() Limits {
	return Limits{
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxConns:          4096,
		MaxEventStreams:   2048,
		EventBuffer:       16 << 10,
		EventWriteTimeout: 10 * time.Second,
		SyncTimeout:       5 * time.Minute,
	}
}

// WithLimits sets the HTTP limits (default DefaultLimits()). Every
// duration must be > 0, MaxConns > MaxEventStreams > 0, and EventBuffer
// at least 4 KiB.
func WithLimits(l Limits) Option {
	return func(o *options) error {
		switch {
		case l.ReadHeaderTimeout <= 0 || l.ReadTimeout <= 0 || l.WriteTimeout <= 0 || l.IdleTimeout <= 0 ||
			l.EventWriteTimeout <= 0 || l.SyncTimeout <= 0:
			return errors.New("api: limits: every timeout must be > 0")
		case l.MaxEventStreams <= 0 || l.MaxConns <= l.MaxEventStreams:
			return errors.New("api: limits: need max conns > max event streams > 0")
		case l.EventBuffer < 4<<10:
			return errors.New("api: limits: event buffer must be at least 4096 bytes")
		}
		o.limits = l
		return nil
	}
}

// maxErrorMessage bounds the message of an error body, in bytes: errors
// about bad input never echo more than this of it.
const maxErrorMessage = 512

// truncate cuts s to at most max bytes at a rune boundary, saying so.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const more = "... (truncated)"
	cut := max - len(more)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + more
}

// errBodyTooLarge and errBodyUTF8 are returned by readBody.
var (
	errBodyTooLarge = fmt.Errorf("request body larger than %d bytes", maxRequestBody)
	errBodyUTF8     = errors.New("request body is not valid UTF-8")
)

// readBody reads a request body of at most maxRequestBody bytes that must
// be valid UTF-8 (JSON text is, and a replacement character must never be
// signed in place of what the client sent).
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, errBodyTooLarge
		}
		return nil, fmt.Errorf("reading request body: %w", err)
	}
	if !utf8.Valid(body) {
		bad := 0
		for bad < len(body) {
			r, size := utf8.DecodeRune(body[bad:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			bad += size
		}
		return nil, fmt.Errorf("%w (byte offset %d)", errBodyUTF8, bad)
	}
	return body, nil
}

// writeBodyError answers a body readBody refused: 413 if too large, else
// 400.
func writeBodyError(w http.ResponseWriter, err error) {
	if errors.Is(err, errBodyTooLarge) {
		writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, err.Error(), "")
		return
	}
	writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error(), "")
}

// errDuplicateKey is returned by checkDuplicateKeys.
var errDuplicateKey = errors.New("duplicate key")

// checkDuplicateKeys fails if any JSON object in data, at any depth, has
// the same key twice (which encoding/json would resolve silently, the last
// one winning). data must be valid JSON.
func checkDuplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		keys   map[string]bool // nil for an array
		path   string
		expect bool // an object expecting a key next
	}
	var stack []*frame
	path := func() string {
		if len(stack) == 0 {
			return "$"
		}
		return stack[len(stack)-1].path
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.keys != nil && top.expect {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			key, _ := tok.(string)
			if top.keys[key] {
				return fmt.Errorf("%w %q in %s", errDuplicateKey, truncate(key, 64), top.path)
			}
			top.keys[key] = true
			top.expect = false
			continue
		}
		if top != nil && top.keys != nil {
			top.expect = true // this token is a value; a key comes next
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{keys: map[string]bool{}, path: path() + ".{}", expect: true})
		case json.Delim('['):
			stack = append(stack, &frame{path: path() + ".[]"})
		case json.Delim(']'), json.Delim('}'):
			stack = stack[:len(stack)-1]
		}
	}
}

// connLimiter caps open connections through http.Server.ConnState: a
// connection beyond the cap closes the oldest idle or new one, or itself
// if all are active.
type connLimiter struct {
	max     int
	dropped prometheus.Counter

	mu    sync.Mutex // guards conns
	conns map[net.Conn]connEntry
}

type connEntry struct {
	state http.ConnState
	since time.Time
}

func newConnLimiter(max int, dropped prometheus.Counter) *connLimiter {
	return &connLimiter{max: max, dropped: dropped, conns: map[net.Conn]connEntry{}}
}

// track is the http.Server.ConnState hook. It is called by the server's
// goroutines concurrently.
func (l *connLimiter) track(c net.Conn, st http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch st {
	case http.StateClosed, http.StateHijacked:
		delete(l.conns, c)
		return
	case http.StateNew:
		if len(l.conns) >= l.max {
			victim := c
			var oldest time.Time
			for o, e := range l.conns {
				if e.state != http.StateActive && (oldest.IsZero() || e.since.Before(oldest)) {
					victim, oldest = o, e.since
				}
			}
			l.dropped.Inc()
			_ = victim.Close() // its StateClosed follows
			if victim == c {
				return
			}
			delete(l.conns, victim)
		}
	}
	l.conns[c] = connEntry{state: st, since: time.Now()}
}

// eventWriter is the send buffer of one event stream: writes go into a
// buffer of Limits.EventBuffer bytes, and each flush to the client must
// finish within Limits.EventWriteTimeout.
type eventWriter struct {
	buf     *bytes.Buffer
	w       http.ResponseWriter
	rc      *http.ResponseController
	max     int
	timeout time.Duration
}

func newEventWriter(w http.ResponseWriter, l Limits) *eventWriter {
	return &eventWriter{buf: new(bytes.Buffer), w: w, rc: http.NewResponseController(w), max: l.EventBuffer, timeout: l.EventWriteTimeout}
}

// Write buffers p, flushing first when the buffer would exceed its size.
func (e *eventWriter) Write(p []byte) (int, error) {
	if e.buf.Len()+len(p) > e.max && e.buf.Len() > 0 {
		if err := e.Flush(); err != nil {
			return 0, err
		}
	}
	return e.buf.Write(p)
}

// Flush sends the buffer to the client within the write timeout.
func (e *eventWriter) Flush() error {
	if err := e.rc.SetWriteDeadline(time.Now().Add(e.timeout)); err != nil {
		return err
	}
	if _, err := e.w.Write(e.buf.Bytes()); err != nil {
		return err
	}
	e.buf.Reset()
	return e.rc.Flush()
}

// apiMetrics are the server's own counters, registered on the node's
// registry once per node (a second server of the node shares them).
type apiMetrics struct {
	connsDropped   prometheus.Counter
	streamsDropped *prometheus.CounterVec // by reason: behind, cap
}

func newAPIMetrics(reg prometheus.Registerer) (*apiMetrics, error) {
	m := &apiMetrics{
		connsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "clearinghouse", Name: "api_conns_dropped_total",
			Help: "HTTP connections closed because the connection cap was reached (the oldest idle one, or the new one if none was idle).",
		}),
		streamsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "clearinghouse", Name: "api_event_streams_dropped_total",
			Help: "Event streams refused or ended by the server, by reason (cap: over MaxEventStreams; behind: the client did not read).",
		}, []string{"reason"}),
	}
	var err error
	if m.connsDropped, err = register(reg, m.connsDropped); err != nil {
		return nil, err
	}
	if m.streamsDropped, err = register(reg, m.streamsDropped); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered in
// its place.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			if prev, ok := are.ExistingCollector.(C); ok {
				return prev, nil
			}
		}
		return c, fmt.Errorf("api: register metrics: %w", err)
	}
	return c, nil
}

package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// Public comments through the web page (protocol/kinds_public.go for the
// record kind, docs/protocol.md for the anti-abuse design). Every node,
// an observer too, takes comments from anyone and signs them with its own
// key. Three bounds hold a flood:
//
//   - per person: a token bucket per client address (burst
//     DefaultPersonBurst, one more every DefaultPersonEvery), kept by the
//     node that accepts the comment; the comment carries the person's
//     pseudonym (an HMAC of the address under a secret of this server),
//     so readers see which comments came from one person;
//   - per node: the protocol paces a node's comments on an issue to one
//     per protocol.MinCommentInterval, and every peer refuses a comment
//     that does not keep the pace, so a node that bypasses this page
//     gains nothing;
//   - per page: only the latest maxPublicShown comments are shown;
//   - per relaying node: the operator's block list (node/blocks.go)
//     hides every record of a blocked relaying key from these pages.

// Defaults of the public comment limits.
const (
	// DefaultPersonBurst is how many comments one person may post at once.
	DefaultPersonBurst = 3
	// DefaultPersonEvery is how often one person gets one more comment.
	DefaultPersonEvery = 5 * time.Minute
	// maxPublicShown bounds the comments a page shows.
	maxPublicShown = 200
	// maxTracked bounds the clients the limiter remembers; past it, the
	// clients whose buckets are full again are forgotten.
	maxTracked = 10_000
	// loginBurst and loginEvery bound wrong sign-in tokens per client.
	loginBurst = 5
	loginEvery = time.Minute
	// maxFormBody bounds a form POST, in bytes.
	maxFormBody = 64 << 10
)

// WithCommentLimits sets how many public comments one person may post at
// once (burst >= 1) and how often one more is allowed (every > 0).
func WithCommentLimits(burst int, every time.Duration) Option {
	return func(o *options) error {
		if burst < 1 || every <= 0 {
			return errors.New("api: comment limits: burst must be >= 1 and every > 0")
		}
		o.web.personBurst, o.web.personEvery = burst, every
		return nil
	}
}

// bucket is a token bucket.
type bucket struct {
	tokens float64
	last   time.Time
}

// take refills b for the time since its last use and takes a token if
// one is there.
func (b *bucket) take(now time.Time, burst int, every time.Duration) bool {
	b.refill(now, burst, every)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (b *bucket) refill(now time.Time, burst int, every time.Duration) {
	if b.last.IsZero() {
		b.tokens = float64(burst)
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = min(float64(burst), b.tokens+float64(d)/float64(every))
	}
	b.last = now
}

// commentLimits are the per-client limits of public comments and sign-in
// attempts, guarded by mu.
type commentLimits struct {
	now    func() time.Time
	burst  int
	every  time.Duration
	secret []byte // HMAC key of person pseudonyms
	mu     sync.Mutex
	person map[string]*bucket
	login  map[string]*bucket
}

func newCommentLimits(o webOptions) *commentLimits {
	l := &commentLimits{now: o.clock, burst: o.personBurst, every: o.personEvery,
		secret: []byte(randomToken()), person: map[string]*bucket{}, login: map[string]*bucket{}}
	if l.burst == 0 {
		l.burst, l.every = DefaultPersonBurst, DefaultPersonEvery
	}
	return l
}

// allow takes a token of key's bucket in m.
func (l *commentLimits) allow(m map[string]*bucket, key string, burst int, every time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(m) >= maxTracked {
		for k, b := range m {
			if b.refill(now, burst, every); b.tokens >= float64(burst) {
				delete(m, k)
			}
		}
	}
	b := m[key]
	if b == nil {
		if len(m) >= maxTracked {
			return false // every tracked client is still limited
		}
		b = &bucket{}
		m[key] = b
	}
	return b.take(now, burst, every)
}

// personAllowed takes one comment of the client's allowance.
func (l *commentLimits) personAllowed(client string) bool {
	return l.allow(l.person, client, l.burst, l.every)
}

// loginAllowed reports whether the client may try a token now.
func (l *commentLimits) loginAllowed(client string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.login[client]
	if b == nil {
		return true
	}
	b.refill(l.now(), loginBurst, loginEvery)
	return b.tokens >= 1
}

// loginFailed counts a wrong token of the client.
func (l *commentLimits) loginFailed(client string) {
	l.allow(l.login, client, loginBurst, loginEvery)
}

// pseudonym returns the person's pseudonym at this server.
func (l *commentLimits) pseudonym(client string) []byte {
	m := hmac.New(sha256.New, l.secret)
	m.Write([]byte("clearinghouse public person\x00" + client))
	return m.Sum(nil)[:16]
}

// clientIP returns the client's address (the connection's, not any
// header a proxy may set).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// publicView is the public comments of an issue or a process, and what
// the comment form needs.
type publicView struct {
	Slug, Return, Process string
	Proposals             []pubTarget
	Comments              []*pubComment
}

// pubTarget is a proposal version a comment may be on.
type pubTarget struct {
	CID, Title string
	Version    int
}

// pubComment is one public comment and the members' responses.
type pubComment struct {
	webRec
	Name, Person, Text, Clause string
	Proposal, Process          string
	Via                        webParty
	Responses                  []webText
}

// publicComments reads the public topic of slug: every comment (of the
// process proc, if not nil) with its responses, newest first.
func (s *Server) publicComments(slug string, proc *cid.Cid) *publicView {
	v := &publicView{Slug: slug, Return: "/issues/" + slug}
	if proc != nil {
		v.Process = proc.String()
		v.Return = "/processes/" + v.Process
	}
	topic := protocol.PublicTopic(slug)
	ps := s.newParties()
	byCID := map[string]*pubComment{}
	var after uint64
	for {
		ms, err := s.n.Store().TopicRecords(topic, after, replayPage)
		if err != nil || len(ms) == 0 {
			break
		}
		for _, m := range ms {
			after = m.Arrival
			rec, err := s.cachedRecord(m.CID)
			if err != nil || s.n.Withheld(rec) {
				// Records of a relaying key this node blocks are
				// stored, not shown (node/blocks.go); a response to
				// such a comment goes with it.
				continue
			}
			wr := webRec{CID: m.CID.String(), Kind: rec.Env.Kind, By: ps.of(rec.Env.Author), Time: rec.Env.Time}
			switch b := rec.Body.(type) {
			case *protocol.PublicComment:
				if proc != nil && (b.Process == nil || !b.Process.Cid.Equals(*proc)) {
					continue
				}
				c := &pubComment{webRec: wr, Name: b.Name, Person: hex.EncodeToString(b.Person[:4]), Text: b.Text,
					Clause: b.Clause, Via: wr.By}
				if !c.Via.Member {
					c.Via.Org = text("pub.observer", hex.EncodeToString(rec.Env.Author[:4]))
				}
				if b.Proposal != nil {
					c.Proposal = b.Proposal.String()
				}
				if b.Process != nil {
					c.Process = b.Process.String()
				}
				byCID[wr.CID] = c
				v.Comments = append(v.Comments, c)
			case *protocol.PublicResponse:
				if c := byCID[b.Comment.String()]; c != nil {
					c.Responses = append(c.Responses, webText{wr, b.Text})
				}
			}
		}
	}
	slices.SortFunc(v.Comments, func(a, b *pubComment) int {
		if a.Time != b.Time {
			return int(b.Time - a.Time)
		}
		return strings.Compare(a.CID, b.CID)
	})
	if len(v.Comments) > maxPublicShown {
		v.Comments = v.Comments[:maxPublicShown]
	}
	return v
}

func (s *Server) publicRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /issues/{slug}/comments", s.webComment)
}

// localPath returns p if it is a path on this site, else fallback.
func localPath(p, fallback string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n") {
		return fallback
	}
	return p
}

func (s *Server) webComment(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	var sess *session
	if !s.n.IsObserver() {
		sess = s.web.sessions.get(r)
	}
	if !checkCSRF(r, sess) {
		s.webError(w, r, http.StatusForbidden, text("csrf.bad"))
		return
	}
	slug := r.PathValue("slug")
	if _, ok := s.issueInfo(slug); !protocol.ValidSlug(slug) || !ok {
		s.webError(w, r, http.StatusNotFound, text("err.noissue", slug))
		return
	}
	back := localPath(r.PostFormValue("return"), "/issues/"+slug)
	body := &protocol.PublicComment{Name: strings.TrimSpace(r.PostFormValue("name")),
		Text:   strings.TrimSpace(strings.ReplaceAll(r.PostFormValue("text"), "\r\n", "\n")),
		Clause: strings.TrimSpace(r.PostFormValue("clause"))}
	if p := r.PostFormValue("process"); p != "" {
		c, err := cid.Decode(p)
		if err != nil {
			s.webError(w, r, http.StatusBadRequest, text("err.notproc", p))
			return
		}
		l := protocol.LinkTo(c)
		body.Process = &l
	}
	if p := r.PostFormValue("proposal"); p != "" {
		c, err := cid.Decode(p)
		if err != nil {
			s.webError(w, r, http.StatusBadRequest, text("err.notrecord", p))
			return
		}
		l := protocol.LinkTo(c)
		body.Proposal = &l
	} else {
		body.Clause = ""
	}
	if err := s.checkTarget(slug, body); err != nil {
		s.redirectFailed(w, r, back, err.Error())
		return
	}
	ip := clientIP(r)
	body.Person = s.web.limits.pseudonym(ip)
	if err := body.Check(); err != nil {
		s.redirectFailed(w, r, back, err.Error())
		return
	}
	if !s.web.limits.personAllowed(ip) {
		s.webError(w, r, http.StatusTooManyRequests, text("pub.limited"))
		return
	}
	rec, err := s.n.PublishComment(r.Context(), slug, body)
	switch {
	case errors.Is(err, node.ErrCommentTooSoon):
		s.webError(w, r, http.StatusTooManyRequests, text("pub.limited"))
		return
	case err != nil:
		s.log.Warn("public comment not published", "issue", slug, "err", err)
		s.redirectFailed(w, r, back, err.Error())
		return
	}
	s.log.Info("public comment published", "issue", slug, "cid", rec.CID)
	s.redirectDone(w, r, back+"#public", protocol.KindPublicComment)
}

// checkTarget checks that a comment's process is one of the issue's and
// its proposal and clause one of that process's, as this node knows them,
// so no comment claims to be on something it is not.
func (s *Server) checkTarget(slug string, b *protocol.PublicComment) error {
	if b.Process == nil {
		return nil
	}
	ch, err := s.cachedRecord(b.Process.Cid)
	if err != nil || ch.Env.Kind != protocol.KindCharter || ch.Env.Topic != protocol.IssueTopic(slug) {
		return fmt.Errorf("process: %s is not a process of issue %s on this node", b.Process, slug)
	}
	if b.Proposal == nil {
		return nil
	}
	rec, err := s.cachedRecord(b.Proposal.Cid)
	prop, ok := (*protocol.Proposal)(nil), false
	if err == nil {
		prop, ok = rec.Body.(*protocol.Proposal)
	}
	if !ok || !prop.Process.Cid.Equals(b.Process.Cid) {
		return fmt.Errorf("proposal: %s is not a proposal of process %s on this node", b.Proposal, b.Process)
	}
	if b.Clause != "" && !prop.HasClause(b.Clause) {
		return fmt.Errorf("clause: version %d has no clause %q", prop.Version, b.Clause)
	}
	return nil
}

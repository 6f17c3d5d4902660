package api

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/protocol/gov"
)

// StatusView is the body of GET /status.
type StatusView struct {
	PeerID        string        `json:"peerId"`
	Key           string        `json:"key,omitempty"` // hex record signing key; empty on an observer
	Role          string        `json:"role"`
	NetworkID     string        `json:"networkId"`
	Federation    string        `json:"federation"`
	DevFederation bool          `json:"devFederation"`
	ListenAddrs   []string      `json:"listenAddrs"`
	Peers         int           `json:"peers"`
	Topics        []string      `json:"topics"`
	Records       uint64        `json:"records"`
	Bytes         uint64        `json:"bytes"`
	LastArrival   uint64        `json:"lastArrival"`
	TopicRecords  []TopicCounts `json:"topicRecords"`
	// Sync is, per topic and peer, how far behind the node was at the last
	// reconciliation (records the peer had that this node lacked).
	Sync []SyncView `json:"sync"`
}

// SyncView is the sync progress of one topic with one peer.
type SyncView struct {
	Topic   string `json:"topic"`
	Peer    string `json:"peer"`
	Lag     int    `json:"lag"`
	Fetched int    `json:"fetched"`
	Last    string `json:"last,omitempty"` // RFC 3339
	Error   string `json:"error,omitempty"`
}

// SyncReportView is the answer of POST /sync.
type SyncReportView struct {
	Peers      int `json:"peers"`
	Topics     int `json:"topics"`
	RoundTrips int `json:"roundTrips"`
	Missing    int `json:"missing"`
	Fetched    int `json:"fetched"`
	Stored     int `json:"stored"`
}

// TopicCounts is the record count of one stored topic.
type TopicCounts struct {
	Topic       string `json:"topic"`
	Records     uint64 `json:"records"`
	LastArrival uint64 `json:"lastArrival"`
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	n := s.n
	st, err := n.Store().Stats()
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	ts, err := n.Store().Topics()
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	v := StatusView{
		PeerID: n.ID().String(), Role: "member", NetworkID: n.NetworkID().String(),
		Federation: n.Genesis().Name, DevFederation: n.IsDevFederation(),
		ListenAddrs: []string{}, Peers: len(n.Host().Network().Peers()),
		Topics: n.Topics(), Records: st.Records, Bytes: st.Bytes, LastArrival: st.LastArrival,
		TopicRecords: []TopicCounts{}, Sync: []SyncView{},
	}
	for _, ts := range n.SyncStatus() {
		sv := SyncView{Topic: ts.Topic, Peer: ts.Peer.String(), Lag: ts.Lag, Fetched: ts.Fetched, Error: ts.Err}
		if !ts.Last.IsZero() {
			sv.Last = ts.Last.UTC().Format(time.RFC3339)
		}
		v.Sync = append(v.Sync, sv)
	}
	slices.Sort(v.Topics)
	if n.IsObserver() {
		v.Role = "observer"
	} else if pub := n.Host().Peerstore().PubKey(n.ID()); pub != nil {
		if pk, err := pub.Raw(); err == nil {
			v.Key = hex.EncodeToString(pk)
		}
	}
	for _, a := range n.Addrs() {
		v.ListenAddrs = append(v.ListenAddrs, a.String())
	}
	for _, t := range ts {
		v.TopicRecords = append(v.TopicRecords, TopicCounts{Topic: t.Topic, Records: t.Records, LastArrival: t.LastArrival})
	}
	writeJSON(w, http.StatusOK, v)
}

// PeerView is one connected peer.
type PeerView struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
}

func (s *Server) peers(w http.ResponseWriter, r *http.Request) {
	net := s.n.Host().Network()
	out := []PeerView{}
	for _, p := range net.Peers() {
		v := PeerView{ID: p.String(), Addrs: []string{}}
		for _, c := range net.ConnsToPeer(p) {
			v.Addrs = append(v.Addrs, c.RemoteMultiaddr().String())
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b PeerView) int { return strings.Compare(a.ID, b.ID) })
	writeJSON(w, http.StatusOK, map[string]any{"peers": out})
}

func (s *Server) members(w http.ResponseWriter, r *http.Request) {
	out := []MemberView{}
	for _, m := range s.n.Members() {
		out = append(out, memberView(m))
	}
	writeJSON(w, http.StatusOK, map[string]any{"members": out})
}

func (s *Server) issues(w http.ResponseWriter, r *http.Request) {
	topics := s.n.Topics()
	out := []IssueView{}
	for _, i := range s.n.Issues() {
		out = append(out, issueView(i, slices.Contains(topics, protocol.IssueTopic(i.Slug))))
	}
	writeJSON(w, http.StatusOK, map[string]any{"issues": out})
}

func (s *Server) processView(p *node.ProcessState) (ProcessView, error) {
	m, err := s.n.Store().Meta(p.CID())
	if err != nil {
		return ProcessView{}, err
	}
	return ProcessView{
		CID: p.CID().String(), Topic: m.Topic, Title: p.Charter().Title, Stage: p.Stage(),
		Records: p.Len(), Adopted: cidStrings(p.Adopted()),
	}, nil
}

func (s *Server) processes(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	if !protocol.ValidSlug(slug) {
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("%q is not a valid issue slug", slug), "")
		return
	}
	if !slices.ContainsFunc(s.n.Issues(), func(i gov.IssueInfo) bool { return i.Slug == slug }) {
		writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("issue %q is not open", slug), "")
		return
	}
	ps, err := s.n.Processes(slug)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	out := []ProcessView{}
	for _, p := range ps {
		v, err := s.processView(p)
		if err != nil {
			s.writeErr(w, r, err)
			return
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"issue": slug, "processes": out})
}

// pathCID parses the {cid} path value, answering 400 if it is not a CID.
func pathCID(w http.ResponseWriter, r *http.Request) (cid.Cid, bool) {
	c, err := cid.Decode(r.PathValue("cid"))
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("%q is not a CID: %v", r.PathValue("cid"), err), "")
		return cid.Undef, false
	}
	return c, true
}

func (s *Server) process(w http.ResponseWriter, r *http.Request) {
	c, ok := pathCID(w, r)
	if !ok {
		return
	}
	p, err := s.n.Process(c)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	v, err := s.processView(p)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	if rec, err := s.n.Record(c); err == nil {
		v.Charter, _ = bodyJSON(rec.Env.Body)
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) audit(w http.ResponseWriter, r *http.Request) {
	c, ok := pathCID(w, r)
	if !ok {
		return
	}
	// The canonical audit is the same on every node; ?local=true adds this
	// node's first-seen times to P2 (and so differs between nodes).
	audit := s.n.Audit
	switch r.URL.Query().Get("local") {
	case "", "false":
	case "true":
		audit = s.n.AuditLocal
	default:
		writeError(w, http.StatusBadRequest, CodeBadRequest, "local must be true or false", "")
		return
	}
	rep, err := audit(c)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	switch r.URL.Query().Get("format") {
	case "", "json":
		b, err := rep.JSON()
		if err != nil {
			s.writeErr(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	case "text":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, rep.Text())
	default:
		writeError(w, http.StatusBadRequest, CodeBadRequest, "format must be json or text", "")
	}
}

// MediaDagCBOR is the media type of a raw record.
const MediaDagCBOR = "application/vnd.ipld.dag-cbor"

func (s *Server) record(w http.ResponseWriter, r *http.Request) {
	c, ok := pathCID(w, r)
	if !ok {
		return
	}
	format := r.URL.Query().Get("format")
	if format == "" && strings.Contains(r.Header.Get("Accept"), MediaDagCBOR) {
		format = "raw"
	}
	switch format {
	case "raw":
		raw, err := s.n.Store().Get(c)
		if err != nil {
			s.writeErr(w, r, err)
			return
		}
		w.Header().Set("Content-Type", MediaDagCBOR)
		w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
		_, _ = w.Write(raw)
	case "", "json":
		v, err := s.view(c)
		if err != nil {
			s.writeErr(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	default:
		writeError(w, http.StatusBadRequest, CodeBadRequest, "format must be json or raw", "")
	}
}

// view reads a stored record and its meta.
func (s *Server) view(c cid.Cid) (*RecordView, error) {
	m, err := s.n.Store().Meta(c)
	if err != nil {
		return nil, err
	}
	rec, err := s.n.Record(c)
	if err != nil {
		return nil, err
	}
	return recordView(rec, &m)
}

// cursor parses an arrival cursor; "" is 0.
func cursor(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cursor %q: must be an arrival number", s)
	}
	return v, nil
}

// RecordPage is the body of GET /topics/{topic}/records.
type RecordPage struct {
	Topic   string        `json:"topic"`
	Records []*RecordView `json:"records"`
	// Next is the cursor of the next page: pass it as after. It equals
	// the request's after when there are no records.
	Next uint64 `json:"next"`
}

func (s *Server) topicRecords(w http.ResponseWriter, r *http.Request) {
	topic, ok := strings.CutSuffix(r.PathValue("rest"), "/records")
	if !ok {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such route: "+r.URL.Path, "")
		return
	}
	if err := protocol.ValidTopic(topic); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error(), "")
		return
	}
	q := r.URL.Query()
	after, err := cursor(q.Get("after"))
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error(), "")
		return
	}
	limit := defaultPageLimit
	if l := q.Get("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 1 || limit > maxPageLimit {
			writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("limit must be 1 to %d", maxPageLimit), "")
			return
		}
	}
	ms, err := s.n.Store().TopicRecords(topic, after, limit)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	page := RecordPage{Topic: topic, Records: []*RecordView{}, Next: after}
	for _, m := range ms {
		rec, err := s.n.Record(m.CID)
		if err != nil {
			s.writeErr(w, r, err)
			return
		}
		v, err := recordView(rec, &m)
		if err != nil {
			s.writeErr(w, r, err)
			return
		}
		page.Records = append(page.Records, v)
		page.Next = m.Arrival
	}
	writeJSON(w, http.StatusOK, page)
}

// PublishRequest is the body of POST /records.
type PublishRequest struct {
	Kind  string          `json:"kind"`
	Topic string          `json:"topic"`
	Body  json.RawMessage `json:"body"`
	// Deps are CIDs the record answers or relies on. The records a process
	// body references (its process, proposal, objection, ...) are added.
	Deps []string `json:"deps"`
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	var req PublishRequest
	if err := decodeStrict(io.LimitReader(r.Body, maxRequestBody), &req); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "request body: "+err.Error(), "")
		return
	}
	spec, ok := protocol.LookupKind(req.Kind)
	if !ok {
		writeError(w, http.StatusBadRequest, CodeUnknownKind, fmt.Sprintf("unknown record kind %q (known: %s)", req.Kind, strings.Join(protocol.Kinds(), ", ")), protocol.ReasonUnknownKind)
		return
	}
	if len(req.Body) == 0 {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "request body: body is missing", "")
		return
	}
	body := spec.New()
	if err := decodeStrict(bytes.NewReader(req.Body), body); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("body of %s: %v", req.Kind, err), "")
		return
	}
	var deps []cid.Cid
	for _, d := range req.Deps {
		c, err := cid.Decode(d)
		if err != nil {
			writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("deps: %q is not a CID", d), "")
			return
		}
		deps = append(deps, c)
	}
	for _, c := range protocol.BodyRefs(body) {
		if c.Defined() && !slices.Contains(deps, c) {
			deps = append(deps, c)
		}
	}
	for _, c := range deps {
		if ok, err := s.n.Store().Has(c); err != nil {
			s.writeErr(w, r, err)
			return
		} else if !ok {
			writeError(w, http.StatusUnprocessableEntity, CodeRejected, fmt.Sprintf("dep %s is not stored on this node", c), protocol.ReasonMissingDeps)
			return
		}
	}
	rec, err := s.n.Publish(r.Context(), req.Kind, req.Topic, body, deps...)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	s.log.Info("published record", "cid", rec.CID, "kind", req.Kind, "topic", req.Topic)
	v, err := s.view(rec.CID)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	w.Header().Set("Location", Prefix+"/records/"+rec.CID.String())
	writeJSON(w, http.StatusCreated, v)
}

// decodeStrict decodes one JSON value into v, refusing unknown fields and
// trailing data.
func decodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// sync runs an on-demand sync of every joined topic with every connected
// peer and answers with what it fetched.
func (s *Server) sync(w http.ResponseWriter, r *http.Request) {
	rep, err := s.n.Sync(r.Context())
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, SyncReportView{Peers: rep.Peers, Topics: rep.Topics, RoundTrips: rep.RoundTrips,
		Missing: rep.Missing, Fetched: rep.Fetched, Stored: rep.Stored})
}

func (s *Server) follow(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	if !protocol.ValidSlug(slug) {
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("%q is not a valid issue slug", slug), "")
		return
	}
	if err := s.n.Follow(slug); err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"issue": slug, "topic": protocol.IssueTopic(slug), "following": true})
}

func (s *Server) unfollow(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	if !protocol.ValidSlug(slug) {
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("%q is not a valid issue slug", slug), "")
		return
	}
	if err := s.n.Unfollow(slug); err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"issue": slug, "topic": protocol.IssueTopic(slug), "following": false})
}

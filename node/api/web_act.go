package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// Acting from the page, on a member node only (an observer registers
// none of these routes): a signed-in user publishes records signed by the
// node, exactly as POST /api/v1/records would. Every action is a form
// POST with the session's CSRF token; the answer redirects back to the
// page (303), with what was published or why not in a flash cookie.
//
//	POST /processes/{cid}/act/{action}   feedback, endorse, withdraw,
//	                                     object, respond, version, stage,
//	                                     notice
//	POST /public/{cid}/respond           a response to a public comment

func (s *Server) actRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /processes/{cid}/act/{action}", s.webAct)
	mux.HandleFunc("POST /public/{cid}/respond", s.webRespondPublic)
}

// actSession checks the session and the CSRF token of a member form.
func (s *Server) actSession(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	sess := s.web.sessions.get(r)
	if sess == nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return false
	}
	if !checkCSRF(r, sess) {
		s.webError(w, r, http.StatusForbidden, text("csrf.bad"))
		return false
	}
	return true
}

// formCID reads a CID form field.
func formCID(r *http.Request, name string) (cid.Cid, error) {
	c, err := cid.Decode(r.PostFormValue(name))
	if err != nil {
		return cid.Undef, fmt.Errorf("%s: not a record id", name)
	}
	return c, nil
}

// formText reads a text field, with Windows line ends made Unix.
func formText(r *http.Request, name string) string {
	return strings.TrimSpace(strings.ReplaceAll(r.PostFormValue(name), "\r\n", "\n"))
}

// parseClauses reads clauses written one a line as "id: text".
func parseClauses(s string) ([]protocol.Clause, error) {
	var out []protocol.Clause
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		id, t, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("clauses: line %d: want \"id: text\"", i+1)
		}
		out = append(out, protocol.Clause{ID: strings.TrimSpace(id), Text: strings.TrimSpace(t)})
	}
	return out, nil
}

func (s *Server) webAct(w http.ResponseWriter, r *http.Request) {
	if !s.actSession(w, r) {
		return
	}
	pc, err := cid.Decode(r.PathValue("cid"))
	if err != nil {
		s.webError(w, r, http.StatusNotFound, text("err.notproc", r.PathValue("cid")))
		return
	}
	p, err := s.n.Process(pc)
	if err != nil {
		s.webError(w, r, http.StatusNotFound, text("err.noproc", pc))
		return
	}
	back := "/processes/" + pc.String()
	proc := protocol.LinkTo(pc)
	kind, body, deps, err := s.actBody(r, r.PathValue("action"), proc, p.Charter())
	if err != nil {
		s.redirectFailed(w, r, back, err.Error())
		return
	}
	topic := ""
	if ch, err := s.cachedRecord(pc); err == nil {
		topic = ch.Env.Topic
	}
	rec, err := s.n.Publish(r.Context(), kind, topic, body, append([]cid.Cid{pc}, deps...)...)
	if err != nil {
		s.redirectFailed(w, r, back, err.Error())
		return
	}
	s.log.Info("published from the web page", "kind", kind, "cid", rec.CID)
	s.redirectDone(w, r, back, kind)
}

// actBody builds the record of a process action from its form.
func (s *Server) actBody(r *http.Request, action string, proc protocol.Link, ch *protocol.Charter) (string, protocol.Body, []cid.Cid, error) {
	prop := func() (protocol.Link, []cid.Cid, error) {
		c, err := formCID(r, "proposal")
		return protocol.LinkTo(c), []cid.Cid{c}, err
	}
	switch action {
	case "feedback":
		l, deps, err := prop()
		return protocol.KindFeedback, &protocol.Feedback{Process: proc, Proposal: l, Stance: r.PostFormValue("stance"),
			Reason: formText(r, "reason"), Clause: strings.TrimSpace(r.PostFormValue("clause"))}, deps, err
	case "endorse":
		l, deps, err := prop()
		return protocol.KindEndorse, &protocol.Endorse{Process: proc, Proposal: l}, deps, err
	case "withdraw":
		l, deps, err := prop()
		return protocol.KindWithdraw, &protocol.Withdraw{Process: proc, Proposal: l}, deps, err
	case "object":
		l, deps, err := prop()
		return protocol.KindObjection, &protocol.Objection{Process: proc, Proposal: l, Text: formText(r, "text")}, deps, err
	case "respond":
		c, err := formCID(r, "objection")
		return protocol.KindResponse, &protocol.Response{Process: proc, Objection: protocol.LinkTo(c), Text: formText(r, "text")}, []cid.Cid{c}, err
	case "version":
		clauses, err := parseClauses(formText(r, "clauses"))
		if err != nil {
			return "", nil, nil, err
		}
		b := &protocol.Proposal{Process: proc, Version: 1, Title: formText(r, "title"), Text: formText(r, "text"), Clauses: clauses}
		var deps []cid.Cid
		if r.PostFormValue("replaces") != "" {
			c, err := formCID(r, "replaces")
			if err != nil {
				return "", nil, nil, err
			}
			prev, err := s.cachedRecord(c)
			if err != nil {
				return "", nil, nil, err
			}
			pb, ok := prev.Body.(*protocol.Proposal)
			if !ok {
				return "", nil, nil, fmt.Errorf("replaces: %s is not a proposal", c)
			}
			l := protocol.LinkTo(c)
			b.Version, b.Replaces, deps = pb.Version+1, &l, []cid.Cid{c}
		}
		return protocol.KindProposal, b, deps, nil
	case "stage":
		return protocol.KindStage, &protocol.StageChange{Process: proc, To: r.PostFormValue("to")}, nil, nil
	case "notice":
		d, err := time.Parse("2006-01-02", r.PostFormValue("date"))
		if err != nil {
			return "", nil, nil, errors.New("date: want YYYY-MM-DD")
		}
		return protocol.KindNotice, &protocol.Notice{Process: proc, Subject: r.PostFormValue("subject"),
			Date: d.UnixMilli(), Text: formText(r, "text")}, nil, nil
	}
	return "", nil, nil, fmt.Errorf("no action %q", action)
}

func (s *Server) webRespondPublic(w http.ResponseWriter, r *http.Request) {
	if !s.actSession(w, r) {
		return
	}
	c, err := cid.Decode(r.PathValue("cid"))
	if err != nil {
		s.webError(w, r, http.StatusNotFound, text("err.notrecord", r.PathValue("cid")))
		return
	}
	rec, err := s.cachedRecord(c)
	if err != nil || rec.Env.Kind != protocol.KindPublicComment || s.n.Withheld(rec) {
		s.webError(w, r, http.StatusNotFound, text("err.norecord", c))
		return
	}
	slug, _ := protocol.PublicSlug(rec.Env.Topic)
	back := localPath(r.PostFormValue("return"), "/issues/"+slug)
	out, err := s.n.Publish(r.Context(), protocol.KindPublicResponse, rec.Env.Topic,
		&protocol.PublicResponse{Comment: protocol.LinkTo(c), Text: formText(r, "text")}, c)
	if err != nil {
		s.redirectFailed(w, r, back, err.Error())
		return
	}
	s.log.Info("published from the web page", "kind", protocol.KindPublicResponse, "cid", out.CID)
	s.redirectDone(w, r, back+"#public", protocol.KindPublicResponse)
}

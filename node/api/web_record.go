package api

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// recordPage is the record page's data.
type recordPage struct {
	CID, Kind, Topic, Prev string
	By                     webParty
	Seq                    uint64
	Time, FirstSeen        int64
	Deps                   []string
	SigOK                  bool
	SigErr                 string
	Fields                 []field
	Process, Slug          string
}

// field is one decoded body field; Link is set when its value is a CID.
type field struct {
	Name, Value string
	Links       []string
}

func (s *Server) webRecord(w http.ResponseWriter, r *http.Request) {
	c, err := cid.Decode(r.PathValue("cid"))
	if err != nil {
		s.webError(w, r, http.StatusNotFound, text("err.notrecord", r.PathValue("cid")))
		return
	}
	rec, err := s.cachedRecord(c)
	if err != nil {
		s.webError(w, r, http.StatusNotFound, text("err.norecord", c))
		return
	}
	if s.n.Withheld(rec) {
		s.webError(w, r, http.StatusNotFound, text("err.withheld", c))
		return
	}
	v := recordPage{CID: c.String(), Kind: rec.Env.Kind, Topic: rec.Env.Topic, Seq: rec.Env.Seq,
		Time: rec.Env.Time, By: s.partyOf(s.n.MemberSet(), rec.Env.Author), Deps: cidStrings(rec.DepCIDs())}
	if p := rec.PrevCID(); p.Defined() {
		v.Prev = p.String()
	}
	if m, err := s.n.Store().Meta(c); err == nil {
		v.FirstSeen = m.FirstSeen
	}
	// The store checked the bytes against the CID; the signature is
	// checked again here, for the reader.
	if err := rec.Verify(); err != nil {
		v.SigErr = err.Error()
	} else {
		v.SigOK = true
	}
	if proc, _, ok := protocol.ProcessRefs(rec.Body); ok {
		v.Process = proc.String()
	}
	if slug, ok := protocol.IssueSlug(rec.Env.Topic); ok {
		v.Slug = slug
	} else if slug, ok := protocol.PublicSlug(rec.Env.Topic); ok {
		v.Slug = slug
	}
	body, err := bodyJSON(rec.Env.Body)
	if err == nil {
		v.Fields = fields("", body)
	}
	s.render(w, r, http.StatusOK, "record", text("rec.title", shortCID(v.CID)), v)
}

// fields flattens a body's JSON form into named fields; links become
// record links, nested maps and lists dotted names.
func fields(prefix string, v any) []field {
	switch x := v.(type) {
	case map[string]any:
		if l, ok := x["/"].(string); ok && len(x) == 1 {
			return []field{{Name: prefix, Links: []string{l}}}
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var out []field
		for _, k := range keys {
			name := k
			if prefix != "" {
				name = prefix + "." + k
			}
			out = append(out, fields(name, x[k])...)
		}
		return out
	case []any:
		if len(x) == 0 {
			return []field{{Name: prefix, Value: "–"}}
		}
		var out []field
		for i, e := range x {
			out = append(out, fields(prefix+"["+strconv.Itoa(i)+"]", e)...)
		}
		return out
	case nil:
		return []field{{Name: prefix, Value: "–"}}
	}
	return []field{{Name: prefix, Value: fmt.Sprint(v)}}
}

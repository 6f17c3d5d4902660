package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/opendata"
)

// HeaderBlocks is the response header of GET /export/car that gives the
// number of blocks the archive holds, the genesis included, so that a
// client can show its progress.
const HeaderBlocks = "Clearinghouse-Blocks"

// exportRoutes registers the open-data routes (docs/api.md, "Open data"):
// CAR archives and flat tables, streamed. They are reads, served without a
// token by members and observers alike.
func (s *Server) exportRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+Prefix+"/export/car", s.exportCAR)
	mux.HandleFunc("GET "+Prefix+"/export/tables", s.exportTableList)
	mux.HandleFunc("GET "+Prefix+"/export/tables/{table}", s.exportTable)
}

// streaming lifts the server's write deadline, if any, for a response
// whose length grows with the store.
func streaming(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
}

// abort ends a response that has started: the client sees a cut stream,
// never a short file that looks complete.
func (s *Server) abort(r *http.Request, what string, err error) {
	if r.Context().Err() != nil {
		// The client went away, or the server is closing.
		s.log.Debug("export aborted", "export", what, "path", r.URL.Path, "err", err)
	} else {
		s.log.Warn("export aborted", "export", what, "path", r.URL.Path, "err", err)
	}
	panic(http.ErrAbortHandler)
}

// exportCAR serves a CARv1 archive: the whole federation, one topic
// (?topic=) or one process (?process=).
func (s *Server) exportCAR(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	topic, proc := q.Get("topic"), q.Get("process")
	var (
		sel  opendata.Selection
		err  error
		name = "federation"
	)
	switch {
	case topic != "" && proc != "":
		writeError(w, http.StatusBadRequest, CodeBadRequest, "give topic or process, not both", "")
		return
	case topic != "":
		if sel, err = opendata.SelectTopic(s.n, topic); err != nil {
			s.exportErr(w, r, err)
			return
		}
		name = strings.ReplaceAll(topic, "/", "-")
	case proc != "":
		c, err := cid.Decode(proc)
		if err != nil {
			writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("process %q is not a CID: %v", proc, err), "")
			return
		}
		if sel, err = opendata.SelectProcess(r.Context(), s.n, c); err != nil {
			s.writeErr(w, r, err)
			return
		}
		name = "process-" + c.String()
	}
	plan, err := opendata.NewPlan(r.Context(), s.n.Store(), s.n.Genesis(), sel)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	streaming(w)
	h := w.Header()
	h.Set(HeaderBlocks, strconv.Itoa(plan.Blocks()))
	h.Set("Content-Type", opendata.MediaCAR+"; version=1")
	h.Set("Content-Disposition", `attachment; filename="`+name+`.car"`)
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	p, err := plan.WriteCAR(r.Context(), w, nil)
	if err != nil {
		s.abort(r, "car", err)
	}
	s.log.Info("exported car", "selection", name, "blocks", p.Blocks, "bytes", p.Bytes)
}

// exportErr maps a selection error.
func (s *Server) exportErr(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, opendata.ErrUnknownTopic) {
		writeError(w, http.StatusNotFound, CodeNotFound, err.Error(), "")
		return
	}
	if errors.Is(err, opendata.ErrBadTopic) {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error(), "")
		return
	}
	s.writeErr(w, r, err)
}

// TableView describes one flat table in GET /export/tables.
type TableView struct {
	Name    string            `json:"name"`
	Columns []opendata.Column `json:"columns"`
}

func (s *Server) exportTableList(w http.ResponseWriter, r *http.Request) {
	out := []TableView{}
	for _, name := range opendata.Tables() {
		cols, _ := opendata.Columns(name)
		out = append(out, TableView{Name: name, Columns: cols})
	}
	writeJSON(w, http.StatusOK, map[string]any{"tables": out, "formats": []string{opendata.FormatJSONL, opendata.FormatCSV}})
}

// exportTable serves one flat table as JSON Lines (default) or CSV.
func (s *Server) exportTable(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("table")
	format := r.URL.Query().Get("format")
	if format == "" {
		format = opendata.FormatJSONL
	}
	if _, err := opendata.Columns(name); err != nil {
		writeError(w, http.StatusNotFound, CodeNotFound, err.Error(), "")
		return
	}
	var ctype string
	switch format {
	case opendata.FormatJSONL:
		ctype = "application/jsonl; charset=utf-8"
	case opendata.FormatCSV:
		ctype = "text/csv; charset=utf-8; header=present"
	default:
		writeError(w, http.StatusBadRequest, CodeBadRequest, "format must be jsonl or csv", "")
		return
	}
	streaming(w)
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", `attachment; filename="`+name+"."+format+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rows, err := opendata.WriteTable(r.Context(), w, s.n, name, format)
	if err != nil {
		s.abort(r, "table", err)
	}
	s.log.Info("exported table", "table", name, "format", format, "rows", rows)
}

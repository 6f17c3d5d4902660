package opendata

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// Flat formats.
const (
	FormatJSONL = "jsonl"
	FormatCSV   = "csv"
)

// ErrUnknownTable is returned by WriteTable for a table name not in Tables.
var ErrUnknownTable = errors.New("opendata: unknown table")

// ErrUnknownFormat is returned by WriteTable for a format other than jsonl
// and csv.
var ErrUnknownFormat = errors.New("opendata: unknown format (want jsonl or csv)")

// TimeFormat is the format of every time in the tables: RFC 3339 in UTC,
// with milliseconds (records carry unix milliseconds).
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Column is one column of a table: its name and the kind of its values.
type Column struct {
	Name string `json:"name"`
	// Type is "text", "int", "bool", "time" (TimeFormat), "cid" (base32
	// CIDv1 text), "key" (64 hex digits), or "list" (a JSON array of text:
	// an array in JSON Lines, its JSON text in CSV).
	Type string `json:"type"`
}

// recordColumns start every table of records.
var recordColumns = []Column{
	{"cid", "cid"}, {"time", "time"}, {"author", "key"}, {"org", "text"}, {"group", "text"}, {"region", "text"},
}

// processColumns follow recordColumns in the tables of process records.
var processColumns = []Column{{"issue", "text"}, {"process", "cid"}}

// table is one flat table: the record kinds it is made of, its columns
// after the common ones, and how a record becomes a row.
type table struct {
	kinds []string
	cols  []Column
	row   func(t *tableCtx, r *protocol.Record) []any
}

// tableCtx is what rows are computed from: the node's derived state at
// the start of the export.
type tableCtx struct {
	n       *node.Node
	members *protocol.MemberSet
	opens   map[cid.Cid]bool // the issue.open that won each slug
}

var tables = map[string]table{
	"issues": {
		kinds: []string{protocol.KindIssueOpen},
		cols:  []Column{{"slug", "text"}, {"title", "text"}, {"summary", "text"}, {"status", "text"}},
		row: func(t *tableCtx, r *protocol.Record) []any {
			b := r.Body.(*protocol.IssueOpen)
			status := "contender"
			if t.opens[r.CID] {
				status = "open"
			}
			return []any{b.Slug, b.Title, b.Summary, status}
		},
	},
	"processes": {
		kinds: []string{protocol.KindCharter},
		cols: []Column{{"issue", "text"}, {"title", "text"}, {"aim", "text"}, {"purpose", "text"}, {"scope", "list"},
			{"modalities", "text"}, {"significance", "text"}, {"convenors", "list"}, {"rule", "text"},
			{"threshold", "int"}, {"rule_group", "text"}, {"mandate", "cid"}, {"min_notice_seconds", "int"},
			{"window_seconds", "int"}, {"stage", "text"}, {"adopted", "list"}, {"records", "int"}},
		row: func(t *tableCtx, r *protocol.Record) []any {
			b := r.Body.(*protocol.Charter)
			slug, _ := protocol.IssueSlug(r.Env.Topic)
			conv := make([]string, len(b.Convenors))
			for i, k := range b.Convenors {
				conv[i] = hex.EncodeToString(k)
			}
			stage, adopted, records := "", []string{}, 0
			if p, err := t.n.Process(r.CID); err == nil {
				stage, records = p.Stage(), p.Len()
				for _, c := range p.Adopted() {
					adopted = append(adopted, c.String())
				}
			}
			return []any{slug, b.Title, b.Aim, b.Purpose, nonNil(b.Scope), b.Modalities, b.Significance, conv,
				b.Rule.Name, b.Rule.Threshold, b.Rule.Group, optCID(b.Mandate), b.MinNoticeSeconds, b.WindowSeconds,
				stage, adopted, records}
		},
	},
	"proposals": {
		kinds: []string{protocol.KindProposal},
		cols: []Column{{"version", "int"}, {"replaces", "cid"}, {"title", "text"}, {"text", "text"}, {"clauses", "list"},
			{"rule", "text"}, {"adopted", "bool"}},
		row: func(t *tableCtx, r *protocol.Record) []any {
			b := r.Body.(*protocol.Proposal)
			clauses := make([]string, len(b.Clauses))
			for i, c := range b.Clauses {
				clauses[i] = c.ID
			}
			rule := ""
			if b.Rule != nil {
				rule = b.Rule.Name
			}
			adopted := false
			if p, err := t.n.Process(b.Process.Cid); err == nil {
				adopted = slices.ContainsFunc(p.Adopted(), r.CID.Equals)
			}
			return []any{b.Version, optCID(b.Replaces), b.Title, b.Text, clauses, rule, adopted}
		},
	},
	"feedback": {
		kinds: []string{protocol.KindFeedback, protocol.KindObjection},
		cols:  []Column{{"proposal", "cid"}, {"stance", "text"}, {"clause", "text"}, {"reason", "text"}, {"formal", "bool"}},
		row: func(t *tableCtx, r *protocol.Record) []any {
			if b, ok := r.Body.(*protocol.Objection); ok {
				return []any{b.Proposal.String(), protocol.StanceObjection, "", b.Text, true}
			}
			b := r.Body.(*protocol.Feedback)
			return []any{b.Proposal.String(), b.Stance, b.Clause, b.Reason, false}
		},
	},
	"endorsements": {
		kinds: []string{protocol.KindEndorse, protocol.KindWithdraw},
		cols:  []Column{{"proposal", "cid"}, {"action", "text"}},
		row: func(t *tableCtx, r *protocol.Record) []any {
			if b, ok := r.Body.(*protocol.Withdraw); ok {
				return []any{b.Proposal.String(), "withdraw"}
			}
			return []any{r.Body.(*protocol.Endorse).Proposal.String(), "endorse"}
		},
	},
	"decisions": {
		kinds: []string{protocol.KindDecision},
		cols:  []Column{{"proposal", "cid"}, {"summary", "text"}},
		row: func(t *tableCtx, r *protocol.Record) []any {
			b := r.Body.(*protocol.Decision)
			return []any{b.Proposal.String(), b.Summary}
		},
	},
}

// memberColumns are the columns of the members table.
var memberColumns = []Column{
	{"cid", "cid"}, {"time", "time"}, {"key", "key"}, {"first_key", "key"}, {"org", "text"}, {"group", "text"},
	{"region", "text"}, {"contact", "text"}, {"status", "text"}, {"removed_by", "cid"}, {"keys", "int"}, {"flags", "list"},
}

// Tables returns the names of the flat tables, sorted.
func Tables() []string {
	out := []string{"members"}
	for name := range tables {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Columns returns the columns of a table, or ErrUnknownTable.
func Columns(name string) ([]Column, error) {
	if name == "members" {
		return memberColumns, nil
	}
	t, ok := tables[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (tables: %v)", ErrUnknownTable, name, Tables())
	}
	cols := slices.Concat(recordColumns, t.cols)
	if t.kinds[0] != protocol.KindIssueOpen && t.kinds[0] != protocol.KindCharter {
		cols = slices.Concat(recordColumns, processColumns, t.cols)
	}
	return cols, nil
}

// WriteTable writes one flat table of n's records to w in format (jsonl
// or csv): a CSV starts with a header line of the column names; a JSON
// Lines row is an object with the columns in order. Rows of records come in
// the order the node stored them (a causal order); every row carries the
// CID of the record it comes from (for members, of the application that
// admitted the member, or the network id for a founder). Records are read
// from the store in pages, so memory does not grow with the table. It
// returns the number of rows written.
func WriteTable(ctx context.Context, w io.Writer, n *node.Node, name, format string) (int, error) {
	cols, err := Columns(name)
	if err != nil {
		return 0, err
	}
	var rw rowWriter
	bw := bufio.NewWriterSize(w, 64<<10)
	switch format {
	case FormatJSONL:
		rw = &jsonlWriter{w: bw, cols: cols}
	case FormatCSV:
		cw := csv.NewWriter(bw)
		rw = &csvWriter{w: cw, cols: cols}
		names := make([]string, len(cols))
		for i, c := range cols {
			names[i] = c.Name
		}
		if err := cw.Write(names); err != nil {
			return 0, err
		}
	default:
		return 0, fmt.Errorf("%w: %q", ErrUnknownFormat, format)
	}
	tc := &tableCtx{n: n, members: n.MemberSet(), opens: map[cid.Cid]bool{}}
	for _, is := range n.Issues() {
		tc.opens[is.Open] = true
	}
	rows := 0
	if name == "members" {
		rows, err = writeMembers(tc, rw)
	} else {
		rows, err = writeRecords(ctx, tc, tables[name], rw)
	}
	if err == nil {
		err = rw.flush()
	}
	if err == nil {
		err = bw.Flush()
	}
	return rows, err
}

func writeRecords(ctx context.Context, tc *tableCtx, t table, rw rowWriter) (int, error) {
	st := tc.n.Store()
	rows := 0
	for _, kind := range t.kinds {
		var after uint64
		for {
			if err := ctx.Err(); err != nil {
				return rows, err
			}
			metas, err := st.ByKind(kind, after, 1000)
			if err != nil {
				return rows, fmt.Errorf("opendata: read %s records: %w", kind, err)
			}
			if len(metas) == 0 {
				break
			}
			for _, m := range metas {
				after = m.Arrival
				r, err := tc.n.Record(m.CID)
				if err != nil {
					return rows, err
				}
				vals := tc.common(r)
				if slug, ok := protocol.IssueSlug(r.Env.Topic); ok && kind != protocol.KindCharter {
					proc, _, _ := protocol.ProcessRefs(r.Body)
					vals = append(vals, slug, proc.String())
				}
				vals = append(vals, t.row(tc, r)...)
				if err := rw.write(vals); err != nil {
					return rows, err
				}
				rows++
			}
		}
	}
	return rows, nil
}

// common returns the values of recordColumns for r.
func (t *tableCtx) common(r *protocol.Record) []any {
	org, group, region := "", "", ""
	if m, ok := t.members.KeyHistory(r.Env.Author); ok {
		org, group, region = m.Org, m.Group, m.Region
	}
	return []any{r.CID.String(), fmtTime(r.Env.Time), hex.EncodeToString(r.Env.Author), org, group, region}
}

func writeMembers(tc *tableCtx, rw rowWriter) (int, error) {
	g := tc.n.Genesis()
	rows := 0
	write := func(m protocol.MemberInfo, status string) error {
		c, at := tc.n.NetworkID().String(), g.Created
		if m.Application != nil {
			c = m.Application.String()
			if meta, err := tc.n.Store().Meta(m.Application.Cid); err == nil {
				at = meta.Time
			}
		}
		first := m.Key
		if len(m.Keys) > 0 {
			first = m.Keys[0].Key
		}
		flags := []string{}
		for _, f := range m.Flags {
			flags = append(flags, f.String())
		}
		rows++
		return rw.write([]any{c, fmtTime(at), hex.EncodeToString(m.Key), hex.EncodeToString(first), m.Org, m.Group,
			m.Region, m.Contact, status, optCID(m.Removed), len(m.Keys), flags})
	}
	for _, m := range tc.members.Members() {
		if err := write(m, "member"); err != nil {
			return rows, err
		}
	}
	for _, m := range tc.members.Former() {
		if err := write(m, "former"); err != nil {
			return rows, err
		}
	}
	return rows, nil
}

func fmtTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(TimeFormat) }

func optCID(l *protocol.Link) string {
	if l == nil {
		return ""
	}
	return l.String()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// rowWriter writes rows of values in column order.
type rowWriter interface {
	write(vals []any) error
	flush() error
}

type jsonlWriter struct {
	w    *bufio.Writer
	cols []Column
	buf  []byte
}

func (j *jsonlWriter) write(vals []any) error {
	b := append(j.buf[:0], '{')
	for i, v := range vals {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, j.cols[i].Name)
		b = append(b, ':')
		enc, err := marshal(v)
		if err != nil {
			return err
		}
		b = append(b, enc...)
	}
	b = append(b, '}', '\n')
	j.buf = b
	_, err := j.w.Write(b)
	return err
}

func (j *jsonlWriter) flush() error { return nil }

// marshal encodes a value as JSON without HTML escaping.
func marshal(v any) ([]byte, error) {
	var sb jsonBuf
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return sb.b[:len(sb.b)-1], nil // Encode appends a newline
}

type jsonBuf struct{ b []byte }

func (j *jsonBuf) Write(p []byte) (int, error) { j.b = append(j.b, p...); return len(p), nil }

type csvWriter struct {
	w    *csv.Writer
	cols []Column
	rec  []string
}

func (c *csvWriter) write(vals []any) error {
	c.rec = c.rec[:0]
	for _, v := range vals {
		switch x := v.(type) {
		case string:
			c.rec = append(c.rec, x)
		case int:
			c.rec = append(c.rec, strconv.Itoa(x))
		case int64:
			c.rec = append(c.rec, strconv.FormatInt(x, 10))
		case bool:
			c.rec = append(c.rec, strconv.FormatBool(x))
		case []string:
			b, err := marshal(x)
			if err != nil {
				return err
			}
			c.rec = append(c.rec, string(b))
		default:
			return fmt.Errorf("opendata: no CSV form for %T", v)
		}
	}
	return c.w.Write(c.rec)
}

func (c *csvWriter) flush() error {
	c.w.Flush()
	return c.w.Error()
}

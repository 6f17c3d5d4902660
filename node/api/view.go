package api

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/protocol/gov"
	"github.com/clearinghouse-net/clearinghouse/store"
)

// RecordView is the JSON view of a record.
type RecordView struct {
	CID    string   `json:"cid"`
	Kind   string   `json:"kind"`
	Topic  string   `json:"topic"`
	Author string   `json:"author"` // hex ed25519 public key
	Seq    uint64   `json:"seq"`
	Prev   string   `json:"prev,omitempty"`
	Deps   []string `json:"deps"`
	Time   string   `json:"time"` // claimed time, RFC 3339
	// Body is the body as JSON: the DAG-CBOR keys, links as {"/": cid},
	// byte strings as base64 (as POST /records takes them).
	Body any       `json:"body"`
	Meta *MetaView `json:"meta,omitempty"`
}

// MetaView is what this node recorded when it stored a record.
type MetaView struct {
	// Arrival is the node's arrival number: the cursor of lists and events.
	Arrival uint64 `json:"arrival"`
	// FirstSeen is when this node first stored the record, RFC 3339.
	FirstSeen string `json:"firstSeen"`
	Size      int    `json:"size"`
}

// TimeLayout is the layout of every time in the API's JSON: RFC 3339 in
// UTC with exactly three fraction digits (milliseconds, the precision of
// record times), so that all times have the same width.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

func rfc3339(ms int64) string { return time.UnixMilli(ms).UTC().Format(TimeLayout) }

func cidStrings(cs []cid.Cid) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.String())
	}
	return out
}

// recordView builds the JSON view of r with its store meta, if m is not nil.
func recordView(r *protocol.Record, m *store.Meta) (*RecordView, error) {
	body, err := bodyJSON(r.Env.Body)
	if err != nil {
		return nil, fmt.Errorf("api: record %s body: %w", r.CID, err)
	}
	v := &RecordView{
		CID: r.CID.String(), Kind: r.Env.Kind, Topic: r.Env.Topic,
		Author: hex.EncodeToString(r.Env.Author), Seq: r.Env.Seq,
		Deps: cidStrings(r.DepCIDs()), Time: rfc3339(r.Env.Time), Body: body,
	}
	if p := r.PrevCID(); p.Defined() {
		v.Prev = p.String()
	}
	if m != nil {
		v.Meta = &MetaView{Arrival: m.Arrival, FirstSeen: rfc3339(m.FirstSeen), Size: m.Size}
	}
	return v, nil
}

// bodyJSON turns a DAG-CBOR body into a JSON-encodable value.
func bodyJSON(raw cbor.RawMessage) (any, error) {
	var v any
	if err := cbor.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return toJSON(v)
}

func toJSON(v any) (any, error) {
	switch x := v.(type) {
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("map key %v is not a string", k)
			}
			j, err := toJSON(e)
			if err != nil {
				return nil, err
			}
			out[ks] = j
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			j, err := toJSON(e)
			if err != nil {
				return nil, err
			}
			out[i] = j
		}
		return out, nil
	case cbor.Tag:
		b, ok := x.Content.([]byte)
		if x.Number != 42 || !ok || len(b) < 2 || b[0] != 0 {
			return nil, fmt.Errorf("unexpected tag %d", x.Number)
		}
		c, err := cid.Cast(b[1:])
		if err != nil {
			return nil, err
		}
		return map[string]string{"/": c.String()}, nil
	case []byte:
		return base64.StdEncoding.EncodeToString(x), nil
	default:
		return v, nil
	}
}

// MemberView is the JSON view of a member.
type MemberView struct {
	Key         string    `json:"key"` // hex
	Org         string    `json:"org"`
	Group       string    `json:"group"`
	Region      string    `json:"region"`
	Contact     string    `json:"contact,omitempty"`
	Application string    `json:"application,omitempty"`
	Keys        []KeyView `json:"keys"`
	Removed     string    `json:"removed,omitempty"`
	Flags       []string  `json:"flags"`
}

// KeyView is one key of a member's key history.
type KeyView struct {
	Key   string `json:"key"`
	From  string `json:"from,omitempty"`
	Until string `json:"until,omitempty"`
}

func linkString(l *protocol.Link) string {
	if l == nil {
		return ""
	}
	return l.String()
}

func memberView(m protocol.MemberInfo) MemberView {
	v := MemberView{
		Key: hex.EncodeToString(m.Key), Org: m.Org, Group: m.Group, Region: m.Region, Contact: m.Contact,
		Application: linkString(m.Application), Removed: linkString(m.Removed),
		Keys: []KeyView{}, Flags: []string{},
	}
	for _, k := range m.Keys {
		v.Keys = append(v.Keys, KeyView{Key: hex.EncodeToString(k.Key), From: linkString(k.From), Until: linkString(k.Until)})
	}
	for _, f := range m.Flags {
		v.Flags = append(v.Flags, f.String())
	}
	return v
}

// PartyView is a member as a record's causal past knows it.
type PartyView struct {
	Key    string `json:"key"`
	Org    string `json:"org"`
	Group  string `json:"group"`
	Region string `json:"region"`
}

// IssueView is the JSON view of an open issue.
type IssueView struct {
	Slug       string    `json:"slug"`
	Topic      string    `json:"topic"`
	Title      string    `json:"title"`
	Summary    string    `json:"summary"`
	Open       string    `json:"open"`
	Author     PartyView `json:"author"`
	Time       string    `json:"time"`
	Contenders []string  `json:"contenders"`
	Following  bool      `json:"following"`
}

func issueView(i gov.IssueInfo, following bool) IssueView {
	a := i.Author
	return IssueView{
		Slug: i.Slug, Topic: protocol.IssueTopic(i.Slug), Title: i.Title, Summary: i.Summary,
		Open: i.Open.String(), Time: rfc3339(i.Time), Contenders: cidStrings(i.Contenders),
		Author:    PartyView{Key: hex.EncodeToString(a.Key), Org: a.Org, Group: a.Group, Region: a.Region},
		Following: following,
	}
}

// ProcessView is the JSON view of a process's derived state.
type ProcessView struct {
	CID     string   `json:"cid"`
	Topic   string   `json:"topic"`
	Title   string   `json:"title"`
	Stage   string   `json:"stage"`
	Records int      `json:"records"`
	Adopted []string `json:"adopted"`
	// Phases are the charter's planned phases, with RFC 3339 times.
	Phases []PhaseView `json:"phases"`
	// Charter is the charter body, as in RecordView.Body; only in
	// GET /processes/{cid}.
	Charter any `json:"charter,omitempty"`
}

// PhaseView is a planned phase of a process's charter.
type PhaseView struct {
	Stage string `json:"stage"`
	Start string `json:"start"` // RFC 3339
	End   string `json:"end"`   // RFC 3339
}

func phaseViews(ps []protocol.Phase) []PhaseView {
	out := make([]PhaseView, 0, len(ps))
	for _, p := range ps {
		out = append(out, PhaseView{Stage: p.Stage, Start: rfc3339(p.Start), End: rfc3339(p.End)})
	}
	return out
}

package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	stdnet "net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/node/api"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// sseEvent is one received event.
type sseEvent struct {
	id  uint64
	rec api.RecordView
}

// stream is an open event stream; events arrive on C until Close.
type stream struct {
	C      chan sseEvent
	cancel context.CancelFunc
	done   chan struct{}
}

func (s *stream) Close() { s.cancel(); <-s.done }

// openStream connects to the event stream. When it returns, the server has
// subscribed: every record stored from then on will be delivered.
func openStream(t *testing.T, ctx context.Context, url, lastID string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header)
	}
	s := &stream{C: make(chan sseEvent, 100), cancel: cancel, done: make(chan struct{})}
	t.Cleanup(s.Close)
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var ev sseEvent
		var data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				ev.id, _ = strconv.ParseUint(line[4:], 10, 64)
			case strings.HasPrefix(line, "data: "):
				data = line[6:]
			case line == "" && data != "":
				if err := json.Unmarshal([]byte(data), &ev.rec); err != nil {
					t.Errorf("event data: %v", err)
					return
				}
				select {
				case s.C <- ev:
				case <-ctx.Done():
					return
				}
				ev, data = sseEvent{}, ""
			}
		}
	}()
	return s
}

// next waits for the next event.
func (s *stream) next(t *testing.T, ctx context.Context) sseEvent {
	t.Helper()
	select {
	case e := <-s.C:
		return e
	case <-ctx.Done():
		t.Fatalf("waiting for an event: %v", ctx.Err())
		return sseEvent{}
	}
}

func TestEventsAcrossNodesAndResume(t *testing.T) {
	ctx := testContext(t)
	const slug = "privacy"
	topic := protocol.IssueTopic(slug)
	net := testnet.New(t, 2, testnet.WithFollow(slug))
	if err := net.WaitTopicMesh(ctx, topic); err != nil {
		t.Fatal(err)
	}
	ts := serve(t, net.Nodes[0], api.WithToken(token))
	url := ts.URL + api.Prefix + "/events?topic=" + topic + "&kind=" + protocol.KindStatement

	publish := func(i int) cid.Cid {
		r, err := net.Nodes[1].Publish(ctx, protocol.KindStatement, topic,
			&protocol.Statement{Title: fmt.Sprintf("statement %d", i), Text: "text"})
		if err != nil {
			t.Fatal(err)
		}
		return r.CID
	}
	// An index record the filter must leave out.
	if _, err := net.Nodes[1].Publish(ctx, protocol.KindIssueOpen, protocol.TopicIndex,
		&protocol.IssueOpen{Slug: slug, Title: "Privacy"}); err != nil {
		t.Fatal(err)
	}

	s := openStream(t, ctx, url, "")
	var sent []cid.Cid
	for i := range 3 {
		sent = append(sent, publish(i))
	}
	var got []sseEvent
	for range 3 {
		got = append(got, s.next(t, ctx))
	}
	s.Close()
	for i, e := range got {
		if e.rec.CID != sent[i].String() || e.rec.Topic != topic || e.rec.Meta.Arrival != e.id {
			t.Fatalf("event %d: %+v, want %s", i, e, sent[i])
		}
		if i > 0 && e.id <= got[i-1].id {
			t.Fatalf("ids not increasing: %d after %d", e.id, got[i-1].id)
		}
	}

	// Disconnected after the first event: two more records arrive, then
	// the client resumes from its last id and misses nothing.
	for i := 3; i < 5; i++ {
		sent = append(sent, publish(i))
	}
	if err := net.Nodes[0].WaitRecords(ctx, sent...); err != nil {
		t.Fatal(err)
	}
	s = openStream(t, ctx, url, strconv.FormatUint(got[0].id, 10))
	sent = append(sent, publish(5)) // live, after the replay
	for i := 1; i < len(sent); i++ {
		e := s.next(t, ctx)
		if e.rec.CID != sent[i].String() {
			t.Fatalf("resumed event %d: %s, want %s", i, e.rec.CID, sent[i])
		}
	}
	select {
	case e := <-s.C:
		t.Fatalf("unexpected extra event %+v", e)
	default:
	}
	s.Close()

	// ?after= works as Last-Event-ID does.
	s = openStream(t, ctx, url+"&after="+strconv.FormatUint(got[2].id, 10), "")
	if e := s.next(t, ctx); e.rec.CID != sent[3].String() {
		t.Fatalf("after: %s, want %s", e.rec.CID, sent[3])
	}

	c := client{t: t, base: ts.URL + api.Prefix}
	c.wantErr("GET", "/events?after=x", "", 400, api.CodeBadRequest, "")
	c.wantErr("GET", "/events?topic=Bad", "", 400, api.CodeBadRequest, "")
}

// rejected returns the sum of clearinghouse_records_rejected_total with
// the given reason, parsing /metrics with the Prometheus text parser.
func rejected(t *testing.T, base string, reason protocol.Reason) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	if _, ok := fams["clearinghouse_node_info"]; !ok {
		t.Fatal("no clearinghouse_node_info")
	}
	sum := 0.0
	if f, ok := fams["clearinghouse_records_rejected_total"]; ok {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == string(reason) {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

func TestMetricsCountForgery(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 1)
	nd := net.Nodes[0]
	ts := serve(t, nd, api.WithToken(token))
	before := rejected(t, ts.URL, protocol.ReasonBadSignature)

	r, err := nd.Publish(ctx, protocol.KindStatement, "issue/privacy", &protocol.Statement{Title: "t", Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	forged := append([]byte(nil), r.Raw...)
	forged[len(forged)-1] ^= 0xff // the signature is the last field
	if _, err := nd.Ingest(ctx, forged, "", node.SourceGossip); protocol.ReasonOf(err) != protocol.ReasonBadSignature {
		t.Fatalf("forged record: %v, want bad-signature", err)
	}
	if after := rejected(t, ts.URL, protocol.ReasonBadSignature); after != before+1 {
		t.Fatalf("rejections: %v -> %v, want +1", before, after)
	}
}

func netListen() (stdnet.Listener, error) { return stdnet.Listen("tcp", "127.0.0.1:0") }

func TestEventsHeartbeat(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 1)
	ts := serve(t, net.Nodes[0], api.WithToken(token), api.WithHeartbeat(time.Millisecond))
	req, err := http.NewRequestWithContext(ctx, "GET", ts.URL+api.Prefix+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() == ": heartbeat" {
			return
		}
	}
	t.Fatalf("stream ended without a heartbeat: %v", sc.Err())
}

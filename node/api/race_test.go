package api_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/node/api"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// TestReadsWhileIngesting reads processes, issues, members, audits and the
// web view in a loop, through the Go API and over HTTP, while records of
// every kind arrive from the HTTP API, from gossip and from sync. Under
// -race it fails if a reader touches state the apply loop is changing
// (before the snapshots, Process handed out live *gov.Process values).
// Every process a reader lists must also answer Process and Audit: a
// reader never sees a record the store does not hold yet.
func TestReadsWhileIngesting(t *testing.T) {
	ctx := testContext(t)
	// Node 3 starts apart from the others: what it publishes reaches them
	// by sync when it connects.
	t0 := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := testnet.NewClock(t0)
	net := testnet.New(t, 4, testnet.WithFollow("privacy"),
		testnet.WithNodeOptions(func(int) []node.Option { return []node.Option{node.WithClock(clock.Now)} }),
		testnet.WithTopology(testnet.TopologyFunc(func(int) [][2]int { return [][2]int{{0, 1}, {0, 2}, {1, 2}} })))
	for _, tp := range []string{protocol.TopicIndex, protocol.TopicMembers, "issue/privacy"} {
		if err := net.WaitTopicMesh(ctx, tp); err != nil {
			t.Fatal(err)
		}
	}
	const token = "race-token"
	writer := client{t: t, base: serve(t, net.Nodes[0], api.WithToken(token)).URL + api.Prefix, token: token}
	web := serve(t, net.Nodes[1], api.WithToken(token)).URL
	topic := "issue/privacy"

	stop := make(chan struct{})
	var readers sync.WaitGroup
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Errorf("GET %s: %v", url, err)
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	reads := 0
	stopReaders := sync.OnceFunc(func() {
		close(stop)
		readers.Wait()
	})
	t.Cleanup(stopReaders)
	for i, nd := range net.Nodes {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = nd.Members()
				_ = nd.MemberSet().Len()
				_ = nd.Issues()
				ps, err := nd.Processes("privacy")
				if err != nil {
					t.Errorf("node %d: processes: %v", i, err)
					return
				}
				for _, p := range ps {
					_, _, _, _ = p.Stage(), p.Len(), p.Adopted(), p.Charter().Title
					if _, err := nd.Process(p.CID()); err != nil {
						t.Errorf("node %d: listed process %s: %v", i, p.CID(), err)
					}
					if _, err := nd.Audit(p.CID()); err != nil {
						t.Errorf("node %d: audit of listed process %s: %v", i, p.CID(), err)
					}
					if _, err := nd.AuditLocal(p.CID()); err != nil {
						t.Errorf("node %d: local audit of listed process %s: %v", i, p.CID(), err)
					}
					if i == 1 {
						for _, path := range []string{"/processes/" + p.CID().String(), api.Prefix + "/processes/" + p.CID().String() + "/audit"} {
							if status, body := get(web + path); status != http.StatusOK {
								t.Errorf("GET %s: %d %s", path, status, body)
							}
						}
					}
				}
				if i == 1 {
					for _, path := range []string{"/", "/issues/privacy", api.Prefix + "/issues", api.Prefix + "/members", api.Prefix + "/issues/privacy/processes"} {
						if status, body := get(web + path); status != http.StatusOK && !(status == http.StatusNotFound && strings.Contains(path, "privacy")) {
							t.Errorf("GET %s: %d %s", path, status, body)
						}
					}
					reads++
				}
			}
		})
	}

	// The API: the issue and a process.
	var open api.RecordView
	writer.json("POST", "/records", publishBody(protocol.KindIssueOpen, protocol.TopicIndex,
		map[string]any{"slug": "privacy", "title": "Privacy", "summary": "Data."}), 201, &open)
	b64 := func(k []byte) string { return base64.StdEncoding.EncodeToString(k) }
	day := int64(24 * 3600 * 1000)
	ms := t0.UnixMilli()
	charter := map[string]any{
		"title": "Race", "aim": "A.", "purpose": "P.", "scope": []string{"s"},
		"modalities": "M.", "significance": "S.", "convenors": []string{b64(net.PublicKey(0)), b64(net.PublicKey(1))}, "background": []any{},
		"phases": []map[string]any{
			{"stage": "scoping", "start": ms, "end": ms + 30*day},
			{"stage": "consultation", "start": ms + 30*day, "end": ms + 90*day},
			{"stage": "decision", "start": ms + 90*day, "end": ms + 120*day},
			{"stage": "implementation", "start": ms + 120*day, "end": ms + 365*day},
		},
		"minNoticeSeconds": 14 * 24 * 3600, "windowSeconds": 30 * 24 * 3600,
		"rule": map[string]any{"name": "concurrent-majority", "threshold": 0, "group": ""}, "mandate": nil,
	}
	var ch api.RecordView
	writer.json("POST", "/records", publishBody(protocol.KindCharter, topic, charter), 201, &ch)
	charterCID, err := cid.Decode(ch.CID)
	if err != nil {
		t.Fatal(err)
	}
	proc := protocol.LinkTo(charterCID)
	// Into consultation: a notice 30 days ahead, then both convenors.
	publish := func(i int, kind string, body protocol.Body, deps ...cid.Cid) {
		t.Helper()
		r, err := net.Nodes[i].Publish(ctx, kind, topic, body, deps...)
		if err != nil {
			t.Fatal(err)
		}
		for _, nd := range net.Nodes[:3] {
			if err := nd.WaitRecords(ctx, r.CID); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(0, protocol.KindNotice, &protocol.Notice{Process: proc, Subject: protocol.SubjectConsultation,
		Date: ms + 30*day, Text: "Consultation opens."}, charterCID)
	clock.Set(t0.Add(30 * 24 * time.Hour))
	publish(0, protocol.KindStage, &protocol.StageChange{Process: proc, To: protocol.StageConsultation}, charterCID)
	publish(1, protocol.KindStage, &protocol.StageChange{Process: proc, To: protocol.StageConsultation}, charterCID)

	var writers sync.WaitGroup
	// The API again: notices, as a convenor.
	writers.Go(func() {
		for k := range 10 {
			notice := map[string]any{"process": map[string]string{"/": ch.CID}, "subject": "decision",
				"date": ms + int64(90+k)*day, "text": fmt.Sprintf("Notice %d.", k)}
			if status, b, _ := writer.do("POST", "/records", publishBody(protocol.KindNotice, topic, notice)); status != 201 {
				t.Errorf("notice %d: %d %s", k, status, b)
			}
		}
	})
	// Gossip: a proposal and feedback on it, from node 1 and node 2.
	writers.Go(func() {
		prop, err := net.Nodes[1].Publish(ctx, protocol.KindProposal, topic, &protocol.Proposal{Process: proc, Version: 1,
			Title: "P", Text: "T", Clauses: []protocol.Clause{{ID: "1", Text: "C."}}}, charterCID)
		if err != nil {
			t.Error(err)
			return
		}
		if err := net.Nodes[2].WaitRecords(ctx, prop.CID); err != nil {
			t.Error(err)
			return
		}
		for k := range 10 {
			nd := net.Nodes[1+k%2]
			if _, err := nd.Publish(ctx, protocol.KindFeedback, topic, &protocol.Feedback{Process: proc, Proposal: protocol.LinkTo(prop.CID),
				Stance: protocol.StanceSupport, Reason: fmt.Sprint(k)}, charterCID, prop.CID); err != nil {
				t.Error(err)
			}
			if _, err := nd.Publish(ctx, protocol.KindStatement, topic, &protocol.Statement{Title: "s", Text: fmt.Sprint(k)}); err != nil {
				t.Error(err)
			}
		}
		if _, err := net.Nodes[2].Publish(ctx, protocol.KindEndorse, topic, &protocol.Endorse{Process: proc, Proposal: protocol.LinkTo(prop.CID)},
			charterCID, prop.CID); err != nil {
			t.Error(err)
		}
	})
	// Membership: an outsider applies (ingested as from a client), two
	// members endorse over gossip.
	writers.Go(func() {
		key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
		app, err := protocol.Build(key, protocol.Draft{Network: net.Nodes[0].NetworkID(), Kind: protocol.KindMemberApply,
			Topic: protocol.TopicMembers, Seq: 1, Time: clock.Now(),
			Body: &protocol.MemberApply{Org: "Newcomer", Group: "civil-society", Region: "africa", Statement: "We would like to join."}})
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := net.Nodes[0].Ingest(ctx, app.Raw, "", node.SourceLocal); err != nil {
			t.Error(err)
			return
		}
		for _, i := range []int{0, 1} {
			if err := net.Nodes[i].WaitRecords(ctx, app.CID); err != nil {
				t.Error(err)
				return
			}
			if _, err := net.Nodes[i].Publish(ctx, protocol.KindMemberEndorse, protocol.TopicMembers,
				&protocol.MemberEndorse{Application: protocol.LinkTo(app.CID)}, app.CID); err != nil {
				t.Error(err)
			}
		}
	})
	// Sync: node 3's statements reach the others when it connects.
	var last *protocol.Record
	for k := range 20 {
		if last, err = net.Nodes[3].Publish(ctx, protocol.KindStatement, topic, &protocol.Statement{Title: "apart", Text: fmt.Sprint(k)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := net.Connect(ctx, 3, 0); err != nil {
		t.Fatal(err)
	}
	writers.Wait()
	for _, nd := range net.Nodes[:3] {
		if err := nd.WaitRecords(ctx, last.CID); err != nil {
			t.Fatal(err)
		}
	}
	stopReaders()
	if reads == 0 {
		t.Fatal("no web reads completed")
	}
	if ps, err := net.Nodes[0].Processes("privacy"); err != nil || len(ps) != 1 || ps[0].Len() < 2 {
		t.Fatalf("processes after the writes: %v %v", ps, err)
	}
	if n := net.Nodes[0].MemberSet().Len(); n != 5 {
		t.Fatalf("%d members after the admission, want 5", n)
	}
}

package api_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/store"
)

// TestStoredRecordsTrustedDecode reads back every record a node holds
// after the demo data and a public comment and response (the kinds the
// pages show): the node's reads (Node.Record, protocol.DecodeTrusted, and
// the batch Node.Records) give exactly what the strict decode of the same
// stored bytes gives.
func TestStoredRecordsTrustedDecode(t *testing.T) {
	ctx := testContext(t)
	net, d, clock := demoNet(t)
	clock.Set(d.Now.Add(time.Minute))
	c, err := net.Nodes[5].PublishComment(ctx, d.Slug, &protocol.PublicComment{
		Process: ptr(protocol.LinkTo(d.Process)), Proposal: ptr(protocol.LinkTo(d.V2)), Clause: "1",
		Name: "A reader", Person: make([]byte, 16), Text: "A comment from the public."})
	if err != nil {
		t.Fatal(err)
	}
	if err := net.Nodes[0].WaitRecords(ctx, c.CID); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Nodes[0].Publish(ctx, protocol.KindPublicResponse, protocol.PublicTopic(d.Slug),
		&protocol.PublicResponse{Comment: protocol.LinkTo(c.CID), Text: "Thank you."}, c.CID); err != nil {
		t.Fatal(err)
	}
	nd := net.Nodes[0]
	st := nd.Store()
	kinds := map[string]int{}
	byCID := map[cid.Cid]*protocol.Record{}
	var after uint64
	for {
		metas, err := st.Since(after, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(metas) == 0 {
			break
		}
		for _, m := range metas {
			after = m.Arrival
			raw, err := st.Get(m.CID)
			if err != nil {
				t.Fatal(err)
			}
			strict, err := protocol.Decode(raw)
			if err != nil {
				t.Fatalf("stored record %s: %v", m.CID, err)
			}
			got, err := nd.Record(m.CID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, strict) {
				t.Fatalf("record %s (%s): trusted decode\n%+v\nstrict decode\n%+v", m.CID, m.Kind, got, strict)
			}
			kinds[m.Kind]++
			byCID[m.CID] = got
		}
	}
	// The batch read gives the same records.
	var all []cid.Cid
	for c := range byCID {
		all = append(all, c)
	}
	all = append(all, protocol.RecordCID([]byte("not stored")))
	n := 0
	if err := nd.Records(all, func(c cid.Cid, r *protocol.Record, err error) {
		n++
		switch want := byCID[c]; {
		case want == nil && !errors.Is(err, store.ErrNotFound):
			t.Errorf("Records of a CID not stored: %v", err)
		case want != nil && (err != nil || !reflect.DeepEqual(r, want)):
			t.Errorf("Records(%s) = %v, %v; Record gives %v", c, r, err, want)
		}
	}); err != nil || n != len(all) {
		t.Fatalf("Records: %d of %d, %v", n, len(all), err)
	}
	for _, k := range []string{protocol.KindIssueOpen, protocol.KindCharter, protocol.KindNotice, protocol.KindProposal,
		protocol.KindFeedback, protocol.KindObjection, protocol.KindResponse, protocol.KindEndorse,
		protocol.KindPublicComment, protocol.KindPublicResponse} {
		if kinds[k] == 0 {
			t.Errorf("no %s record among the %d compared", k, after)
		}
	}
	t.Logf("compared %v", kinds)
}

func ptr[T any](v T) *T { return &v }

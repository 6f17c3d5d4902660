package api_test

import (
	"testing"

	"github.com/clearinghouse-net/clearinghouse/node/api"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// TestSyncRoute: POST /sync on an observer that missed records fetches
// them and reports it; status then shows no lag. On a member the route
// needs the token.
func TestSyncRoute(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 2, testnet.WithObservers(1), testnet.WithTopology(testnet.None),
		testnet.WithFollow("privacy"))
	topic := protocol.IssueTopic("privacy")
	for i := range 5 {
		if _, err := net.Nodes[0].Publish(ctx, protocol.KindStatement, topic,
			&protocol.Statement{Title: "s", Text: "statement " + itoa(uint64(i))}); err != nil {
			t.Fatal(err)
		}
	}
	// Connected now, with periodic and on-connect sync racing the call
	// below: whichever runs first, after POST /sync returns the observer
	// holds all five.
	if err := net.Connect(ctx, 1, 0); err != nil {
		t.Fatal(err)
	}
	obs := client{t: t, base: serve(t, net.Nodes[1]).URL + api.Prefix}
	var rep api.SyncReportView
	obs.json("POST", "/sync", "", 200, &rep)
	if rep.Peers < 1 || rep.Topics < 1 {
		t.Fatalf("sync report %+v", rep)
	}
	var st api.StatusView
	obs.json("GET", "/status", "", 200, &st)
	found := false
	for _, tc := range st.TopicRecords {
		if tc.Topic == topic && tc.Records == 5 {
			found = true
		}
	}
	if !found {
		t.Fatalf("after sync the observer holds %+v, want 5 records on %s", st.TopicRecords, topic)
	}
	for _, s := range st.Sync {
		if s.Topic == topic && s.Lag != 0 {
			t.Fatalf("after sync the observer reports lag %d on %s", s.Lag, topic)
		}
	}
	member := serve(t, net.Nodes[0], api.WithToken(token))
	anon := client{t: t, base: member.URL + api.Prefix}
	anon.wantErr("POST", "/sync", "", 401, api.CodeUnauthorized, "")
	c := client{t: t, base: member.URL + api.Prefix, token: token}
	c.json("POST", "/sync", "", 200, &rep)
}

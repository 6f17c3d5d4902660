package opendata_test

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/node/api"
	"github.com/clearinghouse-net/clearinghouse/opendata"
	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// TestTables: every table, in JSON Lines and CSV from the HTTP API, has
// its documented columns, one row per record of its kinds (per member for
// members), RFC 3339 times, and the CID of a stored record of the right
// kind (the application or the genesis for members) in every row.
func TestTables(t *testing.T) {
	f := federation(t)
	ctx := testContext(t)
	n := f.net.Nodes[0]
	kinds := map[string][]string{
		"issues":       {protocol.KindIssueOpen},
		"processes":    {protocol.KindCharter},
		"proposals":    {protocol.KindProposal},
		"feedback":     {protocol.KindFeedback, protocol.KindObjection},
		"endorsements": {protocol.KindEndorse, protocol.KindWithdraw},
		"decisions":    {protocol.KindDecision},
	}
	want := map[string]int{"members": 3}
	for _, r := range f.fp.Records {
		for table, ks := range kinds {
			if slices.Contains(ks, r.Env.Kind) {
				want[table]++
			}
		}
	}
	if want["feedback"] != 3 || want["proposals"] != 2 || want["endorsements"] != 3 {
		t.Fatalf("the scenario changed: %v", want)
	}
	if got := opendata.Tables(); !slices.Equal(got, []string{"decisions", "endorsements", "feedback", "issues", "members", "processes", "proposals"}) {
		t.Fatalf("tables %v", got)
	}
	for _, table := range opendata.Tables() {
		cols, err := opendata.Columns(table)
		if err != nil {
			t.Fatal(err)
		}
		// JSON Lines.
		body, err := get(ctx, f.api.URL+api.Prefix+"/export/tables/"+table+"?format=jsonl")
		if err != nil {
			t.Fatal(err)
		}
		var rows []map[string]any
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var row map[string]any
			dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
			dec.UseNumber()
			if err := dec.Decode(&row); err != nil {
				t.Fatalf("%s: %v: %s", table, err, sc.Bytes())
			}
			if len(row) != len(cols) {
				t.Fatalf("%s: row has %d keys, %d columns", table, len(row), len(cols))
			}
			// The keys come in column order.
			for i, c := range cols {
				if k := strings.Index(sc.Text(), `"`+c.Name+`":`); k < 0 || (i > 0 && k < strings.Index(sc.Text(), `"`+cols[i-1].Name+`":`)) {
					t.Fatalf("%s: column %s out of order in %s", table, c.Name, sc.Text())
				}
			}
			rows = append(rows, row)
		}
		if len(rows) != want[table] {
			t.Fatalf("%s: %d rows, want %d", table, len(rows), want[table])
		}
		for _, row := range rows {
			c, err := cid.Decode(row["cid"].(string))
			if err != nil {
				t.Fatalf("%s: cid %v: %v", table, row["cid"], err)
			}
			if _, err := time.Parse(time.RFC3339, row["time"].(string)); err != nil {
				t.Fatalf("%s: time %v: %v", table, row["time"], err)
			}
			if table == "members" {
				if !c.Equals(n.NetworkID()) || row["status"] != "member" {
					t.Fatalf("founder row %v", row)
				}
				continue
			}
			r, err := n.Record(c)
			if err != nil {
				t.Fatalf("%s: row cid %s: %v", table, c, err)
			}
			if !slices.Contains(kinds[table], r.Env.Kind) {
				t.Fatalf("%s: row cid %s is a %s", table, c, r.Env.Kind)
			}
			if row["org"] == "" || row["group"] == "" {
				t.Fatalf("%s: no author details in %v", table, row)
			}
		}

		// CSV: a header line of the columns, then the same rows.
		body, err = get(ctx, f.api.URL+api.Prefix+"/export/tables/"+table+"?format=csv")
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		if len(recs) != want[table]+1 {
			t.Fatalf("%s: %d CSV lines, want %d", table, len(recs), want[table]+1)
		}
		for i, c := range cols {
			if recs[0][i] != c.Name {
				t.Fatalf("%s: CSV header %v", table, recs[0])
			}
		}
		for i, rec := range recs[1:] {
			if rec[0] != rows[i]["cid"] {
				t.Fatalf("%s: CSV row %d is %s, JSON row %v", table, i, rec[0], rows[i]["cid"])
			}
		}
	}

	// Derived columns: the adopted proposal and the process's stage.
	body, err := get(ctx, f.api.URL+api.Prefix+"/export/tables/processes")
	if err != nil {
		t.Fatal(err)
	}
	var proc struct {
		Stage   string   `json:"stage"`
		Adopted []string `json:"adopted"`
	}
	if err := json.Unmarshal(body, &proc); err != nil || proc.Stage != protocol.StageConcluded ||
		!slices.Equal(proc.Adopted, []string{f.fp.Proposal.CID.String()}) {
		t.Fatalf("%v: %s", err, body)
	}

	for _, bad := range []string{"/export/tables/nope", "/export/tables/issues?format=xml"} {
		if _, err := get(ctx, f.api.URL+api.Prefix+bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	list, err := get(ctx, f.api.URL+api.Prefix+"/export/tables")
	if err != nil || !bytes.Contains(list, []byte(`"name":"feedback"`)) {
		t.Fatalf("%v: %s", err, list)
	}
}

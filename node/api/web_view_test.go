package api

import (
	"bytes"
	"strings"
	"testing"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/protocol/gov"
)

// TestProcessTemplateDelegations renders the process page of a process in
// delegation, with a decision, a delegation and its report (branches the
// demo data does not reach), and a not-met principle after consultation.
func TestProcessTemplateDelegations(t *testing.T) {
	by := webParty{Org: "Org <7>", Group: "government", Region: "africa", Member: true}
	rec := func(c string) webRec { return webRec{CID: c, Kind: "k", By: by, Time: 1} }
	rep := &gov.Report{Title: "T", Stage: protocol.StageDelegation, Topic: "issue/x", Process: "bafyproc"}
	rep.P1.Status = gov.StatusNotMet
	v := &processView{R: rep, CID: "bafyproc", Slug: "x", Charter: &protocol.Charter{Title: "T"},
		Delegations: []*webDelegation{{webRec: rec("bafydeleg"), Body: "A standards body", Scope: "Write the standard.",
			Reporting: "Every six months.", Reports: []webText{{rec("bafyreport"), "Half done."}}}},
		Decisions: []webText{{rec("bafydecision"), "Adopted v2."}},
		Audit:     auditRows(rep, 0), Public: &publicView{Slug: "x"}}
	var buf bytes.Buffer
	if err := webPages["process"].ExecuteTemplate(&buf, "layout", webPage{Title: "T", Data: v}); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{"Delegated to A standards body", "Write the standard.", "Reporting: Every six months.",
		"Report by Org &lt;7&gt;", "Half done.", `href="/records/bafyreport"`, "Adopted v2.", `href="/records/bafydecision"`,
		`<span class="fail">not met</span>`} {
		if !strings.Contains(page, want) {
			t.Fatalf("page lacks %q:\n%s", want, page)
		}
	}
}

package gov_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// canonical re-encodes a JSON document through generic maps, which
// encoding/json writes with sorted keys.
func canonical(t *testing.T, js []byte) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// TestReportJSONCanonical checks that the audit JSON has sorted keys (the
// report's fields are declared in that order) and no null lists, and that
// two calls give the same bytes.
func TestReportJSONCanonical(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for range 5 {
		w := genProcess(t, rng)
		for _, p := range w.issue.Processes() {
			js, err := p.Audit(w.firstSeen).JSON()
			if err != nil {
				t.Fatal(err)
			}
			if c := canonical(t, js); !bytes.Equal(c, js) {
				t.Fatalf("audit JSON is not canonical:\n%s\n%s", js, c)
			}
			again, _ := p.Audit(w.firstSeen).JSON()
			if !bytes.Equal(again, js) {
				t.Fatal("two audits of the same state differ")
			}
			var v any
			if err := json.Unmarshal(js, &v); err != nil {
				t.Fatal(err)
			}
			if path := nullPath(v, ""); path != "" {
				t.Fatalf("audit JSON has null at %s", path)
			}
		}
	}
}

// nullPath returns the path of a null in v other than the optional times
// firstSeen and started, or "".
func nullPath(v any, path string) string {
	switch x := v.(type) {
	case nil:
		if strings.HasSuffix(path, ".firstSeen") || strings.HasSuffix(path, ".started") {
			return ""
		}
		return path
	case map[string]any:
		for k, e := range x {
			if p := nullPath(e, path+"."+k); p != "" {
				return p
			}
		}
	case []any:
		for i, e := range x {
			if p := nullPath(e, fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p
			}
		}
	}
	return ""
}

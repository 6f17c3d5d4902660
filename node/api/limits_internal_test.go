package api

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckDuplicateKeys(t *testing.T) {
	for _, tc := range []struct {
		in  string
		dup bool
	}{
		{`{}`, false},
		{`[]`, false},
		{`{"a":1,"b":2}`, false},
		{`{"a":1,"a":2}`, true},
		{`{"a":{"b":1},"c":{"b":2}}`, false},
		{`{"a":{"b":1,"b":1}}`, true},
		{`[{"a":1},{"a":1}]`, false},
		{`[{"a":1,"a":1}]`, true},
		{`{"a":[{"x":[1,{"y":1,"y":2}]}]}`, true},
		{`{"a":"a","b":"a"}`, false},
		{`{"a":[],"b":{},"a":null}`, true},
		{`{"k\u0065y":1,"key":2}`, true}, // the same key once unescaped
	} {
		err := checkDuplicateKeys([]byte(tc.in))
		if got := errors.Is(err, errDuplicateKey); got != tc.dup || (err != nil && !tc.dup) {
			t.Errorf("%s: %v, want duplicate %v", tc.in, err, tc.dup)
		}
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in  string
		max int
	}{
		{"short", 512},
		{strings.Repeat("x", 600), 512},
		{strings.Repeat("é", 600), 512},
		{strings.Repeat("€", 600), 100},
	} {
		out := truncate(tc.in, tc.max)
		if len(out) > tc.max || !utf8.ValidString(out) || (len(tc.in) <= tc.max && out != tc.in) {
			t.Errorf("truncate(%d bytes, %d) = %d bytes, valid %v", len(tc.in), tc.max, len(out), utf8.ValidString(out))
		}
	}
}

// FuzzCheckDuplicateKeys: any input is handled without panic; a document
// re-encoded from its decoded value (whose maps have unique keys) never
// has duplicates, and adding a key already present always is one.
func FuzzCheckDuplicateKeys(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"a":2}`, `[{"a":{"b":[1,2,{"c":null}]}}]`, `"x"`, `{"a":`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = checkDuplicateKeys(data)
		var v any
		if json.Unmarshal(data, &v) != nil {
			return
		}
		clean, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkDuplicateKeys(clean); err != nil {
			t.Fatalf("%s: %v", clean, err)
		}
		if m, ok := v.(map[string]any); ok && len(m) > 0 {
			for k := range m {
				kj, _ := json.Marshal(k)
				doubled := append([]byte(`{`+string(kj)+`:0,`), clean[1:]...)
				if err := checkDuplicateKeys(doubled); !errors.Is(err, errDuplicateKey) {
					t.Fatalf("%s: %v, want a duplicate key", doubled, err)
				}
				break
			}
		}
	})
}

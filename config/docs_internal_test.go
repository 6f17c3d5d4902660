package config

import (
	"reflect"
	"testing"
)

// TestEveryKeyDocumented checks that the file written by WriteDefault has a
// comment for every table and key of Config, and no comment for a key that
// does not exist.
func TestEveryKeyDocumented(t *testing.T) {
	seen := map[string]bool{}
	ct := reflect.TypeFor[Config]()
	for i := range ct.NumField() {
		section := tomlName(ct.Field(i))
		if sectionDocs[section] == "" {
			t.Errorf("no sectionDocs for [%s]", section)
		}
		st := ct.Field(i).Type
		for j := range st.NumField() {
			key := section + "." + tomlName(st.Field(j))
			seen[key] = true
			if keyDocs[key] == "" {
				t.Errorf("no keyDocs for %s", key)
			}
		}
	}
	for key := range keyDocs {
		if !seen[key] {
			t.Errorf("keyDocs has %s, which Config does not have", key)
		}
	}
	if len(sectionDocs) != ct.NumField() {
		t.Errorf("sectionDocs has %d entries, Config %d tables", len(sectionDocs), ct.NumField())
	}
}

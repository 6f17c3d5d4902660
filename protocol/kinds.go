package protocol

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Body is the kind-specific part of a record. Implementations are plain
// structs with cbor tags; Check validates what the schema alone cannot say
// (lengths, enumerations, non-empty fields). Check must be pure.
type Body interface {
	Check() error
}

// KindSpec describes one record kind.
type KindSpec struct {
	// Name is the kind as it appears in the envelope, e.g. "statement".
	Name string
	// Topics is the set of topic classes the kind may appear on.
	Topics TopicClass
	// New returns a pointer to a zero body of this kind, ready to decode into.
	New func() Body
}

var kinds = map[string]KindSpec{}

// register adds a kind; it is called from init functions of this package only.
func register(spec KindSpec) {
	if _, dup := kinds[spec.Name]; dup {
		panic("protocol: kind registered twice: " + spec.Name)
	}
	kinds[spec.Name] = spec
}

// LookupKind returns the spec of a kind and whether it is defined.
func LookupKind(name string) (KindSpec, bool) {
	s, ok := kinds[name]
	return s, ok
}

// Kinds returns the names of every defined kind, sorted.
func Kinds() []string {
	out := make([]string, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Kind names defined in this file.
const (
	// KindStatement is a free statement on an issue topic (for example an
	// organisation's priorities on the issue).
	KindStatement = "statement"
)

func init() {
	register(KindSpec{Name: KindStatement, Topics: ClassIssue, New: func() Body { return new(Statement) }})
}

// Statement is the body of a statement record.
type Statement struct {
	Title string `cbor:"title"`
	Text  string `cbor:"text"`
}

// Check validates a statement body.
func (s *Statement) Check() error {
	if err := checkText("title", s.Title, 1, 200); err != nil {
		return err
	}
	return checkText("text", s.Text, 1, 32<<10)
}

// checkText checks that a text field is valid UTF-8 of min..max bytes,
// without control characters (see controlChar).
func checkText(field, s string, min, max int) error {
	if len(s) < min {
		if min == 1 {
			return fmt.Errorf("%s: must not be empty", field)
		}
		return fmt.Errorf("%s: shorter than %d bytes", field, min)
	}
	if len(s) > max {
		return fmt.Errorf("%s: longer than %d bytes", field, max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s: not valid UTF-8", field)
	}
	if strings.ContainsFunc(s, controlChar) {
		return fmt.Errorf("%s: contains control characters", field)
	}
	return nil
}

// controlChar reports whether r is a control character a display string
// may not hold: C0 controls other than newline and tab, DEL, C1 controls,
// and the bidirectional embedding, override and isolate controls, which
// make text display in another order than it is stored.
func controlChar(r rune) bool {
	switch {
	case r < 0x20:
		return r != '\n' && r != '\t'
	case r >= 0x7f && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

package api

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// TestWebTextComplete: every string key the templates and the Go code of
// the pages use is in webStrings, so a translation that fills the same
// keys covers every page.
func TestWebTextComplete(t *testing.T) {
	uses := regexp.MustCompile(`(?:\{\{-?\s*\(?|\(|\s)(?:t|tf|text)\(?\s*"([a-z0-9.]+)"`)
	seen := 0
	check := func(name string, src []byte) {
		for _, m := range uses.FindAllSubmatch(src, -1) {
			seen++
			if _, ok := webStrings[string(m[1])]; !ok {
				t.Errorf("%s uses string %q, which web_text.go lacks", name, m[1])
			}
		}
	}
	err := fs.WalkDir(webFS, "web", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".html" {
			return err
		}
		b, err := fs.ReadFile(webFS, path)
		check(path, b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("web*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f == "web_text.go" || strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		check(f, b)
	}
	if seen < 100 {
		t.Fatalf("found only %d string uses: the pattern is broken", seen)
	}
	if got := text("no.such.key"); got != "[no.such.key]" {
		t.Fatalf("missing key renders %q", got)
	}
}

// TestWebTermsComplete: every stage, notice subject and stance of the
// protocol has its "term." string, so a translation names them all; an
// unknown value shows as itself.
func TestWebTermsComplete(t *testing.T) {
	for _, v := range []string{protocol.StageScoping, protocol.StageConsultation, protocol.StageDecision,
		protocol.StageImplementation, protocol.StageDelegation, protocol.StageConcluded,
		protocol.SubjectConsultation, protocol.SubjectMeeting, protocol.SubjectDecision,
		protocol.StanceSupport, protocol.StanceNeutral, protocol.StanceConcern, protocol.StanceObjection} {
		if _, ok := webStrings["term."+v]; !ok {
			t.Errorf("web_text.go lacks term.%s", v)
		}
	}
	if got := term("later-stage"); got != "later-stage" {
		t.Errorf("term of an unknown value = %q", got)
	}
}

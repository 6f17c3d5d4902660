package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/clearinghouse-net/clearinghouse/protocol/gov"
)

// This file is the one output style of the command line. Every command
// prints through it, so that all of them agree:
//
//   - tables have an upper-case header line and columns aligned with
//     spaces; an empty table prints "no THINGS" instead;
//   - durations read as "14d", "1h 30m", "59m 59s", "0s" (humanDuration);
//   - times read as "2027-02-01 00:00 UTC (3d ago)" (humanTime);
//   - counts agree with their noun: "1 record", "2 records" (plural);
//   - --json (or --output json) prints JSON instead, with RFC 3339 times
//     with millisecond precision (jsonTime) and lower camel case field
//     names that do not change between versions;
//   - colour only on a terminal, and never when NO_COLOR is set
//     (https://no-color.org).

// Output formats of --output.
const (
	formatText = "text"
	formatJSON = "json"
)

// Exit statuses of Main.
const (
	exitOK    = 0 // the command did what was asked
	exitError = 1 // it failed: the node, the network, a file, the input's content
	exitUsage = 2 // the command line itself is wrong: unknown command or flag, bad argument count
)

// jsonTimeLayout is RFC 3339 in UTC with exactly three fraction digits, so
// that every time in the JSON output has the same width.
const jsonTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// jsonTime formats t for JSON output.
func jsonTime(t time.Time) string { return t.UTC().Format(jsonTimeLayout) }

// humanDuration formats d with its two largest units, days to seconds:
// "14d", "1d 2h", "1h", "59m 59s", "45s"; below a second, "0s" or the
// milliseconds ("350ms"). A negative d reads as its absolute value.
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	if d < time.Second {
		if d < time.Millisecond {
			return "0s"
		}
		return fmt.Sprintf("%dms", d/time.Millisecond)
	}
	return gov.FormatDuration(d)
}

// humanTime formats t in UTC to the minute, with how long ago or ahead
// of now it is: "2027-02-01 00:00 UTC (3d ago)", "... (in 2h)". The zero
// time reads as "-".
func humanTime(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	s := t.UTC().Format("2006-01-02 15:04 UTC")
	switch d := now.Sub(t); {
	case d >= -time.Second && d <= time.Second:
		return s + " (now)"
	case d > 0:
		return s + " (" + humanDuration(d.Truncate(time.Second)) + " ago)"
	default:
		return s + " (in " + humanDuration((-d).Truncate(time.Second)) + ")"
	}
}

// parseAPITime reads a time of the API's JSON (RFC 3339); an empty or
// malformed string is the zero time.
func parseAPITime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// plural returns n and the noun, in the plural unless n is 1: "1 peer",
// "3 peers", "2 entries", "0 matches".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	switch {
	case strings.HasSuffix(noun, "y") && len(noun) > 1 && !strings.ContainsRune("aeiou", rune(noun[len(noun)-2])):
		noun = noun[:len(noun)-1] + "ies"
	case strings.HasSuffix(noun, "s"), strings.HasSuffix(noun, "x"), strings.HasSuffix(noun, "ch"), strings.HasSuffix(noun, "sh"):
		noun += "es"
	default:
		noun += "s"
	}
	return fmt.Sprintf("%d %s", n, noun)
}

// table is a table of the text output: a header line, then one line per
// row, columns aligned.
type table struct {
	tw    *tabwriter.Writer
	w     io.Writer
	empty string
	rows  int
	style style
}

// newTable starts a table with the given column headers (shown upper
// case) on w; empty is printed instead when the table gets no rows.
func (a *app) newTable(w io.Writer, empty string, headers ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0), w: w, empty: empty, style: a.style()}
	for i, h := range headers {
		headers[i] = strings.ToUpper(h)
	}
	// The header is not coloured: escape codes would upset the alignment.
	fmt.Fprintln(t.tw, strings.Join(headers, "\t"))
	return t
}

// row adds a row; each cell is printed with %v, an empty string as "-".
func (t *table) row(cells ...any) {
	s := make([]string, len(cells))
	for i, c := range cells {
		s[i] = fmt.Sprint(c)
		if s[i] == "" {
			s[i] = "-"
		}
		s[i] = strings.ReplaceAll(s[i], "\t", " ")
	}
	fmt.Fprintln(t.tw, strings.Join(s, "\t"))
	t.rows++
}

// flush writes the table, or the empty message if it has no rows.
func (t *table) flush() error {
	if t.rows == 0 {
		_, err := fmt.Fprintln(t.w, t.empty)
		return err
	}
	return t.tw.Flush()
}

// style colours words of the text output, or leaves them plain.
type style struct{ color bool }

// ANSI colours.
const (
	ansiGreen = "\x1b[32m"
	ansiRed   = "\x1b[31m"
	ansiBold  = "\x1b[1m"
	ansiReset = "\x1b[0m"
)

func (s style) paint(code, text string) string {
	if !s.color {
		return text
	}
	return code + text + ansiReset
}

// verdict is "met" in green or "not met" in red, as the web view says.
func (s style) verdict(ok bool) string {
	if ok {
		return s.paint(ansiGreen, "met")
	}
	return s.paint(ansiRed, "not met")
}

// style returns the style of the app's stdout: colour only if stdout is
// a terminal, TERM is not "dumb" and NO_COLOR is not set to anything.
func (a *app) style() style {
	if a.noColor || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return style{}
	}
	f, ok := a.stdout.(*os.File)
	if !ok {
		return style{}
	}
	fi, err := f.Stat()
	return style{color: err == nil && fi.Mode()&os.ModeCharDevice != 0}
}

// colourAudit colours the verdicts of the text form of an audit (lines
// ending in ": met" or ": not met").
func (s style) colourAudit(text string) string {
	if !s.color {
		return text
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		switch {
		case strings.HasSuffix(l, " not met"):
			lines[i] = strings.TrimSuffix(l, "not met") + s.verdict(false)
		case strings.HasSuffix(l, " met"):
			lines[i] = strings.TrimSuffix(l, "met") + s.verdict(true)
		}
	}
	return strings.Join(lines, "\n")
}

// jsonOutput reports whether the command line asked for JSON output.
func (a *app) jsonOutput() bool { return a.output == formatJSON }

// printValue writes v as one line of JSON.
func printValue(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// printJSON writes an API answer as it came, ending in a newline (the
// canonical audit must stay byte for byte what the node sent).
func printJSON(w io.Writer, b []byte) {
	b = bytes.TrimRight(b, "\n")
	fmt.Fprintf(w, "%s\n", b)
}

package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// Load reads the configuration file at path. Keys the file leaves out keep
// their [Default] values; the result is then checked with
// [Config.Validate]. Every error names the file:
//
//   - an unreadable file: "config: read PATH: permission denied" (the
//     cause, e.g. fs.ErrNotExist, is kept for errors.Is);
//   - a TOML syntax error: an [*Error] with the line, the column and the
//     last key the parser read, when known;
//   - an unknown key (a typo): an [*Error] wrapping [ErrUnknownKey],
//     "config: PATH: unknown key \"network.listn\"";
//   - a value of the wrong type, and every problem Validate finds: an
//     [*Error] naming the key.
//
// Unknown keys, type errors and validation problems are all reported, joined
// with [errors.Join]; validation only runs when the file decoded cleanly.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fileOpError("read", path, err)
	}
	cfg := Default()
	if err := decode(data, &cfg); err != nil {
		return Config{}, inFile(path, data, err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, inFile(path, data, err)
	}
	return cfg, nil
}

// inFile sets File on every *Error in err, which is an *Error or the
// errors.Join of several, and the line of its key in data where the
// error does not know it yet.
func inFile(path string, data []byte, err error) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var ce *Error
		if errors.As(e, &ce) {
			ce.File = path
			if ce.Line == 0 && ce.Key != "" {
				ce.Line = keyLine(data, ce.Key)
			}
		}
	}
	return err
}

// decode decodes TOML data into cfg key by key, so that each type error
// names its key exactly, and unknown keys are found by comparing the keys
// of the document with cfg's toml tags. (MetaData.Undecoded cannot be used:
// decoding into toml.Primitive values marks every key as decoded.)
func decode(data []byte, cfg *Config) error {
	var top map[string]toml.Primitive
	md, err := toml.Decode(string(data), &top)
	if err != nil {
		return tomlError(data, "", err)
	}

	root := reflect.ValueOf(cfg).Elem()
	tables := map[string]map[string]toml.Primitive{} // sections decoded so far
	bad := map[string]bool{}                         // tables reported as unknown or not tables
	var errs []error

	// table returns the decoded table of a known section, reporting the
	// section once if it is unknown or not a table.
	table := func(section string) (map[string]toml.Primitive, reflect.Value, bool) {
		sv, ok := fieldByTag(root, section)
		if bad[section] {
			return nil, sv, false
		}
		if t, ok := tables[section]; ok {
			return t, sv, true
		}
		if !ok {
			bad[section] = true
			errs = append(errs, &Error{Key: section, Err: ErrUnknownKey, Hint: suggest(root, "", section)})
			return nil, sv, false
		}
		// Check the kind first: the toml package decodes a non-table into a
		// map without complaint, leaving the map empty.
		var raw any
		_ = md.PrimitiveDecode(top[section], &raw)
		var t map[string]toml.Primitive
		if _, isTable := raw.(map[string]any); !isTable || md.PrimitiveDecode(top[section], &t) != nil {
			bad[section] = true
			errs = append(errs, &Error{Key: section,
				Err: fmt.Errorf("must be a table ([%s]), not %s", section, tomlType(&md, section, raw))})
			return nil, sv, false
		}
		tables[section] = t
		return t, sv, true
	}

	// md.Keys is in document order, so problems are reported in that order.
	done := map[string]bool{} // leaf keys decoded or reported
	for _, key := range md.Keys() {
		t, sv, ok := table(key[0])
		if !ok || len(key) < 2 {
			continue // a table header, or under a bad table
		}
		// A longer key (node.role.x) lies inside a leaf, and only shows
		// in md.Keys when written as a dotted key: decoding the leaf
		// reports it as a type error.
		leaf := toml.Key(key[:2])
		name := leaf.String()
		if done[name] {
			continue
		}
		done[name] = true
		fv, ok := fieldByTag(sv, leaf[1])
		if !ok {
			errs = append(errs, &Error{Key: name, Err: ErrUnknownKey, Hint: suggest(root, leaf[0], leaf[1])})
			continue
		}
		if err := md.PrimitiveDecode(t[leaf[1]], fv.Addr().Interface()); err != nil {
			errs = append(errs, tomlError(data, name, err))
		}
	}
	return errors.Join(errs...)
}

// tomlType names the TOML type of the value of key, for messages.
func tomlType(md *toml.MetaData, key string, v any) string {
	switch t := md.Type(key); t {
	case "":
		return fmt.Sprintf("%T", v)
	case "Hash":
		return "a table"
	case "ArrayHash":
		return "an array of tables"
	case "Array", "Integer":
		return "an " + strings.ToLower(t)
	default:
		return "a " + strings.ToLower(t)
	}
}

// fieldByTag returns the field of struct v whose toml tag is name.
func fieldByTag(v reflect.Value, name string) (reflect.Value, bool) {
	if v.Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	t := v.Type()
	for i := range t.NumField() {
		if tomlName(t.Field(i)) == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// tomlName returns the TOML key of a struct field.
func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	return name
}

// tomlPrefix matches the location prefix of the errors that the toml
// package formats itself (type mismatches), e.g.
// `toml: line 5 (last key "network.conn_low"): `.
var tomlPrefix = regexp.MustCompile(`^toml: (?:line (\d+) )?(?:\(last key "[^"]*"\): )?`)

// tomlError converts an error of the toml package about data into an
// *Error for key (or, if key is "", the key the parser last read).
func tomlError(data []byte, key string, err error) *Error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		if key == "" {
			key = pe.LastKey
		}
		e := &Error{Key: key, Line: pe.Position.Line, Column: pe.Position.Col, Err: &causeError{pe.Message, err}}
		// Position.Col is off by a line when the error is at the start
		// of a line; recompute line and column from the byte offset.
		if start := pe.Position.Start; start >= 0 && start <= len(data) {
			lineStart := bytes.LastIndexByte(data[:start], '\n') + 1
			e.Line = bytes.Count(data[:start], []byte("\n")) + 1
			e.Column = utf8.RuneCount(data[lineStart:start]) + 1
		}
		return e
	}
	// The toml package reports type mismatches as plain errors whose
	// message carries the line; move it into the *Error's position.
	e := &Error{Key: key, Err: err}
	if m := tomlPrefix.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Err = &causeError{err.Error()[len(m[0]):], err}
	}
	return e
}

// causeError reads as msg, a cleaned-up message, and unwraps to the error
// the message was taken from.
type causeError struct {
	msg   string
	cause error
}

func (e *causeError) Error() string { return e.msg }
func (e *causeError) Unwrap() error { return e.cause }

// fold is a key name without case, '_' and '-', to match a misspelt key
// such as connLow or conn-low to conn_low.
func fold(s string) string {
	return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
}

// suggest returns a hint for the unknown key name in section ("" at the
// top level) of the configuration root: the key it probably means, in the
// same table or in another one, or "" if none matches.
func suggest(root reflect.Value, section, name string) string {
	t := root.Type()
	// A table name, or a key of one, written at the top level.
	for i := range t.NumField() {
		sec := tomlName(t.Field(i))
		if section == "" && fold(sec) == fold(name) {
			return fmt.Sprintf("did you mean [%s]?", sec)
		}
	}
	var other string
	for i := range t.NumField() {
		sec := tomlName(t.Field(i))
		ft := t.Field(i).Type
		for j := range ft.NumField() {
			key := tomlName(ft.Field(j))
			if fold(key) != fold(name) {
				continue
			}
			if sec == section {
				return fmt.Sprintf("did you mean %q?", sec+"."+key)
			}
			if other == "" {
				other = fmt.Sprintf("%s is a key of the [%s] table: did you mean %q?", key, sec, sec+"."+key)
			}
		}
	}
	return other
}

// keyLine returns the line (from 1) of data that sets key, such as
// "network.listen[1]" (the index is ignored) or a table "[sync]", or 0 if
// no line does. It reads the simple TOML written by hand: table headers
// and key = value lines, with dotted keys.
func keyLine(data []byte, key string) int {
	key, _, _ = strings.Cut(key, "[")
	table := ""
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "[["):
			table = strings.TrimSpace(strings.Trim(line, "[] "))
			if table == key {
				return i + 1
			}
		case strings.HasPrefix(line, "["):
			h, _, _ := strings.Cut(line[1:], "]")
			table = strings.TrimSpace(h)
			if table == key {
				return i + 1
			}
		default:
			k, _, ok := strings.Cut(line, "=")
			if !ok || strings.HasPrefix(line, "#") {
				continue
			}
			full := strings.Trim(strings.TrimSpace(k), `"`)
			if table != "" {
				full = table + "." + full
			}
			if full == key || strings.HasPrefix(full, key+".") {
				return i + 1
			}
		}
	}
	return 0
}

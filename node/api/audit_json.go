package api

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// auditTimeKeys are the keys of gov.Report's JSON whose values are times
// in Unix milliseconds (or null). The API shows them as RFC 3339, as it
// shows every time; durations (the keys ending in "Seconds") stay numbers.
var auditTimeKeys = map[string]bool{
	"claimed": true, "closes": true, "date": true, "firstSeen": true, "opens": true,
	"plannedEnd": true, "plannedStart": true, "public": true, "started": true, "time": true,
}

// auditJSON rewrites the canonical JSON of an audit (gov.Report.JSON) with
// its times as RFC 3339 strings (TimeLayout), keeping the order of every
// key and every other byte as it was: the result is as canonical as the
// input, so nodes with the same records still serve byte-identical audits.
func auditJSON(in []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	var out bytes.Buffer
	if err := copyJSON(dec, &out, false); err != nil {
		return nil, fmt.Errorf("api: audit JSON: %w", err)
	}
	return out.Bytes(), nil
}

// copyJSON copies one JSON value from dec to out; a number is written as
// an RFC 3339 time if isTime.
func copyJSON(dec *json.Decoder, out *bytes.Buffer, isTime bool) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		end := byte('}')
		if t == '[' {
			end = ']'
		}
		out.WriteByte(byte(t))
		for i := 0; dec.More(); i++ {
			if i > 0 {
				out.WriteByte(',')
			}
			key := ""
			if t == '{' {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				key, _ = k.(string)
				writeString(out, key)
				out.WriteByte(':')
			}
			if err := copyJSON(dec, out, t == '{' && auditTimeKeys[key]); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return err
		}
		out.WriteByte(end)
	case json.Number:
		if !isTime {
			out.WriteString(t.String())
			return nil
		}
		ms, err := t.Int64()
		if err != nil {
			return fmt.Errorf("time %s: %w", t, err)
		}
		writeString(out, rfc3339(ms))
	case string:
		writeString(out, t)
	case bool:
		fmt.Fprint(out, t)
	case nil:
		out.WriteString("null")
	}
	return nil
}

// writeString writes s as a JSON string, escaped as gov.Report.JSON
// escapes it (no HTML escaping).
func writeString(out *bytes.Buffer, s string) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	out.Write(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

package config

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// Sentinel errors. Test for them with errors.Is; the errors returned wrap
// them with the file or key concerned.
var (
	// ErrUnknownKey is returned (inside an [*Error]) by Load when the file
	// sets a key that Config does not have, usually a typo.
	ErrUnknownKey = errors.New("config: unknown key")
	// ErrInsecureMode is returned by LoadIdentity and LoadToken when the
	// file can be read or written by its group or by others.
	ErrInsecureMode = errors.New("config: secret file is accessible by group or others")
	// ErrKeyType is returned by LoadIdentity when the file holds a key that
	// is not ed25519.
	ErrKeyType = errors.New("config: identity key is not ed25519")
	// ErrBadToken is returned by LoadToken when the file does not hold a
	// usable token.
	ErrBadToken = errors.New("config: bad api token")
)

// Error is a problem with the configuration, located as precisely as it is
// known. Load and Validate return problems as *Error values (joined with
// [errors.Join] when there are several). Its message has the form
//
//	config: [FILE[:LINE[:COLUMN]]: ][KEY: ]PROBLEM
//
// for example "config: sync.interval: must be > 0" from Validate, or
// `config: /srv/ch/config.toml: unknown key "network.listn"` from Load.
type Error struct {
	// File is the configuration file, or "" when a Config value was
	// validated on its own.
	File string
	// Line and Column locate the problem in File, counting from 1; they are
	// 0 when unknown.
	Line, Column int
	// Key is the key path, such as "network.listen[1]", or "" when unknown.
	Key string
	// Err is the problem itself.
	Err error
	// Hint, if not empty, says what was probably meant, such as
	// `did you mean "network.conn_low"?` for an unknown key.
	Hint string
}

// Error implements the error interface.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
			if e.Column > 0 {
				b.WriteString(":" + strconv.Itoa(e.Column))
			}
		}
		b.WriteString(": ")
	}
	switch {
	case e.Err == nil:
		b.WriteString(e.Key + ": invalid")
	case errors.Is(e.Err, ErrUnknownKey):
		fmt.Fprintf(&b, "unknown key %q", e.Key)
	case e.Key != "":
		b.WriteString(e.Key + ": " + e.Err.Error())
	default:
		b.WriteString(e.Err.Error())
	}
	if e.Hint != "" {
		b.WriteString(" (" + e.Hint + ")")
	}
	return b.String()
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// keyError returns an *Error for key with a formatted problem.
func keyError(key, format string, args ...any) *Error {
	return &Error{Key: key, Err: fmt.Errorf(format, args...)}
}

// fileOpError wraps an error of a file operation as "config: OP PATH: CAUSE",
// dropping the *fs.PathError layer whose message would repeat the path. The
// cause (for example fs.ErrNotExist or fs.ErrPermission) stays testable
// with errors.Is.
func fileOpError(op, path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("config: %s %s: %w", op, path, err)
}

package protocol

import (
	"errors"
	"fmt"
)

// Action says what a receiver does with a record that failed validation.
type Action uint8

// Actions. The zero value means "no verdict" and is never returned for an
// error produced by this package.
const (
	// Reject means the sender misbehaved: the record can never become valid.
	// Gossip peers that forward it are penalised.
	Reject Action = iota + 1
	// Ignore means "not now": the record is a duplicate, or it may become
	// valid later (its causal past is missing, its time is in the future).
	Ignore
)

// String returns "reject" or "ignore".
func (a Action) String() string {
	switch a {
	case Reject:
		return "reject"
	case Ignore:
		return "ignore"
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Reason is the stable, wire-level name of a validation failure. Reasons are
// used as metrics labels and in API error responses, so they never change
// once released.
type Reason string

// Reasons, with the action each implies.
const (
	ReasonOversize     Reason = "oversize"      // reject: record or body above the limit
	ReasonBadEncoding  Reason = "bad-encoding"  // reject: not DAG-CBOR, wrong types, unknown fields
	ReasonNonCanonical Reason = "non-canonical" // reject: decodes, but does not re-encode to the same bytes
	ReasonBadVersion   Reason = "bad-version"   // reject: unknown envelope version
	ReasonWrongNetwork Reason = "wrong-network" // reject: record of another federation
	ReasonUnknownKind  Reason = "unknown-kind"  // reject: kind not defined by this protocol version
	ReasonWrongTopic   Reason = "wrong-topic"   // reject: topic malformed, or not allowed for the kind, or not the topic it arrived on
	ReasonBadBody      Reason = "bad-body"      // reject: body does not match the kind's schema
	ReasonBadLinks     Reason = "bad-links"     // reject: seq/prev inconsistent, deps unsorted, duplicated, too many or not record CIDs
	ReasonBadSignature Reason = "bad-signature" // reject: signature does not verify with the author key
	ReasonEquivocation Reason = "equivocation"  // author signed another record at the same topic and seq; no longer a refusal (both are kept, docs/protocol.md 8.10), kept in the list of reasons for peers of older versions
	ReasonNotMember    Reason = "not-member"    // reject: author is not a member in the record's causal past
	ReasonNotAllowed   Reason = "not-allowed"   // reject: the causal past does not allow this record (rule violation)
	ReasonBadTime      Reason = "bad-time"      // reject: claimed time before a dependency's claimed time
	ReasonDuplicate    Reason = "duplicate"     // ignore: already stored
	ReasonMissingDeps  Reason = "missing-deps"  // ignore: prev or deps not yet known
	ReasonFutureTime   Reason = "future-time"   // ignore: claimed time too far ahead of the receiver's clock
	ReasonObserver     Reason = "observer"      // a write was attempted on a read-only observer node (local only)
	// ReasonUnknownAuthor and ReasonPendingFull are a node's verdicts on a
	// record whose causal past it lacks (docs/protocol.md 7.1): whether it
	// may wait for that past depends on what the node holds, not on the
	// record alone.
	ReasonUnknownAuthor Reason = "unknown-author" // reject: past missing, and the author is no member, applicant or named new key, in a kind only members sign
	ReasonPendingFull   Reason = "pending-full"   // ignore: past missing, and the sender's or the author's share of the pending set is used up
)

var reasonActions = map[Reason]Action{
	ReasonOversize:     Reject,
	ReasonBadEncoding:  Reject,
	ReasonNonCanonical: Reject,
	ReasonBadVersion:   Reject,
	ReasonWrongNetwork: Reject,
	ReasonUnknownKind:  Reject,
	ReasonWrongTopic:   Reject,
	ReasonBadBody:      Reject,
	ReasonBadLinks:     Reject,
	ReasonBadSignature: Reject,
	ReasonEquivocation: Reject,
	ReasonNotMember:    Reject,
	ReasonNotAllowed:   Reject,
	ReasonBadTime:      Reject,
	ReasonDuplicate:    Ignore,
	ReasonMissingDeps:  Ignore,
	ReasonFutureTime:   Ignore,
	ReasonObserver:     Reject,

	ReasonUnknownAuthor: Reject,
	ReasonPendingFull:   Ignore,
}

// Reasons returns every defined reason, for pre-registering metrics labels.
func Reasons() []Reason {
	out := make([]Reason, 0, len(reasonActions))
	for r := range reasonActions {
		out = append(out, r)
	}
	return out
}

// Action returns the action a reason implies.
func (r Reason) Action() Action { return reasonActions[r] }

// Error is a validation failure: a stable reason plus a human detail. Use
// errors.Is with a sentinel (ErrBadSignature, ...) to test the reason, or
// [ReasonOf] to read it.
type Error struct {
	Reason Reason
	Detail string
}

// Error returns "protocol: <reason>: <detail>".
func (e *Error) Error() string {
	if e.Detail == "" {
		return "protocol: " + string(e.Reason)
	}
	return "protocol: " + string(e.Reason) + ": " + e.Detail
}

// Action returns whether the record is to be rejected or ignored.
func (e *Error) Action() Action { return e.Reason.Action() }

// Is reports whether target is a protocol error with the same reason, so
// that errors.Is(err, ErrBadSignature) works for any detail.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Reason == e.Reason
}

// Sentinel errors, one per reason. A function of this package returns an
// *Error whose reason matches one of these under errors.Is.
var (
	// ErrOversize is returned by Decode when a record or body exceeds its limit.
	ErrOversize = &Error{Reason: ReasonOversize}
	// ErrBadEncoding is returned by Decode when the bytes are not DAG-CBOR of the envelope schema.
	ErrBadEncoding = &Error{Reason: ReasonBadEncoding}
	// ErrNonCanonical is returned by Decode when the bytes decode but are not the canonical encoding.
	ErrNonCanonical = &Error{Reason: ReasonNonCanonical}
	// ErrBadVersion is returned by Decode for an unknown envelope version.
	ErrBadVersion = &Error{Reason: ReasonBadVersion}
	// ErrWrongNetwork is returned by Validate when the record names another network.
	ErrWrongNetwork = &Error{Reason: ReasonWrongNetwork}
	// ErrUnknownKind is returned by Decode when the kind is not defined.
	ErrUnknownKind = &Error{Reason: ReasonUnknownKind}
	// ErrWrongTopic is returned by Decode and Validate when the topic is malformed or not allowed.
	ErrWrongTopic = &Error{Reason: ReasonWrongTopic}
	// ErrBadBody is returned by Decode when the body does not match its kind's schema.
	ErrBadBody = &Error{Reason: ReasonBadBody}
	// ErrBadLinks is returned by Decode when seq, prev or deps are inconsistent.
	ErrBadLinks = &Error{Reason: ReasonBadLinks}
	// ErrBadSignature is returned by Record.Verify when the signature does not verify.
	ErrBadSignature = &Error{Reason: ReasonBadSignature}
	// ErrEquivocation is returned when an author signed two records at one topic and seq.
	ErrEquivocation = &Error{Reason: ReasonEquivocation}
	// ErrNotMember is returned when the author is not a member in the record's causal past.
	ErrNotMember = &Error{Reason: ReasonNotMember}
	// ErrNotAllowed is returned when the record's causal past does not allow it.
	ErrNotAllowed = &Error{Reason: ReasonNotAllowed}
	// ErrBadTime is returned when a record claims a time before one of its dependencies.
	ErrBadTime = &Error{Reason: ReasonBadTime}
	// ErrDuplicate is returned when the record is already stored.
	ErrDuplicate = &Error{Reason: ReasonDuplicate}
	// ErrMissingDeps is returned while a record's prev or deps are not yet known.
	ErrMissingDeps = &Error{Reason: ReasonMissingDeps}
	// ErrFutureTime is returned by Validate when the claimed time is beyond MaxClockSkew.
	ErrFutureTime = &Error{Reason: ReasonFutureTime}
	// ErrObserver is returned by a read-only node asked to sign or publish.
	ErrObserver = &Error{Reason: ReasonObserver, Detail: "this node is a read-only observer and never signs records"}
	// ErrUnknownAuthor is returned by a node's ingest for a record whose
	// causal past it lacks and whose author could not be a member in it as
	// far as the node can tell (docs/protocol.md 7.1).
	ErrUnknownAuthor = &Error{Reason: ReasonUnknownAuthor}
	// ErrPendingFull is returned by a node's ingest for a record whose
	// causal past it lacks when its sender's or its author's share of the
	// pending set is used up.
	ErrPendingFull = &Error{Reason: ReasonPendingFull}
)

// Errorf returns an *Error with the given reason and a formatted detail.
func Errorf(reason Reason, format string, args ...any) error {
	return &Error{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// ErrorFor returns the sentinel error of a reason, or nil if the reason is
// unknown. It is the inverse of [ReasonOf] for errors that came off the wire.
func ErrorFor(r Reason) error {
	if _, ok := reasonActions[r]; !ok {
		return nil
	}
	return &Error{Reason: r}
}

// ReasonOf returns the reason of a protocol error anywhere in err's chain,
// or "" if err is not one.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// ActionOf returns the action of a protocol error anywhere in err's chain,
// or 0 if err is not one.
func ActionOf(err error) Action {
	return ReasonOf(err).Action()
}

package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/store"
)

// Error codes of the API. They are stable: clients may compare them.
const (
	// CodeBadRequest: the request is malformed (bad JSON, a bad CID, a bad
	// query parameter). Status 400.
	CodeBadRequest = "bad-request"
	// CodeUnknownKind: POST /records names a kind the protocol does not
	// define. Status 400.
	CodeUnknownKind = "unknown-kind"
	// CodeUnauthorized: a write without the right bearer token. Status 401.
	CodeUnauthorized = "unauthorized"
	// CodeObserver: a write to an observer node. Status 403.
	CodeObserver = "observer"
	// CodeNotFound: no such route, record, issue or process. Status 404.
	CodeNotFound = "not-found"
	// CodeMethodNotAllowed: the route exists, the method does not. Status 405.
	CodeMethodNotAllowed = "method-not-allowed"
	// CodeTooLarge: the request body exceeds the 1 MiB limit. Status 413.
	CodeTooLarge = "too-large"
	// CodeConflict: the request conflicts with the node's configuration
	// (unfollowing an issue listed in topics.follow). Status 409.
	CodeConflict = "conflict"
	// CodeRejected: the protocol refused the record; the error's reason is
	// the protocol reason. Status 422.
	CodeRejected = "rejected"
	// CodeRefused: this node refuses to publish a record that the
	// protocol would accept but that would have no effect anywhere (a
	// charter on an issue that is not open, a charter without an aim).
	// Status 422.
	CodeRefused = "refused"
	// CodeUnavailable: the node is shutting down, the request was
	// cancelled, or too many event streams are open. Status 503.
	CodeUnavailable = "unavailable"
	// CodeInternal: anything else. Status 500.
	CodeInternal = "internal"
)

// Error is the body of every error response, inside {"error": ...}.
type Error struct {
	// Code is one of the Code constants.
	Code string `json:"code"`
	// Message is human-readable text.
	Message string `json:"message"`
	// Reason is the protocol reason (see protocol.Reason), if any.
	Reason string `json:"reason,omitempty"`
}

// Error returns the message, with the reason if there is one.
func (e *Error) Error() string {
	if e.Reason != "" {
		return e.Message + " (reason: " + e.Reason + ")"
	}
	return e.Message
}

// errorBody is the JSON envelope of an error.
type errorBody struct {
	Error *Error `json:"error"`
}

// writeError writes an error response. The message is cut to
// maxErrorMessage bytes: an error about bad input never echoes all of it.
func writeError(w http.ResponseWriter, status int, code, msg string, reason protocol.Reason) {
	writeJSON(w, status, errorBody{&Error{Code: code, Message: truncate(msg, maxErrorMessage), Reason: string(reason)}})
}

// writeErr maps err to a status and code: protocol refusals to 422 with
// their reason, a write on an observer to 403, missing things to 404.
func (s *Server) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	reason := protocol.ReasonOf(err)
	switch {
	case errors.Is(err, protocol.ErrObserver) || reason == protocol.ReasonObserver:
		writeError(w, http.StatusForbidden, CodeObserver, "this node is a read-only observer: it serves no writes", protocol.ReasonObserver)
	case reason != "":
		writeError(w, http.StatusUnprocessableEntity, CodeRejected, err.Error(), reason)
	case errors.Is(err, node.ErrFollowedByConfig):
		writeError(w, http.StatusConflict, CodeConflict, err.Error()+"; remove it from topics.follow in config.toml and restart the node", "")
	case errors.Is(err, node.ErrBlockedByConfig):
		writeError(w, http.StatusConflict, CodeConflict, err.Error()+"; remove it from public.blocked in config.toml and restart the node", "")
	case errors.Is(err, node.ErrBlockSelf):
		writeError(w, http.StatusConflict, CodeConflict, err.Error(), "")
	case errors.Is(err, node.ErrInvalidBlock):
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error(), "")
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, CodeNotFound, err.Error(), "")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, store.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, err.Error(), "")
	default:
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, CodeInternal, err.Error(), "")
	}
}

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

package signal

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/rostrum-dev/rostrum/internal/stage"
)

// wireError is how this transport answers one kind of stage error: the
// HTTP status and IVS's JSON error code of the media endpoints
// (docs/protocol.md §5), and the code of the events channel's
// aws:ivs:JOIN_ERROR (§7).
type wireError struct {
	err    error
	status int
	code   int
	join   string
}

// wireErrors is the one table from the stage's errors to the wire, in the
// order errors.Is tries them. IVS's codes: 2001 unspecified, 2002 token
// expired, 2003 no permissions, 2004 remote stream not found, 2005 stage at
// capacity, 2006 internal, 2007 uncategorized, 2008 unreachable, 2013
// throttled, 2014 no matching codec.
var wireErrors = []wireError{
	{stage.ErrTokenMissing, http.StatusUnauthorized, 2001, "TOKEN_MISSING"},
	{stage.ErrTokenInvalid, http.StatusUnauthorized, 2001, "TOKEN_INVALID"},
	{stage.ErrTokenSignature, http.StatusUnauthorized, 2001, "TOKEN_INVALID_SIGNATURE"},
	{stage.ErrTokenExpired, http.StatusUnauthorized, 2002, "TOKEN_EXPIRED"},
	{stage.ErrStageDeleted, http.StatusNotFound, 2001, "STAGE_DELETED"},
	{stage.ErrDisconnected, http.StatusForbidden, 2003, "PARTICIPANT_DISCONNECTED"},
	{stage.ErrNotAllowed, http.StatusForbidden, 2003, "BAD_REQUEST"},
	{stage.ErrNotOwner, http.StatusForbidden, 2003, "BAD_REQUEST"},
	{stage.ErrStageFull, http.StatusForbidden, 2005, "BAD_REQUEST"},
	{stage.ErrPublisherNotFound, http.StatusNotFound, 2004, "BAD_REQUEST"},
	{stage.ErrUnknownResource, http.StatusNotFound, 2004, "BAD_REQUEST"},
	{stage.ErrNotSubscription, http.StatusNotFound, 2004, "BAD_REQUEST"},
	{stage.ErrNoMatchingCodec, http.StatusBadRequest, 2014, "BAD_REQUEST"},
	{stage.ErrBadOffer, http.StatusBadRequest, 2001, "BAD_REQUEST"},
	{stage.ErrBadRequest, http.StatusBadRequest, 2001, "BAD_REQUEST"},
	{stage.ErrThrottled, http.StatusTooManyRequests, 2013, "BAD_REQUEST"},
	{stage.ErrTimeout, http.StatusGatewayTimeout, 2007, "INTERNAL"},
	{stage.ErrUnavailable, http.StatusServiceUnavailable, 2008, "INTERNAL"},
}

// internalError is the answer to anything else: the server's fault.
var internalError = wireError{stage.ErrInternal, http.StatusInternalServerError, 2006, "INTERNAL"}

// wireOf finds err's row and the message the client gets: the error's own
// text, which says what to fix, except for the server's faults, which are
// logged here and not described to the client.
func (h *Handler) wireOf(r *http.Request, err error) (wireError, string) {
	for _, w := range wireErrors {
		if errors.Is(err, w.err) {
			if w.status >= 500 {
				h.log.Warn("media endpoint", "path", r.URL.Path, "err", err)
			}
			return w, err.Error()
		}
	}
	h.log.Error("media endpoint failed", "path", r.URL.Path, "err", err)
	return internalError, internalError.err.Error()
}

// fail answers a request with the stage error err.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	we, msg := h.wireOf(r, err)
	writeError(w, we.status, we.code, msg)
}

// writeError answers with IVS's JSON error body: {"code": N, "message": …}.
func writeError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg})
}

// joinErrorMessage is the aws:ivs:JOIN_ERROR a refused events channel gets.
func joinErrorMessage(code, message string) []byte {
	b, _ := json.Marshal(map[string]any{"type": "aws:ivs:JOIN_ERROR", "payload": map[string]any{
		"code": code, "message": message, "fatal": true, "nominal": false,
	}})
	return b
}

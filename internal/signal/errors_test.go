package signal

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rostrum-dev/rostrum/internal/stage"
)

// The table of docs/protocol.md §5: each stage error answers its status
// and IVS code, with the error's message.
func TestErrorTable(t *testing.T) {
	var logged strings.Builder
	h := &Handler{log: slog.New(slog.NewTextHandler(&logged, nil))}
	for _, tc := range []struct {
		err    error
		status int
		code   int
	}{
		{stage.ErrTokenMissing, 401, 2001},
		{fmt.Errorf("%w: bad", stage.ErrTokenInvalid), 401, 2001},
		{stage.ErrTokenSignature, 401, 2001},
		{stage.ErrTokenExpired, 401, 2002},
		{stage.ErrStageDeleted, 404, 2001},
		{stage.ErrDisconnected, 403, 2003},
		{stage.ErrNotAllowed, 403, 2003},
		{stage.ErrNotOwner, 403, 2003},
		{stage.ErrStageFull, 403, 2005},
		{stage.ErrPublisherNotFound, 404, 2004},
		{stage.ErrUnknownResource, 404, 2004},
		{stage.ErrNotSubscription, 404, 2004},
		{stage.ErrNoMatchingCodec, 400, 2014},
		{fmt.Errorf("%w: 4 a=rid lines", stage.ErrBadOffer), 400, 2001},
		{stage.ErrBadRequest, 400, 2001},
		{stage.ErrThrottled, 429, 2013},
		{stage.ErrTimeout, 504, 2007},
		{stage.ErrUnavailable, 503, 2008},
	} {
		w := httptest.NewRecorder()
		h.fail(w, httptest.NewRequest("POST", "/whip", nil), tc.err)
		var body struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		json.NewDecoder(w.Body).Decode(&body)
		if w.Code != tc.status || body.Code != tc.code || body.Message != tc.err.Error() {
			t.Errorf("%v: %d %+v, want %d %d", tc.err, w.Code, body, tc.status, tc.code)
		}
	}
	// The server's own failures tell the client nothing more, and are
	// logged.
	w := httptest.NewRecorder()
	h.fail(w, httptest.NewRequest("POST", "/whip", nil), fmt.Errorf("%w: sqlite: disk I/O error", stage.ErrInternal))
	if w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), "sqlite") || !strings.Contains(w.Body.String(), `"code":2006`) {
		t.Errorf("internal error: %d %s", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	h.fail(w, httptest.NewRequest("POST", "/whip", nil), errors.New("unexpected"))
	if w.Code != http.StatusInternalServerError {
		t.Errorf("unknown error: %d", w.Code)
	}
	if !strings.Contains(logged.String(), "sqlite: disk I/O error") || !strings.Contains(logged.String(), "unexpected") {
		t.Errorf("not logged: %s", logged.String())
	}
}

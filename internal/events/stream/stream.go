// Package stream serves the event bus's live feed over HTTP as server-sent
// events (GET /v1/events): every event the bus accepts, as it is accepted.
// It is for local development and dashboards: nothing is stored for it, a
// client that falls behind is disconnected, and a client that reconnects
// with Last-Event-ID gets what it missed if the bus still remembers it.
package stream

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/rostrum-dev/rostrum/internal/events"
	"github.com/rostrum-dev/rostrum/internal/sigv4"
)

// Auth says who may open the stream.
type Auth struct {
	// Verifier accepts requests signed with SigV4 (in the Authorization
	// header or as a presigned URL) with the API's credentials; the
	// client then sees its own account's events.
	Verifier *sigv4.Verifier
	// Token, if set, is a bearer token (Authorization: Bearer, or the
	// access_token query parameter for browsers' EventSource, which cannot
	// set headers) that sees every account's events.
	Token string
}

// keepalive is how often an idle stream gets a comment, so that proxies
// and clients see it alive.
const keepalive = 15 * time.Second

// writeTimeout bounds one write to a stream client.
const writeTimeout = 30 * time.Second

// Handler serves the bus's live feed: GET with optional filters
// detail-type and resource (each repeatable) or pattern (an event pattern;
// not with the others). Without a detail-type, IVS's detail-types only.
//
// The stream is long-lived by design: it lifts the server's read deadline
// for its connection and bounds each write instead, and the keepalive
// comments it writes are what notices a client that went away.
func Handler(b *events.Bus, auth Auth) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		account, status, err := auth.authenticate(r)
		if err != nil {
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="rostrum events"`)
			}
			http.Error(w, err.Error(), status)
			return
		}
		pattern, err := streamPattern(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		match := func(e *events.Live) bool {
			return (account == "" || e.Account == account) && pattern.Match(e.View)
		}
		sub, ok := b.Subscribe(match, r.Header.Get("Last-Event-ID"))
		if !ok {
			http.Error(w, "the server is shutting down", http.StatusServiceUnavailable)
			return
		}
		defer b.Unsubscribe(sub)
		rc := http.NewResponseController(w)
		// The server's read deadline would end the stream (its expiry
		// cancels the request); the write deadline is renewed before each
		// write instead of cleared, so that a client that stops reading is
		// cut off rather than held for ever. An error only means the
		// ResponseWriter cannot set deadlines (a test's recorder).
		_ = rc.SetReadDeadline(time.Time{})
		extend := func() { _ = rc.SetWriteDeadline(time.Now().Add(writeTimeout)) }
		extend()
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		if _, err := fmt.Fprint(w, "retry: 2000\n: rostrum events\n\n"); err != nil {
			return
		}
		rc.Flush()
		tick := time.NewTicker(keepalive)
		defer tick.Stop()
		for {
			select {
			case e, ok := <-sub.Events():
				extend()
				if !ok {
					return // fell behind, or the server stops
				}
				if _, err := fmt.Fprintf(w, "id: %s\ndata: %s\n\n", e.ID, e.Doc); err != nil {
					return
				}
			case <-tick.C:
				extend()
				if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
					return
				}
			case <-r.Context().Done():
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	})
}

var errUnauthenticated = errors.New("the event stream needs a SigV4 signature with the API's credentials or the bearer token of --event-stream-token")

// authenticate returns the account whose events the client may see ("" for
// all), or the HTTP status and error to answer.
func (a Auth) authenticate(r *http.Request) (string, int, error) {
	authz := r.Header.Get("Authorization")
	q := r.URL.Query()
	token, isBearer := strings.CutPrefix(authz, "Bearer ")
	if !isBearer && q.Has("access_token") {
		token, isBearer = q.Get("access_token"), true
	}
	switch {
	case isBearer:
		if a.Token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(a.Token)) == 1 {
			return "", 0, nil
		}
		return "", http.StatusUnauthorized, errors.New("the bearer token is not the event stream's")
	case strings.HasPrefix(authz, "AWS4-") || q.Has("X-Amz-Signature"):
		if a.Verifier == nil {
			return "", http.StatusUnauthorized, errUnauthenticated
		}
		p, err := a.Verifier.Verify(r, nil)
		if err != nil {
			return "", http.StatusForbidden, err
		}
		return p.AccountID, 0, nil
	}
	return "", http.StatusUnauthorized, errUnauthenticated
}

// streamPattern reads a stream's filters.
func streamPattern(r *http.Request) (*events.Pattern, error) {
	q := r.URL.Query()
	if src := q.Get("pattern"); src != "" {
		if q.Has("detail-type") || q.Has("resource") {
			return nil, errors.New("pattern cannot be combined with detail-type or resource")
		}
		return events.SinkPattern(src)
	}
	m := map[string][]string{}
	if v := q["detail-type"]; len(v) > 0 {
		m["detail-type"] = v
	}
	if v := q["resource"]; len(v) > 0 {
		m["resources"] = v
	}
	if len(m) == 0 {
		return events.SinkPattern("")
	}
	src, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return events.SinkPattern(string(src))
}

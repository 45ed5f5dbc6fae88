package events

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rostrum-dev/rostrum/internal/sigv4"
)

// The live stream: every event the bus accepts, as it is accepted, to the
// clients of GET /v1/events (server-sent events). It is for local
// development and dashboards: nothing is stored for it, a client that falls
// behind is disconnected, and a client that reconnects with Last-Event-ID
// gets what it missed if the bus still remembers it (StreamReplay events).

type liveEvent struct {
	id      string
	doc     []byte
	view    map[string]any
	account string
}

// subscription is one stream client.
type subscription struct {
	c      chan *liveEvent
	match  func(*liveEvent) bool
	lagged bool // closed because it fell behind
}

// hub fans events out to subscriptions and remembers the latest ones.
type hub struct {
	mu      sync.Mutex
	subs    map[*subscription]struct{}
	ring    []*liveEvent
	next    int // where the next event goes in ring
	closed  bool
	clients atomic.Int64
	lagged  atomic.Int64
}

func newHub(replay int) *hub {
	return &hub{subs: map[*subscription]struct{}{}, ring: make([]*liveEvent, replay)}
}

// subBuffer is how many events a client may be behind before it is
// disconnected, beyond what a replay puts in its channel.
const subBuffer = 256

func (h *hub) publish(e *liveEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.ring[h.next] = e
	h.next = (h.next + 1) % len(h.ring)
	for s := range h.subs {
		if !s.match(e) {
			continue
		}
		select {
		case s.c <- e:
		default:
			// Too slow: the client is cut off; it reconnects with
			// Last-Event-ID and the replay fills the gap, if it can.
			s.lagged = true
			close(s.c)
			delete(h.subs, s)
			h.lagged.Add(1)
		}
	}
}

// subscribe adds a client. If lastID names an event the hub remembers, the
// matching events after it are queued first.
func (h *hub) subscribe(match func(*liveEvent) bool, lastID string) (*subscription, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, false
	}
	s := &subscription{c: make(chan *liveEvent, len(h.ring)+subBuffer), match: match}
	if lastID != "" {
		n := len(h.ring)
		found := false
		for i := range n {
			e := h.ring[(h.next+i)%n]
			if e == nil {
				continue
			}
			if found && match(e) {
				s.c <- e
			}
			if e.id == lastID {
				found = true
			}
		}
	}
	h.subs[s] = struct{}{}
	h.clients.Add(1)
	return s, true
}

func (h *hub) unsubscribe(s *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clients.Add(-1)
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.c)
	}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		close(s.c)
		delete(h.subs, s)
	}
}

// StreamAuth says who may open the stream.
type StreamAuth struct {
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

// StreamHandler serves the live stream: GET with optional filters
// detail-type and resource (each repeatable) or pattern (an event pattern;
// not with the others). Without a detail-type, IVS's detail-types only.
func (b *Bus) StreamHandler(auth StreamAuth) http.Handler {
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
		match := func(e *liveEvent) bool {
			return (account == "" || e.account == account) && pattern.Match(e.view)
		}
		sub, ok := b.live.subscribe(match, r.Header.Get("Last-Event-ID"))
		if !ok {
			http.Error(w, "the server is shutting down", http.StatusServiceUnavailable)
			return
		}
		defer b.live.unsubscribe(sub)
		rc := http.NewResponseController(w)
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
			case e, ok := <-sub.c:
				if !ok {
					return // fell behind, or the server stops
				}
				if _, err := fmt.Fprintf(w, "id: %s\ndata: %s\n\n", e.id, e.doc); err != nil {
					return
				}
			case <-tick.C:
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
func (a StreamAuth) authenticate(r *http.Request) (string, int, error) {
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
func streamPattern(r *http.Request) (*Pattern, error) {
	q := r.URL.Query()
	if src := q.Get("pattern"); src != "" {
		if q.Has("detail-type") || q.Has("resource") {
			return nil, errors.New("pattern cannot be combined with detail-type or resource")
		}
		return SinkPattern(src)
	}
	m := map[string][]string{}
	if v := q["detail-type"]; len(v) > 0 {
		m["detail-type"] = v
	}
	if v := q["resource"]; len(v) > 0 {
		m["resources"] = v
	}
	if len(m) == 0 {
		return SinkPattern("")
	}
	src, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return SinkPattern(string(src))
}

package rtclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// eventsServer is a tiny events websocket for tests: it echoes the token
// subprotocol (unless told not to), answers PING with PONG (unless told not
// to), records what the client sends and sends what the test scripts.
type eventsServer struct {
	srv *httptest.Server

	noEcho bool // accept without echoing the subprotocol
	noPong bool // leave PINGs unanswered

	mu       sync.Mutex
	url      string // request URI of the last handshake
	protos   []string
	received []string
	conns    []*websocket.Conn
	send     chan string // messages to send to the client
	closeCh  chan struct{}
	wg       sync.WaitGroup
}

func newEventsServer(t *testing.T) *eventsServer {
	t.Helper()
	es := &eventsServer{send: make(chan string, 64), closeCh: make(chan struct{})}
	es.srv = httptest.NewServer(http.HandlerFunc(es.handle))
	t.Cleanup(func() {
		close(es.closeCh)
		es.mu.Lock()
		for _, c := range es.conns {
			_ = c.CloseNow()
		}
		es.mu.Unlock()
		es.srv.Close()
		es.wg.Wait()
	})
	return es
}

func (es *eventsServer) wsURL() string {
	return "ws" + strings.TrimPrefix(es.srv.URL, "http") + "/events"
}

func (es *eventsServer) handle(w http.ResponseWriter, r *http.Request) {
	es.wg.Add(1)
	defer es.wg.Done()
	protos := r.Header.Values("Sec-WebSocket-Protocol")
	var offer []string
	if !es.noEcho {
		offer = protos
	}
	es.mu.Lock()
	es.url = r.URL.RequestURI()
	es.protos = protos
	es.mu.Unlock()
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: offer})
	if err != nil {
		return
	}
	defer c.CloseNow()
	es.mu.Lock()
	es.conns = append(es.conns, c)
	es.mu.Unlock()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	es.wg.Add(1)
	go func() {
		defer es.wg.Done()
		for {
			select {
			case m := <-es.send:
				if m == "CLOSE" {
					_ = c.Close(websocket.StatusPolicyViolation, "kicked")
					return
				}
				if c.Write(ctx, websocket.MessageText, []byte(m)) != nil {
					return
				}
			case <-ctx.Done():
				return
			case <-es.closeCh:
				return
			}
		}
	}()
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		es.mu.Lock()
		es.received = append(es.received, string(data))
		es.mu.Unlock()
		if string(data) == `{"type":"PING"}` && !es.noPong {
			_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"PONG"}`))
		}
	}
}

func (es *eventsServer) got() []string {
	es.mu.Lock()
	defer es.mu.Unlock()
	return append([]string(nil), es.received...)
}

func stateMsg(seq int, ids ...string) string {
	var ps []map[string]any
	for _, id := range ids {
		ps = append(ps, map[string]any{"id": id, "userId": "u-" + id, "isPublishing": true, "audioMuted": false, "videoStopped": false})
	}
	b, _ := json.Marshal(map[string]any{"type": "STAGE_STATE", "payload": map[string]any{
		"sequenceNumber": seq, "stageId": "AbCdEfGhIjKl", "serverFeatures": []string{"jit_buf_min_delay_ms=0"},
		"participants": ps, "disconnected": []any{},
	}})
	return string(b)
}

func nextState(t *testing.T, ctx context.Context, e *Events) StageState {
	t.Helper()
	select {
	case st, ok := <-e.States():
		if !ok {
			t.Fatal("States closed")
		}
		return st
	case <-ctx.Done():
		t.Fatal("no state")
	}
	return StageState{}
}

// The Web SDK joins ${events_url}?error_over_ws=1&topic=${topic}/publishers
// with the raw token as the websocket subprotocol (IVS-BEHAVIOUR.md §3.1).
func TestEventsTokenIsTheSubprotocol(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	es := newEventsServer(t)
	tok := stageToken(t, "p1", "http://x", es.wsURL())
	e, err := ConnectEvents(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	es.mu.Lock()
	protos, url := es.protos, es.url
	es.mu.Unlock()
	if len(protos) != 1 || protos[0] != tok {
		t.Errorf("Sec-WebSocket-Protocol = %q, want the token", protos)
	}
	if url != "/events?error_over_ws=1&topic=AbCdEfGhIjKl/publishers" {
		t.Errorf("URL = %q", url)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Err(); err != nil {
		t.Errorf("Err after Close = %v", err)
	}
	if _, ok := <-e.States(); ok {
		t.Error("States not closed after Close")
	}
}

// A server that does not echo the subprotocol is refused, as browsers do.
func TestEventsRefusesServerThatDoesNotEcho(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	es := newEventsServer(t)
	es.noEcho = true
	_, err := ConnectEvents(ctx, stageToken(t, "p1", "http://x", es.wsURL()))
	if !errors.Is(err, ErrSubprotocolNotEchoed) {
		t.Fatalf("err = %v, want ErrSubprotocolNotEchoed", err)
	}
}

// State messages with a non-increasing sequenceNumber are dropped, as the
// Web SDK does; other messages go to Messages, PONGs nowhere.
func TestEventsStageStateOrderingAndMessages(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	es := newEventsServer(t)
	e, err := ConnectEvents(ctx, stageToken(t, "p1", "http://x", es.wsURL()))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, m := range []string{
		stateMsg(1, "p1"),
		stateMsg(3, "p1", "p2"),
		stateMsg(2, "p1"), // stale
		`{"type":"PONG"}`,
		stateMsg(3, "p1"), // not increasing
		`{"type":"aws:ivs:JOIN_ERROR","payload":{"code":"TOKEN_EXPIRED","message":"token expired","fatal":true,"nominal":false}}`,
		strings.Replace(stateMsg(4, "p2"), `"STAGE_STATE"`, `"aws:ivs:STAGE_STATE"`, 1),
		`{"type":"aws:ivs:DISCONNECT","payload":{"code":"PARTICIPANT_DISCONNECTED","reason":"kicked by admin"}}`,
		`not json`,
	} {
		es.send <- m
	}
	var seqs []int64
	for range 3 {
		seqs = append(seqs, nextState(t, ctx, e).SequenceNumber)
	}
	if len(seqs) != 3 || seqs[0] != 1 || seqs[1] != 3 || seqs[2] != 4 {
		t.Errorf("sequence numbers = %v, want [1 3 4]", seqs)
	}
	var msgs []Message
	for range 3 {
		select {
		case m := <-e.Messages():
			msgs = append(msgs, m)
		case <-ctx.Done():
			t.Fatal("missing messages")
		}
	}
	if msgs[0].Type != TypeJoinError || msgs[1].Type != TypeDisconnect || msgs[2].Type != "" || string(msgs[2].Raw) != "not json" {
		t.Fatalf("messages = %+v", msgs)
	}
	var je JoinErrorPayload
	if err := msgs[0].Decode(&je); err != nil || je != (JoinErrorPayload{Code: "TOKEN_EXPIRED", Message: "token expired", Fatal: true}) {
		t.Errorf("JOIN_ERROR = %+v, %v", je, err)
	}
	var dc DisconnectPayload
	if err := msgs[1].Decode(&dc); err != nil || dc != (DisconnectPayload{Code: "PARTICIPANT_DISCONNECTED", Reason: "kicked by admin"}) {
		t.Errorf("DISCONNECT = %+v, %v", dc, err)
	}
	if e.StaleStates() != 2 {
		t.Errorf("stale states = %d, want 2", e.StaleStates())
	}
	latest, ok := e.Latest()
	if !ok || latest.SequenceNumber != 4 || len(latest.Participants) != 1 || latest.Participants[0].ID != "p2" {
		t.Errorf("latest = %+v", latest)
	}
	if p, ok := latest.Participant("p2"); !ok || p.UserID != "u-p2" || !p.IsPublishing {
		t.Errorf("participant p2 = %+v", p)
	}
	if latest.StageID != "AbCdEfGhIjKl" || len(latest.ServerFeatures) != 1 || len(latest.Raw) == 0 {
		t.Errorf("latest = %+v", latest)
	}
	st, err := e.WaitState(ctx, func(s StageState) bool { return s.SequenceNumber >= 4 })
	if err != nil || st.SequenceNumber != 4 {
		t.Errorf("WaitState = %+v, %v", st, err)
	}
}

func TestEventsSetStateAndPing(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	es := newEventsServer(t)
	e, err := ConnectEventsWith(ctx, stageToken(t, "p1", "http://x", es.wsURL()), EventsOptions{PingInterval: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.SetState(ctx, true, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "SET_STATE and PINGs at the server", func() bool {
		var set bool
		pings := 0
		for _, m := range es.got() {
			set = set || m == `{"type":"SET_STATE","version":"0","audioMuted":true,"videoStopped":false}`
			if m == `{"type":"PING"}` {
				pings++
			}
		}
		return set && pings >= 2
	})
	eventually(t, 5*time.Second, "a PONG", func() bool { return !e.LastPong().IsZero() })
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.SetState(ctx, false, false); !errors.Is(err, ErrClosed) {
		t.Errorf("SetState after Close = %v", err)
	}
}

// The Web SDK gives up on a connection whose PINGs go unanswered for 30 s.
func TestEventsPongTimeout(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	es := newEventsServer(t)
	es.noPong = true
	e, err := ConnectEventsWith(ctx, stageToken(t, "p1", "http://x", es.wsURL()), EventsOptions{
		PingInterval: 20 * time.Millisecond, PongTimeout: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	select {
	case <-e.Done():
	case <-ctx.Done():
		t.Fatal("connection not ended")
	}
	if !errors.Is(e.Err(), ErrPongTimeout) {
		t.Errorf("Err = %v, want ErrPongTimeout", e.Err())
	}
}

// When the server closes (after a DISCONNECT, say), the channels close and
// Err tells the status.
func TestEventsServerClose(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	es := newEventsServer(t)
	e, err := ConnectEvents(ctx, stageToken(t, "p1", "http://x", es.wsURL()))
	if err != nil {
		t.Fatal(err)
	}
	es.send <- stateMsg(1, "p1")
	es.send <- "CLOSE"
	if st := nextState(t, ctx, e); st.SequenceNumber != 1 {
		t.Errorf("state = %+v", st)
	}
	select {
	case <-e.Done():
	case <-ctx.Done():
		t.Fatal("connection not ended")
	}
	if websocket.CloseStatus(e.Err()) != websocket.StatusPolicyViolation {
		t.Errorf("Err = %v", e.Err())
	}
	if _, ok := <-e.Messages(); ok {
		t.Error("Messages not closed")
	}
	if _, err := e.WaitState(ctx, func(s StageState) bool { return s.SequenceNumber > 1 }); err == nil {
		t.Error("WaitState on an ended connection succeeded")
	}
	if err := e.Close(); err != nil {
		t.Errorf("Close after server close = %v", err)
	}
}

// A handshake refused over HTTP comes back as an HTTPError.
func TestEventsHandshakeHTTPError(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"code":2003}`))
	}))
	defer srv.Close()
	_, err := ConnectEvents(ctx, stageToken(t, "p1", "http://x", "ws"+strings.TrimPrefix(srv.URL, "http")))
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusForbidden || he.Code != 2003 {
		t.Fatalf("err = %v", err)
	}
}

func TestEventsDropWhenFull(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	es := newEventsServer(t)
	e, err := ConnectEventsWith(ctx, stageToken(t, "p1", "http://x", es.wsURL()), EventsOptions{Buffer: 2, DropWhenFull: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for i := 1; i <= 5; i++ {
		es.send <- stateMsg(i, "p1")
	}
	if _, err := e.WaitState(ctx, func(s StageState) bool { return s.SequenceNumber == 5 }); err != nil {
		t.Fatal(err)
	}
	// WaitState sees state 5 as soon as it is the latest, which is just
	// before it is offered to the (full) channel and dropped: wait for that.
	// Nothing reads the channel, so the count ends at 3 exactly.
	eventually(t, 10*time.Second, "3 states dropped", func() bool { return e.Dropped() >= 3 })
	if got := len(e.States()); e.Dropped() != 3 || got != 2 {
		t.Errorf("dropped = %d with %d in the channel, want 3 and 2", e.Dropped(), got)
	}
}

func TestEventsURL(t *testing.T) {
	for in, want := range map[string]string{
		"wss://global.events.live-video.net":       "wss://global.events.live-video.net?error_over_ws=1&topic=T/publishers",
		"ws://127.0.0.1:1/events?region=x":         "ws://127.0.0.1:1/events?region=x&error_over_ws=1&topic=T/publishers",
		"wss://eu-central-1.events.live-video.net": "wss://eu-central-1.events.live-video.net?error_over_ws=1&topic=T/publishers",
	} {
		if got := EventsURL(TokenInfo{EventsURL: in, Topic: "T"}); got != want {
			t.Errorf("EventsURL(%q) = %q, want %q", in, got, want)
		}
	}
}

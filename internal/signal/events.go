package signal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/rostrum-dev/rostrum/internal/stage"
)

const (
	// eventsIdleTimeout closes a channel that sends nothing: clients PING
	// every 15 s.
	eventsIdleTimeout = 45 * time.Second
	// eventsQueue is how many messages may wait for a slow client before
	// it is disconnected.
	eventsQueue      = 256
	maxClientMessage = 32 << 10
)

// events is the stage events channel. The participant token arrives as the
// websocket subprotocol and is echoed back, as IVS's clients require.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	// Sizes are checked before anything is echoed or parsed.
	if n := subprotocolBytes(r); n > stage.MaxTokenBytes+64 {
		writeError(w, http.StatusRequestHeaderFieldsTooLarge, 2001, fmt.Sprintf("the websocket subprotocol (the participant token) is %d bytes; tokens are at most %d", n, stage.MaxTokenBytes))
		return
	}
	tok := subprotocolToken(r)
	if tok == "" {
		writeError(w, http.StatusUnauthorized, 2001, "the participant token must be sent as the websocket subprotocol")
		return
	}
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols: []string{tok},
		// Browser apps connect from their own origins; the token is the
		// credential.
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		return // Accept has answered
	}
	conn.SetReadLimit(maxClientMessage)
	ctx := r.Context()
	id, err := h.stages.Authenticate(ctx, tok)
	if err != nil {
		we, msg := h.wireOf(r, err)
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn.Write(wctx, websocket.MessageText, joinErrorMessage(we.join, msg))
		cancel()
		conn.Close(websocket.StatusPolicyViolation, we.join)
		return
	}
	sink := newSink(conn)
	go sink.writeLoop()
	ec, err := h.stages.OpenEvents(id, clientInfo(r), sink)
	if err != nil {
		we, msg := h.wireOf(r, err)
		sink.Send(joinErrorMessage(we.join, msg))
		sink.Close(we.join)
		<-sink.done
		return
	}
	defer ec.Closed()
	h.readLoop(ctx, conn, sink, ec)
}

// subprotocolBytes is the length of the subprotocol headers.
func subprotocolBytes(r *http.Request) int {
	n := 0
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		n += len(v)
	}
	return n
}

// subprotocolToken is the first subprotocol the client offered.
func subprotocolToken(r *http.Request) string {
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				return p
			}
		}
	}
	return ""
}

type clientMessage struct {
	Type         string          `json:"type"`
	Version      string          `json:"version"`
	AudioMuted   *bool           `json:"audioMuted"`
	VideoStopped *bool           `json:"videoStopped"`
	Payload      json.RawMessage `json:"payload"`
}

func (h *Handler) readLoop(ctx context.Context, conn *websocket.Conn, sink *sink, ec *stage.EventsConn) {
	for {
		rctx, cancel := context.WithTimeout(ctx, eventsIdleTimeout)
		typ, data, err := conn.Read(rctx)
		cancel()
		if err != nil {
			sink.Close("closed")
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		var m clientMessage
		if json.Unmarshal(data, &m) != nil {
			continue // unknown shapes are ignored, as the SDK ignores ours
		}
		switch m.Type {
		case "PING", "aws:ivs:PING":
			sink.Send(stage.PongMessage)
		case "SET_STATE", "aws:ivs:SET_STATE":
			audio, video := m.AudioMuted, m.VideoStopped
			if audio == nil && video == nil && len(m.Payload) > 0 {
				var p clientMessage
				json.Unmarshal(m.Payload, &p)
				audio, video = p.AudioMuted, p.VideoStopped
			}
			ec.SetState(audio != nil && *audio, video != nil && *video)
		case "aws:ivs:EXCHANGE_TOKEN":
			h.exchangeToken(ctx, sink, ec, m.Payload)
		}
	}
}

func (h *Handler) exchangeToken(ctx context.Context, sink *sink, ec *stage.EventsConn, payload json.RawMessage) {
	var p struct {
		NewToken  string `json:"newToken"`
		RequestID string `json:"requestId"`
		TraceID   string `json:"traceId"`
	}
	json.Unmarshal(payload, &p)
	reply := map[string]any{"requestId": p.RequestID, "traceId": p.TraceID}
	id, err := h.stages.Authenticate(ctx, p.NewToken)
	if err == nil {
		err = ec.ExchangeToken(id)
	}
	if err != nil {
		msg := err.Error()
		if errors.Is(err, stage.ErrInternal) {
			h.log.Error("token exchange", "err", err)
			msg = stage.ErrInternal.Error()
		}
		reply["error"] = map[string]string{"message": msg}
	}
	b, _ := json.Marshal(map[string]any{"type": "aws:ivs:EXCHANGE_TOKEN", "payload": reply})
	sink.Send(b)
}

// sink queues messages for one websocket and writes them in order from its
// own goroutine, so that the stage never waits for a client.
type sink struct {
	conn   *websocket.Conn
	ch     chan []byte
	mu     sync.Mutex
	closed bool
	reason string
	done   chan struct{}
}

func newSink(conn *websocket.Conn) *sink {
	return &sink{conn: conn, ch: make(chan []byte, eventsQueue), done: make(chan struct{})}
}

func (s *sink) Send(msg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	select {
	case s.ch <- msg:
	default:
		// The client cannot keep up; it reconnects and gets a fresh snapshot.
		s.closed, s.reason = true, "too slow"
		close(s.ch)
	}
}

func (s *sink) Close(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed, s.reason = true, reason
		close(s.ch)
	}
}

func (s *sink) writeLoop() {
	defer close(s.done)
	for msg := range s.ch {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.conn.Write(ctx, websocket.MessageText, msg)
		cancel()
		if err != nil {
			s.Close("write failed")
			for range s.ch {
			}
			break
		}
	}
	s.mu.Lock()
	reason := s.reason
	s.mu.Unlock()
	s.conn.Close(websocket.StatusNormalClosure, reason)
}

package rtclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Message types of the events websocket (IVS-BEHAVIOUR.md §3.1).
const (
	TypeStageState    = "STAGE_STATE"
	TypeAWSStageState = "aws:ivs:STAGE_STATE"
	TypePing          = "PING"
	TypePong          = "PONG"
	TypeSetState      = "SET_STATE"
	TypeDisconnect    = "aws:ivs:DISCONNECT"
	TypeJoinError     = "aws:ivs:JOIN_ERROR"
)

// Defaults of EventsOptions.
const (
	DefaultPingInterval = 15 * time.Second
	DefaultPongTimeout  = 30 * time.Second
	DefaultEventsBuffer = 256
)

var (
	// ErrSubprotocolNotEchoed is returned by ConnectEvents when the server
	// does not answer with the token as Sec-WebSocket-Protocol; browsers
	// abort such a handshake.
	ErrSubprotocolNotEchoed = errors.New("rtclient: events server did not echo the token subprotocol")
	// ErrPongTimeout is Events.Err after the server left a PING unanswered
	// for longer than EventsOptions.PongTimeout.
	ErrPongTimeout = errors.New("rtclient: no PONG from the events server")
)

// StageState is the payload of a STAGE_STATE message: a full snapshot of
// the stage.
type StageState struct {
	SequenceNumber int64                     `json:"sequenceNumber"`
	StageID        string                    `json:"stageId"`
	ServerFeatures []string                  `json:"serverFeatures,omitempty"`
	Participants   []StateParticipant        `json:"participants"`
	Disconnected   []DisconnectedParticipant `json:"disconnected"`
	// Raw is the payload as received, for members this struct lacks.
	Raw json.RawMessage `json:"-"`
}

// StateParticipant is one participant in a StageState.
type StateParticipant struct {
	ID           string            `json:"id"`
	UserID       string            `json:"userId"`
	Attributes   map[string]string `json:"attributes,omitempty"`
	IsPublishing bool              `json:"isPublishing"`
	AudioMuted   bool              `json:"audioMuted"`
	VideoStopped bool              `json:"videoStopped"`
}

// DisconnectedParticipant is one entry of StageState.Disconnected.
type DisconnectedParticipant struct {
	ID     string `json:"id"`
	UserID string `json:"userId"`
	Status string `json:"status"` // e.g. "KICKED"
}

// Participant finds a participant of the state by id.
func (s StageState) Participant(id string) (StateParticipant, bool) {
	for _, p := range s.Participants {
		if p.ID == id {
			return p, true
		}
	}
	return StateParticipant{}, false
}

// Message is a message of the events websocket other than STAGE_STATE and
// PONG.
type Message struct {
	Type    string          // the message's "type"; "" if it was not a JSON object with one
	Payload json.RawMessage // its "payload", if any
	Raw     []byte          // the whole message
}

// Decode unmarshals the payload into v (DisconnectPayload, JoinErrorPayload, …).
func (m Message) Decode(v any) error { return json.Unmarshal(m.Payload, v) }

// DisconnectPayload is the payload of aws:ivs:DISCONNECT.
type DisconnectPayload struct {
	Code   string `json:"code"` // PARTICIPANT_DISCONNECTED, STAGE_DELETED, TOKEN_REUSED, MAX_CONCURRENT_CONNECTIONS
	Reason string `json:"reason"`
}

// JoinErrorPayload is the payload of aws:ivs:JOIN_ERROR.
type JoinErrorPayload struct {
	Code    string `json:"code"` // TOKEN_INVALID, TOKEN_EXPIRED, …
	Message string `json:"message"`
	Fatal   bool   `json:"fatal"`
	Nominal bool   `json:"nominal"`
}

// EventsOptions configure ConnectEventsWith.
type EventsOptions struct {
	// URL is the full websocket URL. "" means the Web SDK's:
	// events_url?error_over_ws=1&topic=<topic>/publishers.
	URL string
	// HTTPClient makes the handshake; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Header holds extra handshake headers.
	Header http.Header
	// PingInterval is the time between PINGs (default 15 s as the Web SDK;
	// negative: none).
	PingInterval time.Duration
	// PongTimeout closes the connection with ErrPongTimeout when a PING
	// stays unanswered that long (default 30 s; negative: never).
	PongTimeout time.Duration
	// Buffer is the capacity of the States and Messages channels (default
	// 256). When one is full the reader waits for it to be drained, unless
	// DropWhenFull is set; then the message is counted in Dropped and lost
	// (Latest and WaitState still see every state).
	Buffer       int
	DropWhenFull bool
}

// Events is a connection to the events websocket. Its methods are safe for
// concurrent use.
type Events struct {
	conn *websocket.Conn
	info TokenInfo
	opts EventsOptions

	states   chan StageState
	messages chan Message

	mu       sync.Mutex
	latest   StageState
	haveSeq  bool
	changed  chan struct{} // closed and replaced on each accepted state
	stale    int64
	dropped  int64
	err      error
	lastPong time.Time

	pingPending atomic.Int64 // unix nanos of the oldest unanswered PING; 0 if none

	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{} // closed when the reader has stopped
	closing chan struct{} // closed by Close
	wg      sync.WaitGroup

	closeOnce sync.Once
}

// ConnectEvents connects to the events websocket of token's stage with the
// default options.
func ConnectEvents(ctx context.Context, token string) (*Events, error) {
	return ConnectEventsWith(ctx, token, EventsOptions{})
}

// EventsURL is the URL the Web SDK joins: the token's events_url with
// error_over_ws=1 and topic=<topic>/publishers (IVS-BEHAVIOUR.md §3.1).
func EventsURL(info TokenInfo) string {
	sep := "?"
	if strings.Contains(info.EventsURL, "?") {
		sep = "&"
	}
	return info.EventsURL + sep + "error_over_ws=1&topic=" + info.Topic + "/publishers"
}

// ConnectEventsWith connects to the events websocket, with the raw token as
// the only subprotocol, and checks that the server echoes it. It returns once
// the handshake is done; ctx bounds only the handshake.
func ConnectEventsWith(ctx context.Context, token string, opts EventsOptions) (*Events, error) {
	info, err := ParseToken(token)
	if err != nil {
		return nil, err
	}
	target := opts.URL
	if target == "" {
		if info.EventsURL == "" {
			return nil, errors.New("rtclient: token has no events_url and no URL was given")
		}
		target = EventsURL(info)
	}
	if opts.PingInterval == 0 {
		opts.PingInterval = DefaultPingInterval
	}
	if opts.PongTimeout == 0 {
		opts.PongTimeout = DefaultPongTimeout
	}
	if opts.Buffer <= 0 {
		opts.Buffer = DefaultEventsBuffer
	}
	conn, resp, err := websocket.Dial(ctx, target, &websocket.DialOptions{
		HTTPClient:   opts.HTTPClient,
		HTTPHeader:   opts.Header,
		Subprotocols: []string{token},
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			var body []byte
			if resp.Body != nil {
				body, _ = io.ReadAll(io.LimitReader(resp.Body, 1024))
				resp.Body.Close()
			}
			return nil, errors.Join(newHTTPError(resp.StatusCode, body), err)
		}
		return nil, fmt.Errorf("rtclient: events handshake: %w", err)
	}
	if conn.Subprotocol() != token {
		_ = conn.Close(websocket.StatusProtocolError, "subprotocol not echoed")
		return nil, ErrSubprotocolNotEchoed
	}
	conn.SetReadLimit(4 << 20)
	runCtx, cancel := context.WithCancel(context.Background())
	e := &Events{
		conn: conn, info: info, opts: opts,
		states:   make(chan StageState, opts.Buffer),
		messages: make(chan Message, opts.Buffer),
		changed:  make(chan struct{}),
		ctx:      runCtx,
		cancel:   cancel,
		done:     make(chan struct{}),
		closing:  make(chan struct{}),
	}
	e.wg.Add(1)
	go e.read()
	if opts.PingInterval > 0 {
		e.wg.Add(1)
		go e.ping()
	}
	return e, nil
}

// States delivers STAGE_STATE payloads (also aws:ivs:STAGE_STATE) in order,
// leaving out those whose sequenceNumber is not above the last one
// delivered, as the Web SDK does. The first state is taken whatever its
// number. The channel is closed when the connection ends.
func (e *Events) States() <-chan StageState { return e.states }

// Messages delivers every other message except PONG, e.g.
// aws:ivs:DISCONNECT and aws:ivs:JOIN_ERROR. The channel is closed when the
// connection ends.
func (e *Events) Messages() <-chan Message { return e.messages }

// Latest returns the last state accepted, and whether there is one.
func (e *Events) Latest() (StageState, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.latest, e.haveSeq
}

// WaitState waits until an accepted state (the latest one, or one arriving
// later) satisfies pred, and returns it. It does not consume States.
func (e *Events) WaitState(ctx context.Context, pred func(StageState) bool) (StageState, error) {
	for {
		e.mu.Lock()
		st, have, changed := e.latest, e.haveSeq, e.changed
		e.mu.Unlock()
		if have && pred(st) {
			return st, nil
		}
		select {
		case <-changed:
		case <-e.done:
			e.mu.Lock()
			st, have = e.latest, e.haveSeq
			err := e.err
			e.mu.Unlock()
			if have && pred(st) {
				return st, nil
			}
			if err == nil {
				err = ErrClosed
			}
			return StageState{}, fmt.Errorf("rtclient: events connection ended: %w", err)
		case <-ctx.Done():
			return StageState{}, ctx.Err()
		}
	}
}

// StaleStates is the number of states dropped for a non-increasing
// sequenceNumber.
func (e *Events) StaleStates() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stale
}

// Dropped is the number of messages lost to full channels (DropWhenFull).
func (e *Events) Dropped() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dropped
}

// LastPong is when the last PONG arrived (zero before the first).
func (e *Events) LastPong() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastPong
}

// Done is closed when the connection has ended, by Close or by the server.
func (e *Events) Done() <-chan struct{} { return e.done }

// Err is why the connection ended: nil while it is open and after Close; a
// websocket.CloseError (see websocket.CloseStatus) when the server closed it;
// ErrPongTimeout; or the read error.
func (e *Events) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// SetState tells the server whether the participant's audio is muted and
// video stopped: {"type":"SET_STATE","version":"0","audioMuted":…,"videoStopped":…}.
func (e *Events) SetState(ctx context.Context, audioMuted, videoStopped bool) error {
	return e.Send(ctx, struct {
		Type         string `json:"type"`
		Version      string `json:"version"`
		AudioMuted   bool   `json:"audioMuted"`
		VideoStopped bool   `json:"videoStopped"`
	}{TypeSetState, "0", audioMuted, videoStopped})
}

// Send writes v as one JSON text message, for messages this type has no
// method for (aws:ivs:EXCHANGE_TOKEN, …).
func (e *Events) Send(ctx context.Context, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	select {
	case <-e.done:
		return ErrClosed
	default:
	}
	return e.conn.Write(ctx, websocket.MessageText, data)
}

// Close closes the connection (a normal close handshake, at most 10 s) and
// waits for its goroutines. The channels are closed once it returns. Closing
// a connection the server already ended is not an error.
func (e *Events) Close() error {
	var err error
	e.closeOnce.Do(func() {
		ended := false
		select {
		case <-e.done:
			ended = true
		default:
		}
		close(e.closing)
		err = e.conn.Close(websocket.StatusNormalClosure, "")
		e.cancel()
		e.wg.Wait()
		if ended || errors.Is(err, net.ErrClosed) || websocket.CloseStatus(err) != -1 {
			err = nil
		}
	})
	return err
}

// read is the reader goroutine: it owns the channels and closes them.
func (e *Events) read() {
	defer e.wg.Done()
	defer func() {
		close(e.states)
		close(e.messages)
		close(e.done)
	}()
	for {
		_, data, err := e.conn.Read(e.ctx)
		if err != nil {
			e.mu.Lock()
			if e.err == nil {
				select {
				case <-e.closing:
				default:
					e.err = err
				}
			}
			e.mu.Unlock()
			return
		}
		e.handle(data)
	}
}

// handle dispatches one message.
//
// Hot path: once per message received (a load generator holds many
// connections).
func (e *Events) handle(data []byte) {
	var env struct {
		Type    string          `json:"type"`
		Payload json.RawMessage `json:"payload"`
	}
	if json.Unmarshal(data, &env) != nil {
		e.deliverMessage(Message{Raw: data})
		return
	}
	switch env.Type {
	case TypePong:
		e.pingPending.Store(0)
		e.mu.Lock()
		e.lastPong = time.Now()
		e.mu.Unlock()
	case TypeStageState, TypeAWSStageState:
		var st StageState
		if err := json.Unmarshal(env.Payload, &st); err != nil {
			e.deliverMessage(Message{Type: env.Type, Payload: env.Payload, Raw: data})
			return
		}
		st.Raw = env.Payload
		e.mu.Lock()
		if e.haveSeq && st.SequenceNumber <= e.latest.SequenceNumber {
			e.stale++
			e.mu.Unlock()
			return
		}
		e.latest, e.haveSeq = st, true
		close(e.changed)
		e.changed = make(chan struct{})
		e.mu.Unlock()
		deliver(e, e.states, st)
	default:
		e.deliverMessage(Message{Type: env.Type, Payload: env.Payload, Raw: data})
	}
}

func (e *Events) deliverMessage(m Message) { deliver(e, e.messages, m) }

// deliver sends v on ch, waiting (until Close) or dropping when ch is full.
func deliver[T any](e *Events, ch chan T, v T) {
	if e.opts.DropWhenFull {
		select {
		case ch <- v:
		default:
			e.mu.Lock()
			e.dropped++
			e.mu.Unlock()
		}
		return
	}
	select {
	case ch <- v:
	case <-e.closing:
	}
}

// ping sends {"type":"PING"} every PingInterval and ends the connection when
// a PING stays unanswered longer than PongTimeout.
func (e *Events) ping() {
	defer e.wg.Done()
	t := time.NewTicker(e.opts.PingInterval)
	defer t.Stop()
	ping := []byte(`{"type":"PING"}`)
	for {
		select {
		case <-e.done:
			return
		case <-e.ctx.Done():
			return
		case now := <-t.C:
			if since := e.pingPending.Load(); since != 0 && e.opts.PongTimeout > 0 && now.Sub(time.Unix(0, since)) > e.opts.PongTimeout {
				e.mu.Lock()
				if e.err == nil {
					e.err = ErrPongTimeout
				}
				e.mu.Unlock()
				_ = e.conn.Close(websocket.StatusGoingAway, "pong timeout")
				return
			}
			e.pingPending.CompareAndSwap(0, now.UnixNano())
			wctx, cancel := context.WithTimeout(e.ctx, e.opts.PingInterval)
			err := e.conn.Write(wctx, websocket.MessageText, ping)
			cancel()
			if err != nil {
				return
			}
		}
	}
}

package stage

import (
	"encoding/json"
	"strings"
	"time"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/token"
)

// EventsSink is one client's events channel (a websocket). Send must not
// block: a client that cannot keep up is disconnected by its sink.
type EventsSink interface {
	Send(msg []byte)
	Close(reason string)
}

// EventsConn is one open events channel of a participant.
type EventsConn struct {
	st   *Stage
	pid  string
	sink EventsSink
	id   *Identity
}

// The messages of the stage events channel (docs/protocol.md).
type stateParticipant struct {
	ID           string            `json:"id"`
	UserID       string            `json:"userId"`
	Attributes   map[string]string `json:"attributes"`
	IsPublishing bool              `json:"isPublishing"`
	AudioMuted   bool              `json:"audioMuted"`
	VideoStopped bool              `json:"videoStopped"`
}

type disconnectedState struct {
	ID     string `json:"id"`
	UserID string `json:"userId"`
	Status string `json:"status"`
}

type stagePayload struct {
	SequenceNumber int64               `json:"sequenceNumber"`
	StageID        string              `json:"stageId"`
	SessionID      string              `json:"sessionId,omitempty"`
	ServerFeatures []string            `json:"serverFeatures"`
	Participants   []stateParticipant  `json:"participants"`
	Disconnected   []disconnectedState `json:"disconnected"`
}

type envelope struct {
	Type    string `json:"type"`
	Payload any    `json:"payload,omitempty"`
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs are marshalled here
	}
	return b
}

func disconnectMessage(code, reason string) []byte {
	return mustMarshal(envelope{Type: "aws:ivs:DISCONNECT", Payload: map[string]string{"code": code, "reason": reason}})
}

// JoinErrorMessage is the aws:ivs:JOIN_ERROR a refused events channel gets.
func JoinErrorMessage(e *JoinError) []byte {
	return mustMarshal(envelope{Type: "aws:ivs:JOIN_ERROR", Payload: map[string]any{
		"code": e.Code, "message": e.Message, "fatal": true, "nominal": false,
	}})
}

// PongMessage answers a PING.
var PongMessage = mustMarshal(envelope{Type: "PONG"})

// broadcast sends every events channel a full STAGE_STATE snapshot with the
// next sequence number. Called with st.mu held, so snapshots go out in
// order.
func (st *Stage) broadcast() {
	st.seq++
	payload := stagePayload{
		SequenceNumber: st.seq,
		StageID:        st.id,
		SessionID:      st.sessionID,
		ServerFeatures: []string{},
		Participants:   []stateParticipant{},
		Disconnected:   st.kicked,
	}
	if payload.Disconnected == nil {
		payload.Disconnected = []disconnectedState{}
	}
	present := st.present()
	for _, p := range present {
		attrs := p.attributes
		if attrs == nil {
			attrs = map[string]string{}
		}
		payload.Participants = append(payload.Participants, stateParticipant{
			ID: p.id, UserID: p.userID, Attributes: attrs, IsPublishing: p.publishing,
			AudioMuted: p.audioMuted, VideoStopped: p.videoStopped,
		})
	}
	msg := mustMarshal(envelope{Type: "STAGE_STATE", Payload: payload})
	for _, p := range present {
		for c := range p.events {
			c.sink.Send(msg)
		}
	}
}

// OpenEvents joins the token's participant through an events channel and
// sends everyone the new state.
func (m *Manager) OpenEvents(id *Identity, client ClientInfo, sink EventsSink) (*EventsConn, error) {
	st, err := m.enter(id.Stage)
	if err != nil {
		return nil, joinErr("INTERNAL", 503, 2008, "the media plane is shutting down")
	}
	defer st.mu.Unlock()
	p := st.join(id, client)
	c := &EventsConn{st: st, pid: p.id, sink: sink, id: id}
	p.events[c] = struct{}{}
	st.broadcast()
	return c, nil
}

// participant is the channel's participant while the channel is open, else
// nil. Called with st.mu held.
func (c *EventsConn) participant() *Participant {
	p := c.st.participants[c.pid]
	if p == nil {
		return nil
	}
	if _, ok := p.events[c]; !ok {
		return nil
	}
	return p
}

// SetState records the client's mute state (SET_STATE) and tells everyone.
func (c *EventsConn) SetState(audioMuted, videoStopped bool) {
	st := c.st
	st.mu.Lock()
	defer st.mu.Unlock()
	p := c.participant()
	if p == nil {
		return
	}
	if p.audioMuted != audioMuted || p.videoStopped != videoStopped {
		p.audioMuted, p.videoStopped = audioMuted, videoStopped
		st.broadcast()
	}
}

// Closed is called when the client's channel is gone.
func (c *EventsConn) Closed() {
	st := c.st
	st.mu.Lock()
	defer st.mu.Unlock()
	p := c.participant()
	if p == nil {
		return
	}
	delete(p.events, c)
	st.leaveIfIdle(p)
}

// ExchangeToken replaces the participant's token with a new self-signed one
// (aws:ivs:EXCHANGE_TOKEN): attributes, user id and capabilities change, the
// identity (participant id, stage, endpoints) must not. It returns a message
// for the client when the exchange is refused.
func (c *EventsConn) ExchangeToken(newID *Identity) string {
	old := c.id.Claims
	nc := newID.Claims
	if !strings.HasPrefix(c.id.Kid, "arn:") || !strings.HasPrefix(newID.Kid, "arn:") {
		return "token exchange needs self-signed tokens (signed with a key imported with ImportPublicKey)"
	}
	if nc.ParticipantID != old.ParticipantID || nc.Resource != old.Resource || nc.Topic != old.Topic ||
		nc.EventsURL != old.EventsURL || nc.WhipURL != old.WhipURL {
		return "the new token must keep the participant id, stage and endpoints of the old one"
	}
	st := c.st
	st.mu.Lock()
	defer st.mu.Unlock()
	p := st.participants[c.pid]
	if p == nil {
		return "the participant is not on the stage"
	}
	prev, next := exchanged(old), exchanged(nc)
	c.id = newID
	p.userID, p.attributes, p.caps = nc.UserID, nc.Attributes, nc.Capabilities
	st.recordParticipant(p)
	st.recordEvent(p.id, "TOKEN_EXCHANGED", func(e *api.Event) { e.PreviousToken, e.NewToken = prev, next })
	st.broadcast()
	return ""
}

// exchanged is a token's side of a TOKEN_EXCHANGED event.
func exchanged(c token.Claims) *api.ExchangedParticipantToken {
	t := &api.ExchangedParticipantToken{
		Attributes:     c.Attributes,
		ExpirationTime: api.Ptr(time.Unix(c.ExpiresAt, 0).UTC()),
	}
	if c.UserID != "" {
		t.UserId = api.Ptr(c.UserID)
	}
	if c.Capabilities.Publish {
		t.Capabilities = append(t.Capabilities, "PUBLISH")
	}
	if c.Capabilities.Subscribe {
		t.Capabilities = append(t.Capabilities, "SUBSCRIBE")
	}
	return t
}

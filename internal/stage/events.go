package stage

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/ivs"
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
	st.notifyWatchers()
}

// OpenEvents joins the token's participant through an events channel and
// sends everyone the new state.
func (m *Manager) OpenEvents(id *Identity, client ClientInfo, sink EventsSink) (*EventsConn, error) {
	var c *EventsConn
	err := m.withStage(id, func(st *Stage) error {
		p := st.join(id, client)
		c = &EventsConn{st: st, pid: p.id, sink: sink, id: id}
		p.events[c] = struct{}{}
		st.broadcast()
		return nil
	})
	return c, err
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
// identity (participant id, stage, endpoints) must not. A refused exchange
// is an ErrTokenInvalid saying why.
func (c *EventsConn) ExchangeToken(newID *Identity) error {
	st := c.st
	st.mu.Lock()
	defer st.mu.Unlock()
	old := c.id.Claims
	nc := newID.Claims
	if !strings.HasPrefix(c.id.Kid, "arn:") || !strings.HasPrefix(newID.Kid, "arn:") {
		return fmt.Errorf("%w: token exchange needs self-signed tokens (signed with a key imported with ImportPublicKey)", ErrTokenInvalid)
	}
	if nc.ParticipantID != old.ParticipantID || nc.Resource != old.Resource || nc.Topic != old.Topic ||
		nc.EventsURL != old.EventsURL || nc.WhipURL != old.WhipURL {
		return fmt.Errorf("%w: the new token must keep the participant id, stage and endpoints of the old one", ErrTokenInvalid)
	}
	p := c.participant()
	if p == nil {
		return fmt.Errorf("%w: the participant is not on the stage", ErrTokenInvalid)
	}
	prev, next := exchanged(old), exchanged(nc)
	c.id = newID
	p.userID, p.attributes, p.caps = nc.UserID, nc.Attributes, nc.Capabilities
	st.recordParticipant(p)
	st.recordEvent(p, ivs.ParticipantEvent{Name: api.EventNameTokenExchanged, PreviousToken: prev, NewToken: next})
	st.broadcast()
	return nil
}

// exchanged is a token's side of a TOKEN_EXCHANGED event.
func exchanged(c token.Claims) *ivs.TokenView {
	return &ivs.TokenView{
		UserID: c.UserID, Attributes: c.Attributes, Publish: c.Capabilities.Publish, Subscribe: c.Capabilities.Subscribe,
		Expires: time.Unix(c.ExpiresAt, 0).UTC(),
	}
}

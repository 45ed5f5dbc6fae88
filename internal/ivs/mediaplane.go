package ivs

import (
	"context"
	"errors"
	"time"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/events"
	"github.com/rostrum-dev/rostrum/internal/store"
)

// The media plane reports participants and their events in these domain
// types; the service turns them into the API's documents, so that the
// stage layer knows nothing of the API's shapes.

// ClientInfo is what a participant's client says about itself.
type ClientInfo struct {
	Protocol       string // WHIP
	BrowserName    string
	BrowserVersion string
	OSName         string
	OSVersion      string
	SDKVersion     string
}

// ParticipantRecord is a participant of a stage session as the media plane
// sees it.
type ParticipantRecord struct {
	ID, UserID string
	Attributes map[string]string
	Connected  bool
	FirstJoin  time.Time
	Published  bool // ever published in this session
	Recording  bool // the stage records its participants
	Client     ClientInfo
}

// TokenView is one side of a token exchange.
type TokenView struct {
	UserID             string
	Attributes         map[string]string
	Publish, Subscribe bool
	Expires            time.Time
}

// ParticipantEvent is one event of a participant (api.EventName* names it).
type ParticipantEvent struct {
	Name          string
	ParticipantID string
	UserID        string // the participant's, for the delivered event
	Time          time.Time
	// RemoteParticipantID is the publisher of a SUBSCRIBE_* event.
	RemoteParticipantID string
	// ErrorCode is an api.EventErrorCode* of a *_ERROR event.
	ErrorCode               string
	PreviousToken, NewToken *TokenView
}

// RecordParticipantState inserts or replaces a participant of a session.
func (s *Service) RecordParticipantState(ctx context.Context, stageARN, sessionID string, p ParticipantRecord) error {
	return s.RecordParticipant(ctx, stageARN, sessionID, participantDoc(p))
}

func participantDoc(p ParticipantRecord) *api.Participant {
	state := api.ParticipantStateDisconnected
	if p.Connected {
		state = api.ParticipantStateConnected
	}
	doc := &api.Participant{
		ParticipantId:   api.Ptr(p.ID),
		UserId:          api.Ptr(p.UserID),
		State:           api.Ptr(state),
		FirstJoinTime:   api.Ptr(p.FirstJoin.UTC().Truncate(time.Millisecond)),
		Attributes:      p.Attributes,
		Published:       api.Ptr(p.Published),
		ReplicationType: api.Ptr(api.ReplicationTypeNone),
	}
	if doc.Attributes == nil {
		doc.Attributes = map[string]string{}
	}
	if !p.Recording {
		doc.RecordingState = api.Ptr(api.ParticipantRecordingStateDisabled)
	}
	set := func(dst **string, v string) {
		if v != "" {
			*dst = api.Ptr(v)
		}
	}
	set(&doc.Protocol, p.Client.Protocol)
	set(&doc.BrowserName, p.Client.BrowserName)
	set(&doc.BrowserVersion, p.Client.BrowserVersion)
	set(&doc.OsName, p.Client.OSName)
	set(&doc.OsVersion, p.Client.OSVersion)
	set(&doc.SdkVersion, p.Client.SDKVersion)
	return doc
}

// RecordEvent appends a participant event to the session's history and
// writes the event it makes to the outbox, in one transaction.
func (s *Service) RecordEvent(ctx context.Context, stageARN, sessionID string, e ParticipantEvent) error {
	if e.ParticipantID == "" || e.Name == "" {
		return errors.New("ivs: event without participant id or name")
	}
	at := e.Time
	if at.IsZero() {
		at = s.nowMillis()
	}
	doc := &api.Event{Name: api.Ptr(e.Name), ParticipantId: api.Ptr(e.ParticipantID), EventTime: api.Ptr(at.UTC().Truncate(time.Millisecond))}
	if e.RemoteParticipantID != "" {
		doc.RemoteParticipantId = api.Ptr(e.RemoteParticipantID)
	}
	if e.ErrorCode != "" {
		doc.ErrorCode = api.Ptr(e.ErrorCode)
	}
	doc.PreviousToken, doc.NewToken = exchangedToken(e.PreviousToken), exchangedToken(e.NewToken)
	return s.recordEvent(ctx, stageARN, sessionID, e.UserID, doc)
}

func exchangedToken(v *TokenView) *api.ExchangedParticipantToken {
	if v == nil {
		return nil
	}
	t := &api.ExchangedParticipantToken{Attributes: v.Attributes, ExpirationTime: api.Ptr(v.Expires.UTC())}
	if v.UserID != "" {
		t.UserId = api.Ptr(v.UserID)
	}
	if v.Publish {
		t.Capabilities = append(t.Capabilities, api.ParticipantTokenCapabilityPublish)
	}
	if v.Subscribe {
		t.Capabilities = append(t.Capabilities, api.ParticipantTokenCapabilitySubscribe)
	}
	return t
}

// recordEvent writes an event document and its outbox entry.
func (s *Service) recordEvent(ctx context.Context, stageARN, sessionID, userID string, e *api.Event) error {
	var p *events.Prepared
	if s.events != nil {
		p = s.prepare(events.FromParticipantEvent(stageARN, sessionID, userID, e))
	}
	err := s.store.AddParticipantEvent(ctx, &store.ParticipantEvent{
		StageARN: stageARN, SessionID: sessionID, ParticipantID: *e.ParticipantId, EventTime: *e.EventTime, Doc: mustJSON(e),
	}, p.Entries()...)
	p.Done(err)
	return err
}

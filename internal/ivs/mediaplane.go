package ivs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	// IngestConfigurationARN is the configuration an RTMP(S) participant
	// streams with; RedundantIngest is that configuration's setting.
	IngestConfigurationARN string
	RedundantIngest        bool
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
	// The participant's recording, when Recording: its state
	// (api.ParticipantRecordingState*; "" before it first publishes), the
	// bucket and the participant's prefix in it.
	RecordingState, RecordingBucket, RecordingPrefix string
	Client                                           ClientInfo
	// Replication is the participant's part in replication, if any.
	Replication *ReplicationView
}

// ReplicationView is a participant's part in replication: the SOURCE of
// replicas in other stages, or a REPLICA of a participant of another stage.
type ReplicationView struct {
	Type   string // api.ReplicationTypeSource or api.ReplicationTypeReplica
	Active bool   // the replication state: ACTIVE, else STOPPED
	// The source's stage and session, for a replica.
	SourceStageARN, SourceSessionID string
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
	// Replica: the participant (for SUBSCRIBE_*, the remote participant)
	// is a replica of a participant of another stage.
	Replica bool
	// The replica's stage and session, for REPLICATION_* events.
	DestinationStageARN, DestinationSessionID string
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
	// The model: the bucket and prefix are "" when recording is off.
	doc.RecordingS3BucketName, doc.RecordingS3Prefix = api.Ptr(""), api.Ptr("")
	if !p.Recording {
		doc.RecordingState = api.Ptr(api.ParticipantRecordingStateDisabled)
	} else {
		doc.RecordingS3BucketName, doc.RecordingS3Prefix = api.Ptr(p.RecordingBucket), api.Ptr(p.RecordingPrefix)
		if p.RecordingState != "" {
			doc.RecordingState = api.Ptr(p.RecordingState)
		}
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
	if r := p.Replication; r != nil {
		doc.ReplicationType = api.Ptr(r.Type)
		doc.ReplicationState = api.Ptr(api.ReplicationStateStopped)
		if r.Active {
			doc.ReplicationState = api.Ptr(api.ReplicationStateActive)
		}
		set(&doc.SourceStageArn, r.SourceStageARN)
		set(&doc.SourceSessionId, r.SourceSessionID)
	}
	if p.Client.IngestConfigurationARN != "" {
		doc.IngestConfigurationArn = api.Ptr(p.Client.IngestConfigurationARN)
		doc.RedundantIngest = api.Ptr(p.Client.RedundantIngest)
	}
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
	if e.Replica {
		doc.Replica = api.Ptr(true)
	}
	if e.DestinationStageARN != "" {
		doc.DestinationStageArn, doc.DestinationSessionId = api.Ptr(e.DestinationStageARN), api.Ptr(e.DestinationSessionID)
	}
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

// RecordingChange is a new state of a participant's recording.
type RecordingChange struct {
	ParticipantID string
	State         string // api.ParticipantRecordingState*
	// Event is the IVS event it makes (events.Recording*), or "".
	Event     string
	Bucket    string
	Prefix    string // the participant's: <stageId>/<sessionId>/<participantId>
	KeyPrefix string // the recording's: Prefix/<timestamp>
	Duration  time.Duration
	Reason    string
}

// RecordRecordingChange publishes the "IVS Participant Recording State
// Change" event of a change, if it makes one. With patch, it also writes
// the state into the participant's stored record: the media plane does
// that itself while the participant is on the stage, and asks for the
// patch when the change comes after (a recording ends after its reconnect
// window, or is closed at the next start after a crash).
func (s *Service) RecordRecordingChange(ctx context.Context, stageARN, sessionID string, c RecordingChange, patch bool) error {
	if patch {
		row, err := s.store.GetParticipant(ctx, stageARN, sessionID, c.ParticipantID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err == nil {
			var doc api.Participant
			if err := json.Unmarshal(row.Doc, &doc); err != nil {
				return fmt.Errorf("ivs: participant %s: %w", c.ParticipantID, err)
			}
			doc.RecordingState = api.Ptr(c.State)
			doc.RecordingS3BucketName, doc.RecordingS3Prefix = api.Ptr(c.Bucket), api.Ptr(c.Prefix)
			if err := s.RecordParticipant(ctx, stageARN, sessionID, &doc); err != nil {
				return err
			}
		}
	}
	if c.Event == "" {
		return nil
	}
	d := events.ParticipantRecordingStateChange{
		SessionID: sessionID, EventName: c.Event, ParticipantID: c.ParticipantID,
		RecordingS3BucketName: c.Bucket, RecordingS3KeyPrefix: c.KeyPrefix, RecordingStatusReason: c.Reason,
	}
	if c.Event == events.RecordingEnd || c.Event == events.RecordingEndFailure {
		ms := c.Duration.Milliseconds()
		d.RecordingDurationMs = &ms
	}
	return s.PublishParticipantRecordingEvent(ctx, stageARN, d)
}

// Package events is Rostrum's event bus: the EventBridge-shaped documents
// that IVS sends (IVS-BEHAVIOUR.md §4), the event patterns that choose them,
// the durable outbox they wait in and the live feed. The sinks that deliver
// them (signed webhooks, an EventBridge-compatible PutEvents endpoint) are
// in package sink, the server-sent-events stream of the live feed in
// package stream; both depend on this package, never the reverse.
//
// The IVS service publishes every event through one Bus. Events born from a
// fact the service records (a participant event, a session start or end) are
// prepared first and written to the outbox in the same store transaction as
// the fact (Bus.Prepare), so that ListParticipantEvents and the delivered
// documents can never disagree; events with no such fact (compositions,
// recordings) go through Bus.Publish. After the commit a sink's deliverer
// takes the event from the outbox, delivers it at least once, in order per
// stage, retrying with backoff, and deletes it. The live feed gets it at
// once, from memory.
package events

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
)

// Source is the source of IVS's events.
const Source = "aws.ivs"

// The detail-types. The first three are IVS's own (IVS-BEHAVIOUR.md §4);
// DetailTypeStageActivity is Rostrum's, for what IVS reports only through
// ListParticipantEvents (joins, leaves, subscriptions) and for stage
// sessions starting and ending. A sink gets it only when its pattern names
// it.
const (
	DetailTypeStageUpdate       = "IVS Stage Update"
	DetailTypeCompositionChange = "IVS Composition State Change"
	DetailTypeRecordingChange   = "IVS Participant Recording State Change"
	DetailTypeStageActivity     = "Rostrum Stage Activity"
)

const (
	version    = "0"
	timeLayout = "2006-01-02T15:04:05Z"
)

// IVSDetailTypes are the detail-types IVS sends for real-time stages: what a
// sink whose pattern names no detail-type receives.
var IVSDetailTypes = []string{DetailTypeStageUpdate, DetailTypeCompositionChange, DetailTypeRecordingChange}

// Event names of "IVS Stage Update". The replication names are IVS's table
// in English as far as it can be confirmed (IVS-BEHAVIOUR.md §9).
const (
	ParticipantPublished          = "Participant Published"
	ParticipantUnpublished        = "Participant Unpublished"
	ParticipantPublishError       = "Participant Publish Error"
	ParticipantReplicationStarted = "Participant Replication Started"
	ParticipantReplicationEnded   = "Participant Replication Ended"
)

// Event names of "IVS Composition State Change".
const (
	CompositionSessionStart         = "Session Start"
	CompositionSessionEnd           = "Session End"
	CompositionSessionFailure       = "Session Failure"
	CompositionDestinationStart     = "Destination Start"
	CompositionDestinationEnd       = "Destination End"
	CompositionDestinationReconnect = "Destination Reconnecting"
	CompositionDestinationFailure   = "Destination Failure"
)

// Event names of "IVS Participant Recording State Change".
const (
	RecordingStart        = "Recording Start"
	RecordingEnd          = "Recording End"
	RecordingStartFailure = "Recording Start Failure"
	RecordingEndFailure   = "Recording End Failure"
)

// Event names of "Rostrum Stage Activity".
const (
	SessionStarted            = "Session Started"
	SessionEnded              = "Session Ended"
	ParticipantJoined         = "Participant Joined"
	ParticipantLeft           = "Participant Left"
	ParticipantJoinError      = "Participant Join Error"
	ParticipantSubscribed     = "Participant Subscribed"
	ParticipantUnsubscribed   = "Participant Unsubscribed"
	ParticipantSubscribeError = "Participant Subscribe Error"
	ParticipantTokenExchanged = "Participant Token Exchanged"
)

// Event is one EventBridge document: the envelope IVS's events have, with
// the detail of its detail-type.
type Event struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`

	// Stage is the stage the event belongs to: events of one stage reach
	// every sink in the order they were published. Not in the document.
	Stage string `json:"-"`
}

// StageUpdate is the detail of "IVS Stage Update". The field order is that
// of IVS's captured documents. ErrorCode (Participant Publish Error) and the
// destination fields (replication) are Rostrum's reading of what IVS does
// not document.
type StageUpdate struct {
	SessionID            string `json:"session_id"`
	EventName            string `json:"event_name"`
	EventTime            string `json:"event_time"`
	UserID               string `json:"user_id"`
	ParticipantID        string `json:"participant_id"`
	ErrorCode            string `json:"error_code,omitempty"`
	DestinationStageARN  string `json:"destination_stage_arn,omitempty"`
	DestinationSessionID string `json:"destination_session_id,omitempty"`
}

// StageActivity is the detail of "Rostrum Stage Activity". Session events
// carry no participant fields; participant events always carry user_id
// (empty when the token had none, as IVS does).
type StageActivity struct {
	SessionID           string  `json:"session_id"`
	EventName           string  `json:"event_name"`
	EventTime           string  `json:"event_time"`
	UserID              *string `json:"user_id,omitempty"`
	ParticipantID       string  `json:"participant_id,omitempty"`
	RemoteParticipantID string  `json:"remote_participant_id,omitempty"`
	ErrorCode           string  `json:"error_code,omitempty"`
}

// CompositionStateChange is the detail of "IVS Composition State Change":
// the composition's ARN is the event's resource, its stage is StageARN.
// DestinationID (the Destination.id of GetComposition) is set on
// Destination events, Reason on failures and reconnects; both names are
// Rostrum's choice where IVS's are unconfirmed.
type CompositionStateChange struct {
	EventName     string `json:"event_name"`
	StageARN      string `json:"stage_arn"`
	DestinationID string `json:"id,omitempty"`
	Reason        string `json:"reason,omitempty"`
}

// ParticipantRecordingStateChange is the detail of "IVS Participant
// Recording State Change". RecordingDurationMs is set on Recording End;
// RecordingStatusReason on the failures (IVS's low-latency recording
// events' name for it).
type ParticipantRecordingStateChange struct {
	SessionID             string `json:"session_id"`
	EventName             string `json:"event_name"`
	ParticipantID         string `json:"participant_id"`
	RecordingS3BucketName string `json:"recording_s3_bucket_name"`
	RecordingS3KeyPrefix  string `json:"recording_s3_key_prefix"`
	RecordingDurationMs   *int64 `json:"recording_duration_ms,omitempty"`
	RecordingStatusReason string `json:"recording_status_reason,omitempty"`
}

// FormatTime is how times appear in the documents: UTC to the second, as
// EventBridge and IVS write them.
func FormatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// NewID returns a random event id in EventBridge's form
// (8-4-4-4-12 hex digits).
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// arnScope returns the region and account of an ARN.
func arnScope(arn string) (region, account string) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 5 {
		return "", ""
	}
	return parts[3], parts[4]
}

// marshal is json.Marshal without HTML escaping: documents show "<" and
// ">" as EventBridge's do (IVS's recording key prefixes contain them).
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func newEvent(detailType, resource, stage string, at time.Time, detail any) *Event {
	region, account := arnScope(resource)
	d, err := marshal(detail)
	if err != nil {
		panic(err) // the detail types are plain structs
	}
	return &Event{
		Version:    version,
		ID:         NewID(),
		DetailType: detailType,
		Source:     Source,
		Account:    account,
		Time:       FormatTime(at),
		Region:     region,
		Resources:  []string{resource},
		Detail:     d,
		Stage:      stage,
	}
}

// NewStageUpdate returns an "IVS Stage Update" event of a stage.
func NewStageUpdate(stageARN string, at time.Time, d StageUpdate) *Event {
	d.EventTime = FormatTime(at)
	return newEvent(DetailTypeStageUpdate, stageARN, stageARN, at, d)
}

// NewStageActivity returns a "Rostrum Stage Activity" event of a stage.
func NewStageActivity(stageARN string, at time.Time, d StageActivity) *Event {
	d.EventTime = FormatTime(at)
	return newEvent(DetailTypeStageActivity, stageARN, stageARN, at, d)
}

// NewCompositionStateChange returns an "IVS Composition State Change" event:
// resources holds the composition, the detail its stage, and it is ordered
// with the stage's other events.
func NewCompositionStateChange(compositionARN string, at time.Time, d CompositionStateChange) *Event {
	return newEvent(DetailTypeCompositionChange, compositionARN, d.StageARN, at, d)
}

// NewParticipantRecordingStateChange returns an "IVS Participant Recording
// State Change" event of a stage.
func NewParticipantRecordingStateChange(stageARN string, at time.Time, d ParticipantRecordingStateChange) *Event {
	return newEvent(DetailTypeRecordingChange, stageARN, stageARN, at, d)
}

// FromParticipantEvent returns the event a participant event (what
// ListParticipantEvents shows) makes, or nil for the few that make none.
// PUBLISH_* and REPLICATION_* are IVS's Stage Update events; the rest are
// Rostrum Stage Activity. userID is the participant's user id ("" if none).
func FromParticipantEvent(stageARN, sessionID, userID string, e *api.Event) *Event {
	if e == nil || e.Name == nil || e.ParticipantId == nil {
		return nil
	}
	at := time.Now()
	if e.EventTime != nil {
		at = *e.EventTime
	}
	pid := *e.ParticipantId
	update := func(name string) *Event {
		return NewStageUpdate(stageARN, at, StageUpdate{
			SessionID: sessionID, EventName: name, UserID: userID, ParticipantID: pid,
			ErrorCode: api.Val(e.ErrorCode), DestinationStageARN: api.Val(e.DestinationStageArn),
			DestinationSessionID: api.Val(e.DestinationSessionId),
		})
	}
	activity := func(name string) *Event {
		return NewStageActivity(stageARN, at, StageActivity{
			SessionID: sessionID, EventName: name, UserID: &userID, ParticipantID: pid,
			RemoteParticipantID: api.Val(e.RemoteParticipantId), ErrorCode: api.Val(e.ErrorCode),
		})
	}
	switch *e.Name {
	case "PUBLISH_STARTED":
		return update(ParticipantPublished)
	case "PUBLISH_STOPPED":
		return update(ParticipantUnpublished)
	case "PUBLISH_ERROR":
		return update(ParticipantPublishError)
	case "REPLICATION_STARTED":
		return update(ParticipantReplicationStarted)
	case "REPLICATION_STOPPED":
		return update(ParticipantReplicationEnded)
	case "JOINED":
		return activity(ParticipantJoined)
	case "LEFT":
		return activity(ParticipantLeft)
	case "JOIN_ERROR":
		return activity(ParticipantJoinError)
	case "SUBSCRIBE_STARTED":
		return activity(ParticipantSubscribed)
	case "SUBSCRIBE_STOPPED":
		return activity(ParticipantUnsubscribed)
	case "SUBSCRIBE_ERROR":
		return activity(ParticipantSubscribeError)
	case "TOKEN_EXCHANGED":
		if e.NewToken != nil && e.NewToken.UserId != nil {
			userID = *e.NewToken.UserId
		}
		return activity(ParticipantTokenExchanged)
	}
	return nil
}

// NewSessionEvent returns the "Rostrum Stage Activity" event of a stage
// session starting (started) or ending.
func NewSessionEvent(stageARN, sessionID string, at time.Time, started bool) *Event {
	name := SessionEnded
	if started {
		name = SessionStarted
	}
	return NewStageActivity(stageARN, at, StageActivity{SessionID: sessionID, EventName: name})
}

// Marshal returns the document's JSON.
func (e *Event) Marshal() []byte {
	b, err := marshal(e)
	if err != nil {
		panic(err) // Detail is JSON the builders made
	}
	return b
}

// Parse reads a document.
func Parse(doc []byte) (*Event, error) {
	e := new(Event)
	if err := json.Unmarshal(doc, e); err != nil {
		return nil, err
	}
	return e, nil
}

package events

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
)

// compact removes insignificant space from JSON.
func compact(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// withID replaces a document's random id with the expected one.
func withID(t *testing.T, ev *Event, id string) string {
	t.Helper()
	ev.ID = id
	return string(ev.Marshal())
}

// IVS-BEHAVIOUR.md §4.1: a real "Participant Published" capture. Rostrum's
// document is the same, byte for byte but for the random id.
func TestStageUpdateParticipantPublishedIsIVSCapture(t *testing.T) {
	capture := `{
  "version": "0",
  "id": "db65fc17-1612-ef68-3aad-c8a7bfd7b881",
  "detail-type": "IVS Stage Update",
  "source": "aws.ivs",
  "account": "630176884077",
  "time": "2025-04-23T06:36:53Z",
  "region": "us-east-1",
  "resources": ["arn:aws:ivs:us-east-1:630176884077:stage/oWXSOfbOLMte"],
  "detail": {
    "session_id": "st-1CVugbu2cf2n8",
    "event_name": "Participant Published",
    "event_time": "2025-04-23T06:36:53Z",
    "user_id": "",
    "participant_id": "03JY4smU3eXc"
  }
}`
	at := time.Date(2025, 4, 23, 6, 36, 53, 412_000_000, time.UTC)
	ev := FromParticipantEvent("arn:aws:ivs:us-east-1:630176884077:stage/oWXSOfbOLMte", "st-1CVugbu2cf2n8", "",
		&api.Event{Name: api.Ptr("PUBLISH_STARTED"), ParticipantId: api.Ptr("03JY4smU3eXc"), EventTime: &at})
	if got, want := withID(t, ev, "db65fc17-1612-ef68-3aad-c8a7bfd7b881"), compact(t, capture); got != want {
		t.Errorf("document:\n got %s\nwant %s", got, want)
	}
	if ev.Stage != "arn:aws:ivs:us-east-1:630176884077:stage/oWXSOfbOLMte" {
		t.Errorf("ordering key %q", ev.Stage)
	}
}

// IVS-BEHAVIOUR.md §4.1: the real "Participant Unpublished" capture.
func TestStageUpdateParticipantUnpublishedIsIVSCapture(t *testing.T) {
	capture := `{"version":"0","id":"e41f434d-733f-8207-7086-b73a145337ca","detail-type":"IVS Stage Update","source":"aws.ivs",
"account":"630176884077","time":"2025-04-23T06:37:11Z","region":"us-east-1",
"resources":["arn:aws:ivs:us-east-1:630176884077:stage/oWXSOfbOLMte"],
"detail":{"session_id":"st-1CVugbu2cf2n8","event_name":"Participant Unpublished","event_time":"2025-04-23T06:37:11Z","user_id":"","participant_id":"03JY4smU3eXc"}}`
	at := time.Date(2025, 4, 23, 8, 37, 11, 0, time.FixedZone("CEST", 2*3600))
	ev := FromParticipantEvent("arn:aws:ivs:us-east-1:630176884077:stage/oWXSOfbOLMte", "st-1CVugbu2cf2n8", "",
		&api.Event{Name: api.Ptr("PUBLISH_STOPPED"), ParticipantId: api.Ptr("03JY4smU3eXc"), EventTime: &at})
	if got, want := withID(t, ev, "e41f434d-733f-8207-7086-b73a145337ca"), compact(t, capture); got != want {
		t.Errorf("document:\n got %s\nwant %s", got, want)
	}
}

// IVS-BEHAVIOUR.md §4.1: "Recording Start", IVS's documented example (its
// resources name the stage of the event's own region here).
func TestParticipantRecordingStateChangeIsIVSExample(t *testing.T) {
	doc := `{"version":"0","id":"12345678-1a23-4567-a1bc-1a2b34567890","detail-type":"IVS Participant Recording State Change",
"source":"aws.ivs","account":"123456789012","time":"2024-03-13T22:19:04Z","region":"us-west-2",
"resources":["arn:aws:ivs:us-west-2:123456789012:stage/AbCdef1G2hij"],
"detail":{"session_id":"st-ZyXwvu1T2s","event_name":"Recording Start","participant_id":"xYz1c2d3e4f",
"recording_s3_bucket_name":"ivs-recordings","recording_s3_key_prefix":"<stage_id>/<session_id>/<participant_id>/2024-01-01T12-00-55Z"}}`
	ev := NewParticipantRecordingStateChange("arn:aws:ivs:us-west-2:123456789012:stage/AbCdef1G2hij",
		time.Date(2024, 3, 13, 22, 19, 4, 0, time.UTC), ParticipantRecordingStateChange{
			SessionID: "st-ZyXwvu1T2s", EventName: RecordingStart, ParticipantID: "xYz1c2d3e4f",
			RecordingS3BucketName: "ivs-recordings", RecordingS3KeyPrefix: "<stage_id>/<session_id>/<participant_id>/2024-01-01T12-00-55Z",
		})
	if got, want := withID(t, ev, "12345678-1a23-4567-a1bc-1a2b34567890"), compact(t, doc); got != want {
		t.Errorf("document:\n got %s\nwant %s", got, want)
	}
	end := NewParticipantRecordingStateChange("arn:aws:ivs:us-west-2:123456789012:stage/AbCdef1G2hij", time.Now(),
		ParticipantRecordingStateChange{EventName: RecordingEnd, RecordingDurationMs: api.Ptr(int64(547327))})
	if !strings.Contains(string(end.Detail), `"recording_duration_ms":547327`) {
		t.Errorf("Recording End detail: %s", end.Detail)
	}
}

// IVS-BEHAVIOUR.md §4.1: composition events name the composition in
// resources and the stage in detail.stage_arn, and are ordered with the
// stage's events.
func TestCompositionStateChangeNamesCompositionAndStage(t *testing.T) {
	doc := `{"version":"0","id":"12345678-1a23-4567-a1bc-1a2b34567890","detail-type":"IVS Composition State Change",
"source":"aws.ivs","account":"123456789012","time":"2024-06-04T12:00:00Z","region":"ap-northeast-1",
"resources":["arn:aws:ivs:ap-northeast-1:123456789012:composition/s2AdaGUbvQgp"],
"detail":{"event_name":"Session Start","stage_arn":"arn:aws:ivs:ap-northeast-1:123456789012:stage/WyGkzNFGwiwr"}}`
	stage := "arn:aws:ivs:ap-northeast-1:123456789012:stage/WyGkzNFGwiwr"
	ev := NewCompositionStateChange("arn:aws:ivs:ap-northeast-1:123456789012:composition/s2AdaGUbvQgp",
		time.Date(2024, 6, 4, 12, 0, 0, 0, time.UTC), CompositionStateChange{EventName: CompositionSessionStart, StageARN: stage})
	if got, want := withID(t, ev, "12345678-1a23-4567-a1bc-1a2b34567890"), compact(t, doc); got != want {
		t.Errorf("document:\n got %s\nwant %s", got, want)
	}
	if ev.Stage != stage {
		t.Errorf("ordering key %q, want the stage", ev.Stage)
	}
	fail := NewCompositionStateChange("arn:aws:ivs:ap-northeast-1:123456789012:composition/s2AdaGUbvQgp", time.Now(),
		CompositionStateChange{EventName: CompositionDestinationFailure, StageARN: stage, DestinationID: "2pBRKrNgX1ff", Reason: "S3 bucket not found"})
	if got := string(fail.Detail); got != `{"event_name":"Destination Failure","stage_arn":"`+stage+`","id":"2pBRKrNgX1ff","reason":"S3 bucket not found"}` {
		t.Errorf("Destination Failure detail: %s", got)
	}
}

func TestFromParticipantEventNames(t *testing.T) {
	stage := "arn:aws:ivs:us-east-1:123456789012:stage/abc"
	for _, tc := range []struct {
		name, detailType, eventName string
		fill                        func(*api.Event)
		detail                      string // fields beyond the common ones, in order
	}{
		{"PUBLISH_STARTED", DetailTypeStageUpdate, ParticipantPublished, nil, ``},
		{"PUBLISH_STOPPED", DetailTypeStageUpdate, ParticipantUnpublished, nil, ``},
		{"PUBLISH_ERROR", DetailTypeStageUpdate, ParticipantPublishError, func(e *api.Event) { e.ErrorCode = api.Ptr("INSUFFICIENT_CAPABILITIES") }, `,"error_code":"INSUFFICIENT_CAPABILITIES"`},
		{"REPLICATION_STARTED", DetailTypeStageUpdate, ParticipantReplicationStarted, func(e *api.Event) {
			e.DestinationStageArn, e.DestinationSessionId = api.Ptr(stage+"2"), api.Ptr("st-2")
		}, `,"destination_stage_arn":"` + stage + `2","destination_session_id":"st-2"`},
		{"REPLICATION_STOPPED", DetailTypeStageUpdate, ParticipantReplicationEnded, nil, ``},
		{"JOINED", DetailTypeStageActivity, ParticipantJoined, nil, ``},
		{"LEFT", DetailTypeStageActivity, ParticipantLeft, nil, ``},
		{"JOIN_ERROR", DetailTypeStageActivity, ParticipantJoinError, func(e *api.Event) { e.ErrorCode = api.Ptr("QUOTA_EXCEEDED") }, `,"error_code":"QUOTA_EXCEEDED"`},
		{"SUBSCRIBE_STARTED", DetailTypeStageActivity, ParticipantSubscribed, func(e *api.Event) { e.RemoteParticipantId = api.Ptr("pub") }, `,"remote_participant_id":"pub"`},
		{"SUBSCRIBE_STOPPED", DetailTypeStageActivity, ParticipantUnsubscribed, func(e *api.Event) { e.RemoteParticipantId = api.Ptr("pub") }, `,"remote_participant_id":"pub"`},
		{"SUBSCRIBE_ERROR", DetailTypeStageActivity, ParticipantSubscribeError, func(e *api.Event) {
			e.RemoteParticipantId, e.ErrorCode = api.Ptr("pub"), api.Ptr("PUBLISHER_NOT_FOUND")
		}, `,"remote_participant_id":"pub","error_code":"PUBLISHER_NOT_FOUND"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
			e := &api.Event{Name: api.Ptr(tc.name), ParticipantId: api.Ptr("p1"), EventTime: &at}
			if tc.fill != nil {
				tc.fill(e)
			}
			ev := FromParticipantEvent(stage, "st-1", "alice", e)
			if ev == nil {
				t.Fatal("no event")
			}
			if ev.DetailType != tc.detailType || ev.Source != "aws.ivs" || ev.Account != "123456789012" || ev.Region != "us-east-1" ||
				ev.Time != "2025-01-02T03:04:05Z" || len(ev.Resources) != 1 || ev.Resources[0] != stage {
				t.Errorf("envelope %+v", ev)
			}
			want := `{"session_id":"st-1","event_name":"` + tc.eventName + `","event_time":"2025-01-02T03:04:05Z","user_id":"alice","participant_id":"p1"` + tc.detail + `}`
			if got := string(ev.Detail); got != want {
				t.Errorf("detail\n got %s\nwant %s", got, want)
			}
		})
	}
	at := time.Now()
	tok := FromParticipantEvent(stage, "st-1", "old", &api.Event{Name: api.Ptr("TOKEN_EXCHANGED"), ParticipantId: api.Ptr("p1"), EventTime: &at,
		NewToken: &api.ExchangedParticipantToken{UserId: api.Ptr("new")}})
	if tok.DetailType != DetailTypeStageActivity || !strings.Contains(string(tok.Detail), `"event_name":"Participant Token Exchanged"`) ||
		!strings.Contains(string(tok.Detail), `"user_id":"new"`) {
		t.Errorf("TOKEN_EXCHANGED: %s %s", tok.DetailType, tok.Detail)
	}
	if ev := FromParticipantEvent(stage, "st-1", "", &api.Event{Name: api.Ptr("SOMETHING_NEW"), ParticipantId: api.Ptr("p1")}); ev != nil {
		t.Errorf("an unknown event name made %+v", ev)
	}
	if ev := FromParticipantEvent(stage, "st-1", "", &api.Event{Name: api.Ptr("JOINED")}); ev != nil {
		t.Errorf("an event without participant made %+v", ev)
	}
}

func TestSessionEvents(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 999_000_000, time.UTC)
	for _, started := range []bool{true, false} {
		ev := NewSessionEvent("arn:aws:ivs:us-east-1:123456789012:stage/abc", "st-1", at, started)
		name := SessionEnded
		if started {
			name = SessionStarted
		}
		if want := `{"session_id":"st-1","event_name":"` + name + `","event_time":"2025-01-02T03:04:05Z"}`; string(ev.Detail) != want || ev.DetailType != DetailTypeStageActivity {
			t.Errorf("%s %s, want %s", ev.DetailType, ev.Detail, want)
		}
	}
}

func TestEventIDsHaveEventBridgeForm(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 100 {
		id := NewID()
		if !re.MatchString(id) || seen[id] {
			t.Fatalf("id %q (repeated: %v)", id, seen[id])
		}
		seen[id] = true
	}
}

func TestParseRoundTrip(t *testing.T) {
	ev := NewSessionEvent("arn:aws:ivs:us-east-1:123456789012:stage/abc", "st-1", time.Now(), true)
	back, err := Parse(ev.Marshal())
	if err != nil || back.ID != ev.ID || back.DetailType != ev.DetailType || string(back.Detail) != string(ev.Detail) {
		t.Fatalf("Parse = %+v, %v", back, err)
	}
	if _, err := Parse([]byte("nope")); err == nil {
		t.Error("Parse accepted garbage")
	}
}

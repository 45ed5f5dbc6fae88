package recording

import (
	"encoding/json"
	"path"
	"time"
)

// renditionName is the one rendition of a participant recording.
const renditionName = "high"

// Keys under a recording's prefix (IVS-BEHAVIOUR.md §6.4).
const (
	keyStarted      = "events/recording-started.json"
	keyEnded        = "events/recording-ended.json"
	keyFailed       = "events/recording-failed.json"
	keyMultivariant = "media/hls/multivariant.m3u8"
	dirRendition    = "media/hls/" + renditionName
	keyPlaylist     = dirRendition + "/playlist.m3u8"
	dirThumbnails   = "media/thumbnails/" + renditionName
	keyLatestThumb  = "media/latest_thumbnail/" + renditionName + "/thumb.jpg"
)

// ParticipantPrefix is what GetParticipant reports as recordingS3Prefix:
// <stageId>/<sessionId>/<participantId>, without the timestamp folder.
func ParticipantPrefix(stageID, sessionID, participantID string) string {
	return stageID + "/" + sessionID + "/" + participantID
}

// keyPrefix is a recording's folder: the participant prefix and the UTC
// start time as IVS writes it (2024-01-01T12-00-55Z).
func keyPrefix(stageID, sessionID, participantID string, started time.Time) string {
	return path.Join(ParticipantPrefix(stageID, sessionID, participantID), started.UTC().Format("2006-01-02T15-04-05Z"))
}

// Recording statuses of the JSON event files.
const (
	statusStarted       = "RECORDING_STARTED"
	statusEnded         = "RECORDING_ENDED"
	statusEndedWithFail = "RECORDING_ENDED_WITH_FAILURE"
	statusStartFailed   = "RECORDING_START_FAILED"
)

// eventFile is IVS's events/recording-*.json for a participant recording.
type eventFile struct {
	Version            string     `json:"version"`
	StageARN           string     `json:"stage_arn"`
	SessionID          string     `json:"session_id"`
	ParticipantID      string     `json:"participant_id"`
	RecordingStartedAt string     `json:"recording_started_at,omitempty"`
	RecordingEndedAt   string     `json:"recording_ended_at,omitempty"`
	RecordingStatus    string     `json:"recording_status"`
	StatusMessage      string     `json:"recording_status_message,omitempty"`
	Media              eventMedia `json:"media"`
}

type eventMedia struct {
	HLS             *eventHLS    `json:"hls,omitempty"`
	Thumbnails      *eventFolder `json:"thumbnails,omitempty"`
	LatestThumbnail *eventFolder `json:"latest_thumbnail,omitempty"`
}

type eventHLS struct {
	DurationMs *int64           `json:"duration_ms,omitempty"`
	Path       string           `json:"path"`
	Playlist   string           `json:"playlist"`
	Renditions []eventRendition `json:"renditions"`
}

type eventRendition struct {
	Path     string `json:"path"`
	Playlist string `json:"playlist,omitempty"`
}

type eventFolder struct {
	Path       string           `json:"path"`
	Renditions []eventRendition `json:"renditions"`
}

// iso is the time format of the event files (seconds, UTC, Z).
func iso(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// eventDoc builds an event file for a recording with settings s. ended is
// zero for recording-started.json; dur is nil there too.
func eventDoc(p Participant, s Settings, status, message string, started, ended time.Time, dur *int64) []byte {
	doc := eventFile{
		Version: "v1", StageARN: p.StageARN, SessionID: p.SessionID, ParticipantID: p.ParticipantID,
		RecordingStatus: status, StatusMessage: message,
	}
	if !started.IsZero() {
		doc.RecordingStartedAt = iso(started)
	}
	if !ended.IsZero() {
		doc.RecordingEndedAt = iso(ended)
	}
	if s.MediaTypes != NoMedia {
		doc.Media.HLS = &eventHLS{DurationMs: dur, Path: "media/hls", Playlist: "multivariant.m3u8",
			Renditions: []eventRendition{{Path: renditionName, Playlist: "playlist.m3u8"}}}
	}
	if s.thumbnails() && s.ThumbnailSequential {
		doc.Media.Thumbnails = &eventFolder{Path: "media/thumbnails", Renditions: []eventRendition{{Path: renditionName}}}
	}
	if s.thumbnails() && s.ThumbnailLatest {
		doc.Media.LatestThumbnail = &eventFolder{Path: "media/latest_thumbnail", Renditions: []eventRendition{{Path: renditionName}}}
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return b
}

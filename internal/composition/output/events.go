package output

import (
	"encoding/json"
	"strconv"
	"time"
)

// Keys under a composite recording's prefix (IVS-BEHAVIOUR.md §6.3).
const (
	keyStarted       = "events/recording-started.json"
	keyEnded         = "events/recording-ended.json"
	keyFailed        = "events/recording-failed.json"
	dirHLS           = "media/hls"
	keyMultivariant  = dirHLS + "/multivariant.m3u8"
	dirThumbnails    = "media/thumbnails"
	dirLatestThumb   = "media/latest_thumbnail"
	latestThumbName  = "thumb.jpg"
	playlistName     = "playlist.m3u8"
	multivariantName = "multivariant.m3u8"
)

// Recording statuses of the events JSON files.
const (
	statusStarted       = "RECORDING_STARTED"
	statusEnded         = "RECORDING_ENDED"
	statusEndedWithFail = "RECORDING_ENDED_WITH_FAILURE"
	statusStartFailed   = "RECORDING_START_FAILED"
)

// compositeEvent is IVS's events/recording-*.json of a composite recording.
type compositeEvent struct {
	Version            string         `json:"version"`
	StageARN           string         `json:"stage_arn"`
	RecordingStartedAt string         `json:"recording_started_at,omitempty"`
	RecordingEndedAt   string         `json:"recording_ended_at,omitempty"`
	RecordingStatus    string         `json:"recording_status"`
	StatusMessage      string         `json:"recording_status_message,omitempty"`
	Media              compositeMedia `json:"media"`
}

type compositeMedia struct {
	HLS             compositeHLS     `json:"hls"`
	Thumbnails      *compositeThumbs `json:"thumbnails,omitempty"`
	LatestThumbnail *compositeThumbs `json:"latest_thumbnail,omitempty"`
}

type compositeHLS struct {
	DurationMs *int64               `json:"duration_ms,omitempty"`
	Path       string               `json:"path"`
	Playlist   string               `json:"playlist"`
	Renditions []compositeRendition `json:"renditions"`
}

type compositeRendition struct {
	Path     string `json:"path"`
	Playlist string `json:"playlist"`
	Width    int    `json:"resolution_width"`
	Height   int    `json:"resolution_height"`
}

type compositeThumbs struct {
	Path        string                `json:"path"`
	Resolutions []compositeResolution `json:"resolutions"`
}

type compositeResolution struct {
	Path   string `json:"path"`
	Width  int    `json:"resolution_width"`
	Height int    `json:"resolution_height"`
}

// iso is the time format of the event files (seconds, UTC, Z).
func iso(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func resolutionPath(w, h int) string { return strconv.Itoa(w) + "x" + strconv.Itoa(h) }

// eventDoc builds an events file of the writer's recording. started is
// zero for RECORDING_START_FAILED, ended and dur for recording-started.json.
func (w *HLSWriter) eventDoc(status, message string, started, ended time.Time, dur *int64) []byte {
	doc := compositeEvent{
		Version: "v1", StageARN: w.cfg.StageARN, RecordingStatus: status, StatusMessage: message,
		Media: compositeMedia{HLS: compositeHLS{DurationMs: dur, Path: dirHLS, Playlist: multivariantName, Renditions: []compositeRendition{}}},
	}
	if !started.IsZero() {
		doc.RecordingStartedAt = iso(started)
	}
	if !ended.IsZero() {
		doc.RecordingEndedAt = iso(ended)
	}
	var res []compositeResolution
	for _, r := range w.rends {
		doc.Media.HLS.Renditions = append(doc.Media.HLS.Renditions, compositeRendition{Path: r.Name, Playlist: playlistName, Width: r.Width, Height: r.Height})
		if r.thumbs {
			res = append(res, compositeResolution{Path: resolutionPath(r.Width, r.Height), Width: r.Width, Height: r.Height})
		}
	}
	if len(res) > 0 && w.sequential() {
		doc.Media.Thumbnails = &compositeThumbs{Path: dirThumbnails, Resolutions: res}
	}
	if len(res) > 0 && w.latest() {
		doc.Media.LatestThumbnail = &compositeThumbs{Path: dirLatestThumb, Resolutions: res}
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return b
}

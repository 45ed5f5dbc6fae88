// Package composition is Rostrum's server-side composition: it follows one
// stage, mixes its publishers into one picture (package layout says where
// each goes) and one sound, encodes the mix once per encoder configuration
// and sends each encode to the destinations that asked for it: an RTMP(S)
// server for a channel destination, HLS in object storage for an S3 one.
//
// The package sits under the IVS service like the forwarding engine does:
// the service resolves StartComposition into a Spec, hands it to the
// Manager, and learns what happens through the Reporter it gave. It knows
// nothing of the API's shapes, the store or HTTP.
//
//	ivs.Service ──Spec──▶ Manager ──▶ mixer (decoders → canvas → encoders)
//	     ▲                  │                    │ FLV per encoder
//	     └────Reporter──────┘        output: RTMP pusher, HLS writer
//
// A composition reads the stage through a StageWatcher (the stage layer
// implements it): who is in the stage, who publishes, and a Source to tap
// their media.
package composition

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/rostrum-dev/rostrum/internal/composition/layout"
	"github.com/rostrum-dev/rostrum/internal/sfu"
)

// States of a composition and of each destination, as the API names them
// (api.CompositionState*, api.DestinationState*).
const (
	StateStarting     = "STARTING"
	StateActive       = "ACTIVE"
	StateStopping     = "STOPPING"
	StateStopped      = "STOPPED"
	StateFailed       = "FAILED"
	StateReconnecting = "RECONNECTING" // destinations only
)

// Errors the service maps to the API's.
var (
	// ErrNotFound: no running composition has that ARN.
	ErrNotFound = errors.New("composition: no such running composition")
	// ErrClosed: the manager is shutting down.
	ErrClosed = errors.New("composition: closed")
)

// Encoder is an EncoderConfiguration, resolved with IVS's defaults
// (1280×720, 30 fps, 2.5 Mbit/s).
type Encoder struct {
	ARN       string // "" for the default configuration
	Width     int
	Height    int
	Framerate float64
	Bitrate   int // bits per second
}

// Name is the encode's rendition name in IVS's composite layout
// ("720p30-<id>"): height, frame rate and the configuration's resource id.
func (e Encoder) Name() string {
	id := "default"
	if i := strings.LastIndexByte(e.ARN, '/'); i >= 0 {
		id = e.ARN[i+1:]
	}
	return strconv.Itoa(e.Height) + "p" + strconv.Itoa(int(e.Framerate+0.5)) + "-" + id
}

// Spec is a composition as StartComposition asked for it, resolved by the
// service: ARNs checked, defaults filled in, channel ARNs mapped to URLs.
type Spec struct {
	ARN      string // arn:aws:ivs:…:composition/<ID>
	ID       string
	StageARN string
	StageID  string
	Layout   layout.Config
	// Destinations: at most one channel and one S3 destination.
	Destinations []Destination
	// StartedAt is StartComposition's time (recording_started_at).
	StartedAt time.Time
}

// Destination is one output of a composition: exactly one of Channel and
// S3 is set.
type Destination struct {
	ID      string // the destination's id in the API (12 characters)
	Channel *ChannelTarget
	S3      *S3Target
}

// ChannelTarget publishes the encode over RTMP(S).
type ChannelTarget struct {
	ChannelARN string
	// URL is the rtmp:// or rtmps:// URL, stream key included, that the
	// channel ARN is mapped to (--channel ARN=URL).
	URL     string
	Encoder Encoder
}

// S3Target writes HLS (one rendition per encoder), thumbnails and the
// events JSON files under Prefix in Bucket, per IVS's composite layout
// (IVS-BEHAVIOUR.md §6.3).
type S3Target struct {
	StorageConfigurationARN string
	Bucket                  string
	// Prefix is the destination's recordingPrefix:
	// <stage id>/<composition id>/<destination id>/composite (no trailing slash).
	Prefix   string
	Encoders []Encoder
	// SegmentSeconds is the HLS target segment duration (IVS's default 2).
	SegmentSeconds int
	Thumbnails     []Thumbnail
}

// Thumbnail is one thumbnailConfiguration of an S3 destination.
type Thumbnail struct {
	IntervalSeconds int  // targetIntervalSeconds (default 60)
	Sequential      bool // storage SEQUENTIAL: media/thumbnails/<WxH>/<n>.jpg
	Latest          bool // storage LATEST: media/latest_thumbnail/<WxH>/thumb.jpg
}

// Reporter is told every state change, in order, per composition. The
// service implements it: it keeps the states, start and end times, and
// publishes the "IVS Composition State Change" events the transitions mean
// (ACTIVE → Session Start / Destination Start, RECONNECTING → Destination
// Reconnecting, FAILED → Session/Destination Failure, STOPPED → Session/
// Destination End). Calls never block for long and never call back into the
// Manager.
type Reporter interface {
	CompositionState(arn, state string, at time.Time, reason string)
	// DestinationState reports one destination; reason says why for
	// RECONNECTING and FAILED.
	DestinationState(arn, destinationID, state string, at time.Time, reason string)
}

// StageWatcher lets a composition follow a stage. The stage layer
// implements it (stage.Manager).
type StageWatcher interface {
	// WatchStage calls f with the stage's current view at once, and again
	// after every change (a participant joins, leaves, starts or stops
	// publishing, or changes attributes by token exchange; a session starts
	// or ends; the stage is deleted), until cancel is called. Calls for one
	// watch are serialised; f must not block.
	WatchStage(stageARN string, f func(StageView)) (cancel func(), err error)
}

// StageView is a stage as a composition sees it.
type StageView struct {
	// SessionID is the current stage session; "" when the stage has none.
	SessionID string
	// Participants are the connected participants, in join order.
	Participants []Participant
	// Source taps the session's publishers; nil without a session.
	Source Source
	// Deleted is set once the stage is deleted: the composition ends.
	Deleted bool
}

// Participant is a connected participant of the stage.
type Participant struct {
	ID, UserID string
	Attributes map[string]string
	Joined     time.Time
	// Publishing is true while the participant's media reaches the server.
	Publishing bool
	// VideoStopped and AudioMuted are what the participant's client says
	// of its tracks (the IVS SDK's mute state, on the events websocket).
	VideoStopped, AudioMuted bool
}

// Source taps a publisher of a stage session (sfu.Router implements it).
type Source interface {
	Tap(publisherID string, opts sfu.TapOptions) (*sfu.Tap, error)
}

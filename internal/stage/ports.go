package stage

import (
	"context"
	"time"

	"github.com/pion/rtp"

	"github.com/rostrum-dev/rostrum/internal/ivs"
	"github.com/rostrum-dev/rostrum/internal/recording"
	"github.com/rostrum-dev/rostrum/internal/sfu"
)

// Service is what the stage layer uses of the IVS service: admitting
// participant tokens and recording what happens on stages. *ivs.Service
// implements it.
type Service interface {
	// Admit returns the key, the stage and the revocation a token's kid,
	// stage and participant id name (see ivs.Service.Admit).
	Admit(ctx context.Context, kid, stageARN, participantID string) (*ivs.Admission, error)
	RecordStageSessionStart(ctx context.Context, stageARN, sessionID string, at time.Time) error
	EndStageSession(ctx context.Context, stageARN, sessionID string) error
	RecordParticipantState(ctx context.Context, stageARN, sessionID string, p ivs.ParticipantRecord) error
	RecordEvent(ctx context.Context, stageARN, sessionID string, e ivs.ParticipantEvent) error
	// RecordReplica records a replication's state with its source stage.
	RecordReplica(ctx context.Context, r ivs.ReplicaRecord) error
	// RecordRecordingChange reports a participant recording's new state
	// (patching the stored participant when patch is set).
	RecordRecordingChange(ctx context.Context, stageARN, sessionID string, c ivs.RecordingChange, patch bool) error
}

// Engine is what the stage layer uses of the forwarding engine: one router
// per stage session.
type Engine interface {
	NewRouter(sessionID string) Router
}

// Router forwards one stage session's media.
type Router interface {
	Publish(ctx context.Context, publisherID, offer string, cb sfu.PublisherCallbacks) (Conn, string, error)
	Subscribe(ctx context.Context, subscriberID, publisherID, offer string, opts sfu.SubscribeOptions) (Subscription, string, error)
	// PublishLocal starts a publisher fed by the process (RTMP ingest, a
	// replica) rather than a peer connection.
	PublishLocal(publisherID string, tracks []sfu.LocalTrack, opts sfu.LocalPublisherOptions) (LocalConn, error)
	// Tap reads a publisher's media inside the process (for recording).
	Tap(publisherID string, opts sfu.TapOptions) (*sfu.Tap, error)
	// Close closes every connection of the session and waits for their
	// callbacks; it is never called with a stage lock held.
	Close() error
}

// Recorder records the participants who publish on stages that record
// (*recording.Manager); it reports back through Manager.RecordingChanged.
type Recorder interface {
	Publishing(p recording.Participant, s recording.Settings, src recording.Source)
}

// Conn is one peer connection of the engine.
type Conn interface {
	Close() error
}

// LocalConn is a local publisher of the engine (*sfu.Publisher).
type LocalConn interface {
	Conn
	WriteRTP(track int, h *rtp.Header, payload []byte) error
	SetSenderReport(track int, ntp uint64, rtpTime uint32)
}

// Subscription is a subscriber's peer connection, with its controls.
type Subscription interface {
	Conn
	Layers() map[string][]sfu.LayerInfo
	PinLayer(mid, encodingID string) error
	UnpinLayer(mid string) error
	Pause(mids []string) error
	Play(mids []string) error
}

// EngineOf adapts the forwarding engine to the stage layer.
func EngineOf(e *sfu.Engine) Engine { return sfuEngine{e} }

type sfuEngine struct{ e *sfu.Engine }

func (e sfuEngine) NewRouter(id string) Router { return sfuRouter{e.e.NewRouter(id)} }

type sfuRouter struct{ r *sfu.Router }

func (r sfuRouter) Publish(ctx context.Context, publisherID, offer string, cb sfu.PublisherCallbacks) (Conn, string, error) {
	p, answer, err := r.r.Publish(ctx, publisherID, offer, cb)
	if err != nil {
		return nil, "", err
	}
	return p, answer, nil
}

func (r sfuRouter) Subscribe(ctx context.Context, subscriberID, publisherID, offer string, opts sfu.SubscribeOptions) (Subscription, string, error) {
	s, answer, err := r.r.Subscribe(ctx, subscriberID, publisherID, offer, opts)
	if err != nil {
		return nil, "", err
	}
	return s, answer, nil
}

func (r sfuRouter) PublishLocal(publisherID string, tracks []sfu.LocalTrack, opts sfu.LocalPublisherOptions) (LocalConn, error) {
	p, err := r.r.PublishLocal(publisherID, tracks, opts)
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (r sfuRouter) Tap(publisherID string, opts sfu.TapOptions) (*sfu.Tap, error) {
	return r.r.Tap(publisherID, opts)
}

func (r sfuRouter) Close() error { return r.r.Close() }

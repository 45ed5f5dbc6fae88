package stage

import (
	"errors"
	"fmt"
	"sync"

	"github.com/pion/rtp"

	"github.com/rostrum-dev/rostrum/internal/ivs"
	"github.com/rostrum-dev/rostrum/internal/sfu"
	"github.com/rostrum-dev/rostrum/internal/token"
)

// Local publications: participants whose media the server itself feeds
// (RTMP ingest, participant replicas) instead of a WebRTC publisher. They
// are admitted, counted against the publisher limit, recorded, kicked and
// ended exactly as a WHIP publisher is (admitPublisher, Resource); only the
// media comes from Go code, through the engine's local publisher.

// LocalIdentity is the identity of a participant that publishes without a
// token: its stage, id, user id and attributes come from a configuration
// on the server (an IngestConfiguration, a replication), which is what
// vouches for it. It can publish and nothing else. It is not a token:
// Authenticate never returns one, and a resource it owns is never
// reachable through the WHIP/WHEP endpoints.
func LocalIdentity(stage *ivs.StageInfo, participantID, userID string, attributes map[string]string) *Identity {
	return &Identity{Stage: stage, Claims: token.Claims{
		ParticipantID: participantID, Resource: stage.ARN, Topic: stage.ID,
		UserID: userID, Attributes: attributes,
		Capabilities: token.Capabilities{Publish: true},
	}}
}

// LocalPublishOptions are a local publication's callbacks, called from the
// engine's goroutines; they must not block.
type LocalPublishOptions struct {
	// OnKeyframeRequest: a subscriber (or a recording) needs a keyframe
	// on a video track (see sfu.LocalPublisherOptions).
	OnKeyframeRequest func(track int)
	// OnEnded is called once when the publication ends: nil after its
	// Close; ErrDisconnected (DisconnectParticipant), ErrStageDeleted,
	// ErrUnavailable (the server is shutting down, or the session ended
	// under it), or the engine's error otherwise. The feeder should stop
	// and close its source.
	OnEnded func(err error)
}

// LocalPublication is a participant publishing through the server.
type LocalPublication struct {
	r         *Resource
	conn      LocalConn
	sessionID string
	tracks    []sfu.LocalTrack
	endOnce   sync.Once
	onEnded   func(error)
}

// PublishLocal admits a participant that publishes media fed by the
// process (client.Protocol says how it arrives: "RTMP", "RTMPS"; shown by
// GetParticipant). It is refused as a WHIP publisher would be: ErrStageFull
// at the stage's publisher limit (PUBLISH_ERROR QUOTA_EXCEEDED is
// recorded), ErrStageDeleted, ErrThrottled, ErrNoMatchingCodec. The
// participant joins at once (JOINED, CONNECTED) and is publishing
// (PUBLISH_STARTED) with its first packet.
func (m *Manager) PublishLocal(id *Identity, client ClientInfo, tracks []sfu.LocalTrack, opts LocalPublishOptions) (*LocalPublication, error) {
	st, r, router, err := m.admitPublisher(id, client)
	if err != nil {
		return nil, err
	}
	lp := &LocalPublication{r: r, tracks: append([]sfu.LocalTrack(nil), tracks...), onEnded: opts.OnEnded}
	conn, err := router.PublishLocal(r.ParticipantID, tracks, sfu.LocalPublisherOptions{
		OnKeyframeRequest: opts.OnKeyframeRequest,
		OnMedia:           func() { st.publishing(r) },
		OnClosed: func(err error) {
			r.ended(err)
			r.mu.Lock()
			cause := r.cause
			r.mu.Unlock()
			switch {
			case cause == errClosedByFeeder:
				err = nil
			case cause != nil:
				err = cause
			}
			lp.ended(err)
		},
	})
	if err != nil {
		return nil, st.publishFailed(r, err)
	}
	if !st.publisherLive(r, conn, &lp.sessionID) {
		// Kicked, or the stage ended, while the engine set it up: the
		// caller learns it from the error, not from OnEnded.
		lp.endOnce.Do(func() {})
		conn.Close()
		r.ended(nil)
		r.mu.Lock()
		cause := r.cause
		r.mu.Unlock()
		if cause == nil {
			cause = ErrUnavailable
		}
		return nil, fmt.Errorf("%w: the publication was ended while it was set up", cause)
	}
	lp.conn = conn
	return lp, nil
}

// publisherLive connects a negotiated publisher to its resource, unless
// the resource was ended meanwhile, and tells the session it joined.
func (st *Stage) publisherLive(r *Resource, conn Conn, sessionID *string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	p := st.participants[r.ParticipantID]
	if p == nil || p.publisher != r {
		return false
	}
	r.mu.Lock()
	r.conn = conn
	r.mu.Unlock()
	*sessionID = st.sessionID
	return true
}

func (lp *LocalPublication) ended(err error) {
	lp.endOnce.Do(func() {
		if lp.onEnded != nil {
			lp.onEnded(err)
		}
	})
}

// WriteRTP feeds one RTP packet of a track (see sfu.Publisher.WriteRTP);
// it returns sfu.ErrClosed once the publication has ended.
func (lp *LocalPublication) WriteRTP(track int, h *rtp.Header, payload []byte) error {
	return lp.conn.WriteRTP(track, h, payload)
}

// SetSenderReport maps an RTP time of a track to wall-clock (NTP) time,
// which lines up the publication's tracks for its subscribers.
func (lp *LocalPublication) SetSenderReport(track int, ntp uint64, rtpTime uint32) {
	lp.conn.SetSenderReport(track, ntp, rtpTime)
}

// Close ends the publication: PUBLISH_STOPPED, and the participant leaves
// (LEFT, DISCONNECTED) since it has no other connection. OnEnded(nil)
// follows, unless the publication had already ended.
func (lp *LocalPublication) Close() {
	lp.r.setCause(errClosedByFeeder)
	lp.r.Close()
}

// errClosedByFeeder marks a publication its own Close ended: OnEnded
// reports it as nil.
var errClosedByFeeder = errors.New("closed by its feeder")

// StageARN, ParticipantID and SessionID say where the publication is.
func (lp *LocalPublication) StageARN() string      { return lp.r.StageARN }
func (lp *LocalPublication) ParticipantID() string { return lp.r.ParticipantID }
func (lp *LocalPublication) SessionID() string     { return lp.sessionID }

// Tracks are the tracks the publication was started with, indexed as
// WriteRTP's track.
func (lp *LocalPublication) Tracks() []sfu.LocalTrack {
	return append([]sfu.LocalTrack(nil), lp.tracks...)
}

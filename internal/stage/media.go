package stage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/events"
	"github.com/rostrum-dev/rostrum/internal/ivs"
	"github.com/rostrum-dev/rostrum/internal/recording"
	"github.com/rostrum-dev/rostrum/internal/sfu"
)

// The kinds of resource.
const (
	KindPublish   = "publish"
	KindSubscribe = "subscribe"
)

// Resource is one WHIP (publish) or WHEP-shaped (subscribe) session: the
// HTTP resource a client DELETEs to end it.
type Resource struct {
	ID            string
	Kind          string // KindPublish or KindSubscribe
	StageARN      string
	ParticipantID string
	PublisherID   string // for subscribe: whose media
	Token         string // the raw token it was created with

	st        *Stage
	mu        sync.Mutex
	conn      Conn         // nil until negotiated
	sub       Subscription // the same connection, for a subscription
	closeOnce sync.Once
	// cause is why the stage ended the resource, set before it closes it
	// (ErrDisconnected, ErrStageDeleted, ErrUnavailable); local
	// publications report it to their feeder.
	cause error
}

// setCause records why the stage ends the resource.
func (r *Resource) setCause(err error) {
	r.mu.Lock()
	if r.cause == nil {
		r.cause = err
	}
	r.mu.Unlock()
}

// Close ends the resource: the engine's peer connection closes and the
// stage records it, once.
func (r *Resource) Close() {
	r.mu.Lock()
	conn := r.conn
	r.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
	r.ended(nil)
}

// ended updates the stage when the resource is gone, whichever side ended
// it; it runs once.
func (r *Resource) ended(err error) {
	r.closeOnce.Do(func() {
		st := r.st
		st.m.dropResource(r.ID)
		if err != nil {
			st.m.log.Debug("media connection ended", "stage", st.arn, "participant", r.ParticipantID, "kind", r.Kind, "err", err)
		}
		st.mu.Lock()
		defer st.mu.Unlock()
		p := st.participants[r.ParticipantID]
		if p == nil {
			return
		}
		switch r.Kind {
		case KindPublish:
			if p.publisher != r {
				return
			}
			st.publisherGone(p, r)
		case KindSubscribe:
			if p.subs[r.PublisherID] != r {
				return
			}
			st.subscriptionGone(p, r)
		}
		st.leaveIfIdle(p)
	})
}

// publisherGone forgets the participant's publisher r and records that it
// stopped. Called with st.mu held.
func (st *Stage) publisherGone(p *Participant, r *Resource) {
	p.publisher = nil
	if p.publishing {
		p.publishing = false
		st.recordEvent(p, ivs.ParticipantEvent{Name: api.EventNamePublishStopped})
		st.broadcast()
	}
}

// subscriptionGone forgets the participant's subscription r and records
// that it stopped. Called with st.mu held.
func (st *Stage) subscriptionGone(p *Participant, r *Resource) {
	delete(p.subs, r.PublisherID)
	r.mu.Lock()
	started := r.conn != nil
	r.mu.Unlock()
	if started {
		st.recordEvent(p, ivs.ParticipantEvent{Name: api.EventNameSubscribeStopped, RemoteParticipantID: r.PublisherID})
	}
}

// Publish admits a publisher (WHIP) and answers its offer. Publishing again
// replaces the participant's previous publisher connection.
func (m *Manager) Publish(ctx context.Context, id *Identity, client ClientInfo, offer string) (*Resource, string, error) {
	st, r, router, err := m.admitPublisher(id, client)
	if err != nil {
		return nil, "", err
	}
	conn, answer, err := router.Publish(ctx, r.ParticipantID, offer, sfu.PublisherCallbacks{
		OnMedia:  func() { st.publishing(r) },
		OnClosed: r.ended,
	})
	if err != nil {
		return nil, "", st.publishFailed(r, err)
	}
	r.mu.Lock()
	r.conn = conn
	r.mu.Unlock()
	m.addResource(r)
	return r, answer, nil
}

// admitPublisher admits the identity's participant as a publisher of its
// stage, whatever carries its media (WHIP, or a local publisher: RTMP
// ingest, a replica): the publish capability, the stage's publisher limit,
// joining the session. The participant's previous publisher, if any, is
// closed: r replaces it, and the caller connects r to the router.
func (m *Manager) admitPublisher(id *Identity, client ClientInfo) (*Stage, *Resource, Router, error) {
	pid := id.Claims.ParticipantID
	var r, old *Resource
	var router Router
	var st *Stage
	err := m.withStage(id, func(s *Stage) error {
		st = s
		if !id.Claims.Capabilities.Publish {
			st.recordEventOf(pid, ivs.ParticipantEvent{Name: api.EventNamePublishError, ErrorCode: api.EventErrorCodeInsufficientCapabilities})
			return fmt.Errorf("%w: publishing", ErrNotAllowed)
		}
		if err := st.admitReplica(id); err != nil {
			return err
		}
		publishers := 0
		for _, p := range st.participants {
			if p.publisher != nil && p.id != pid {
				publishers++
			}
		}
		if m.cfg.MaxPublishers > 0 && publishers >= m.cfg.MaxPublishers {
			st.recordEventOf(pid, ivs.ParticipantEvent{Name: api.EventNamePublishError, ErrorCode: api.EventErrorCodeQuotaExceeded})
			return fmt.Errorf("%w: the stage already has %d publishers", ErrStageFull, publishers)
		}
		p := st.join(id, client)
		old = p.publisher
		r = &Resource{ID: newResourceID(), Kind: KindPublish, StageARN: st.arn, ParticipantID: pid, Token: id.Raw, st: st}
		p.publisher = r
		router = st.router
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	if old != nil {
		old.Close()
	}
	return st, r, router, nil
}

// publishFailed records that the engine refused publisher r and returns
// the stage's error for it.
func (st *Stage) publishFailed(r *Resource, err error) error {
	code := api.EventErrorCodeInvalidInput
	if errors.Is(err, sfu.ErrNoMatchingCodec) {
		code = api.EventErrorCodeInvalidVideoCodec
	}
	st.recordFailure(r.ParticipantID, ivs.ParticipantEvent{Name: api.EventNamePublishError, ErrorCode: code})
	r.ended(err)
	return st.mediaErr(err)
}

// recordEventOf records an event of a participant who may not be on the
// stage yet (a refusal). Called with st.mu held.
func (st *Stage) recordEventOf(pid string, e ivs.ParticipantEvent) {
	p := st.participants[pid]
	if p == nil {
		p = &Participant{id: pid}
	}
	st.recordEvent(p, e)
}

// recordFailure records a failed negotiation.
func (st *Stage) recordFailure(pid string, e ivs.ParticipantEvent) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.recordEventOf(pid, e)
}

// publishing is the publisher's first media: it is now publishing.
func (st *Stage) publishing(r *Resource) {
	st.mu.Lock()
	defer st.mu.Unlock()
	p := st.participants[r.ParticipantID]
	if p == nil || p.publisher != r {
		return
	}
	// The participant's replications follow it to its new publisher,
	// even one that replaced a publisher without a pause.
	st.m.replicas.sourcePublishing(st, p)
	if p.publishing {
		return
	}
	p.publishing, p.published = true, true
	st.recordParticipant(p)
	st.recordEvent(p, ivs.ParticipantEvent{Name: api.EventNamePublishStarted})
	st.broadcast()
	if rs := st.info.RecordingSettings; rs != nil && st.m.recorder != nil && st.router != nil && st.records(p) {
		st.m.recorder.Publishing(recording.Participant{
			StageARN: st.arn, StageID: st.id, SessionID: st.sessionID, ParticipantID: p.id,
		}, recordingSettings(rs), st.router)
	}
}

// recordingSettings are the recorder's terms for a stage's settings.
func recordingSettings(rs *ivs.RecordingSettings) recording.Settings {
	return recording.Settings{
		StorageConfigurationARN:  rs.StorageConfigurationARN,
		Bucket:                   rs.Bucket,
		MediaTypes:               recording.MediaTypes(rs.MediaTypes),
		ThumbnailIntervalSeconds: rs.ThumbnailIntervalSeconds,
		ThumbnailSequential:      rs.ThumbnailSequential,
		ThumbnailLatest:          rs.ThumbnailLatest,
		SegmentSeconds:           rs.SegmentSeconds,
		ReconnectWindow:          time.Duration(rs.ReconnectWindowSeconds) * time.Second,
	}
}

// RecordingChanged is the recorder telling the state of a participant's
// recording. The stage writes it into the participant's record while the
// participant's session is live; afterwards (a reconnect window that
// outlives the session, a recording closed after a crash) the service
// patches the stored record.
func (m *Manager) RecordingChanged(c recording.Change) {
	rc := ivs.RecordingChange{
		ParticipantID: c.ParticipantID, State: string(c.State), Bucket: c.Bucket,
		Prefix:    recording.ParticipantPrefix(c.StageID, c.SessionID, c.ParticipantID),
		KeyPrefix: c.KeyPrefix, Duration: c.Duration, Reason: c.Reason,
	}
	switch c.Outcome {
	case recording.Started:
		rc.Event = events.RecordingStart
	case recording.Ended:
		rc.Event = events.RecordingEnd
	case recording.StartFailed:
		rc.Event = events.RecordingStartFailure
	case recording.EndFailed:
		rc.Event = events.RecordingEndFailure
	}
	if st := m.lookupStage(c.StageARN); st != nil {
		st.mu.Lock()
		p := st.participants[c.ParticipantID]
		if p != nil && st.sessionID == c.SessionID {
			p.recState, p.recBucket, p.recPrefix = rc.State, rc.Bucket, rc.Prefix
			st.recordParticipant(p)
			sid, arn := st.sessionID, st.arn
			st.rec.add(func(ctx context.Context) error { return m.svc.RecordRecordingChange(ctx, arn, sid, rc, false) })
			st.mu.Unlock()
			return
		}
		st.mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.svc.RecordRecordingChange(ctx, c.StageARN, c.SessionID, rc, true); err != nil {
		m.log.Warn("recording a participant's recording state", "stage", c.StageARN, "participant", c.ParticipantID, "err", err)
	}
}

// Subscribe admits a subscriber to one publisher and answers its offer.
// Subscribing again to the same publisher replaces the previous
// subscription: a participant has one per publisher.
func (m *Manager) Subscribe(ctx context.Context, id *Identity, client ClientInfo, publisherID, offer, initialLayer string) (*Resource, string, error) {
	pid := id.Claims.ParticipantID
	refused := func(code string) ivs.ParticipantEvent {
		return ivs.ParticipantEvent{Name: api.EventNameSubscribeError, RemoteParticipantID: publisherID, ErrorCode: code}
	}
	var r, old *Resource
	var router Router
	var st *Stage
	err := m.withStage(id, func(s *Stage) error {
		st = s
		if !id.Claims.Capabilities.Subscribe {
			st.recordEventOf(pid, refused(api.EventErrorCodeInsufficientCapabilities))
			return fmt.Errorf("%w: subscribing", ErrNotAllowed)
		}
		if pub := st.participants[publisherID]; pub == nil || pub.publisher == nil || !pub.present {
			st.recordEventOf(pid, refused(api.EventErrorCodePublisherNotFound))
			return fmt.Errorf("%w: participant %s", ErrPublisherNotFound, publisherID)
		}
		if me := st.participants[pid]; m.cfg.MaxSubscribers > 0 && (me == nil || len(me.subs) == 0) {
			subscribers := 0
			for _, p := range st.participants {
				if len(p.subs) > 0 {
					subscribers++
				}
			}
			if subscribers >= m.cfg.MaxSubscribers {
				st.recordEventOf(pid, refused(api.EventErrorCodeQuotaExceeded))
				return fmt.Errorf("%w: the stage already has %d subscribers", ErrStageFull, subscribers)
			}
		}
		p := st.join(id, client)
		old = p.subs[publisherID]
		if old != nil {
			st.subscriptionGone(p, old)
		}
		r = &Resource{ID: newResourceID(), Kind: KindSubscribe, StageARN: st.arn, ParticipantID: pid, PublisherID: publisherID, Token: id.Raw, st: st}
		p.subs[publisherID] = r
		router = st.router
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	if old != nil {
		old.Close()
	}
	sub, answer, err := router.Subscribe(ctx, pid, publisherID, offer, sfu.SubscribeOptions{InitialLayer: initialLayer, OnClosed: r.ended})
	if err != nil {
		code := api.EventErrorCodeInvalidInput
		switch {
		case errors.Is(err, sfu.ErrPublisherNotFound):
			code = api.EventErrorCodePublisherNotFound
		case errors.Is(err, sfu.ErrNoMatchingCodec):
			code = api.EventErrorCodeInvalidVideoCodec
		}
		st.recordFailure(pid, refused(code))
		r.ended(err)
		return nil, "", st.mediaErr(err)
	}
	if !st.subscribed(r, sub) {
		// The subscription was replaced or its participant disconnected
		// while it was negotiated.
		sub.Close()
		r.ended(nil)
		return nil, "", fmt.Errorf("%w: the subscription was ended while it was set up", ErrUnknownResource)
	}
	m.addResource(r)
	return r, answer, nil
}

// subscribed makes a negotiated subscription live and records it, unless
// it was ended meanwhile.
func (st *Stage) subscribed(r *Resource, sub Subscription) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	p := st.participants[r.ParticipantID]
	if p == nil || p.subs[r.PublisherID] != r {
		return false
	}
	r.mu.Lock()
	r.conn, r.sub = sub, sub
	r.mu.Unlock()
	st.recordEvent(p, ivs.ParticipantEvent{Name: api.EventNameSubscribeStarted, RemoteParticipantID: r.PublisherID})
	return true
}

// mediaErr turns the engine's refusals into the stage's.
func (st *Stage) mediaErr(err error) error {
	detail := func(sentinel error) string {
		return strings.TrimPrefix(strings.TrimPrefix(err.Error(), sentinel.Error()), ": ")
	}
	switch {
	case errors.Is(err, sfu.ErrNoMatchingCodec):
		return ErrNoMatchingCodec
	case errors.Is(err, sfu.ErrBadOffer):
		return fmt.Errorf("%w: %s", ErrBadOffer, detail(sfu.ErrBadOffer))
	case errors.Is(err, sfu.ErrPublisherNotFound):
		return fmt.Errorf("%w: it stopped publishing", ErrPublisherNotFound)
	case errors.Is(err, sfu.ErrClosed):
		if st.rec.isDropped() {
			return fmt.Errorf("%w: stage %s was deleted", ErrStageDeleted, st.arn)
		}
		return fmt.Errorf("%w: the stage session ended; try again", ErrUnavailable)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return ErrTimeout
	}
	return fmt.Errorf("%w: setting up the media connection: %v", ErrInternal, err)
}

// subscription is the resource's subscription, or ErrNotSubscription.
func (r *Resource) subscription() (Subscription, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sub == nil {
		return nil, ErrNotSubscription
	}
	return r.sub, nil
}

// Layers are the simulcast layers of each video section of a
// subscription, by mid.
func (r *Resource) Layers() (map[string][]sfu.LayerInfo, error) {
	sub, err := r.subscription()
	if err != nil {
		return nil, err
	}
	return sub.Layers(), nil
}

// SetLayer pins a simulcast layer of a video section, or with an empty
// encodingID returns the section (every section, for an empty mid) to
// automatic selection.
func (r *Resource) SetLayer(mid, encodingID string) error {
	sub, err := r.subscription()
	if err != nil {
		return err
	}
	if encodingID != "" {
		return controlErr(sub.PinLayer(mid, encodingID))
	}
	for m := range sub.Layers() {
		if mid == "" || mid == m {
			if err := sub.UnpinLayer(m); err != nil {
				return controlErr(err)
			}
		}
	}
	return nil
}

// Playback stops forwarding the sections in pause and resumes those in
// play.
func (r *Resource) Playback(pause, play []string) error {
	sub, err := r.subscription()
	if err != nil {
		return err
	}
	if len(pause) > 0 {
		if err := sub.Pause(pause); err != nil {
			return controlErr(err)
		}
	}
	if len(play) > 0 {
		if err := sub.Play(play); err != nil {
			return controlErr(err)
		}
	}
	return nil
}

func controlErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sfu.ErrUnknownMedia) {
		return fmt.Errorf("%w: %s", ErrBadRequest, strings.TrimPrefix(err.Error(), "sfu: "))
	}
	return fmt.Errorf("%w: %v", ErrInternal, err)
}

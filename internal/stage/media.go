package stage

import (
	"context"
	"errors"
	"sync"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/sfu"
)

// Resource is one WHIP (publish) or WHEP-shaped (subscribe) session: the
// HTTP resource a client DELETEs to end it.
type Resource struct {
	ID            string
	Kind          string // "publish" or "subscribe"
	StageARN      string
	ParticipantID string
	PublisherID   string // for subscribe: whose media
	Token         string // the raw token it was created with

	st        *Stage
	mu        sync.Mutex
	pub       *sfu.Publisher
	sub       *sfu.Subscriber
	closeOnce sync.Once
}

// Subscriber is the engine's subscriber of a subscribe resource (nil for a
// publish resource), for the layer and playback-control links.
func (r *Resource) Subscriber() *sfu.Subscriber {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sub
}

// Close ends the resource: the engine's peer connection closes and the
// stage records it, once.
func (r *Resource) Close() {
	r.mu.Lock()
	pub, sub := r.pub, r.sub
	r.mu.Unlock()
	if pub != nil {
		pub.Close()
	}
	if sub != nil {
		sub.Close()
	}
	r.ended(nil)
}

// ended updates the stage when the resource is gone, whichever side ended
// it; it runs once.
func (r *Resource) ended(err error) {
	r.closeOnce.Do(func() {
		st := r.st
		st.m.dropResource(r.ID)
		st.mu.Lock()
		defer st.mu.Unlock()
		p := st.participants[r.ParticipantID]
		if p == nil {
			return
		}
		switch r.Kind {
		case "publish":
			if p.publisher != r {
				return
			}
			p.publisher = nil
			if p.publishing {
				p.publishing = false
				st.recordEvent(p.id, "PUBLISH_STOPPED", nil)
				st.broadcast()
			}
		case "subscribe":
			if p.subs[r.ID] != r {
				return
			}
			delete(p.subs, r.ID)
			if r.sub != nil {
				st.recordEvent(p.id, "SUBSCRIBE_STOPPED", func(e *api.Event) { e.RemoteParticipantId = api.Ptr(r.PublisherID) })
			}
		}
		if err != nil {
			st.m.log.Debug("media connection ended", "stage", st.arn, "participant", r.ParticipantID, "kind", r.Kind, "err", err)
		}
		st.leaveIfIdle(p)
	})
}

// Publish admits a publisher (WHIP) and answers its offer.
func (m *Manager) Publish(ctx context.Context, id *Identity, client ClientInfo, offer string) (*Resource, string, error) {
	st, err := m.enter(id.Stage)
	if err != nil {
		return nil, "", joinErr("INTERNAL", 503, 2008, "the media plane is shutting down")
	}
	pid := id.Claims.ParticipantID
	if !id.Claims.Capabilities.Publish {
		st.recordEvent(pid, "PUBLISH_ERROR", withError("INSUFFICIENT_CAPABILITIES"))
		st.mu.Unlock()
		return nil, "", joinErr("BAD_REQUEST", 403, 2003, "the participant token does not allow publishing")
	}
	publishers := 0
	for _, p := range st.participants {
		if p.publisher != nil && p.id != pid {
			publishers++
		}
	}
	if m.cfg.MaxPublishers > 0 && publishers >= m.cfg.MaxPublishers {
		st.recordEvent(pid, "PUBLISH_ERROR", withError("QUOTA_EXCEEDED"))
		st.mu.Unlock()
		return nil, "", joinErr("BAD_REQUEST", 403, 2005, "the stage already has %d publishers", publishers)
	}
	p := st.join(id, client)
	old := p.publisher
	r := &Resource{ID: newResourceID(), Kind: "publish", StageARN: st.arn, ParticipantID: pid, Token: id.Raw, st: st}
	p.publisher = r
	router := st.router
	st.mu.Unlock()
	if old != nil {
		// Publishing again replaces the previous connection.
		old.Close()
	}
	pub, answer, err := router.Publish(ctx, pid, offer, sfu.PublisherCallbacks{
		OnMedia:  func() { st.publishing(r) },
		OnClosed: r.ended,
	})
	if err != nil {
		st.mu.Lock()
		code := "INVALID_INPUT"
		if errors.Is(err, sfu.ErrNoMatchingCodec) {
			code = "INVALID_VIDEO_CODEC"
		}
		st.recordEvent(pid, "PUBLISH_ERROR", withError(code))
		st.mu.Unlock()
		r.ended(err)
		return nil, "", mediaErr(err)
	}
	r.mu.Lock()
	r.pub = pub
	r.mu.Unlock()
	m.addResource(r)
	return r, answer, nil
}

// publishing is the publisher's first media: it is now publishing.
func (st *Stage) publishing(r *Resource) {
	st.mu.Lock()
	defer st.mu.Unlock()
	p := st.participants[r.ParticipantID]
	if p == nil || p.publisher != r || p.publishing {
		return
	}
	p.publishing, p.published = true, true
	st.recordParticipant(p)
	st.recordEvent(p.id, "PUBLISH_STARTED", nil)
	st.broadcast()
}

// Subscribe admits a subscriber to one publisher and answers its offer.
func (m *Manager) Subscribe(ctx context.Context, id *Identity, client ClientInfo, publisherID, offer, initialLayer string) (*Resource, string, error) {
	st, err := m.enter(id.Stage)
	if err != nil {
		return nil, "", joinErr("INTERNAL", 503, 2008, "the media plane is shutting down")
	}
	pid := id.Claims.ParticipantID
	remote := func(e *api.Event) { e.RemoteParticipantId = api.Ptr(publisherID) }
	if !id.Claims.Capabilities.Subscribe {
		st.recordEvent(pid, "SUBSCRIBE_ERROR", both(remote, withError("INSUFFICIENT_CAPABILITIES")))
		st.mu.Unlock()
		return nil, "", joinErr("BAD_REQUEST", 403, 2003, "the participant token does not allow subscribing")
	}
	if pub := st.participants[publisherID]; pub == nil || pub.publisher == nil || !pub.present {
		st.recordEvent(pid, "SUBSCRIBE_ERROR", both(remote, withError("PUBLISHER_NOT_FOUND")))
		st.mu.Unlock()
		return nil, "", joinErr("BAD_REQUEST", 404, 2004, "participant %s is not publishing on this stage", publisherID)
	}
	if me := st.participants[pid]; m.cfg.MaxSubscribers > 0 && (me == nil || len(me.subs) == 0) {
		subscribers := 0
		for _, p := range st.participants {
			if len(p.subs) > 0 {
				subscribers++
			}
		}
		if subscribers >= m.cfg.MaxSubscribers {
			st.recordEvent(pid, "SUBSCRIBE_ERROR", both(remote, withError("QUOTA_EXCEEDED")))
			st.mu.Unlock()
			return nil, "", joinErr("BAD_REQUEST", 403, 2005, "the stage already has %d subscribers", subscribers)
		}
	}
	p := st.join(id, client)
	r := &Resource{ID: newResourceID(), Kind: "subscribe", StageARN: st.arn, ParticipantID: pid, PublisherID: publisherID, Token: id.Raw, st: st}
	p.subs[r.ID] = r
	router := st.router
	st.mu.Unlock()
	sub, answer, err := router.Subscribe(ctx, pid, publisherID, offer, sfu.SubscribeOptions{InitialLayer: initialLayer, OnClosed: r.ended})
	if err != nil {
		st.mu.Lock()
		code := "INVALID_INPUT"
		switch {
		case errors.Is(err, sfu.ErrPublisherNotFound):
			code = "PUBLISHER_NOT_FOUND"
		case errors.Is(err, sfu.ErrNoMatchingCodec):
			code = "INVALID_VIDEO_CODEC"
		}
		st.recordEvent(pid, "SUBSCRIBE_ERROR", both(remote, withError(code)))
		st.mu.Unlock()
		r.ended(err)
		return nil, "", mediaErr(err)
	}
	r.mu.Lock()
	r.sub = sub
	r.mu.Unlock()
	st.mu.Lock()
	if p.subs[r.ID] == r {
		st.recordEvent(pid, "SUBSCRIBE_STARTED", remote)
	}
	st.mu.Unlock()
	m.addResource(r)
	return r, answer, nil
}

func withError(code string) func(*api.Event) {
	return func(e *api.Event) { e.ErrorCode = api.Ptr(code) }
}

func both(fs ...func(*api.Event)) func(*api.Event) {
	return func(e *api.Event) {
		for _, f := range fs {
			f(e)
		}
	}
}

// mediaErr maps engine errors to IVS's HTTP answers.
func mediaErr(err error) *JoinError {
	switch {
	case errors.Is(err, sfu.ErrNoMatchingCodec):
		return joinErr("BAD_REQUEST", 400, 2014, "%v", err)
	case errors.Is(err, sfu.ErrBadOffer):
		return joinErr("BAD_REQUEST", 400, 2001, "%v", err)
	case errors.Is(err, sfu.ErrPublisherNotFound):
		return joinErr("BAD_REQUEST", 404, 2004, "%v", err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return joinErr("INTERNAL", 504, 2007, "the media negotiation timed out")
	}
	return joinErr("INTERNAL", 500, 2006, "the media connection could not be set up: %v", err)
}

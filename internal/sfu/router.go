package sfu

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rostrum-dev/rostrum/internal/goroutines"
)

// tickInterval paces the router's housekeeping: layer statistics, layer
// allocation, keyframe retries and (every other tick) sender reports.
const tickInterval = 500 * time.Millisecond

// Router is one stage session's forwarding: its publishers and their
// subscribers.
type Router struct {
	id  string
	e   *Engine
	log *slog.Logger

	mu          sync.RWMutex
	publishers  map[string]*Publisher
	subscribers map[*Subscriber]struct{}
	closed      bool

	wg   goroutines.Group // every goroutine the router and its peers started
	done chan struct{}
	once sync.Once
}

func newRouter(e *Engine, id string) *Router {
	r := &Router{
		id:          id,
		e:           e,
		log:         e.log.With("router", id),
		publishers:  map[string]*Publisher{},
		subscribers: map[*Subscriber]struct{}{},
		done:        make(chan struct{}),
	}
	r.wg.Go(r.run)
	return r
}

// goTracked runs f on a goroutine Close waits for. Peers' callbacks call it
// while Close may be waiting (a subscriber ending as its router closes).
func (r *Router) goTracked(f func()) { r.wg.Go(f) }

// Publish answers a publisher's (WHIP) offer. The offer may carry audio
// and/or video, with simulcast rids on video. A publisher ID already in the
// session replaces the old publisher, which is closed.
func (r *Router) Publish(ctx context.Context, publisherID, offer string, cb PublisherCallbacks) (*Publisher, string, error) {
	sections, err := parseOffer(offer)
	if err != nil {
		return nil, "", err
	}
	plan, err := planPublish(sections)
	if err != nil {
		return nil, "", err
	}
	if r.isClosed() {
		return nil, "", ErrClosed
	}
	pc, _, err := r.e.newPeerConnection(rolePublisher, 0, false)
	if err != nil {
		return nil, "", fmt.Errorf("sfu: new peer connection: %w", err)
	}
	p := newPublisher(r, publisherID, pc, plan, cb)
	answer, err := negotiate(ctx, pc, offer, p.prepareAnswer)
	if err != nil {
		_ = pc.Close()
		return nil, "", err
	}
	answer = withStartBitrate(answer, publisherStartBitrate) // bwe.go

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		_ = pc.Close()
		return nil, "", ErrClosed
	}
	old := r.publishers[publisherID]
	r.publishers[publisherID] = p
	r.mu.Unlock()
	if old != nil {
		old.close(nil, true)
	}
	return p, answer, nil
}

// Subscribe answers a subscriber's recvonly offer with the tracks of
// publisherID.
func (r *Router) Subscribe(ctx context.Context, subscriberID, publisherID, offer string, opts SubscribeOptions) (*Subscriber, string, error) {
	sd, err := unmarshalOffer(offer)
	if err != nil {
		return nil, "", err
	}
	sections, err := offerSections(sd)
	if err != nil {
		return nil, "", err
	}
	pub := r.Publisher(publisherID)
	if pub == nil {
		if r.isClosed() {
			return nil, "", ErrClosed
		}
		return nil, "", ErrPublisherNotFound
	}
	plan, err := planSubscribe(sections, pub.tracks)
	if err != nil {
		return nil, "", err
	}
	initial := initialBitrate
	if opts.InitialLayer == "highest" {
		initial = initialBitrateHighest
	}
	role := roleFixedSubscriber
	for _, ps := range plan {
		if ps.track != nil && len(ps.track.layers) > 1 {
			role = roleSubscriber
		}
	}
	// The direct send path needs the engine to be the DTLS server
	// (direct.go): not for an offerer that will only be the server itself.
	direct, cryptex := !r.e.cfg.PionSendPath, false
	for _, ps := range plan {
		if ps.sec.setup == "passive" {
			direct = false
		}
		// pion answers a=cryptex when offered (RFC 9335): the direct path
		// then encrypts header extensions too.
		cryptex = cryptex || ps.sec.cryptex
	}
	if direct && r.e.cfg.LeanSubscribers && (role == roleFixedSubscriber || twccEverywhere(plan)) {
		if lo, ok := readLeanOffer(sd); ok {
			return r.subscribeLean(subscriberID, pub, plan, lo, cryptex, role, initial, opts)
		}
	}
	pc, parts, err := r.e.newPeerConnection(role, initial, direct)
	if err != nil {
		return nil, "", fmt.Errorf("sfu: new peer connection: %w", err)
	}
	if parts.direct != nil {
		parts.direct.cryptex = cryptex // before the handshake can start
	}
	s := newSubscriber(r, subscriberID, pub, pc, parts, plan, opts)
	answer, err := negotiate(ctx, pc, offer, s.prepareAnswer)
	if err != nil {
		s.abandon()
		return nil, "", err
	}
	if err := s.register(); err != nil {
		return nil, "", err
	}
	return s, answer, nil
}

// subscribeLean answers a subscriber on a lean connection (lean.go).
// A subscriber with congestion control (roleSubscriber) is given its
// estimator here, fed by the lean connection (lean.go).
func (r *Router) subscribeLean(subscriberID string, pub *Publisher, plan []subscribeSection, lo *leanOffer, cryptex bool, role peerRole, initial int, opts SubscribeOptions) (*Subscriber, string, error) {
	tlsCert, cert, err := r.e.cert.getTLS()
	if err != nil {
		return nil, "", err
	}
	fps, err := cert.GetFingerprints()
	if err != nil {
		return nil, "", fmt.Errorf("sfu: certificate fingerprint: %w", err)
	}
	parts := connParts{direct: &directConn{e: r.e, cryptex: cryptex}}
	if role == roleSubscriber {
		if parts.est, err = newEstimator(initial); err != nil {
			return nil, "", err
		}
	}
	direct := parts.direct
	s := newSubscriber(r, subscriberID, pub, nil, parts, plan, opts)
	c := r.e.newLeanConn(s, lo, direct, tlsCert)
	s.lean = c
	for _, d := range s.downs {
		d.leanBind()
	}
	answer := c.answer(lo, s, plan, fps)
	if err := s.register(); err != nil {
		return nil, "", err
	}
	c.start()
	return s, answer, nil
}

// twccEverywhere tells whether every section that will carry a track has
// the transport-wide-cc extension, which a lean connection's congestion
// controller needs (it has no REMB of its own to fall back on).
func twccEverywhere(plan []subscribeSection) bool {
	for _, ps := range plan {
		if ps.track != nil && !ps.sec.twcc {
			return false
		}
	}
	return true
}

// negotiate runs the answerer's side of one offer/answer exchange and waits
// for ICE gathering, since answers are not trickled.
func negotiate(ctx context.Context, pc *webrtc.PeerConnection, offer string, prepare func() error) (string, error) {
	err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer})
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	if err := prepare(); err != nil {
		return "", err
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", fmt.Errorf("sfu: gathering ICE candidates: %w", ctx.Err())
	}
	return pc.LocalDescription().SDP, nil
}

// Publisher returns the session's publisher with that ID, or nil.
func (r *Router) Publisher(id string) *Publisher {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.publishers[id]
}

func (r *Router) isClosed() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.closed
}

// removePublisher forgets p if it is still the publisher under its ID.
func (r *Router) removePublisher(p *Publisher) {
	r.mu.Lock()
	if r.publishers[p.id] == p {
		delete(r.publishers, p.id)
	}
	r.mu.Unlock()
}

func (r *Router) addSubscriber(s *Subscriber) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.subscribers[s] = struct{}{}
	return true
}

func (r *Router) removeSubscriber(s *Subscriber) {
	r.mu.Lock()
	delete(r.subscribers, s)
	r.mu.Unlock()
}

// Close closes every publisher and subscriber of the session and waits for
// their goroutines (and callbacks) to finish; it must not be called from a
// callback.
func (r *Router) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.wg.Wait()
		return nil
	}
	r.closed = true
	pubs, subs := r.peersLocked()
	r.mu.Unlock()

	for _, s := range subs {
		s.close(ErrClosed, true)
	}
	for _, p := range pubs {
		p.close(ErrClosed, true)
	}
	r.shutdown()
	r.wg.Wait()
	r.e.forget(r)
	return nil
}

// peersLocked copies the router's publishers and subscribers, so that they
// can be worked on without r.mu. Called with r.mu held (read or write).
func (r *Router) peersLocked() ([]*Publisher, []*Subscriber) {
	pubs := make([]*Publisher, 0, len(r.publishers))
	for _, p := range r.publishers {
		pubs = append(pubs, p)
	}
	subs := make([]*Subscriber, 0, len(r.subscribers))
	for s := range r.subscribers {
		subs = append(subs, s)
	}
	return pubs, subs
}

// shutdown stops the housekeeping goroutine.
func (r *Router) shutdown() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.once.Do(func() { close(r.done) })
}

func (r *Router) run() {
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	var n uint
	for {
		select {
		case <-r.done:
			return
		case now := <-t.C:
			n++
			r.tick(now, n%2 == 0)
		}
	}
}

// tick is the router's periodic work. It runs on one goroutine, so the
// per-layer sampling state it keeps needs no lock.
func (r *Router) tick(now time.Time, reports bool) {
	r.mu.RLock()
	pubs, subs := r.peersLocked()
	r.mu.RUnlock()

	mono := nanotime()
	for _, p := range pubs {
		for _, t := range p.tracks {
			for _, l := range t.layers {
				l.sample(mono)
			}
		}
		for _, t := range p.liveTaps() {
			t.tick()
		}
	}
	for _, s := range subs {
		s.allocate()
		s.retryKeyframes()
		if reports {
			s.sendReports(now)
		}
	}
}

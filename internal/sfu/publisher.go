package sfu

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// Errors added to the contract in sfu.go (passed to OnClosed).
var (
	// ErrPublisherClosed closes the subscribers of a publisher that is gone.
	ErrPublisherClosed = errors.New("sfu: the publisher is gone")
	// ErrConnectionClosed: the remote peer closed the connection.
	ErrConnectionClosed = errors.New("sfu: the peer connection was closed by the remote")
	// ErrConnectionFailed: ICE or DTLS failed (the peer went away).
	ErrConnectionFailed = errors.New("sfu: the peer connection failed")
)

// publishSection is one media section a publisher sends, with the codec
// its answer is pinned to.
type publishSection struct {
	sec    offerSection
	codec  offerCodec
	family codecFamily
}

// planPublish picks the codec of each section the publisher sends.
func planPublish(sections []offerSection) ([]publishSection, error) {
	var plan []publishSection
	media := 0
	for _, s := range sections {
		if s.kind == "" || s.rejected || !s.sends() {
			continue
		}
		media++
		if c, f, ok := s.firstSupported(); ok {
			plan = append(plan, publishSection{sec: s, codec: c, family: f})
		}
	}
	if media == 0 {
		return nil, fmt.Errorf("%w: no audio or video section to receive", ErrBadOffer)
	}
	if len(plan) == 0 {
		return nil, ErrNoMatchingCodec
	}
	return plan, nil
}

// Publisher is one participant's sending peer connection, or a local
// publisher fed by Go code (local.go).
type Publisher struct {
	id     string
	r      *Router
	pc     *webrtc.PeerConnection // nil for a local publisher
	local  *localPub              // nil for a remote publisher
	cb     PublisherCallbacks
	log    *slog.Logger
	tracks []*upTrack // one per published section, fixed at Publish

	media  atomic.Bool
	closed atomic.Bool

	mu   sync.Mutex
	subs map[*Subscriber]struct{}

	tapSet tapSet // in-process readers (tap.go)
}

func newPublisher(r *Router, id string, pc *webrtc.PeerConnection, plan []publishSection, cb PublisherCallbacks) *Publisher {
	p := &Publisher{
		id:   id,
		r:    r,
		pc:   pc,
		cb:   cb,
		log:  r.log.With("publisher", id),
		subs: map[*Subscriber]struct{}{},
	}
	for _, ps := range plan {
		p.tracks = append(p.tracks, newUpTrack(p, ps))
	}
	pc.OnTrack(p.onTrack)
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateFailed:
			p.close(ErrConnectionFailed, false)
		case webrtc.PeerConnectionStateClosed:
			p.close(ErrConnectionClosed, false)
		}
	})
	return p
}

// prepareAnswer pins each published section to its chosen codec and turns
// away the sections the engine cannot forward.
func (p *Publisher) prepareAnswer() error {
	for _, t := range p.pc.GetTransceivers() {
		up := p.track(t.Mid())
		if up == nil {
			if t.Kind() == webrtc.RTPCodecTypeAudio || t.Kind() == webrtc.RTPCodecTypeVideo {
				_ = t.Stop() // answered inactive
			}
			continue
		}
		if err := t.SetCodecPreferences(up.codec.preferences(up.info.Kind)); err != nil {
			return fmt.Errorf("sfu: pinning %s to %s: %w", t.Mid(), up.info.Codec, err)
		}
	}
	return nil
}

func (p *Publisher) track(mid string) *upTrack {
	for _, t := range p.tracks {
		if t.info.MID == mid {
			return t
		}
	}
	return nil
}

// ID is the publisher's ID as given to Publish.
func (p *Publisher) ID() string { return p.id }

// Tracks describes the published tracks (one per sending media section
// with a supported codec), in SDP order.
func (p *Publisher) Tracks() []TrackInfo {
	out := make([]TrackInfo, len(p.tracks))
	for i, t := range p.tracks {
		out[i] = t.info
		out[i].Layers = append([]string(nil), t.info.Layers...)
	}
	return out
}

// onTrack starts reading one incoming encoding (a section, or one
// simulcast rid of it).
func (p *Publisher) onTrack(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	var mid string
	if tr := recv.RTPTransceiver(); tr != nil {
		mid = tr.Mid()
	}
	up := p.track(mid)
	if up == nil {
		p.log.Warn("track for an unknown section", "mid", mid, "rid", remote.RID())
		return
	}
	l := up.layerFor(remote.RID())
	if l == nil {
		p.log.Warn("track for an unannounced rid", "mid", mid, "rid", remote.RID())
		return
	}
	l.setSSRC(uint32(remote.SSRC()))
	p.r.goTracked(func() { l.readRTP(remote) })
	p.r.goTracked(func() { l.readRTCP(recv, remote.RID()) })
}

// gotMedia reports the first packet (OnMedia) once.
func (p *Publisher) gotMedia() {
	if p.media.CompareAndSwap(false, true) && p.cb.OnMedia != nil {
		p.cb.OnMedia()
	}
}

// pli asks the publisher for a keyframe on one encoding.
func (p *Publisher) pli(ssrc uint32) {
	if p.closed.Load() || ssrc == 0 {
		return
	}
	if p.local != nil {
		p.localKeyframe(ssrc)
		return
	}
	if err := p.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil && !errors.Is(err, io.ErrClosedPipe) {
		p.log.Debug("sending PLI", "err", err)
	}
}

func (p *Publisher) addSubscriber(s *Subscriber) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return false
	}
	p.subs[s] = struct{}{}
	return true
}

func (p *Publisher) removeSubscriber(s *Subscriber) {
	p.mu.Lock()
	delete(p.subs, s)
	p.mu.Unlock()
}

// Close closes the publisher's connection and the subscribers of it (they
// get OnClosed(ErrPublisherClosed)); OnClosed(nil) follows.
func (p *Publisher) Close() error {
	p.close(nil, true)
	return nil
}

// close ends the publisher once. graceful is false when pion itself
// reported the end (from its callback, where waiting for pion's goroutines
// would deadlock).
func (p *Publisher) close(reason error, graceful bool) {
	p.mu.Lock()
	if !p.closed.CompareAndSwap(false, true) {
		p.mu.Unlock()
		return
	}
	subs := make([]*Subscriber, 0, len(p.subs))
	for s := range p.subs {
		subs = append(subs, s)
	}
	p.subs = nil
	p.mu.Unlock()

	p.r.removePublisher(p)
	for _, s := range subs {
		s.close(ErrPublisherClosed, graceful)
	}
	p.closeTaps(ErrPublisherClosed)
	if p.pc != nil {
		var err error
		if graceful {
			err = p.pc.GracefulClose()
		} else {
			err = p.pc.Close()
		}
		if err != nil {
			p.log.Debug("closing peer connection", "err", err)
		}
	}
	if p.cb.OnClosed != nil {
		p.r.goTracked(func() { p.cb.OnClosed(reason) })
	}
}

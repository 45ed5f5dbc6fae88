package sfu

import (
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/webrtc/v4"
)

// subscribeSection is one media section of a subscriber's offer and the
// published track it will carry (nil: nothing to send).
type subscribeSection struct {
	sec   offerSection
	track *upTrack
	codec offerCodec
}

// planSubscribe pairs the subscriber's sections with the publisher's
// tracks: the n-th audio (video) section that can receive gets the n-th
// published audio (video) track, if it offers a codec that can carry it.
func planSubscribe(sections []offerSection, tracks []*upTrack) ([]subscribeSection, error) {
	var plan []subscribeSection
	next := map[Kind]int{}
	media, matched := 0, 0
	for _, s := range sections {
		if s.kind == "" || s.rejected {
			continue
		}
		media++
		ss := subscribeSection{sec: s}
		if s.receives() {
			var ofKind []*upTrack
			for _, t := range tracks {
				if t.info.Kind == s.kind {
					ofKind = append(ofKind, t)
				}
			}
			if i := next[s.kind]; i < len(ofKind) {
				next[s.kind]++
				if c, ok := s.codecFor(ofKind[i].family); ok {
					ss.track, ss.codec = ofKind[i], c
					matched++
				}
			}
		}
		plan = append(plan, ss)
	}
	if media == 0 {
		return nil, fmt.Errorf("%w: no audio or video section to send on", ErrBadOffer)
	}
	if matched == 0 {
		return nil, ErrNoMatchingCodec
	}
	return plan, nil
}

// Subscriber is one participant's receiving peer connection for one
// publisher.
type Subscriber struct {
	id  string
	r   *Router
	pub *Publisher
	pc  *webrtc.PeerConnection
	est *estimator // nil if none was built
	// direct is the connection's direct send path, nil if it has none
	// (direct.go).
	direct *directConn
	// lean is the connection when the engine runs it itself (lean.go);
	// pc is nil then.
	lean    *leanConn
	created int64 // nanotime
	opts    SubscribeOptions
	log     *slog.Logger

	downs []*downTrack // in section order; fixed at Subscribe
	// idle are the mids of sections with nothing to send (answered
	// inactive); pausing or playing them is a no-op, not an error, since
	// clients pause every section they have.
	idle map[string]bool
	twcc bool         // transport-wide-cc negotiated: trust est
	remb atomic.Int64 // the subscriber's last REMB, bits per second

	// rtcpReaders counts the down-tracks whose RTCP is still read by a
	// goroutine (feedback.go): 0 once every one is handed its RTCP as it
	// comes.
	rtcpReaders atomic.Int32

	allocMu   sync.Mutex  // serialises allocate
	connected atomic.Bool // ICE and DTLS are up: media can flow
	closed    atomic.Bool
	silent    atomic.Bool // closed before Subscribe returned: no OnClosed
}

func newSubscriber(r *Router, id string, pub *Publisher, pc *webrtc.PeerConnection, parts connParts, plan []subscribeSection, opts SubscribeOptions) *Subscriber {
	s := &Subscriber{id: id, r: r, pub: pub, pc: pc, est: parts.est, direct: parts.direct, opts: opts, log: r.log.With("subscriber", id, "publisher", pub.id), created: nanotime()}
	for _, ps := range plan {
		if ps.track == nil {
			if s.idle == nil {
				s.idle = map[string]bool{}
			}
			s.idle[strings.Clone(ps.sec.mid)] = true
			continue
		}
		initial := int32(0)
		if opts.InitialLayer == "highest" {
			initial = int32(len(ps.track.layers) - 1)
		}
		d := newDownTrack(s, ps.track, ps.sec.mid, ps.codec, initial)
		d.twccID = ps.sec.twccID
		s.downs = append(s.downs, d)
		if ps.sec.twcc {
			s.twcc = true
		}
	}
	if pc == nil {
		return s // a lean connection (lean.go) reports for itself
	}
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			s.onConnected()
		case webrtc.PeerConnectionStateFailed:
			s.close(ErrConnectionFailed, false)
		case webrtc.PeerConnectionStateClosed:
			s.close(ErrConnectionClosed, false)
		}
	})
	return s
}

// onConnected runs once ICE and DTLS are up. The keyframes to start on
// are asked for only now: one that came earlier could not have been sent.
func (s *Subscriber) onConnected() {
	if !s.connected.Swap(true) {
		for _, d := range s.downs {
			d.keyframeRequested()
		}
	}
}

func (s *Subscriber) down(mid string) *downTrack {
	for _, d := range s.downs {
		if d.mid == mid {
			return d
		}
	}
	return nil
}

// placeholder occupies a section that has nothing to send while the
// answer is prepared; removing it again leaves the section inactive.
type placeholder struct{ kind webrtc.RTPCodecType }

func (p placeholder) Bind(webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	return webrtc.RTPCodecParameters{}, errClosedTrack
}
func (p placeholder) Unbind(webrtc.TrackLocalContext) error { return nil }
func (p placeholder) ID() string                            { return "none" }
func (p placeholder) RID() string                           { return "" }
func (p placeholder) StreamID() string                      { return "none" }
func (p placeholder) Kind() webrtc.RTPCodecType             { return p.kind }

// prepareAnswer attaches each down-track to the transceiver of its
// section. pion's AddTrack takes the first free transceiver of the kind,
// so every section is filled in order, with a placeholder where there is
// nothing to send.
func (s *Subscriber) prepareAnswer() error {
	var holders []*webrtc.RTPSender
	for _, t := range s.pc.GetTransceivers() {
		kind := t.Kind()
		if kind != webrtc.RTPCodecTypeAudio && kind != webrtc.RTPCodecTypeVideo || t.Sender() != nil {
			continue
		}
		var track webrtc.TrackLocal = placeholder{kind: kind}
		d := s.down(t.Mid())
		if d != nil {
			track = d
			if err := t.SetCodecPreferences(d.codec.preferences(d.up.info.Kind)); err != nil {
				return fmt.Errorf("sfu: pinning %s to %s: %w", t.Mid(), d.up.info.Codec, err)
			}
		}
		sender, err := s.pc.AddTrack(track)
		if err != nil {
			return fmt.Errorf("sfu: adding track to %s: %w", t.Mid(), err)
		}
		if t.Sender() != sender {
			return fmt.Errorf("sfu: track for %s landed in another section", t.Mid())
		}
		if d == nil {
			holders = append(holders, sender)
			continue
		}
		d.sender = sender
	}
	for _, h := range holders {
		if err := s.pc.RemoveTrack(h); err != nil {
			return fmt.Errorf("sfu: clearing an unused section: %w", err)
		}
	}
	for _, d := range s.downs {
		if d.sender != nil {
			s.rtcpReaders.Add(1)
			s.r.goTracked(func() { d.readRTCP(d.sender) })
		}
	}
	return nil
}

// register makes a negotiated subscriber live.
func (s *Subscriber) register() error {
	if !s.pub.addSubscriber(s) {
		s.abandon()
		return ErrPublisherNotFound
	}
	if !s.r.addSubscriber(s) {
		s.pub.removeSubscriber(s)
		s.abandon()
		return ErrClosed
	}
	return nil
}

// abandon closes a subscriber that Subscribe will not return.
func (s *Subscriber) abandon() {
	s.silent.Store(true)
	s.close(nil, true)
}

// Layers reports, for each of the subscriber's video sections (by MID), the
// publisher's encodings from highest to lowest. A track without simulcast
// has one layer with an empty encoding ID.
func (s *Subscriber) Layers() map[string][]LayerInfo {
	out := map[string][]LayerInfo{}
	for _, d := range s.downs {
		if d.kind != webrtc.RTPCodecTypeVideo {
			continue
		}
		cur := d.current.Load()
		infos := make([]LayerInfo, 0, len(d.up.layers))
		for i := len(d.up.layers) - 1; i >= 0; i-- {
			l := d.up.layers[i]
			infos = append(infos, LayerInfo{
				EncodingID:      l.rid,
				Bitrate:         int(l.bitrate.Load()),
				Width:           int(l.width.Load()),
				Height:          int(l.height.Load()),
				FramesPerSecond: math.Round(math.Float64frombits(l.fps.Load())*10) / 10,
				Selected:        int32(i) == cur,
			})
		}
		out[d.mid] = infos
	}
	return out
}

// PinLayer forwards encodingID on the video section mid, whatever the
// bandwidth estimate says, until UnpinLayer. The switch happens at the
// encoding's next keyframe (which the engine requests).
func (s *Subscriber) PinLayer(mid, encodingID string) error {
	if s.closed.Load() {
		return ErrClosed
	}
	d := s.down(mid)
	if d == nil || d.kind != webrtc.RTPCodecTypeVideo {
		return fmt.Errorf("%w: no video section %q", ErrUnknownMedia, mid)
	}
	l := d.up.layerFor(encodingID)
	if l == nil || (l.rid != encodingID) {
		return fmt.Errorf("%w: no encoding %q in section %q", ErrUnknownMedia, encodingID, mid)
	}
	d.pinned.Store(l.index)
	s.allocate()
	return nil
}

// UnpinLayer lets bandwidth choose the encoding of section mid again.
func (s *Subscriber) UnpinLayer(mid string) error {
	if s.closed.Load() {
		return ErrClosed
	}
	d := s.down(mid)
	if d == nil || d.kind != webrtc.RTPCodecTypeVideo {
		return fmt.Errorf("%w: no video section %q", ErrUnknownMedia, mid)
	}
	d.pinned.Store(-1)
	s.allocate()
	return nil
}

// Pause stops sending the given sections (all of them when mids is
// empty); Play resumes them, continuing their sequence numbers.
func (s *Subscriber) Pause(mids []string) error {
	downs, err := s.sections(mids)
	if err != nil {
		return err
	}
	for _, d := range downs {
		d.pause()
	}
	return nil
}

// Play resumes sections paused by Pause (all of them when mids is empty).
// Video resumes at a keyframe, which the engine requests.
func (s *Subscriber) Play(mids []string) error {
	downs, err := s.sections(mids)
	if err != nil {
		return err
	}
	for _, d := range downs {
		d.play()
	}
	s.allocate()
	return nil
}

func (s *Subscriber) sections(mids []string) ([]*downTrack, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if len(mids) == 0 {
		return s.downs, nil
	}
	out := make([]*downTrack, 0, len(mids))
	for _, mid := range mids {
		d := s.down(mid)
		if d == nil && s.idle[mid] {
			continue
		}
		if d == nil {
			return nil, fmt.Errorf("%w: no section %q", ErrUnknownMedia, mid)
		}
		out = append(out, d)
	}
	return out, nil
}

// Close closes the subscriber's connection; OnClosed(nil) follows.
func (s *Subscriber) Close() error {
	s.close(nil, true)
	return nil
}

// close ends the subscriber once (see Publisher.close for graceful).
func (s *Subscriber) close(reason error, graceful bool) {
	if !s.closed.CompareAndSwap(false, true) {
		return
	}
	for _, d := range s.downs {
		d.close()
	}
	s.pub.removeSubscriber(s)
	s.r.removeSubscriber(s)
	var err error
	switch {
	case s.lean != nil:
		s.lean.close(graceful)
		if s.est != nil {
			err = s.est.Close()
		}
	case graceful:
		err = s.pc.GracefulClose()
	default:
		err = s.pc.Close()
	}
	if err != nil {
		s.log.Debug("closing peer connection", "err", err)
	}
	if cb := s.opts.OnClosed; cb != nil && !s.silent.Load() {
		s.r.goTracked(func() { cb(reason) })
	}
}

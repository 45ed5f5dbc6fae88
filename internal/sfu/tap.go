package sfu

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// A Tap receives a publisher's media inside the process, the way a
// subscriber would but without WebRTC: recording and composition read a
// stage through taps. Each of the publisher's tracks gets a down-track of
// its own, so a tap starts at a keyframe, keeps sequence numbers and
// timestamps continuous across simulcast switches, and always forwards the
// best encoding that is sending (a recording wants the "high" rendition,
// and has no bandwidth to share).

// TapTrack describes one stream a tap delivers: what an SDP for it says.
type TapTrack struct {
	Kind     Kind
	Codec    string // MIME subtype: "opus", "VP8", "H264"
	PT       uint8  // payload type of the packets delivered
	Clock    uint32
	Channels uint16 // audio only
	Fmtp     string
	SSRC     uint32 // of the packets delivered
}

// TapOptions configure a tap.
type TapOptions struct {
	// OnPacket is called for every packet forwarded to the tap, on the
	// engine's forwarding goroutine (the HOT PATH of the publisher): it must not
	// block, and h and payload are only valid during the call.
	OnPacket func(track int, h *rtp.Header, payload []byte)
	// OnClosed is called once when the tap ends: Close (nil), or the
	// publisher gone (ErrPublisherClosed, ErrClosed).
	OnClosed func(err error)
}

// Tap is one in-process reader of a publisher's tracks.
type Tap struct {
	r      *Router
	pub    *Publisher
	opts   TapOptions
	tracks []TapTrack
	downs  []*downTrack // parallel to tracks
	closed atomic.Bool
}

// tapSSRCBase numbers a tap's streams; they never meet a real SSRC space.
const tapSSRCBase = 0x7a900000

// Tap starts delivering the tracks of publisherID to opts.OnPacket.
func (r *Router) Tap(publisherID string, opts TapOptions) (*Tap, error) {
	pub := r.Publisher(publisherID)
	if pub == nil {
		if r.isClosed() {
			return nil, ErrClosed
		}
		return nil, ErrPublisherNotFound
	}
	t := &Tap{r: r, pub: pub, opts: opts}
	// A stand-in subscriber: down-tracks read a few of its flags, and it
	// is always "connected" since the tap's writer is there from the start.
	stand := &Subscriber{id: "tap", r: r, pub: pub, log: r.log}
	stand.connected.Store(true)
	for i, up := range pub.tracks {
		d := newDownTrack(stand, up, up.info.MID, offerCodec{pt: up.codec.pt, name: up.codec.name, clock: up.codec.clock}, int32(len(up.layers)-1))
		tt := TapTrack{
			Kind: up.info.Kind, Codec: up.info.Codec, PT: up.codec.pt, Clock: up.codec.clock,
			Channels: up.codec.channels, Fmtp: up.codec.fmtp, SSRC: tapSSRCBase + uint32(i),
		}
		d.writer = &tapWriter{t: t, track: i}
		d.ssrc, d.pt = tt.SSRC, tt.PT
		t.tracks = append(t.tracks, tt)
		t.downs = append(t.downs, d)
	}
	if !pub.addTap(t) {
		return nil, ErrPublisherNotFound
	}
	for _, d := range t.downs {
		d.up.attach(d)
		d.keyframeRequested()
	}
	return t, nil
}

// Tracks describes the streams the tap delivers, indexed as OnPacket's
// track argument.
func (t *Tap) Tracks() []TapTrack { return append([]TapTrack(nil), t.tracks...) }

// PublisherID is the ID of the publisher tapped.
func (t *Tap) PublisherID() string { return t.pub.id }

// RequestKeyframe asks the publisher for a keyframe on every video track
// (rate-limited like subscribers' requests).
func (t *Tap) RequestKeyframe() {
	for _, d := range t.downs {
		d.keyframeRequested()
	}
}

// SenderReport returns what an RTCP sender report for the tap's track
// would say now: the NTP time and the RTP time of the track's clock that
// correspond, in the publisher's own mapping, so that a receiver lines up
// audio and video as the publisher meant them. ok is false before the
// track has delivered anything.
func (t *Tap) SenderReport(track int) (ntp uint64, rtpTime uint32, ok bool) {
	if track < 0 || track >= len(t.downs) {
		return 0, 0, false
	}
	sr, ok := t.downs[track].senderReport(time.Now(), nanotime())
	return sr.NTPTime, sr.RTPTime, ok
}

// Close stops the tap; OnClosed(nil) follows.
func (t *Tap) Close() { t.close(nil) }

func (t *Tap) close(reason error) {
	if !t.closed.CompareAndSwap(false, true) {
		return
	}
	for _, d := range t.downs {
		d.close()
	}
	t.pub.removeTap(t)
	if cb := t.opts.OnClosed; cb != nil {
		t.r.goTracked(func() { cb(reason) })
	}
}

// tick follows the best encoding that is sending, and asks again for a
// keyframe where one is awaited (the router's housekeeping goroutine).
func (t *Tap) tick() {
	for _, d := range t.downs {
		best := int32(-1)
		for i, l := range d.up.layers {
			if l.active.Load() {
				best = int32(i)
			}
		}
		if best >= 0 && best != d.target.Load() {
			d.setTarget(best)
		}
		if d.kind == webrtc.RTPCodecTypeVideo {
			if tg := d.target.Load(); tg >= 0 && tg != d.current.Load() {
				d.up.layers[tg].requestKeyframe()
			}
		}
	}
}

// tapWriter is the down-track's writer for a tap.
type tapWriter struct {
	t     *Tap
	track int
}

func (w *tapWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	if w.t.closed.Load() || w.t.opts.OnPacket == nil {
		return 0, nil
	}
	w.t.opts.OnPacket(w.track, h, payload)
	return h.MarshalSize() + len(payload), nil
}

func (w *tapWriter) Write(b []byte) (int, error) { return len(b), nil }

// The publisher's taps, closed with it.

type tapSet struct {
	mu   sync.Mutex
	taps map[*Tap]struct{}
	done bool
}

func (p *Publisher) addTap(t *Tap) bool {
	p.tapSet.mu.Lock()
	defer p.tapSet.mu.Unlock()
	if p.tapSet.done || p.closed.Load() {
		return false
	}
	if p.tapSet.taps == nil {
		p.tapSet.taps = map[*Tap]struct{}{}
	}
	p.tapSet.taps[t] = struct{}{}
	return true
}

func (p *Publisher) removeTap(t *Tap) {
	p.tapSet.mu.Lock()
	delete(p.tapSet.taps, t)
	p.tapSet.mu.Unlock()
}

// closeTaps ends every tap of a publisher that is gone.
func (p *Publisher) closeTaps(reason error) {
	p.tapSet.mu.Lock()
	p.tapSet.done = true
	taps := make([]*Tap, 0, len(p.tapSet.taps))
	for t := range p.tapSet.taps {
		taps = append(taps, t)
	}
	p.tapSet.mu.Unlock()
	for _, t := range taps {
		t.close(reason)
	}
}

// liveTaps lists the publisher's taps for the router's tick.
func (p *Publisher) liveTaps() []*Tap {
	p.tapSet.mu.Lock()
	defer p.tapSet.mu.Unlock()
	if len(p.tapSet.taps) == 0 {
		return nil
	}
	out := make([]*Tap, 0, len(p.tapSet.taps))
	for t := range p.tapSet.taps {
		out = append(out, t)
	}
	return out
}

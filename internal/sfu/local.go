package sfu

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/pion/rtp"
)

// A local publisher is a Publisher whose tracks are fed by Go code in the
// process (RTMP ingest, participant replication) instead of a WebRTC peer
// connection. Its packets take the same path as a remote publisher's from
// the moment they are parsed (layer.forward: sequence unwrapping, the NACK
// cache, keyframe detection, statistics, the fan-out to subscribers and
// taps), so everything downstream works on it unchanged. What a remote
// publisher would be sent as RTCP becomes a call: keyframe requests go to
// LocalPublisherOptions.OnKeyframeRequest, rate-limited like PLIs.

// LocalTrack describes one track a local publisher sends.
type LocalTrack struct {
	Kind  Kind
	Codec string // "opus", "H264", "VP8"
	// Clock is the RTP clock rate (0: the codec's, 48000 or 90000).
	Clock uint32
	// Channels is Opus's channel count (0: 2, as Opus is always
	// signalled).
	Channels uint16
	// Fmtp is the codec's SDP parameters (""): for H.264, constrained
	// baseline with packetization-mode 1; for Opus, IVS's
	// minptime=10;useinbandfec=1). An H.264 fmtp must name
	// packetization-mode 1 and a baseline profile, as WHIP publishers must.
	Fmtp string
}

// LocalPublisherOptions are a local publisher's callbacks. They are called
// from the engine's goroutines and must not block.
type LocalPublisherOptions struct {
	// OnKeyframeRequest asks the feeder for a keyframe on a video track
	// (index into the tracks given to PublishLocal): a subscriber or a
	// tap needs one to start. At most one call per track per 500 ms. It
	// may be called from inside WriteRTP, so it must not call back into
	// the publisher.
	OnKeyframeRequest func(track int)
	// OnMedia and OnClosed are as in PublisherCallbacks: the first packet
	// written, and the end (nil after Close; ErrClosed when the router
	// closed; nil too when a publisher with the same ID replaced it).
	OnMedia  func()
	OnClosed func(err error)
}

// Errors of WriteRTP.
var (
	ErrNoSuchTrack    = errors.New("sfu: no such track")
	ErrPacketTooLarge = fmt.Errorf("sfu: RTP packet larger than %d bytes", maxPacket)
)

// localSSRCBase numbers the encodings of local publishers: a layer needs
// an SSRC for its keyframe requests to be sent rather than held back, and
// the index of the track is recovered from it. Nothing outside the engine
// ever sees these.
const localSSRCBase = 0x10ca1000

// localPub is what a local publisher has instead of a peer connection.
type localPub struct {
	opts LocalPublisherOptions
	// One writer at a time per track: layer.forward assumes a single
	// reader goroutine per encoding, as remote tracks have.
	writers []localWriter
}

type localWriter struct {
	mu  sync.Mutex
	buf []byte // maxPacket, reused for every packet of the track
	pkt rtpPacket
}

// localCodec turns a LocalTrack into the codec the track is published
// with, the way an SDP offer would have described it.
func localCodec(i int, t LocalTrack) (offerCodec, codecFamily, error) {
	c := offerCodec{name: t.Codec, clock: t.Clock, channels: t.Channels, fmtp: t.Fmtp}
	switch {
	case t.Kind == Audio && strings.EqualFold(t.Codec, "opus"):
		c.name, c.pt = "opus", 111
		if c.clock == 0 {
			c.clock = 48000
		}
		if c.channels == 0 {
			c.channels = 2
		}
		if c.fmtp == "" {
			c.fmtp = "minptime=10;useinbandfec=1"
		}
		c.feedback = audioFeedback
	case t.Kind == Video && strings.EqualFold(t.Codec, "H264"):
		c.name, c.pt = "H264", 102
		if c.fmtp == "" {
			c.fmtp = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
		}
		c.feedback = videoFeedback
	case t.Kind == Video && strings.EqualFold(t.Codec, "VP8"):
		c.name, c.pt = "VP8", 96
		c.feedback = videoFeedback
	}
	if c.clock == 0 {
		c.clock = 90000
	}
	f := supportedFamily(t.Kind, c)
	if f == familyNone {
		return offerCodec{}, familyNone, fmt.Errorf("%w: track %d is %s %s (clock %d, fmtp %q)", ErrNoMatchingCodec, i, t.Kind, t.Codec, c.clock, c.fmtp)
	}
	return c, f, nil
}

// PublishLocal starts a publisher fed by WriteRTP. Like Publish, a
// publisher ID already in the session replaces the old publisher, which is
// closed.
func (r *Router) PublishLocal(publisherID string, tracks []LocalTrack, opts LocalPublisherOptions) (*Publisher, error) {
	if len(tracks) == 0 {
		return nil, fmt.Errorf("%w: a local publisher needs at least one track", ErrBadOffer)
	}
	plan := make([]publishSection, len(tracks))
	for i, t := range tracks {
		c, f, err := localCodec(i, t)
		if err != nil {
			return nil, err
		}
		plan[i] = publishSection{sec: offerSection{kind: t.Kind, mid: strconv.Itoa(i)}, codec: c, family: f}
	}
	p := &Publisher{
		id:   publisherID,
		r:    r,
		cb:   PublisherCallbacks{OnMedia: opts.OnMedia, OnClosed: opts.OnClosed},
		log:  r.log.With("publisher", publisherID, "local", true),
		subs: map[*Subscriber]struct{}{},
		local: &localPub{
			opts:    opts,
			writers: make([]localWriter, len(tracks)),
		},
	}
	for i, ps := range plan {
		up := newUpTrack(p, ps)
		up.layers[0].setSSRC(localSSRCBase + uint32(i))
		p.tracks = append(p.tracks, up)
	}

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	old := r.publishers[publisherID]
	r.publishers[publisherID] = p
	r.mu.Unlock()
	if old != nil {
		old.close(nil, true)
	}
	return p, nil
}

// WriteRTP hands the publisher one RTP packet of a track it publishes:
// the header's sequence number, timestamp and marker are the track's (its
// SSRC, payload type, padding and extensions are the engine's business and
// ignored: the payload is all there is to forward). Packets of one track must come in sending order;
// concurrent calls for one track are serialised. h and payload are not
// kept. It returns ErrClosed once the publisher is closed.
func (p *Publisher) WriteRTP(track int, h *rtp.Header, payload []byte) error {
	if p.local == nil {
		return fmt.Errorf("sfu: WriteRTP on publisher %s, which is fed by its peer connection", p.id)
	}
	if track < 0 || track >= len(p.tracks) {
		return fmt.Errorf("%w: %d of %d", ErrNoSuchTrack, track, len(p.tracks))
	}
	if p.closed.Load() {
		return ErrClosed
	}
	hdr := rtp.Header{
		Version:        2,
		Marker:         h.Marker,
		PayloadType:    p.tracks[track].codec.pt,
		SequenceNumber: h.SequenceNumber,
		Timestamp:      h.Timestamp,
		SSRC:           localSSRCBase + uint32(track),
	}
	size := hdr.MarshalSize() + len(payload)
	if size > maxPacket {
		return fmt.Errorf("%w: %d bytes", ErrPacketTooLarge, size)
	}
	w := &p.local.writers[track]
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf == nil {
		w.buf = make([]byte, maxPacket)
	}
	n, err := hdr.MarshalTo(w.buf)
	if err != nil {
		return fmt.Errorf("sfu: RTP header: %w", err)
	}
	n += copy(w.buf[n:], payload)
	if err := w.pkt.parse(w.buf[:n]); err != nil {
		return fmt.Errorf("sfu: RTP packet: %w", err)
	}
	p.tracks[track].layers[0].forward(&w.pkt, nanotime())
	return nil
}

// SetSenderReport tells the publisher which wall-clock time (NTP format)
// an RTP timestamp of a track corresponds to, as a remote publisher's RTCP
// sender report would: subscribers' and taps' reports follow it, which is
// what lines up a local publisher's audio and video. Without it, reports
// map the latest packet to the time it was written.
func (p *Publisher) SetSenderReport(track int, ntp uint64, rtpTime uint32) {
	if p.local == nil || track < 0 || track >= len(p.tracks) {
		return
	}
	l := p.tracks[track].layers[0]
	l.srMu.Lock()
	l.sr = srInfo{ntp: ntp, rtp: rtpTime, at: nanotime(), ok: true}
	l.srMu.Unlock()
}

// Local reports whether the publisher is fed by WriteRTP.
func (p *Publisher) Local() bool { return p.local != nil }

// localKeyframe passes a keyframe request for one of a local publisher's
// encodings to its feeder.
func (p *Publisher) localKeyframe(ssrc uint32) {
	track := int(ssrc - localSSRCBase)
	if track < 0 || track >= len(p.tracks) || p.local.opts.OnKeyframeRequest == nil {
		return
	}
	if p.tracks[track].info.Kind != Video {
		return
	}
	p.local.opts.OnKeyframeRequest(track)
}

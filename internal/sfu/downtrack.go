package sfu

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

var errClosedTrack = errors.New("sfu: down-track closed")

// downTrack forwards one published track to one subscriber. It is the
// webrtc.TrackLocal pion binds to the subscriber's sender, and it keeps
// its own small state: which encoding it forwards, the offsets that turn
// the publisher's sequence numbers and timestamps into one continuous
// stream, and the map back from its sequence numbers for NACKs.
type downTrack struct {
	sub   *Subscriber
	up    *upTrack
	mid   string     // the subscriber's media section
	codec offerCodec // the subscriber's payload type for the publisher's codec
	kind  webrtc.RTPCodecType

	sender *webrtc.RTPSender // set while preparing the answer

	// Layer selection. target is where the allocator wants to be, current
	// what is forwarded now (-1: none). The atomics are written under mu
	// and read without it by the fan-out, to skip other layers' packets
	// cheaply.
	target  atomic.Int32
	current atomic.Int32
	pinned  atomic.Int32
	paused  atomic.Bool

	mu      sync.Mutex // this down-track's state only
	closed  bool
	writer  webrtc.TrackLocalWriter // nil until Bind
	ssrc    uint32
	pt      uint8
	rtxSSRC uint32 // 0 unless RTX was negotiated
	rtxPT   uint8
	hdr     rtp.Header // reused for every forwarded packet
	rtxHdr  rtp.Header // reused for every retransmission
	rtxSeq  uint16
	hist    *seqHistory   // nil when the subscriber did not negotiate NACK
	stream  *directStream // past a congestion controller, the direct path's writer (direct.go)
	twccID  uint8         // the section's transport-wide-cc extension (lean connections)

	// Sequence numbers here are extended (64-bit, never wrapping: see
	// seqUnwrapper), the source's per encoding and the down-track's own;
	// only the header written to the wire is cut to 16 bits. Timestamps
	// stay 32-bit: they are only ever offset, never ordered.
	started     bool
	seqOffset   uint64 // out = source - offset (mod 2^64, for the current encoding)
	tsOffset    uint32
	switchExt   uint64 // first source number forwarded of the current encoding
	lastSrcExt  uint64 // highest source number forwarded of the current encoding
	lastOutExt  uint64 // the out number of lastSrcExt
	lastOutTS   uint32
	lastArrival int64
	packets     uint32 // for sender reports
	octets      uint32
}

func newDownTrack(s *Subscriber, up *upTrack, mid string, codec offerCodec, initial int32) *downTrack {
	d := &downTrack{sub: s, up: up, mid: strings.Clone(mid), codec: codec.detached(), kind: webrtc.RTPCodecTypeAudio}
	if up.info.Kind == Video {
		d.kind = webrtc.RTPCodecTypeVideo
		if hasFeedback(codec.feedback, webrtc.TypeRTCPFBNACK, "") {
			d.hist = &seqHistory{}
		}
	}
	d.hdr.Version, d.rtxHdr.Version = 2, 2
	d.target.Store(initial)
	d.current.Store(-1)
	d.pinned.Store(-1)
	return d
}

// ID, StreamID, RID and Kind make downTrack a webrtc.TrackLocal. All of a
// publisher's tracks share its ID as stream ID, so that browsers put them
// in one MediaStream and keep its audio and video in sync.
func (d *downTrack) ID() string                { return d.up.info.Kind.String() + "-" + d.up.info.MID }
func (d *downTrack) StreamID() string          { return d.up.pub.id }
func (d *downTrack) RID() string               { return "" }
func (d *downTrack) Kind() webrtc.RTPCodecType { return d.kind }

func (k Kind) String() string { return string(k) }

// Bind is called by pion once the subscriber's connection is up. The
// down-track joins the fan-out only now, when it has somewhere to write.
func (d *downTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	codecs := ctx.CodecParameters()
	idx := -1
	for i, c := range codecs {
		if uint8(c.PayloadType) == d.codec.pt {
			idx = i
			break
		}
	}
	if idx < 0 { // pion renumbered: fall back to the same codec by name
		for i, c := range codecs {
			if strings.EqualFold(strings.TrimPrefix(strings.TrimPrefix(c.MimeType, "audio/"), "video/"), d.codec.name) {
				idx = i
				break
			}
		}
	}
	if idx < 0 {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	codec := codecs[idx]

	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return webrtc.RTPCodecParameters{}, errClosedTrack
	}
	d.writer = ctx.WriteStream()
	if c := d.sub.direct; c != nil && d.sub.est == nil {
		// Nothing between the down-track and the wire but SRTP: write
		// there directly (direct.go). With a congestion controller the
		// packets go through the interceptors, the innermost of which
		// sends them the same way.
		d.writer = &directWriter{c: c, fallback: d.writer}
	}
	d.ssrc = uint32(ctx.SSRC())
	d.pt = uint8(codec.PayloadType)
	if rtx := uint32(ctx.SSRCRetransmission()); rtx != 0 {
		if pt := rtxPayloadType(codecs, codec.PayloadType); pt != 0 {
			d.rtxSSRC, d.rtxPT = rtx, pt
		}
	}
	// Attach under mu so that a concurrent close either sees the
	// down-track attached (and detaches it) or makes Bind fail.
	d.up.attach(d)
	// pion binds an answerer's tracks when the answer is set, before the
	// connection is up; the keyframe to start on is requested once it is
	// (Subscriber.connected), or now if that already happened.
	if d.sub.connected.Load() {
		d.keyframeRequested()
	}
	return codec, nil
}

// leanBind is Bind for a lean connection's down-track (lean.go): the
// engine picks the SSRCs, the payload types are the offer's, with RTX
// where the offer has it for the codec and the subscriber asks for NACKs.
func (d *downTrack) leanBind() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.ssrc = randUint32()
	d.pt = d.codec.pt
	if d.codec.rtxPT != 0 && d.hist != nil {
		d.rtxSSRC, d.rtxPT = randUint32(), d.codec.rtxPT
	}
	if est := d.sub.est; est != nil && d.sub.lean.stamper != nil {
		// With congestion control, as pion's interceptors would chain
		// them: the transport-wide number written, the controller records
		// the packet, the direct path (or TCP) sends it.
		inner := &directStream{c: d.sub.direct, next: leanTCPStream{d.sub.lean}, count: true}
		info := &interceptor.StreamInfo{SSRC: d.ssrc, SSRCRetransmission: d.rtxSSRC,
			RTPHeaderExtensions: []interceptor.RTPHeaderExtension{{URI: sdp.TransportCCURI, ID: int(d.twccID)}}}
		stamped := d.sub.lean.stamper.BindLocalStream(info, est.AddStream(info, inner))
		d.writer = chainWriter{stamped}
		d.stream = inner
	} else {
		d.writer = &directWriter{c: d.sub.direct, fallback: leanTCPWriter{d.sub.lean}}
	}
	d.up.attach(d)
}

// chainWriter is an interceptor chain as a track's writer.
type chainWriter struct{ w interceptor.RTPWriter }

func (c chainWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	return c.w.Write(h, payload, nil)
}

func (c chainWriter) Write(b []byte) (int, error) { return writeMarshalled(c, b) }

func rtxPayloadType(codecs []webrtc.RTPCodecParameters, apt webrtc.PayloadType) uint8 {
	want := "apt=" + strconv.Itoa(int(apt))
	for _, c := range codecs {
		if strings.EqualFold(c.MimeType, webrtc.MimeTypeRTX) && strings.Contains(c.SDPFmtpLine, want) {
			return uint8(c.PayloadType)
		}
	}
	return 0
}

// Unbind is called when the sender stops.
func (d *downTrack) Unbind(webrtc.TrackLocalContext) error {
	d.up.detach(d)
	return nil
}

// close takes the down-track out of the fan-out for good.
func (d *downTrack) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.up.detach(d)
}

// write forwards one packet of encoding li (HOT PATH, per packet per
// subscriber): it drops packets of encodings it does not forward, switches
// encoding at a keyframe of the target, rewrites the header into its own
// reused rtp.Header and hands header and the shared payload to pion.
func (d *downTrack) write(li int32, p *rtpPacket) {
	if li != d.current.Load() && li != d.target.Load() {
		return
	}
	d.mu.Lock()
	d.writeLocked(li, p)
	d.mu.Unlock()
}

// writeBatch forwards the packets ps of encoding li, in order, as write
// does one: on the direct path they leave in sends of several packets,
// gathered in b (direct.go).
func (d *downTrack) writeBatch(li int32, ps []*rtpPacket, b *sendBatch) {
	if li != d.current.Load() && li != d.target.Load() {
		return
	}
	d.mu.Lock()
	// Where the batch goes: the down-track's own direct writer, or, past a
	// congestion controller, the direct path's innermost writer of its
	// stream.
	var batch **sendBatch
	if w, ok := d.writer.(*directWriter); ok {
		batch = &w.batch
	} else if c := d.sub.direct; c != nil {
		if d.stream == nil {
			// Found once: pion binds the stream's interceptors after the
			// track (Bind), so it is not known there.
			d.stream = c.stream(d.ssrc)
		}
		if d.stream != nil {
			batch = &d.stream.batch
		}
	}
	if batch != nil {
		*batch = b
	}
	for _, p := range ps {
		d.writeLocked(li, p)
	}
	if batch != nil {
		*batch = nil
		_ = b.flush()
	}
	d.mu.Unlock()
}

// writeLocked is write with d.mu held. It reports whether the packet went
// out (false: not this down-track's, or the stream did not start on it).
func (d *downTrack) writeLocked(li int32, p *rtpPacket) bool {
	first := false
	if li != d.current.Load() {
		// Only the target gets here; start it at a keyframe or not at all.
		if li != d.target.Load() || !p.keyframe || d.writer == nil {
			return false
		}
		first = !d.started
		d.switchTo(li, p)
	} else if p.ext < d.switchExt {
		// Late packet from before the switch: its number is taken.
		return false
	}
	outExt := p.ext - d.seqOffset
	outTS := p.ts - d.tsOffset
	late := p.ext <= d.lastSrcExt
	if late && d.hist != nil {
		// Sent already when the down-track started from the cache
		// (replay) while the forwarder was about to fan it out.
		if e := d.hist.get(outExt); e != nil && e.src == uint32(p.ext) {
			return false
		}
	}
	if !late {
		d.lastSrcExt, d.lastOutExt, d.lastOutTS, d.lastArrival = p.ext, outExt, outTS, p.arrival
	}
	h := &d.hdr
	h.Marker = p.marker
	h.PayloadType = d.pt
	h.SequenceNumber = uint16(outExt)
	h.Timestamp = outTS
	h.SSRC = d.ssrc
	h.Padding, h.PaddingSize = p.padding > 0, p.padding
	// The publisher's header extensions are not forwarded (their IDs are
	// the publisher's); pion's interceptors add the subscriber's own.
	h.Extension, h.Extensions = false, h.Extensions[:0]
	if d.hist != nil {
		d.hist.put(outExt, p.ext, uint8(li), outTS, late, p.arrival)
	}
	d.packets++
	d.octets += uint32(p.payloadEnd - p.payloadOff)
	if n, err := d.writer.WriteRTP(h, p.payload()); n == 0 && err == nil && first {
		// pion drops packets without an error until the connection's SRTP
		// is up: a stream must not start with a keyframe nobody got.
		d.started, d.packets, d.octets = false, 0, 0
		d.current.Store(-1)
		return false
	}
	return true
}

// switchTo makes li the forwarded encoding, starting at packet p: the
// offsets are chosen so that p follows the last packet sent without a gap
// in sequence numbers, and its timestamp follows by the time that passed.
func (d *downTrack) switchTo(li int32, p *rtpPacket) {
	if d.started {
		d.seqOffset = p.ext - (d.lastOutExt + 1)
		delta := uint32(1)
		if el := p.arrival - d.lastArrival; el > 0 {
			delta = max(1, rtpTicks(el, d.up.clock))
		}
		d.tsOffset = p.ts - (d.lastOutTS + delta)
	} else {
		// The first encoding goes out with the publisher's own numbers.
		d.started = true
		d.seqOffset, d.tsOffset = 0, 0
	}
	d.switchExt = p.ext
	d.lastSrcExt = p.ext - 1 // so that write takes p as the newest
	d.current.Store(li)
}

// setTarget sets the encoding the allocator wants (-1: none) and asks the
// publisher for a keyframe to switch at.
func (d *downTrack) setTarget(li int32) {
	d.mu.Lock()
	if d.paused.Load() {
		li = -1
	}
	old := d.target.Swap(li)
	bound := d.writer != nil
	d.mu.Unlock()
	if li != old && li >= 0 && li != d.current.Load() && bound {
		d.up.layers[li].requestKeyframe()
	}
}

// pause stops forwarding until play; resuming continues the sequence.
func (d *downTrack) pause() {
	d.mu.Lock()
	d.paused.Store(true)
	d.target.Store(-1)
	d.current.Store(-1)
	d.mu.Unlock()
}

func (d *downTrack) play() {
	d.mu.Lock()
	d.paused.Store(false)
	d.mu.Unlock()
}

// keyframeRequested passes a subscriber's PLI or FIR to the publisher, for
// the encoding being forwarded (or about to be).
func (d *downTrack) keyframeRequested() {
	if li := d.current.Load(); li >= 0 {
		d.up.layers[li].requestKeyframe()
		return
	}
	// A down-track that has not started yet (it just connected, or its
	// target changed) needs a keyframe. When the rate limit holds requests
	// back (another subscriber asked less than pliInterval ago:
	// subscribers joining together), it starts at once on one that came
	// less than replayWindow ago, from the cache; otherwise it asks
	// (layer.requestStartKeyframe).
	li := d.target.Load()
	if li < 0 {
		return
	}
	l := d.up.layers[li]
	if now := nanotime(); l.pli.wouldAllow(now) || !d.replay(li, now) {
		l.requestStartKeyframe(now)
	}
}

// replayWindow is how old the encoding's newest keyframe may be for a
// down-track to start on it from the cache instead of asking the publisher
// for a new one. It bounds how far behind live a stream starts (the
// receiver gets the replayed frames at once), and it spaces the keyframes
// asked for subscribers joining together: the first of them that finds no
// keyframe this recent asks for one, the ones that come while it is on its
// way wait for it, and the ones that come after it start on it.
const replayWindow = 300 * time.Millisecond

// replay starts a down-track that has not started yet on encoding li's
// newest keyframe, sending it and every packet since from the publisher's
// cache, when the keyframe is less than replayWindow old (now, nanotime).
// It reports whether it did. Packets the forwarder fans out meanwhile wait
// for d.mu and follow; one it was about to give this down-track and the
// replay sent already is not sent again (writeLocked).
func (d *downTrack) replay(li int32, now int64) bool {
	l := d.up.layers[li]
	if l.cache == nil || d.hist == nil {
		return false // audio starts anywhere; without a history no dedupe
	}
	ks := l.keyStart.Load()
	if ks == 0 || now-l.keyAt.Load() > int64(replayWindow) {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.writer == nil || d.started || d.current.Load() >= 0 || d.target.Load() != li {
		return false
	}
	start, end := ks-1, l.newest.Load() // the packets [start, end)
	if end <= start || end-start > cacheSlots/2 {
		return false
	}
	buf := scratchPool.Get().(*[maxPacket]byte)
	defer scratchPool.Put(buf)
	var p rtpPacket
	for ext := start; ext < end; ext++ {
		n := l.cache.get(uint32(ext), buf[:])
		if n == 0 || p.parse(buf[:n]) != nil {
			if ext == start {
				return false // the keyframe's first packet is gone
			}
			continue // lost on the way in: the subscriber NACKs the gap
		}
		p.ext, p.arrival, p.keyframe = ext, now, ext == start
		if !d.writeLocked(li, &p) && ext == start {
			return false // SRTP not up yet: nothing started
		}
	}
	return d.started
}

// rtpTicks converts nanoseconds to RTP clock ticks.
func rtpTicks(ns int64, clock uint32) uint32 {
	return uint32(ns / 1000 * int64(clock) / 1_000_000)
}

package sfu

import (
	"errors"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// pliInterval is the least time between two keyframe requests the engine
// sends a publisher for one encoding, however many subscribers ask (but
// see layer.requestStartKeyframe). A variable only for tests.
var pliInterval = 500 * time.Millisecond

var monoStart = time.Now()

// nanotime is a monotonic clock in nanoseconds, cheap enough to read once
// per received packet.
func nanotime() int64 { return int64(time.Since(monoStart)) }

// upTrack is one published media section: its encodings (one, or one per
// simulcast rid) and the down-tracks that forward it to subscribers.
type upTrack struct {
	pub    *Publisher
	info   TrackInfo
	codec  offerCodec
	family codecFamily
	clock  uint32
	layers []*layer // ascending quality; fixed at Publish

	mu    sync.Mutex                   // serialises changes to downs
	downs atomic.Pointer[[]*downTrack] // copy-on-write: read lock-free per packet

	spread *spreader    // the engine's fan-out workers (nil: fan out inline)
	stats  *engineStats // nil in unit tests without an engine
}

func newUpTrack(p *Publisher, ps publishSection) *upTrack {
	t := &upTrack{
		pub:    p,
		codec:  ps.codec,
		family: ps.family,
		clock:  ps.codec.clock,
		info: TrackInfo{
			Kind:      ps.sec.kind,
			MID:       ps.sec.mid,
			Codec:     ps.family.String(),
			Layers:    append([]string(nil), ps.sec.rids...),
			Simulcast: len(ps.sec.rids) > 1,
		},
	}
	if p.r != nil && p.r.e != nil {
		t.spread, t.stats = p.r.e.fanout, &p.r.e.stats
	}
	rids := rankRIDs(ps.sec.rids)
	if len(rids) == 0 {
		rids = []string{""}
	}
	for i, rid := range rids {
		l := &layer{track: t, rid: rid, index: int32(i)}
		l.pli.last.Store(math.MinInt64 / 2)
		if t.family != familyOpus {
			l.cache = &packetCache{}
		}
		t.layers = append(t.layers, l)
	}
	return t
}

// ridRank orders the rid names IVS's SDKs (hi/mid/low) and common browsers
// (f/h/q) use. Other names keep the offer's order, which clients write from
// lowest to highest by convention.
var ridRank = map[string]int{"low": 0, "mid": 1, "hi": 2, "q": 0, "h": 1, "f": 2}

func rankRIDs(rids []string) []string {
	out := append([]string(nil), rids...)
	for _, r := range out {
		if _, ok := ridRank[r]; !ok {
			return out
		}
	}
	// Insertion sort: at most a handful of layers.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && ridRank[out[j]] < ridRank[out[j-1]]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func (t *upTrack) layerFor(rid string) *layer {
	if len(t.layers) == 1 && t.layers[0].rid == "" {
		return t.layers[0]
	}
	return t.layerByRID(rid)
}

func (t *upTrack) layerByRID(rid string) *layer {
	for _, l := range t.layers {
		if l.rid == rid {
			return l
		}
	}
	return nil
}

func (t *upTrack) attach(d *downTrack) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var next []*downTrack
	if cur := t.downs.Load(); cur != nil {
		next = make([]*downTrack, 0, len(*cur)+1)
		next = append(next, *cur...)
	}
	next = append(next, d)
	t.downs.Store(&next)
}

func (t *upTrack) detach(d *downTrack) {
	t.mu.Lock()
	defer t.mu.Unlock()
	cur := t.downs.Load()
	if cur == nil {
		return
	}
	next := make([]*downTrack, 0, len(*cur))
	for _, x := range *cur {
		if x != d {
			next = append(next, x)
		}
	}
	t.downs.Store(&next)
}

// layer is one encoding of a published track as it arrives: one SSRC.
type layer struct {
	track *upTrack
	rid   string
	index int32 // position in track.layers
	ssrc  atomic.Uint32
	cache *packetCache // nil for audio: Opus is not retransmitted
	pli   rateLimiter
	// pliPending is a keyframe asked for before the encoding's SSRC was
	// known (a subscriber connected before the publisher's first packet);
	// it is sent when the SSRC arrives.
	pliPending atomic.Bool
	// pliDeferred is a keyframe asked for while the rate limit held
	// requests back (subscribers joining within pliInterval of each
	// other): the forwarder sends it with the first packet after the interval
	// has passed, unless a keyframe came first.
	pliDeferred atomic.Bool

	// seqs unwraps the encoding's sequence numbers; only the forwarder
	// (the one goroutine that calls forward) touches it.
	seqs seqUnwrapper

	// Where the newest keyframe starts (its first packet's extended
	// sequence number + 1; 0: none yet) and when it came, and the newest
	// packet given to the fan-out (+ 1): a down-track that starts soon
	// after a keyframe starts on it from the cache (downTrack.replay).
	// Written by the forwarder before the packet's fan-out.
	keyStart, newest atomic.Uint64
	keyAt            atomic.Int64

	// Counters written by the forwarder. dups counts copies of packets
	// already forwarded, dropped before the fan-out.
	bytes, packets, frames, dups atomic.Uint64
	width, height                atomic.Int32

	// Published by sample() for the allocator and the layer report.
	bitrate atomic.Int64
	fps     atomic.Uint64 // float64 bits
	active  atomic.Bool

	window [2]layerSample // sample() only (the router's tick goroutine)
	slot   int

	srMu sync.Mutex
	sr   srInfo

	fanWG sync.WaitGroup // the forwarder's, for a spread fan-out (spread.go)
	one   [1]*rtpPacket  // forward's batch of one (one forwarder at a time)
}

type layerSample struct {
	at                     int64
	bytes, frames, packets uint64
}

// srInfo is the last sender report of an encoding: the publisher's NTP
// time, the RTP time it corresponds to, and when it arrived (nanotime).
type srInfo struct {
	ntp uint64
	rtp uint32
	at  int64
	ok  bool
}

// Packets read from a publisher wait in a bounded queue for the layer's
// forwarder, so that reading never waits for the fan-out: pion's
// receiver-side interceptors run inside the read (the arrival times of
// the transport-wide feedback sent to the publisher are taken there, and
// the NACK generator learns of gaps there), and a keyframe's fan-out to
// hundreds of subscribers takes milliseconds per packet. With the fan-out
// inline, a burst delayed every later packet's arrival time by the burst's
// fan-out (the publisher's bandwidth estimate read it as congestion) and
// left pion's buffers, and under them the UDP socket, unread. When the
// queue is full the reader waits: packets are never dropped here.
const (
	videoQueue = 64 // a 720p keyframe (20–40 packets) with room; 96 KiB a layer
	audioQueue = 16
)

// queued is one packet between a layer's reader and its forwarder.
type queued struct {
	buf []byte // maxPacket bytes of the queue's one allocation
	pkt rtpPacket
	at  int64 // nanotime when read
}

// readRTP reads the encoding until the connection closes and hands every
// packet to the layer's forwarder (forwardQueued). This is the entry of the
// HOT PATH: everything from here to downTrack.write runs once per packet a
// publisher sends (and per subscriber, for write), must not allocate, and
// takes no lock shared between subscribers.
func (l *layer) readRTP(remote *webrtc.TrackRemote) {
	n := videoQueue
	if l.track.family == familyOpus {
		n = audioQueue
	}
	slots := make([]queued, n)
	mem := make([]byte, n*maxPacket)
	free := make(chan *queued, n)
	ready := make(chan *queued, n)
	for i := range slots {
		slots[i].buf = mem[i*maxPacket : (i+1)*maxPacket : (i+1)*maxPacket]
		free <- &slots[i]
	}
	done := make(chan struct{})
	l.track.pub.r.goTracked(func() {
		defer close(done)
		l.forwardQueued(ready, free)
	})
	defer func() {
		close(ready)
		<-done
	}()

	failures := 0
	for {
		q := <-free
		n, _, err := remote.Read(q.buf)
		if err != nil {
			free <- q
			if errors.Is(err, io.EOF) || l.track.pub.closed.Load() || failures > 1000 {
				return
			}
			failures++ // a malformed packet; pion keeps reading
			continue
		}
		failures = 0
		if q.pkt.parse(q.buf[:n]) != nil {
			free <- q
			continue
		}
		q.at = nanotime()
		ready <- q
	}
}

// forwardQueued is the layer's forwarder: the one goroutine that forwards
// a remote publisher's encoding. It takes every packet queued when it comes
// back, up to maxBatch, and forwards them together: each subscriber then
// gets them in one send (direct.go's batched sends). Nothing waits for a
// batch to fill.
func (l *layer) forwardQueued(ready <-chan *queued, free chan<- *queued) {
	batch := l.track.pub.r.e.batchSends()
	var qs [maxBatch]*queued
	var ps [maxBatch]*rtpPacket
	for q := range ready {
		q.pkt.arrival = q.at
		qs[0], ps[0] = q, &q.pkt
		n := 1
	more:
		for batch && n < maxBatch {
			select {
			case q, ok := <-ready:
				if !ok {
					break more
				}
				q.pkt.arrival = q.at
				qs[n], ps[n] = q, &q.pkt
				n++
			default:
				break more
			}
		}
		l.forwardBatch(ps[:n])
		for _, q := range qs[:n] {
			free <- q
		}
	}
}

// forward caches one received packet and fans it out to every down-track
// of the track. It is the hot path the benchmarks measure.
func (l *layer) forward(p *rtpPacket, now int64) {
	p.arrival = now
	if !l.take(p) {
		return
	}
	l.one[0] = p
	l.fanOut(l.one[:])
	l.one[0] = nil
}

// forwardBatch is forward for packets read in order, each with its
// arrival set.
func (l *layer) forwardBatch(ps []*rtpPacket) {
	kept := ps[:0]
	for _, p := range ps {
		if l.take(p) {
			kept = append(kept, p)
		}
	}
	if len(kept) > 0 {
		l.fanOut(kept)
	}
}

// fanOut writes the packets to every down-track and records how long
// each took from its reading to its last subscriber's send.
func (l *layer) fanOut(ps []*rtpPacket) {
	t := l.track
	downs := t.downs.Load()
	if downs == nil {
		return
	}
	t.spread.fanOut(*downs, l.index, ps, &l.fanWG)
	if t.stats != nil && len(*downs) > 0 {
		done := nanotime()
		for _, p := range ps {
			t.stats.fwdDelay.observe(delayBounds, float64(done-p.arrival)/1e9)
		}
	}
}

// take caches one received packet (p.arrival set) and updates the layer's
// state from it; it reports whether the packet is to be fanned out (not a
// copy of one forwarded already).
func (l *layer) take(p *rtpPacket) bool {
	t := l.track
	now := p.arrival
	p.ext = l.seqs.unwrap(p.seq)
	if !t.pub.media.Load() {
		t.pub.gotMedia()
	}
	if l.cache != nil && !l.cache.put(p.ext, p.raw) {
		// A copy of a packet already forwarded (a repair that came twice,
		// or one the network duplicated): subscribers have it.
		l.dups.Add(1)
		return false
	}
	l.packets.Add(1)
	l.bytes.Add(uint64(len(p.raw)))
	switch t.family {
	case familyOpus:
		p.keyframe = true // any audio packet is a place to start
	default:
		var w, h int
		if t.family == familyVP8 {
			p.keyframe, w, h = vp8Keyframe(p.payload())
		} else {
			p.keyframe, w, h = h264Keyframe(p.payload())
		}
		if w > 0 && h > 0 {
			l.width.Store(int32(w))
			l.height.Store(int32(h))
		}
		if p.marker {
			l.frames.Add(1)
		}
		if p.keyframe {
			l.keyStart.Store(p.ext + 1)
			l.keyAt.Store(now)
		}
		if p.ext >= l.newest.Load() {
			l.newest.Store(p.ext + 1)
		}
		if l.pliDeferred.Load() {
			if p.keyframe {
				l.pliDeferred.Store(false)
			} else if now-l.pli.last.Load() >= int64(pliInterval) {
				l.requestKeyframe()
			}
		}
	}
	return true
}

// readRTCP reads the encoding's RTCP: pion's receiver-side interceptors
// only run while someone reads, and the sender reports give each
// subscriber's reports the publisher's clock.
func (l *layer) readRTCP(recv *webrtc.RTPReceiver, rid string) {
	failures := 0
	for {
		pkts, _, err := recv.ReadSimulcastRTCP(rid)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) || l.track.pub.closed.Load() || failures > 1000 {
				return
			}
			failures++
			continue
		}
		failures = 0
		for _, pkt := range pkts {
			if sr, ok := pkt.(*rtcp.SenderReport); ok && sr.SSRC == l.ssrc.Load() {
				l.srMu.Lock()
				l.sr = srInfo{ntp: sr.NTPTime, rtp: sr.RTPTime, at: nanotime(), ok: true}
				l.srMu.Unlock()
			}
		}
	}
}

func (l *layer) lastSR() srInfo {
	l.srMu.Lock()
	defer l.srMu.Unlock()
	return l.sr
}

// requestKeyframe asks the publisher for a keyframe on this encoding, at
// most once per pliInterval. Audio has no keyframes to ask for.
func (l *layer) requestKeyframe() {
	if l.track.family == familyOpus {
		return
	}
	ssrc := l.ssrc.Load()
	if ssrc == 0 {
		l.pliPending.Store(true)
		return
	}
	if l.pli.allow(nanotime()) {
		l.pliDeferred.Store(false)
		l.track.pub.pli(ssrc)
	} else {
		l.pliDeferred.Store(true)
	}
}

// requestStartKeyframe asks the publisher for the keyframe a down-track
// that has not started waits for, when the cache has none recent enough to
// replay (now, nanotime). pliInterval is meant for the requests of
// subscribers that are receiving, and measured from the last request; held
// to it, a subscriber that joined just after the last keyframe to replay
// went stale waited up to pliInterval for the deferred request and then for
// its answer. For a start it is measured from the keyframe's arrival
// instead: once a keyframe has come after the last request (its answer, or
// one the publisher sent on its own) and gone stale (older than
// replayWindow), a new one is asked for at once. Such a request comes at
// least replayWindow after any other, since that keyframe came after the
// last. A
// request not answered yet is awaited, not repeated (requestKeyframe
// defers it; the forwarder asks again after pliInterval if no keyframe
// comes: a publisher that does not answer).
func (l *layer) requestStartKeyframe(now int64) {
	if l.track.family == familyOpus {
		return
	}
	ssrc := l.ssrc.Load()
	last, key := l.pli.last.Load(), l.keyAt.Load()
	// The keyframe must be stale too: a down-track that could not replay a
	// recent one (no NACK history, SRTP not up yet) waits like any other.
	if ssrc != 0 && key > last && now-key > int64(replayWindow) && l.pli.last.CompareAndSwap(last, now) {
		l.pliDeferred.Store(false)
		l.track.pub.pli(ssrc)
		return
	}
	l.requestKeyframe()
}

// setSSRC records the encoding's SSRC and sends a keyframe request that
// was waiting for it.
func (l *layer) setSSRC(ssrc uint32) {
	l.ssrc.Store(ssrc)
	if l.pliPending.Swap(false) {
		l.requestKeyframe()
	}
}

// sample updates the layer's measured bitrate and frame rate over the last
// two ticks (about a second) and whether packets still arrive.
func (l *layer) sample(now int64) {
	cur := layerSample{at: now, bytes: l.bytes.Load(), frames: l.frames.Load(), packets: l.packets.Load()}
	old := l.window[l.slot]
	if old.at > 0 && now > old.at {
		dt := float64(now - old.at)
		l.bitrate.Store(int64(float64(cur.bytes-old.bytes) * 8e9 / dt))
		l.fps.Store(math.Float64bits(float64(cur.frames-old.frames) * 1e9 / dt))
		l.active.Store(cur.packets != old.packets)
	} else {
		l.active.Store(cur.packets > 0)
	}
	l.window[l.slot] = cur
	l.slot ^= 1
}

// rateLimiter lets one event through per pliInterval, without a lock.
type rateLimiter struct{ last atomic.Int64 }

// wouldAllow tells whether allow would let an event through now.
func (r *rateLimiter) wouldAllow(now int64) bool {
	return now-r.last.Load() >= int64(pliInterval)
}

func (r *rateLimiter) allow(now int64) bool {
	last := r.last.Load()
	if now-last < int64(pliInterval) {
		return false
	}
	return r.last.CompareAndSwap(last, now)
}

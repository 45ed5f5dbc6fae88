package sfu

import (
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// What subscribers send back about a down-track: NACKs, answered from the
// publisher's packet cache (as RTX where negotiated, RFC 4588); PLI and FIR,
// passed on to the publisher (rate-limited per encoding); REMB, for the
// allocator when transport-wide feedback is not negotiated.

// maxResends bounds how often one packet is retransmitted to a subscriber.
const maxResends = 4

// readRTCP reads what the subscriber sends about one down-track: NACKs are
// answered from the publisher's cache, PLI/FIR go to the publisher, REMB
// feeds the allocator. (Transport-wide feedback reaches the estimator in
// pion's interceptor chain, which runs only while someone reads.)
//
// It runs until the sender's RTCP queue is bound to the down-track
// (queue.go), which happens on its first read once the connection is up:
// from then on the queue hands each packet over as it comes
// (rtcpQueued), on pion's SRTCP goroutine, and this goroutine ends. It
// reads on only if the queue never binds (a connection whose RTCP buffers
// are not the engine's queues).
func (d *downTrack) readRTCP(sender *webrtc.RTPSender) {
	// One buffer to read into, reused: its address is what binds the queue.
	in := make([]byte, maxPacket)
	forget := bindRTCPReader(in, d)
	defer forget()
	defer d.sub.rtcpReaders.Add(-1)
	failures := 0
	for {
		n, a, err := sender.Read(in)
		if errors.Is(err, errRTCPPushed) {
			return
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) || d.sub.closed.Load() || failures > 1000 {
				return
			}
			failures++
			continue
		}
		failures = 0
		d.handleRTCP(in[:n], a)
	}
}

// rtcpQueued takes the packet just queued on the down-track's bound RTCP
// queue through the sender's chain (a read that does not wait) and handles
// it. It runs on pion's SRTCP goroutine, one packet at a time.
func (d *downTrack) rtcpQueued() {
	buf := scratchPool.Get().(*[maxPacket]byte)
	defer scratchPool.Put(buf)
	n, a, err := d.sender.Read(buf[:])
	if err != nil {
		return
	}
	d.handleRTCP(buf[:n], a)
}

// handleRTCP acts on one read of the sender's RTCP: raw is the packet, a
// the attributes the interceptors left (the stats interceptor parses it).
func (d *downTrack) handleRTCP(raw []byte, a interceptor.Attributes) {
	var pkts []rtcp.Packet
	var err error
	if a != nil {
		pkts, err = a.GetRTCPPackets(raw)
	} else {
		pkts, err = rtcp.Unmarshal(raw)
	}
	if err != nil {
		return
	}
	d.handleRTCPPackets(pkts)
}

// handleRTCPPackets acts on what one RTCP packet from the subscriber says
// about the down-track.
func (d *downTrack) handleRTCPPackets(pkts []rtcp.Packet) {
	ssrc := d.boundSSRC()
	now := nanotime()
	for _, pkt := range pkts {
		switch pkt := pkt.(type) {
		case *rtcp.TransportLayerNack:
			if pkt.MediaSSRC != ssrc || d.hist == nil {
				continue
			}
			buf := scratchPool.Get().(*[maxPacket]byte)
			for i := range pkt.Nacks {
				pkt.Nacks[i].Range(func(seq uint16) bool {
					d.retransmit(seq, buf[:], now)
					return true
				})
			}
			scratchPool.Put(buf)
		case *rtcp.PictureLossIndication:
			if pkt.MediaSSRC == ssrc {
				d.keyframeRequested()
			}
		case *rtcp.FullIntraRequest:
			if pkt.MediaSSRC == ssrc {
				d.keyframeRequested()
			}
		case *rtcp.ReceiverEstimatedMaximumBitrate:
			d.sub.remb.Store(int64(pkt.Bitrate))
		}
	}
}

// scratchPool holds the buffers retransmissions are built in.
var scratchPool = sync.Pool{New: func() any { return new([maxPacket]byte) }}

func (d *downTrack) boundSSRC() uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ssrc
}

// retransmit answers a NACK for one of the down-track's sequence numbers
// from the publisher's packet cache, as RTX when negotiated (RFC 4588).
// buf is the caller's scratch buffer, at least maxPacket long; now is
// nanotime.
func (d *downTrack) retransmit(outSeq uint16, buf []byte, now int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.hist == nil || d.writer == nil || d.closed {
		return
	}
	e := d.hist.get(unwrapNear(outSeq, d.lastOutExt))
	if e == nil || e.resent() >= maxResends || e.justSentLate(now) {
		return
	}
	n := d.up.layers[e.layer].cache.get(e.src, buf)
	var p rtpPacket
	if n == 0 || p.parse(buf[:n]) != nil {
		return
	}
	e.flags += histResent1
	h := &d.rtxHdr
	h.Marker = p.marker
	h.Timestamp = e.ts
	h.Padding, h.PaddingSize = p.padding > 0, p.padding
	h.Extension, h.Extensions = false, h.Extensions[:0]
	payload := p.payload()
	if d.rtxSSRC != 0 {
		// The original sequence number goes in front of the payload; the
		// two bytes before it belong to the source header, already parsed.
		off := p.payloadOff - 2
		binary.BigEndian.PutUint16(buf[off:], outSeq)
		payload = buf[off:p.payloadEnd]
		h.SSRC, h.PayloadType, h.SequenceNumber = d.rtxSSRC, d.rtxPT, d.rtxSeq
		d.rtxSeq++
	} else {
		h.SSRC, h.PayloadType, h.SequenceNumber = d.ssrc, d.pt, outSeq
	}
	_, _ = d.writer.WriteRTP(h, payload)
}

// probePadding is a probe packet's payload: padding only (RFC 3550 §5.1:
// its last octet counts it), the most one packet can carry.
var probePadding = func() (b [255]byte) {
	b[len(b)-1] = byte(len(b))
	return b
}()

// canPad tells whether the down-track can carry a probe's padding: on its
// RTX stream, once its media has started.
func (d *downTrack) canPad() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.canPadLocked()
}

func (d *downTrack) canPadLocked() bool {
	return d.rtxSSRC != 0 && d.started && d.writer != nil && !d.closed
}

// sendPadding sends n padding-only packets on the RTX stream for a probe,
// and returns how many went out. They carry the padding in the payload
// with PaddingSize 0, which is how the congestion controller knows them
// (estimatedStream.Write); receivers drop RTX packets without an original
// sequence number.
func (d *downTrack) sendPadding(n int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.canPadLocked() {
		return 0
	}
	h := &d.rtxHdr
	h.Marker, h.Timestamp = false, d.lastOutTS
	h.SSRC, h.PayloadType = d.rtxSSRC, d.rtxPT
	h.Padding, h.PaddingSize = true, 0
	sent := 0
	for range n {
		h.Extension, h.Extensions = false, h.Extensions[:0]
		h.SequenceNumber = d.rtxSeq
		d.rtxSeq++
		if _, err := d.writer.WriteRTP(h, probePadding[:]); err != nil {
			break
		}
		sent++
	}
	return sent
}

// seqHistory maps a down-track's recent sequence numbers back to the
// encoding and source sequence number they came from, for NACKs. Both are
// kept as the low 32 bits of their extended numbers: a slot is rewritten
// every histSize packets, so an entry can only be mistaken for one 2^32
// packets older, and 16 bytes an entry keep the history in few cache lines
// on the per-packet path.
type seqHistory [histSize]histEntry

const histSize = 512

// lateResendGap is how long after a late packet went out a NACK for it is
// taken to have been sent before the packet arrived. A packet goes out
// late when the publisher repaired it (the engine's NACK, answered by a
// retransmission): the subscribers missed it too and asked for it, and
// NACKs they sent before the repair reached them are still arriving when
// it has been forwarded. Answering those from the cache would send the
// packet twice. It is a little over pion's and browsers' NACK retry
// intervals at low round-trip times, so a repair that itself got lost is
// still resent at the subscriber's next try after it.
const lateResendGap = 50 * time.Millisecond

type histEntry struct {
	out, src uint32 // low 32 bits of the extended numbers
	ts       uint32
	sentMS   uint16 // when a late packet went out: nanotime in ms, wrapping
	layer    uint8
	flags    uint8 // histValid, histLate, and the resend count from bit 2
}

const (
	histValid   = 1 << 0
	histLate    = 1 << 1
	histResent1 = 1 << 2 // one resend
)

func (e *histEntry) resent() int { return int(e.flags >> 2) }

// put records a packet sent; late packets (older than one sent before
// them) record when: now, the time the engine read it (nanotime), which
// precedes the send by at most the forwarding queue's delay.
func (h *seqHistory) put(out, src uint64, layer uint8, ts uint32, late bool, now int64) {
	e := histEntry{out: uint32(out), src: uint32(src), ts: ts, layer: layer, flags: histValid}
	if late {
		e.flags |= histLate
		e.sentMS = uint16(now / 1e6)
	}
	h[out%histSize] = e
}

func (h *seqHistory) get(out uint64) *histEntry {
	e := &h[out%histSize]
	if e.flags&histValid == 0 || e.out != uint32(out) {
		return nil
	}
	return e
}

// justSentLate tells whether e went out late less than lateResendGap
// before now (nanotime).
func (e *histEntry) justSentLate(now int64) bool {
	if e.flags&histLate == 0 {
		return false
	}
	return uint16(now/1e6)-e.sentMS < uint16(lateResendGap/time.Millisecond)
}

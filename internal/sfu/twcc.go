package sfu

import (
	"encoding/binary"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/transport/v5/packetio"
	"github.com/pion/webrtc/v4"
)

// twccStamper is the subscriber side's transport-wide sequence numbering
// (draft-holmer-rmcat-transport-wide-cc-extensions-01): it writes one
// sequence number, counted over the whole peer connection, into every RTP
// packet sent, for the congestion controller to match with the
// subscriber's feedback. It does what pion's twcc.HeaderExtensionInterceptor
// does without that interceptor's allocations per packet: the extension's
// two bytes live in the stream's own buffer, and the packet goes on with
// the stream's own interceptor.Attributes (which pion's interceptors
// further in would otherwise make per packet).
//
// Each stream's writer is used by one down-track, whose lock serialises its
// writes (media and retransmissions alike), so the per-stream buffer and
// attributes are never used by two packets at once.
type twccStamper struct {
	interceptor.NoOp
	next atomic.Uint32 // the next transport-wide sequence number
}

type twccStamperFactory struct{}

func (twccStamperFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &twccStamper{}, nil
}

// BindLocalStream implements interceptor.Interceptor.
func (t *twccStamper) BindLocalStream(info *interceptor.StreamInfo, writer interceptor.RTPWriter) interceptor.RTPWriter {
	id := transportCCID(info)
	if id == 0 {
		return writer // not negotiated for this stream
	}
	s := &stampedStream{t: t, id: id, writer: writer, attrs: interceptor.Attributes{}}
	return s
}

type stampedStream struct {
	t      *twccStamper
	id     uint8
	writer interceptor.RTPWriter
	ext    [2]byte
	attrs  interceptor.Attributes
}

// Write stamps one packet (HOT PATH: once per packet per subscriber).
func (s *stampedStream) Write(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
	seq := s.t.next.Add(1) - 1
	binary.BigEndian.PutUint16(s.ext[:], uint16(seq))
	if err := h.SetExtension(s.id, s.ext[:]); err != nil {
		return 0, err
	}
	if a == nil {
		a = s.attrs
	}
	return s.writer.Write(h, payload, a)
}

// The publisher side: transport-wide feedback (draft-holmer-rmcat-
// transport-wide-cc-extensions-01), from which the publisher's congestion
// controller (Chrome's GCC) builds its send-side bandwidth estimate, and
// with it how many simulcast layers it sends and at what bitrate.
//
// pion's twcc.SenderInterceptor takes each packet's arrival time when the
// application reads the packet. Nothing reads a stream before pion has
// identified it and the engine has set up its layer, and a reader can fall
// behind under load, so packets that waited in pion's SRTP buffer are all
// stamped at the moment they are read, however they arrived. Chrome probes
// the path as soon as the connection is up, with bursts of padding at 3 and
// 6 times its starting estimate; reported as arriving all at once they
// yield a receive rate more than twice the send rate, which Chrome rejects
// as an invalid probe (its ProbeBitrateEstimator), and a read backlog that
// drains looks to its delay-based detector like a queue that built up. The
// estimate then starts at Chrome's 300 kbit/s and grows by ~8 % a second,
// holding the top layers back for many seconds ("bandwidth").
//
// twccResponder records packets as they arrive instead, with the time the
// kernel received them (arrival.go): pion's SRTP session writes every
// decrypted packet, in the order they arrived, into a per-SSRC buffer that
// the connection's SettingEngine.BufferFactory makes, and the buffer
// records the packet's transport-wide number with its arrival time there.
// Packets written before the extension's ID is known (it is learnt when
// pion binds the connection's first stream) are recorded when read, with
// the arrival time their buffer noted. The feedback itself is built by
// pion's twcc.Recorder.

const (
	// twccInterval is how often feedback is sent: libwebrtc's receivers
	// send it every 50-250 ms depending on the bitrate, 50 ms at the
	// bitrates of a camera's simulcast.
	twccInterval = 50 * time.Millisecond
	// arrivalSlots is how many packets of one stream the buffer remembers
	// the arrival of: the read may lag the arrival by this many packets
	// (~1.5 s of a 2.5 Mbit/s layer) before the read time is used instead.
	arrivalSlots = 512
	// Buffer limits: pion's own for SRTP and SRTCP streams.
	rtpBufferLimit  = 1000 * 1000
	rtcpBufferLimit = 100 * 1000
)

// twccResponder is one publisher connection's transport-wide feedback: its
// interceptor (registered in the connection's own API) and its
// BufferFactory.
type twccResponder struct {
	interceptor.NoOp
	now      func() int64 // monotonic nanoseconds; tests set it
	start    int64
	interval time.Duration

	arrivals *arrivalTable // the engine's socket's arrival times; nil: none
	id       atomic.Uint32 // the transport-wide extension's ID, once a stream is bound

	mu   sync.Mutex
	rec  *twcc.Recorder
	logs map[uint32]*arrivalLog // by SSRC

	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

func newTWCCResponder(arrivals *arrivalTable) *twccResponder {
	r := newTWCCResponderClock(nanotime, twccInterval)
	r.arrivals = arrivals
	return r
}

// newTWCCResponderClock is newTWCCResponder with its clock and interval
// given (tests).
func newTWCCResponderClock(now func() int64, interval time.Duration) *twccResponder {
	r := &twccResponder{now: now, interval: interval, rec: twcc.NewRecorder(rand.Uint32()), logs: map[uint32]*arrivalLog{}, done: make(chan struct{})}
	r.start = now()
	return r
}

// publisherAPI is the API of one publisher connection: the engine's
// publisher interceptors, then the connection's own transport-wide
// feedback, whose buffers the connection's SRTP session writes into.
func (e *Engine) publisherAPI() *webrtc.API {
	tw := newTWCCResponder(e.arrivals)
	se := e.settings
	se.BufferFactory = tw.newBuffer
	reg := &interceptor.Registry{}
	for _, f := range e.pubShared {
		reg.Add(f)
	}
	reg.Add(tw)
	return webrtc.NewAPI(webrtc.WithMediaEngine(e.media), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(reg))
}

// NewInterceptor implements interceptor.Factory: the responder is the
// interceptor of the one connection whose API it was registered in.
func (r *twccResponder) NewInterceptor(string) (interceptor.Interceptor, error) { return r, nil }

// sinceStart is t (monotonic nanoseconds) in the recorder's microseconds.
func (r *twccResponder) sinceStart(t int64) int64 { return (t - r.start) / 1e3 }

// newBuffer is the connection's SettingEngine.BufferFactory.
func (r *twccResponder) newBuffer(kind packetio.BufferPacketType, ssrc uint32) io.ReadWriteCloser {
	b := &arrivalBuffer{Buffer: packetio.NewBuffer()}
	if kind != packetio.RTPBufferPacket {
		b.SetLimitSize(rtcpBufferLimit)
		return b
	}
	b.SetLimitSize(rtpBufferLimit)
	b.log, b.r, b.ssrc = &arrivalLog{}, r, ssrc
	r.mu.Lock()
	r.logs[ssrc] = b.log
	r.mu.Unlock()
	return b
}

// arrival is when the packet of ssrc with RTP sequence number seq arrived,
// in the recorder's microseconds, and whether it was recorded then, if
// its buffer noted it.
func (r *twccResponder) arrival(ssrc uint32, seq uint16) (at int64, recorded, ok bool) {
	r.mu.Lock()
	l := r.logs[ssrc]
	r.mu.Unlock()
	if l == nil {
		return 0, false, false
	}
	return l.get(seq)
}

func (r *twccResponder) record(ssrc uint32, tseq uint16, at int64) {
	r.mu.Lock()
	r.rec.Record(ssrc, tseq, at)
	r.mu.Unlock()
}

// arrived handles a packet pion's SRTP session writes into ssrc's buffer:
// it notes when the packet arrived and, once the extension's ID is known,
// records its transport-wide number.
func (r *twccResponder) arrived(l *arrivalLog, ssrc uint32, p []byte) {
	if len(p) < 12 {
		return
	}
	seq := binary.BigEndian.Uint16(p[2:4])
	now := r.now()
	at, ok := r.arrivals.get(ssrc, seq)
	if !ok || at > now {
		at = now
	}
	us := max(r.sinceStart(at), 0)
	recorded := false
	if id := r.id.Load(); id != 0 {
		if tseq, found := transportSequence(p, uint8(id)); found {
			r.record(ssrc, tseq, us)
			recorded = true
		}
	}
	l.put(seq, us, recorded)
}

// BindRemoteStream records every packet read with a transport-wide number.
func (r *twccResponder) BindRemoteStream(info *interceptor.StreamInfo, reader interceptor.RTPReader) interceptor.RTPReader {
	id := transportCCID(info)
	if id == 0 {
		return reader // not negotiated for this stream
	}
	// One ID for the whole connection: BUNDLE gives an extension the
	// same ID in every section (RFC 8843).
	r.id.CompareAndSwap(0, uint32(id))
	ssrc := info.SSRC
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := reader.Read(b, a)
		if err != nil || n < 12 {
			return n, a, err
		}
		at, recorded, ok := r.arrival(ssrc, binary.BigEndian.Uint16(b[2:4]))
		if recorded {
			return n, a, nil
		}
		if tseq, found := transportSequence(b[:n], id); found {
			if !ok {
				at = r.sinceStart(r.now())
			}
			r.record(ssrc, tseq, at)
		}
		return n, a, nil
	})
}

// BindRTCPWriter starts sending feedback.
func (r *twccResponder) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	r.wg.Add(1)
	go r.loop(w)
	return w
}

func (r *twccResponder) loop(w interceptor.RTCPWriter) {
	defer r.wg.Done()
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
			if pkts := r.feedback(); len(pkts) > 0 {
				// An error is a connection closing; Close ends the loop.
				_, _ = w.Write(pkts, nil)
			}
		}
	}
}

// feedback is what has been recorded since the last feedback.
func (r *twccResponder) feedback() []rtcp.Packet {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rec.BuildFeedbackPacket()
}

// Close implements interceptor.Interceptor.
func (r *twccResponder) Close() error {
	r.closeOnce.Do(func() { close(r.done) })
	r.wg.Wait()
	return nil
}

// arrivalBuffer is pion's packet buffer (as pion's SRTP session makes it)
// that notes when each RTP packet was written, that is when it arrived.
type arrivalBuffer struct {
	*packetio.Buffer
	log  *arrivalLog // nil for RTCP
	r    *twccResponder
	ssrc uint32
}

func (b *arrivalBuffer) Read(p []byte) (int, error) {
	n, _, err := b.Buffer.Read(p, nil)
	return n, err
}

func (b *arrivalBuffer) Write(p []byte) (int, error) { return b.WriteWithAttributes(p, nil) }

func (b *arrivalBuffer) ReadWithAttributes(p []byte, a packetio.Attributes) (int, packetio.Attributes, error) {
	return b.Buffer.Read(p, a)
}

func (b *arrivalBuffer) WriteWithAttributes(p []byte, a packetio.Attributes) (int, error) {
	if b.log != nil {
		b.r.arrived(b.log, b.ssrc, p)
	}
	return b.Buffer.Write(p, a)
}

func (b *arrivalBuffer) Close() error {
	if b.log != nil {
		b.r.mu.Lock()
		if b.r.logs[b.ssrc] == b.log {
			delete(b.r.logs, b.ssrc)
		}
		b.r.mu.Unlock()
	}
	return b.Buffer.Close()
}

// arrivalLog remembers the arrival times of a stream's last arrivalSlots
// packets by RTP sequence number. Each slot holds the sequence number in
// its top 16 bits and the time (microseconds) in the rest, so that a
// reader on another goroutine needs no lock.
type arrivalLog [arrivalSlots]atomic.Uint64

const (
	arrivalNoted    = 1 << 47   // the slot holds a time
	arrivalRecorded = 1 << 46   // and the packet was recorded on arrival
	arrivalTimeMask = 1<<46 - 1 // microseconds: two years
)

func (l *arrivalLog) put(seq uint16, us int64, recorded bool) {
	v := uint64(seq)<<48 | arrivalNoted | uint64(us)&arrivalTimeMask
	if recorded {
		v |= arrivalRecorded
	}
	l[seq%arrivalSlots].Store(v)
}

// get returns the arrival time of seq and whether it was recorded then,
// if its slot still holds it.
func (l *arrivalLog) get(seq uint16) (us int64, recorded, ok bool) {
	v := l[seq%arrivalSlots].Load()
	if v&arrivalNoted == 0 || uint16(v>>48) != seq {
		return 0, false, false
	}
	return int64(v & arrivalTimeMask), v&arrivalRecorded != 0, true
}

// transportSequence finds the transport-wide sequence number in an RTP
// packet's header extension with the given ID (one-byte or two-byte form,
// RFC 8285).
func transportSequence(b []byte, id uint8) (uint16, bool) {
	if len(b) < 12 || b[0]&0x10 == 0 {
		return 0, false
	}
	off := 12 + 4*int(b[0]&0x0f)
	if len(b) < off+4 {
		return 0, false
	}
	profile := binary.BigEndian.Uint16(b[off:])
	end := off + 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
	if end > len(b) {
		return 0, false
	}
	i := off + 4
	for i < end {
		var eid uint8
		var size int
		switch {
		case profile == 0xBEDE:
			if b[i] == 0 { // padding
				i++
				continue
			}
			eid, size = b[i]>>4, int(b[i]&0x0f)+1
			if eid == 15 { // reserved: stop
				return 0, false
			}
			i++
		case profile&0xfff0 == 0x1000:
			if b[i] == 0 {
				i++
				continue
			}
			if i+2 > end {
				return 0, false
			}
			eid, size = b[i], int(b[i+1])
			i += 2
		default:
			return 0, false
		}
		if i+size > end {
			return 0, false
		}
		if eid == id {
			if size < 2 {
				return 0, false
			}
			return binary.BigEndian.Uint16(b[i:]), true
		}
		i += size
	}
	return 0, false
}

// transportCCID is the stream's ID of the transport-wide sequence number
// extension, 0 when it was not negotiated.
func transportCCID(info *interceptor.StreamInfo) uint8 {
	for _, e := range info.RTPHeaderExtensions {
		if e.URI == sdp.TransportCCURI {
			return uint8(e.ID)
		}
	}
	return 0
}

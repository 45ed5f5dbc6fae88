package sfu

import (
	"math"
	"math/bits"
	"sort"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Stats is a snapshot of the engine's media counters, for metrics. The
// counters run from the engine's start; the gauges are read when Stats is
// called.
type Stats struct {
	// Routers, Publishers and Subscribers are the stage sessions with
	// media, and their publishing and subscribing peer connections, now.
	Routers, Publishers, Subscribers int
	// LeanSubscribers are the subscribers on the engine's own lean
	// connections (lean.go), now.
	LeanSubscribers int

	// RTP received from publishers, and sent to subscribers (NACKed
	// packets resent included), header and payload, after SRTP.
	ReceivedPackets, ReceivedBytes   uint64
	ForwardedPackets, ForwardedBytes uint64

	// NACKed sequence numbers: asked of publishers (upstream loss the
	// server noticed), and asked of the server by subscribers.
	NACKsSent, NACKsReceived uint64
	// Keyframe requests (PLI and FIR): sent to publishers, and received
	// from subscribers.
	KeyframeRequestsSent, KeyframeRequestsReceived uint64

	// Loss is the fraction lost of each RTCP receiver report block: those
	// the server sends publishers (upstream) and those subscribers send the
	// server (downstream).
	UpstreamLoss, DownstreamLoss Histogram
	// Join is how long a publish or subscribe took from the peer
	// connection's creation (the offer arrived) to its DTLS being up
	// (media can flow).
	PublishJoin, SubscribeJoin Histogram
	// ForwardDelay is, per packet a publisher sent, the time from the
	// engine reading it to its last subscriber's write returning: the
	// server's own share of every subscriber's latency (the queue to the
	// forwarder, the fan-out, SRTP and the send).
	ForwardDelay Histogram
}

// Histogram is a snapshot of a fixed-bucket histogram.
type Histogram struct {
	Bounds []float64 // upper bounds, ascending; a last bucket is +Inf
	Counts []uint64  // per bucket, not cumulative: len(Bounds)+1
	Count  uint64
	Sum    float64
}

// Stats reads the engine's counters and walks its routers for the gauges.
// It takes each router's lock briefly and never a lock of the packet path.
func (e *Engine) Stats() Stats {
	s := &e.stats
	out := Stats{
		ReceivedPackets:          s.recvPackets.Load(),
		ReceivedBytes:            s.recvBytes.Load(),
		ForwardedPackets:         s.fwdPackets.Load(),
		ForwardedBytes:           s.fwdBytes.Load(),
		NACKsSent:                s.nacksSent.Load(),
		NACKsReceived:            s.nacksRecv.Load(),
		KeyframeRequestsSent:     s.keyframesSent.Load(),
		KeyframeRequestsReceived: s.keyframesRecv.Load(),
		UpstreamLoss:             s.upLoss.snapshot(lossBounds),
		DownstreamLoss:           s.downLoss.snapshot(lossBounds),
		PublishJoin:              s.pubJoin.snapshot(joinBounds),
		SubscribeJoin:            s.subJoin.snapshot(joinBounds),
		ForwardDelay:             s.fwdDelay.snapshot(delayBounds),
		LeanSubscribers:          int(e.lean.n.Load()),
	}
	e.mu.Lock()
	routers := make([]*Router, 0, len(e.routers))
	for r := range e.routers {
		routers = append(routers, r)
	}
	e.mu.Unlock()
	for _, r := range routers {
		r.mu.RLock()
		if !r.closed {
			out.Routers++
			out.Publishers += len(r.publishers)
			out.Subscribers += len(r.subscribers)
		}
		r.mu.RUnlock()
	}
	return out
}

// engineStats are the engine-wide counters. The packet counters are bumped
// once per packet by the stats interceptor: an atomic add, no allocation,
// no lock.
type engineStats struct {
	recvPackets, recvBytes atomic.Uint64
	fwdPackets, fwdBytes   atomic.Uint64
	nacksSent, nacksRecv   atomic.Uint64

	keyframesSent, keyframesRecv atomic.Uint64

	upLoss, downLoss histogram
	pubJoin, subJoin histogram
	fwdDelay         histogram
}

// Buckets: loss fractions (the first counts loss-free reports), join
// times in seconds (ICE and DTLS on a LAN take tens of milliseconds; over
// the Internet, with TCP fallback, seconds).
var (
	lossBounds = []float64{0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1}
	joinBounds = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30}
	// delayBounds, in seconds: from a tenth of a millisecond (a packet to
	// a few subscribers) to a tenth of a second (a server out of CPU).
	delayBounds = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1}
)

// histogram is a fixed-bucket histogram updated with atomics; its bounds
// are passed in (at most 15: lossBounds or joinBounds), so that its zero
// value is ready to use.
type histogram struct {
	counts [16]atomic.Uint64
	sum    atomic.Uint64 // float64 bits
}

func (h *histogram) observe(bounds []float64, v float64) {
	h.counts[sort.SearchFloat64s(bounds, v)].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

func (h *histogram) snapshot(bounds []float64) Histogram {
	out := Histogram{Bounds: bounds, Counts: make([]uint64, len(bounds)+1)}
	for i := range out.Counts {
		out.Counts[i] = h.counts[i].Load()
		out.Count += out.Counts[i]
	}
	out.Sum = math.Float64frombits(h.sum.Load())
	return out
}

// watchJoin observes how long pc takes to be connected (its DTLS up), and
// then runs connected, if any (on pion's goroutine, with the DTLS
// transport's lock held, before its SRTP session starts). DTLSTransport's
// state handler is one the engine does not otherwise use.
func (s *engineStats) watchJoin(pc *webrtc.PeerConnection, role peerRole, connected func()) {
	h := &s.subJoin
	if role == rolePublisher {
		h = &s.pubJoin
	}
	start := time.Now()
	var done atomic.Bool
	pc.SCTP().Transport().OnStateChange(func(st webrtc.DTLSTransportState) {
		if st == webrtc.DTLSTransportStateConnected && !done.Swap(true) {
			h.observe(joinBounds, time.Since(start).Seconds())
			if connected != nil {
				connected()
			}
		}
	})
}

// forwarded counts one RTP packet sent to a subscriber (HOT PATH).
func (s *engineStats) forwarded(h *rtp.Header, payload []byte) {
	s.fwdPackets.Add(1)
	s.fwdBytes.Add(uint64(h.MarshalSize() + len(payload)))
}

// statsFactory builds the stats interceptor. It is registered first, so
// that it is the innermost: it sees what goes to and comes from the wire,
// the RTCP the other interceptors write (NACKs and receiver reports to
// publishers) included.
type statsFactory struct {
	e         *Engine
	publisher bool // the connection's role: publisher or subscriber
}

func (f statsFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &statsInterceptor{s: &f.e.stats, publisher: f.publisher}, nil
}

// statsInterceptor counts one peer connection's media: on a publisher's
// connection the RTP it receives and the RTCP the server sends it, on a
// subscriber's the RTP the server sends and the RTCP it receives.
type statsInterceptor struct {
	interceptor.NoOp
	s         *engineStats
	publisher bool
}

// BindRemoteStream counts RTP from a publisher (HOT PATH).
func (i *statsInterceptor) BindRemoteStream(_ *interceptor.StreamInfo, reader interceptor.RTPReader) interceptor.RTPReader {
	if !i.publisher {
		return reader
	}
	s := i.s
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := reader.Read(b, a)
		if err == nil {
			s.recvPackets.Add(1)
			s.recvBytes.Add(uint64(n))
		}
		return n, a, err
	})
}

// BindLocalStream counts RTP to a subscriber (HOT PATH).
func (i *statsInterceptor) BindLocalStream(_ *interceptor.StreamInfo, writer interceptor.RTPWriter) interceptor.RTPWriter {
	if i.publisher {
		return writer
	}
	s := i.s
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		n, err := writer.Write(h, payload, a)
		if err == nil {
			s.forwarded(h, payload)
		}
		return n, err
	})
}

// BindRTCPWriter sees the RTCP sent to publishers: NACKs, keyframe
// requests and receiver reports.
func (i *statsInterceptor) BindRTCPWriter(writer interceptor.RTCPWriter) interceptor.RTCPWriter {
	if !i.publisher {
		return writer
	}
	s := i.s
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, a interceptor.Attributes) (int, error) {
		n, err := writer.Write(pkts, a)
		if err == nil {
			s.countRTCP(pkts, &s.nacksSent, &s.keyframesSent, &s.upLoss)
		}
		return n, err
	})
}

// BindRTCPReader sees the RTCP subscribers send: NACKs, keyframe requests
// and receiver reports. The packets it parses are left in the attributes,
// where the engine's own reader (feedback.go) finds them.
func (i *statsInterceptor) BindRTCPReader(reader interceptor.RTCPReader) interceptor.RTCPReader {
	if i.publisher {
		return reader
	}
	s := i.s
	return interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := reader.Read(b, a)
		if err != nil {
			return n, a, err
		}
		if a == nil {
			a = interceptor.Attributes{}
		}
		if pkts, perr := a.GetRTCPPackets(b[:n]); perr == nil {
			s.countRTCP(pkts, &s.nacksRecv, &s.keyframesRecv, &s.downLoss)
		}
		return n, a, err
	})
}

func (s *engineStats) countRTCP(pkts []rtcp.Packet, nacks, keyframes *atomic.Uint64, loss *histogram) {
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.TransportLayerNack:
			var n uint64
			for _, pair := range p.Nacks {
				n += 1 + uint64(bits.OnesCount16(uint16(pair.LostPackets)))
			}
			nacks.Add(n)
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			keyframes.Add(1)
		case *rtcp.ReceiverReport:
			for _, r := range p.Reports {
				loss.observe(lossBounds, float64(r.FractionLost)/256)
			}
		case *rtcp.SenderReport:
			for _, r := range p.Reports {
				loss.observe(lossBounds, float64(r.FractionLost)/256)
			}
		}
	}
}

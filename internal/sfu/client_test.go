package sfu

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Test peers: real pion peer connections talking to the engine over
// loopback, with signalling done in-process.

const testTimeout = 30 * time.Second

// testContext returns a context that ends the test's waiting.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// checkLeaks fails the test if goroutines started during it are still
// running once it (and every cleanup registered after this call) is done.
func checkLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(15 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Errorf("%d goroutines leaked:\n%s", runtime.NumGoroutine()-before, buf[:n])
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// testLean runs the tests' subscribers on lean connections (lean.go)
// where they can be.
var testLean = os.Getenv("ROSTRUM_TEST_LEAN") != "0"

// newTestEngine starts an engine on loopback, closed at cleanup.
func newTestEngine(t testing.TB) *Engine {
	t.Helper()
	return newTestEngineWith(t, Config{ListenIP: "127.0.0.1", LeanSubscribers: testLean})
}

// newPionEngine starts an engine whose subscribers all have pion's peer
// connections (the tests of what pion's connections do).
func newPionEngine(t testing.TB) *Engine {
	t.Helper()
	return newTestEngineWith(t, Config{ListenIP: "127.0.0.1"})
}

func newTestEngineWith(t testing.TB, cfg Config) *Engine {
	t.Helper()
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("engine close: %v", err)
		}
	})
	return e
}

type clientOpts struct {
	video   []string // video codecs offered: "VP8", "H264", "VP9"
	noAudio bool
	noRTX   bool
	noNACK  bool
	tcpOnly bool
	// srtpProfiles and cipherSuites, if set, are all the client accepts.
	srtpProfiles []dtls.SRTPProtectionProfile
	cipherSuites []dtls.CipherSuiteID
	cryptex      bool // require RFC 9335 header extension encryption (pion offers it by default)
	// blockUDP makes a client behind a firewall that blocks UDP: it
	// gathers its UDP candidates (on a socket whose sends are all
	// dropped) and can use ICE-TCP.
	blockUDP bool
	// mute, if set, makes the client vanish without a word when it is
	// set: everything it sends over UDP from then on is dropped.
	mute *atomic.Bool
	// drop, if set, discards received RTP packets before pion's NACK
	// generator sees them.
	drop func(h *rtp.Header) bool
	// tcc, if set, tallies the transport-wide numbers sent and reported.
	tcc *tccTally
	// downlink, if set, puts the client behind a bottleneck on the way
	// in (shapedUDP).
	downlink *shapedUDP
}

const (
	clientOpusPT = 111
	clientVP8PT  = 96
	clientH264PT = 102
	clientVP9PT  = 98
)

func clientAPI(t testing.TB, o clientOpts) *webrtc.API {
	t.Helper()
	m := &webrtc.MediaEngine{}
	fb := []webrtc.RTCPFeedback{{Type: "transport-cc"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack", Parameter: "pli"}}
	if !o.noNACK {
		fb = append(fb, webrtc.RTCPFeedback{Type: "nack"})
	}
	reg := func(kind webrtc.RTPCodecType, pt uint8, mime, fmtp string, clock uint32, ch uint16, fb []webrtc.RTCPFeedback) {
		err := m.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: mime, ClockRate: clock, Channels: ch, SDPFmtpLine: fmtp, RTCPFeedback: fb},
			PayloadType:        webrtc.PayloadType(pt),
		}, kind)
		if err != nil {
			t.Fatal(err)
		}
	}
	if !o.noAudio {
		reg(webrtc.RTPCodecTypeAudio, clientOpusPT, webrtc.MimeTypeOpus, "minptime=10;useinbandfec=1", 48000, 2, []webrtc.RTCPFeedback{{Type: "transport-cc"}})
	}
	video := o.video
	if video == nil {
		video = []string{"VP8"}
	}
	for _, v := range video {
		var pt uint8
		switch v {
		case "VP8":
			pt = clientVP8PT
			reg(webrtc.RTPCodecTypeVideo, pt, webrtc.MimeTypeVP8, "", 90000, 0, fb)
		case "H264":
			pt = clientH264PT
			reg(webrtc.RTPCodecTypeVideo, pt, webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", 90000, 0, fb)
		case "VP9":
			pt = clientVP9PT
			reg(webrtc.RTPCodecTypeVideo, pt, webrtc.MimeTypeVP9, "profile-id=0", 90000, 0, fb)
		}
		if !o.noRTX {
			reg(webrtc.RTPCodecTypeVideo, pt+1, webrtc.MimeTypeRTX, fmt.Sprintf("apt=%d", pt), 90000, 0, nil)
		}
	}
	for _, x := range []struct {
		uri  string
		kind webrtc.RTPCodecType
	}{
		{sdp.SDESMidURI, webrtc.RTPCodecTypeVideo}, {sdp.SDESRTPStreamIDURI, webrtc.RTPCodecTypeVideo},
		{sdp.SDESRepairRTPStreamIDURI, webrtc.RTPCodecTypeVideo}, {sdp.TransportCCURI, webrtc.RTPCodecTypeVideo},
		{sdp.SDESMidURI, webrtc.RTPCodecTypeAudio}, {sdp.TransportCCURI, webrtc.RTPCodecTypeAudio},
	} {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: x.uri}, x.kind); err != nil {
			t.Fatal(err)
		}
	}

	ir := &interceptor.Registry{}
	if o.drop != nil {
		ir.Add(dropFactory{drop: o.drop})
	}
	gen, err := nack.NewGeneratorInterceptor(nack.GeneratorInterval(20 * time.Millisecond))
	must(t, err)
	ir.Add(gen)
	resp, err := nack.NewResponderInterceptor()
	must(t, err)
	ir.Add(resp)
	rr, err := report.NewReceiverInterceptor()
	must(t, err)
	ir.Add(rr)
	sr, err := report.NewSenderInterceptor(report.SenderInterval(200 * time.Millisecond))
	must(t, err)
	ir.Add(sr)
	tw, err := twcc.NewSenderInterceptor()
	must(t, err)
	ir.Add(tw)
	if o.tcc != nil {
		// Before the header extension's interceptor: nearer the wire,
		// so it sees the numbers written.
		ir.Add(o.tcc)
	}
	hx, err := twcc.NewHeaderExtensionInterceptor()
	must(t, err)
	ir.Add(hx)

	se := webrtc.SettingEngine{LoggerFactory: pionLogs{log: slog.New(slog.DiscardHandler)}}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	// The test drops packets after SRTP has seen them; a retransmission
	// with the same sequence number would otherwise look like a replay.
	se.DisableSRTPReplayProtection(true)
	if o.srtpProfiles != nil {
		se.SetSRTPProtectionProfiles(o.srtpProfiles...)
	}
	if o.cipherSuites != nil {
		se.SetDTLSCipherSuites(o.cipherSuites...)
	}
	switch {
	case o.tcpOnly:
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	case o.downlink != nil:
		mux := webrtc.NewICEUDPMux(nil, o.downlink)
		t.Cleanup(func() { _ = mux.Close() })
		se.SetICEUDPMux(mux)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	case o.mute != nil:
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		must(t, err)
		mux := webrtc.NewICEUDPMux(nil, mutableUDP{c, o.mute})
		t.Cleanup(func() { _ = mux.Close() })
		se.SetICEUDPMux(mux)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	case o.blockUDP:
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		must(t, err)
		mux := webrtc.NewICEUDPMux(nil, blockedUDP{c})
		t.Cleanup(func() { _ = mux.Close() })
		se.SetICEUDPMux(mux)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeTCP4})
	default:
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
}

// blockedUDP is a UDP socket behind a firewall that lets nothing out.
type blockedUDP struct{ *net.UDPConn }

func (b blockedUDP) WriteTo(p []byte, _ net.Addr) (int, error) { return len(p), nil }

// shapedUDP is a client's UDP socket behind a bottleneck on the way in, as
// at a congested access link: what arrives leaves a FIFO queue at rate
// bits per second (0: at once), and a packet that would wait longer than
// maxQueue is lost. The client sees the queue's delay and its losses,
// as pion's transport-wide feedback reports them, in real time.
type shapedUDP struct {
	*net.UDPConn
	rate     atomic.Int64
	maxQueue time.Duration
	out      chan shapedPacket
	free     time.Time // when the link is next free; the reading goroutine's
}

type shapedPacket struct {
	b       []byte
	from    net.Addr
	release time.Time
}

func newShapedUDP(t testing.TB, maxQueue time.Duration) *shapedUDP {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	must(t, err)
	s := &shapedUDP{UDPConn: c, maxQueue: maxQueue, out: make(chan shapedPacket, 4096)}
	go s.queue()
	return s
}

// queue reads what arrives and queues it at the link's rate.
func (s *shapedUDP) queue() {
	defer close(s.out)
	for {
		b := make([]byte, 1500)
		n, from, err := s.UDPConn.ReadFrom(b)
		if err != nil {
			return
		}
		now := time.Now()
		release := now
		if rate := s.rate.Load(); rate > 0 {
			start := now
			if s.free.After(now) {
				start = s.free
			}
			if start.Sub(now) > s.maxQueue {
				continue // the queue is full: lost
			}
			release = start.Add(time.Duration(int64(n) * 8 * int64(time.Second) / rate))
		}
		s.free = release
		select {
		case s.out <- shapedPacket{b[:n], from, release}:
		default: // the reader stalled: lost
		}
	}
}

func (s *shapedUDP) ReadFrom(b []byte) (int, net.Addr, error) {
	p, ok := <-s.out
	if !ok {
		return 0, nil, net.ErrClosed
	}
	time.Sleep(time.Until(p.release))
	return copy(b, p.b), p.from, nil
}

// mutableUDP drops what is sent once mute is set.
type mutableUDP struct {
	*net.UDPConn
	mute *atomic.Bool
}

func (m mutableUDP) WriteTo(p []byte, a net.Addr) (int, error) {
	if m.mute.Load() {
		return len(p), nil
	}
	return m.UDPConn.WriteTo(p, a)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// dropFactory builds an interceptor that discards chosen incoming packets.
type dropFactory struct{ drop func(h *rtp.Header) bool }

func (f dropFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &dropper{drop: f.drop}, nil
}

type dropper struct {
	interceptor.NoOp
	drop func(h *rtp.Header) bool
}

func (d *dropper) BindRemoteStream(_ *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		for {
			n, attr, err := r.Read(b, a)
			if err != nil {
				return n, attr, err
			}
			var h rtp.Header
			if _, err := h.Unmarshal(b[:n]); err == nil && d.drop(&h) {
				continue
			}
			return n, attr, nil
		}
	})
}

// offerFrom creates pc's offer and waits for its candidates.
func offerFrom(t testing.TB, ctx context.Context, pc *webrtc.PeerConnection) string {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	must(t, err)
	gathered := webrtc.GatheringCompletePromise(pc)
	must(t, pc.SetLocalDescription(offer))
	select {
	case <-gathered:
	case <-ctx.Done():
		t.Fatal("gathering timed out")
	}
	return pc.LocalDescription().SDP
}

func closePC(t testing.TB, pc *webrtc.PeerConnection) {
	t.Cleanup(func() { _ = pc.GracefulClose() })
}

// waitFor polls cond until it holds or the test's time runs out.
func waitFor(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

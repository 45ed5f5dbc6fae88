package sfu

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Test peers: real pion peer connections talking to the engine over
// loopback, with signalling done in-process.

const testTimeout = 30 * time.Second

// testContext returns a context that ends the test's waiting.
func testContext(t *testing.T) context.Context {
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

// newTestEngine starts an engine on loopback, closed at cleanup.
func newTestEngine(t *testing.T) *Engine {
	t.Helper()
	e, err := NewEngine(Config{ListenIP: "127.0.0.1"})
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
	// drop, if set, discards received RTP packets before pion's NACK
	// generator sees them.
	drop func(h *rtp.Header) bool
}

const (
	clientOpusPT = 111
	clientVP8PT  = 96
	clientH264PT = 102
	clientVP9PT  = 98
)

func clientAPI(t *testing.T, o clientOpts) *webrtc.API {
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
	hx, err := twcc.NewHeaderExtensionInterceptor()
	must(t, err)
	ir.Add(hx)

	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	if o.tcpOnly {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	} else {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
}

func must(t *testing.T, err error) {
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
func offerFrom(t *testing.T, ctx context.Context, pc *webrtc.PeerConnection) string {
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

func closePC(t *testing.T, pc *webrtc.PeerConnection) {
	t.Cleanup(func() { _ = pc.GracefulClose() })
}

// waitFor polls cond until it holds or the test's time runs out.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// testPublisher is a pion peer sending synthetic Opus and video.
type testPublisher struct {
	t      *testing.T
	pc     *webrtc.PeerConnection
	pub    *Publisher
	codec  string
	frames frameWriter
	audio  *webrtc.TrackLocalStaticRTP
	video  []*webrtc.TrackLocalStaticRTP // one per rid, or one
	rids   []string
	midExt uint8
	ridExt uint8
	mid    string

	wantKey [3]atomic.Bool
	plis    [3]atomic.Int64 // keyframe requests received, per layer
	closed  chan error
	media   chan struct{}

	stop chan struct{}
	wg   sync.WaitGroup
}

type pubOpts struct {
	codec   string   // "VP8" (default) or "H264"
	rids    []string // simulcast rids, in the order sent
	noAudio bool
	client  clientOpts
}

func startPublisher(t *testing.T, ctx context.Context, r *Router, id string, o pubOpts) *testPublisher {
	t.Helper()
	if o.codec == "" {
		o.codec = "VP8"
	}
	if o.client.video == nil {
		o.client.video = []string{o.codec}
	}
	tp := &testPublisher{t: t, codec: o.codec, rids: o.rids, closed: make(chan error, 1), media: make(chan struct{}), stop: make(chan struct{})}
	tp.frames = vp8Frames{}
	mime := webrtc.MimeTypeVP8
	if o.codec == "H264" {
		tp.frames, mime = h264Frames{}, webrtc.MimeTypeH264
	}
	pc, err := clientAPI(t, o.client).NewPeerConnection(webrtc.Configuration{})
	must(t, err)
	tp.pc = pc
	closePC(t, pc)

	if !o.noAudio {
		tp.audio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", id)
		must(t, err)
		_, err = pc.AddTransceiverFromTrack(tp.audio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		must(t, err)
	}
	var opts []func(*webrtc.TrackLocalStaticRTP)
	layers := max(1, len(o.rids))
	for i := range layers {
		if len(o.rids) > 0 {
			opts = []func(*webrtc.TrackLocalStaticRTP){webrtc.WithRTPStreamID(o.rids[i])}
		}
		v, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: mime}, "video", id, opts...)
		must(t, err)
		tp.video = append(tp.video, v)
	}
	tr, err := pc.AddTransceiverFromTrack(tp.video[0], webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	must(t, err)
	for _, v := range tp.video[1:] {
		must(t, tr.Sender().AddEncoding(v))
	}
	for _, x := range tr.Sender().GetParameters().HeaderExtensions {
		switch x.URI {
		case sdp.SDESMidURI:
			tp.midExt = uint8(x.ID)
		case sdp.SDESRTPStreamIDURI:
			tp.ridExt = uint8(x.ID)
		}
	}

	offer := offerFrom(t, ctx, pc)
	tp.mid = tr.Mid()
	var mediaOnce sync.Once
	pub, answer, err := r.Publish(ctx, id, offer, PublisherCallbacks{
		OnMedia:  func() { mediaOnce.Do(func() { close(tp.media) }) },
		OnClosed: func(err error) { tp.closed <- err },
	})
	must(t, err)
	tp.pub = pub
	must(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}))

	sender := tr.Sender()
	for i := range layers {
		rid := ""
		if len(o.rids) > 0 {
			rid = o.rids[i]
		}
		tp.wg.Add(1)
		go tp.readRTCP(sender, rid, i)
	}
	tp.wg.Add(1)
	go tp.send()
	t.Cleanup(tp.halt)
	return tp
}

// halt stops sending (idempotent).
func (tp *testPublisher) halt() {
	select {
	case <-tp.stop:
	default:
		close(tp.stop)
	}
	_ = tp.pc.GracefulClose()
	tp.wg.Wait()
}

func (tp *testPublisher) readRTCP(s *webrtc.RTPSender, rid string, layer int) {
	defer tp.wg.Done()
	for {
		pkts, _, err := s.ReadSimulcastRTCP(rid)
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				tp.plis[layer].Add(1)
				tp.wantKey[layer].Store(true)
			}
		}
	}
}

// layerSizes are the picture sizes sent per layer, lowest first.
var layerSizes = [3][2]int{{320, 180}, {640, 360}, {1280, 720}}

// send writes 50 audio packets and 30 frames per layer a second.
func (tp *testPublisher) send() {
	defer tp.wg.Done()
	n := len(tp.video)
	seq := make([]uint16, n)
	ts := make([]uint32, n)
	for i := range n {
		seq[i], ts[i] = uint16(rand.IntN(60000)), rand.Uint32()
	}
	aSeq, aTS := uint16(rand.IntN(60000)), rand.Uint32()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for step := uint32(0); ; step++ {
		select {
		case <-tp.stop:
			return
		case <-tick.C:
		}
		if tp.audio != nil && step%2 == 0 {
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: aSeq, Timestamp: aTS, Marker: step == 0}, Payload: opusPayload(step / 2)}
			aSeq++
			aTS += 960
			_ = tp.audio.WriteRTP(pkt)
		}
		if step%3 != 0 {
			continue
		}
		frame := step / 3
		for i, v := range tp.video {
			layer := tp.layerIndex(i)
			key := frame%90 == 0 || tp.wantKey[i].Swap(false)
			size := layerSizes[min(int(layer), 2)]
			payloads := tp.frames.frame(layer, frame, key, size[0], size[1])
			for k, pl := range payloads {
				// The trailer carries the source sequence number too.
				putSrcSeq(pl, seq[i])
				h := rtp.Header{Version: 2, SequenceNumber: seq[i], Timestamp: ts[i], Marker: k == len(payloads)-1}
				if tp.midExt != 0 {
					_ = h.SetExtension(tp.midExt, []byte(tp.mid))
				}
				if len(tp.rids) > 0 && tp.ridExt != 0 {
					_ = h.SetExtension(tp.ridExt, []byte(tp.rids[i]))
				}
				seq[i]++
				_ = v.WriteRTP(&rtp.Packet{Header: h, Payload: pl})
			}
			ts[i] += 3000
		}
	}
}

// layerIndex maps the i-th sent encoding to its quality rank (the payload
// says which layer it is).
func (tp *testPublisher) layerIndex(i int) uint8 {
	if len(tp.rids) == 0 {
		return 0
	}
	return uint8(ridRank[tp.rids[i]])
}

func putSrcSeq(payload []byte, seq uint16) {
	t := payload[len(payload)-trailerLen:]
	t[12], t[13] = byte(seq>>8), byte(seq)
}

// received is one packet a test subscriber got.
type received struct {
	seq      uint16
	fullTS   uint32
	ssrc     uint32
	pt       uint8
	id       packetID
	keyStart bool // first packet of a keyframe
}

// testSubscriber is a pion peer receiving from the engine.
type testSubscriber struct {
	t      *testing.T
	pc     *webrtc.PeerConnection
	sub    *Subscriber
	closed chan error

	mu      sync.Mutex
	packets map[webrtc.RTPCodecType][]received
	tracks  map[webrtc.RTPCodecType]*webrtc.TrackRemote
	errs    []error
	srs     []rtcp.SenderReport
	wg      sync.WaitGroup
}

type subOpts struct {
	client  clientOpts
	options SubscribeOptions
	video   int // video sections to offer (default 1)
}

func subscribe(t *testing.T, ctx context.Context, r *Router, id, pubID string, o subOpts) (*testSubscriber, error) {
	t.Helper()
	ts := &testSubscriber{t: t, closed: make(chan error, 1), packets: map[webrtc.RTPCodecType][]received{}, tracks: map[webrtc.RTPCodecType]*webrtc.TrackRemote{}}
	pc, err := clientAPI(t, o.client).NewPeerConnection(webrtc.Configuration{})
	must(t, err)
	ts.pc = pc
	closePC(t, pc)
	t.Cleanup(ts.wg.Wait)
	recv := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}
	if !o.client.noAudio {
		_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, recv)
		must(t, err)
	}
	if o.video == 0 {
		o.video = 1
	}
	for range o.video {
		_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, recv)
		must(t, err)
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, rc *webrtc.RTPReceiver) {
		ts.mu.Lock()
		ts.tracks[tr.Kind()] = tr
		ts.mu.Unlock()
		ts.wg.Add(2)
		go ts.read(tr)
		go ts.readRTCP(rc)
	})
	offer := offerFrom(t, ctx, pc)
	o.options.OnClosed = func(err error) { ts.closed <- err }
	sub, answer, err := r.Subscribe(ctx, id, pubID, offer, o.options)
	if err != nil {
		return nil, err
	}
	ts.sub = sub
	must(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}))
	return ts, nil
}

func (ts *testSubscriber) read(tr *webrtc.TrackRemote) {
	defer ts.wg.Done()
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		id, perr := parsePayload(p.Payload)
		rec := received{seq: p.SequenceNumber, fullTS: p.Timestamp, ssrc: p.SSRC, pt: p.PayloadType, id: id}
		switch tr.Codec().MimeType {
		case webrtc.MimeTypeVP8:
			rec.keyStart, _, _ = vp8Keyframe(p.Payload)
		case webrtc.MimeTypeH264:
			rec.keyStart, _, _ = h264Keyframe(p.Payload)
		}
		ts.mu.Lock()
		if perr != nil {
			ts.errs = append(ts.errs, fmt.Errorf("seq %d: %w", p.SequenceNumber, perr))
		}
		ts.packets[tr.Kind()] = append(ts.packets[tr.Kind()], rec)
		ts.mu.Unlock()
	}
}

func (ts *testSubscriber) readRTCP(rc *webrtc.RTPReceiver) {
	defer ts.wg.Done()
	for {
		pkts, _, err := rc.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok {
				ts.mu.Lock()
				ts.srs = append(ts.srs, *sr)
				ts.mu.Unlock()
			}
		}
	}
}

func (ts *testSubscriber) count(kind webrtc.RTPCodecType) int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.packets[kind])
}

func (ts *testSubscriber) snapshot(kind webrtc.RTPCodecType) []received {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]received(nil), ts.packets[kind]...)
}

func (ts *testSubscriber) errors() error {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return errors.Join(ts.errs...)
}

func (ts *testSubscriber) track(kind webrtc.RTPCodecType) *webrtc.TrackRemote {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.tracks[kind]
}

// sdpWithout removes lines containing any of the fragments.
func sdpWithout(s string, fragments ...string) string {
	var out []string
	for _, line := range strings.Split(s, "\r\n") {
		keep := true
		for _, f := range fragments {
			if strings.Contains(line, f) {
				keep = false
			}
		}
		if keep {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\r\n")
}

package sfu

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// testPublisher is a pion peer sending synthetic Opus and video.
type testPublisher struct {
	t      testing.TB
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

	keyOnRequest bool
	wantKey      [3]atomic.Bool
	plis         [3]atomic.Int64 // keyframe requests received, per layer
	closed       chan error
	media        chan struct{}

	stop chan struct{}
	wg   sync.WaitGroup
}

type pubOpts struct {
	codec   string   // "VP8" (default) or "H264"
	rids    []string // simulcast rids, in the order sent
	noAudio bool
	silent  bool // send nothing (benchmarks feed the engine directly)
	// keyOnRequest sends keyframes only first and when asked (PLI or
	// FIR), none every 90 frames.
	keyOnRequest bool
	// layerPackets, if set, is how many packets a delta frame of each
	// layer has (VP8), lowest first: layers of different bitrates.
	layerPackets [3]uint8
	client       clientOpts
}

func startPublisher(t testing.TB, ctx context.Context, r *Router, id string, o pubOpts) *testPublisher {
	t.Helper()
	if o.codec == "" {
		o.codec = "VP8"
	}
	if o.client.video == nil {
		o.client.video = []string{o.codec}
	}
	tp := &testPublisher{t: t, codec: o.codec, rids: o.rids, keyOnRequest: o.keyOnRequest, closed: make(chan error, 1), media: make(chan struct{}), stop: make(chan struct{})}
	tp.frames = vp8Frames{perLayer: o.layerPackets}
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
	if !o.silent {
		tp.wg.Add(1)
		go tp.send()
	}
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
			pl := opusPayload(step / 2)
			putSrcSeq(pl, aSeq)
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: aSeq, Timestamp: aTS, Marker: step == 0}, Payload: pl}
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
			key := frame == 0 || (frame%90 == 0 && !tp.keyOnRequest) || tp.wantKey[i].Swap(false)
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

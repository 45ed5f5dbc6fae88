package sfu

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// localFeeder writes synthetic Opus and H.264 into a local publisher from
// Go, as RTMP ingest and replication do: 50 audio packets and 30 frames a
// second, a keyframe when asked for (and never otherwise, as an RTMP
// encoder's GOP is out of reach).
type localFeeder struct {
	pub      *Publisher
	wantKey  atomic.Bool
	requests atomic.Int64
	media    chan struct{}
	closed   chan error
	stop     chan struct{}
	wg       sync.WaitGroup
	writeErr atomic.Value // error of the last failed WriteRTP
}

func startLocal(t *testing.T, r *Router, id string) *localFeeder {
	t.Helper()
	f := &localFeeder{media: make(chan struct{}), closed: make(chan error, 1), stop: make(chan struct{})}
	var once sync.Once
	pub, err := r.PublishLocal(id, []LocalTrack{{Kind: Audio, Codec: "opus"}, {Kind: Video, Codec: "H264"}}, LocalPublisherOptions{
		OnKeyframeRequest: func(track int) {
			if track != 1 {
				t.Errorf("keyframe requested on track %d, which is audio", track)
			}
			f.requests.Add(1)
			f.wantKey.Store(true)
		},
		OnMedia:  func() { once.Do(func() { close(f.media) }) },
		OnClosed: func(err error) { f.closed <- err },
	})
	must(t, err)
	f.pub = pub
	f.wg.Add(1)
	go f.send()
	t.Cleanup(func() {
		close(f.stop)
		f.wg.Wait()
	})
	return f
}

func (f *localFeeder) send() {
	defer f.wg.Done()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var aSeq, vSeq uint16 = 65000, 65500 // both wrap early in the test
	var aTS, vTS uint32 = 1 << 31, 1 << 30
	write := func(track int, h *rtp.Header, pl []byte) {
		if err := f.pub.WriteRTP(track, h, pl); err != nil {
			f.writeErr.Store(err)
		}
	}
	for step := uint32(0); ; step++ {
		select {
		case <-f.stop:
			return
		case <-tick.C:
		}
		if step%2 == 0 {
			pl := opusPayload(step / 2)
			putSrcSeq(pl, aSeq)
			write(0, &rtp.Header{SequenceNumber: aSeq, Timestamp: aTS, SSRC: 1234, PayloadType: 99}, pl)
			aSeq++
			aTS += 960
		}
		if step%3 != 0 {
			continue
		}
		frame := step / 3
		key := frame == 0 || f.wantKey.Swap(false)
		payloads := h264Frames{}.frame(0, frame, key, 640, 360)
		for k, pl := range payloads {
			putSrcSeq(pl, vSeq)
			write(1, &rtp.Header{SequenceNumber: vSeq, Timestamp: vTS, Marker: k == len(payloads)-1}, pl)
			vSeq++
		}
		vTS += 3000
	}
}

func TestLocalPublisherReachesSubscriberAndTap(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	e := newTestEngine(t)
	r := e.NewRouter("stage")
	f := startLocal(t, r, "ingest")
	<-f.media

	if !f.pub.Local() || len(f.pub.Tracks()) != 2 || f.pub.Tracks()[1].Codec != "H264" || f.pub.Tracks()[0].Codec != "opus" {
		t.Fatalf("tracks %+v", f.pub.Tracks())
	}
	if r.Publisher("ingest") != f.pub {
		t.Fatal("the local publisher is not the router's")
	}
	before := f.requests.Load()
	ts, err := subscribe(t, ctx, r, "bob", "ingest", subOpts{client: clientOpts{video: []string{"H264"}}})
	must(t, err)
	// Frame 0 was the only keyframe sent unasked: the subscriber can only
	// start on one it asked for, through OnKeyframeRequest.
	waitFor(t, ctx, "audio and video at the subscriber", func() bool {
		return ts.count(webrtc.RTPCodecTypeAudio) >= 50 && ts.count(webrtc.RTPCodecTypeVideo) >= 60
	})
	if f.requests.Load() == before {
		t.Fatal("the subscriber started without a keyframe request reaching the feeder")
	}
	if err := ts.errors(); err != nil {
		t.Fatal(err)
	}
	video := ts.snapshot(webrtc.RTPCodecTypeVideo)
	if !video[0].keyStart || video[0].pt != clientH264PT {
		t.Fatalf("first video packet %+v: want the start of a keyframe, payload type %d", video[0], clientH264PT)
	}
	for i := 1; i < len(video); i++ {
		if video[i].seq != video[i-1].seq+1 {
			t.Fatalf("video sequence jumps from %d to %d", video[i-1].seq, video[i].seq)
		}
	}

	log := newTapLog()
	kinds := []TapTrack{{Kind: Audio, Codec: "opus"}, {Kind: Video, Codec: "H264"}}
	tap, err := r.Tap("ingest", log.options(func() []TapTrack { return kinds }))
	must(t, err)
	tt := tap.Tracks()
	if len(tt) != 2 || tt[0].Codec != "opus" || tt[0].Channels != 2 || tt[1].Codec != "H264" || tt[1].Clock != 90000 {
		t.Fatalf("tap tracks %+v", tt)
	}
	waitFor(t, ctx, "audio and video through the tap", func() bool {
		return len(log.snapshot(0)) >= 20 && len(log.snapshot(1)) >= 20
	})
	if first := log.snapshot(1)[0]; !first.keyStart {
		t.Fatalf("the tap's video starts with %+v, not a keyframe", first)
	}
	log.mu.Lock()
	tapErrs := errors.Join(log.errs...)
	log.mu.Unlock()
	if tapErrs != nil {
		t.Fatal(tapErrs)
	}
	// The feeder's clock mapping reaches the tap's reports.
	const ntp = uint64(3_900_000_000) << 32
	f.pub.SetSenderReport(0, ntp, 12345)
	if gotNTP, gotRTP, ok := tap.SenderReport(0); !ok || gotNTP < ntp || gotNTP-ntp > 60<<32 || gotRTP-12345 > 60*48000 {
		t.Fatalf("tap's report %d/%d (ok %v), want the feeder's mapping %d/12345 advanced by the time since", gotNTP, gotRTP, ok, ntp)
	}
	tap.Close()
	if err := <-log.closed; err != nil {
		t.Fatalf("tap closed with %v", err)
	}
	if v := f.writeErr.Load(); v != nil {
		t.Fatalf("WriteRTP: %v", v)
	}
}

func TestLocalPublisherClose(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	e := newTestEngine(t)
	r := e.NewRouter("stage")
	f := startLocal(t, r, "ingest")
	<-f.media
	ts, err := subscribe(t, ctx, r, "bob", "ingest", subOpts{client: clientOpts{video: []string{"H264"}}})
	must(t, err)
	waitFor(t, ctx, "video at the subscriber", func() bool { return ts.count(webrtc.RTPCodecTypeVideo) > 0 })
	log := newTapLog()
	_, err = r.Tap("ingest", log.options(func() []TapTrack { return nil }))
	must(t, err)

	must(t, f.pub.Close())
	if err := <-f.closed; err != nil {
		t.Fatalf("OnClosed(%v), want nil after Close", err)
	}
	if err := <-ts.closed; !errors.Is(err, ErrPublisherClosed) {
		t.Fatalf("subscriber closed with %v, want ErrPublisherClosed", err)
	}
	if err := <-log.closed; !errors.Is(err, ErrPublisherClosed) {
		t.Fatalf("tap closed with %v, want ErrPublisherClosed", err)
	}
	if r.Publisher("ingest") != nil {
		t.Fatal("the closed publisher is still the router's")
	}
	if err := f.pub.WriteRTP(0, &rtp.Header{}, []byte{1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteRTP after Close: %v, want ErrClosed", err)
	}
}

func TestLocalPublisherEndsWithItsRouter(t *testing.T) {
	checkLeaks(t)
	e := newTestEngine(t)
	r := e.NewRouter("stage")
	f := startLocal(t, r, "ingest")
	<-f.media
	must(t, r.Close())
	if err := <-f.closed; !errors.Is(err, ErrClosed) {
		t.Fatalf("OnClosed(%v), want ErrClosed", err)
	}
	if _, err := r.PublishLocal("again", []LocalTrack{{Kind: Audio, Codec: "opus"}}, LocalPublisherOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("PublishLocal on a closed router: %v", err)
	}
}

func TestLocalPublisherRefusals(t *testing.T) {
	e := newTestEngine(t)
	r := e.NewRouter("stage")
	for _, tracks := range [][]LocalTrack{
		nil,
		{{Kind: Video, Codec: "VP9"}},
		{{Kind: Audio, Codec: "AAC", Clock: 44100}},
		{{Kind: Video, Codec: "H264", Fmtp: "packetization-mode=1;profile-level-id=640028"}}, // High profile
		{{Kind: Audio, Codec: "H264"}},
	} {
		if _, err := r.PublishLocal("x", tracks, LocalPublisherOptions{}); !errors.Is(err, ErrNoMatchingCodec) && !errors.Is(err, ErrBadOffer) {
			t.Errorf("PublishLocal(%+v): %v, want a refusal", tracks, err)
		}
	}
	if r.Publisher("x") != nil {
		t.Fatal("a refused local publisher was registered")
	}
	pub, err := r.PublishLocal("y", []LocalTrack{{Kind: Audio, Codec: "opus"}}, LocalPublisherOptions{})
	must(t, err)
	defer pub.Close()
	if err := pub.WriteRTP(1, &rtp.Header{}, []byte{1}); !errors.Is(err, ErrNoSuchTrack) {
		t.Fatalf("WriteRTP on track 1 of 1: %v", err)
	}
	if err := pub.WriteRTP(0, &rtp.Header{}, make([]byte, maxPacket)); !errors.Is(err, ErrPacketTooLarge) {
		t.Fatalf("WriteRTP of an oversize packet: %v", err)
	}
}

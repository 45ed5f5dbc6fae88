package rtclient

import (
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"
)

// subscribeTo subscribes to pid at the answerer and closes the subscriber
// with the test.
func subscribeTo(t *testing.T, a *answerer, pid string, opts SubscribeOptions) *Subscriber {
	t.Helper()
	ctx := testContext(t)
	opts.PublisherID = pid
	opts.LoopbackOnly = true
	s, err := Subscribe(ctx, stageToken(t, "viewer", a.whipURL(), "ws://x"), opts)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(ctx) })
	return s
}

func TestSubscribeReceivesWhatWasSent(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	a := newAnswerer(t)
	a.subSource = func(kind string) MediaSource {
		if kind == KindAudio {
			return NewSyntheticSource(SyntheticOptions{Codec: CodecOpus})
		}
		return NewSyntheticSource(SyntheticOptions{Codec: CodecVP8, FrameSize: 5000, KeyframeInterval: 15})
	}
	s := subscribeTo(t, a, "pub1", SubscribeOptions{})
	for kind, n := range map[string]int{KindAudio: 50, KindVideo: 30} {
		if err := s.WaitFrames(ctx, kind, n); err != nil {
			t.Fatal(err)
		}
	}
	sess := a.onlySubscriber(t)
	for kind, n := range map[string]int{KindAudio: 50, KindVideo: 30} {
		assertPrefix(t, kind, s.ReceivedFrames(kind), sess.sentFrames(kind), n)
	}
	st := s.Stats(KindVideo)
	if st.MimeType != webrtcVP8 || st.Packets < 30 || st.Bytes == 0 || st.Lost != 0 || st.Keyframes < 2 || st.FirstPacket.IsZero() || st.FirstFrame.IsZero() {
		t.Errorf("video stats = %+v", st)
	}
	if s.Mid(KindAudio) == "" || s.Mid(KindVideo) == "" || s.Mid(KindAudio) == s.Mid(KindVideo) {
		t.Errorf("mids = %q, %q", s.Mid(KindAudio), s.Mid(KindVideo))
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// The subscription was DELETEd.
	var deleted bool
	for _, r := range a.recorded() {
		deleted = deleted || r.Method == http.MethodDelete
	}
	if !deleted {
		t.Error("Close did not DELETE the resource")
	}
	if err := s.WaitFrames(ctx, KindVideo, 1<<30); !errors.Is(err, ErrClosed) {
		t.Errorf("WaitFrames after Close = %v", err)
	}
}

const webrtcVP8 = "video/VP8"

func TestSubscribeFileMedia(t *testing.T) {
	fx := fixtures(t)
	checkLeaks(t)
	ctx := testContext(t)
	a := newAnswerer(t)
	audio, err := NewFileSource(fx.Opus)
	if err != nil {
		t.Fatal(err)
	}
	video, err := NewFileSource(fx.H264)
	if err != nil {
		t.Fatal(err)
	}
	a.subSource = func(kind string) MediaSource {
		if kind == KindAudio {
			return audio.Clone()
		}
		return video.Clone()
	}
	s := subscribeTo(t, a, "pubFile", SubscribeOptions{})
	if err := s.WaitFrames(ctx, KindVideo, 40); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitFrames(ctx, KindAudio, 60); err != nil {
		t.Fatal(err)
	}
	sess := a.onlySubscriber(t)
	assertPrefix(t, "video", s.ReceivedFrames(KindVideo), sess.sentFrames(KindVideo), 40)
	assertPrefix(t, "audio", s.ReceivedFrames(KindAudio), sess.sentFrames(KindAudio), 60)
	// And those are the file's frames.
	assertPrefix(t, "video vs file", s.ReceivedFrames(KindVideo)[:40], video.Hashes(), 40)
	if k := s.Stats(KindVideo).Keyframes; k < 2 {
		t.Errorf("keyframes = %d, want ≥ 2 (one per second)", k)
	}
}

// Packets dropped by the Drop hook are NACKed and retransmitted, so every
// frame still arrives intact.
func TestSubscribeRecoversDroppedPacketsByNACK(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	a := newAnswerer(t)
	a.subSource = func(kind string) MediaSource {
		if kind == KindAudio {
			return nil
		}
		// Big frames: several packets each, FU-A fragments among them.
		return NewSyntheticSource(SyntheticOptions{Codec: CodecH264, FrameSize: 4000, KeyframeSize: 10000, KeyframeInterval: 30})
	}
	var mu sync.Mutex
	dropped := map[uint16]bool{}
	seen := 0
	drop := func(kind string, seq uint16) bool {
		if kind != KindVideo {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		// A packet lost before the first one that arrives cannot be
		// NACKed: nobody knows it was sent. Start dropping later.
		if seen++; seen < 20 || seq%7 != 3 {
			return false
		}
		if dropped[seq] {
			return false // let the retransmission through
		}
		dropped[seq] = true
		return true
	}
	s := subscribeTo(t, a, "pubLossy", SubscribeOptions{Drop: drop})
	if err := s.WaitFrames(ctx, KindVideo, 45); err != nil {
		t.Fatal(err)
	}
	st := s.Stats(KindVideo)
	// Each drop is NACKed, and (recovered over RTX at once on loopback) not
	// asked for again and again: pion's own generator would go on asking.
	if st.Dropped < 10 || st.NACKs == 0 || st.NACKedSeqs < st.Dropped-3 || st.NACKedSeqs > 3*st.Dropped {
		t.Errorf("dropped %d, NACKs %d (%d seqs): want about one NACKed seq per drop", st.Dropped, st.NACKs, st.NACKedSeqs)
	}
	// Recovered: the received frames are exactly the sent ones, none skipped.
	assertPrefix(t, "video", s.ReceivedFrames(KindVideo), a.onlySubscriber(t).sentFrames(KindVideo), 45)
	eventually(t, 5*time.Second, "no unrecovered gaps", func() bool { return s.Stats(KindVideo).Lost <= 2 })
	// Every drop is a raw gap, counted once, and its retransmission fills it
	// (give or take the packets of the moment: dropping goes on).
	st = s.Stats(KindVideo)
	if st.Gaps < st.Dropped-3 || st.Gaps > st.Dropped+3 || st.Filled < st.Gaps-3 || st.Filled > st.Gaps {
		t.Errorf("dropped %d: %d raw gaps, %d filled; want one each per drop", st.Dropped, st.Gaps, st.Filled)
	}
	t.Logf("video: %+v", st)
}

// Publish, then subscribe to the same participant: the answerer loops the
// publisher's RTP to the subscriber, as an SFU forwards it.
func TestPublishThenSubscribeLoopsMediaBack(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	a := newAnswerer(t)
	p, err := Publish(ctx, stageToken(t, "pubLoop", a.whipURL(), "ws://x"), PublishOptions{
		Audio:        NewSyntheticSource(SyntheticOptions{Codec: CodecOpus}),
		Video:        NewSyntheticSource(SyntheticOptions{Codec: CodecVP8, FrameSize: 3000, KeyframeInterval: 30}),
		LoopbackOnly: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	pub := a.publisher(t, "pubLoop")
	eventually(t, 10*time.Second, "both tracks at the answerer", func() bool {
		return len(pub.received(KindAudio)) > 0 && len(pub.received(KindVideo)) > 0
	})
	s := subscribeTo(t, a, "pubLoop", SubscribeOptions{})
	// Joining mid-stream, the subscriber asks for a keyframe; the answerer
	// passes the PLI on to the publisher.
	eventually(t, 10*time.Second, "the first video packet", func() bool { return s.Stats(KindVideo).Packets > 0 })
	if err := s.SendPLI(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "PLI forwarded to the publisher", func() bool { return p.ReceivedPLIs() >= 1 })
	if err := s.WaitFrames(ctx, KindVideo, 30); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitFrames(ctx, KindAudio, 50); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	assertContiguous(t, "video", s.ReceivedFrames(KindVideo), p.SentFrames(KindVideo), 30)
	assertContiguous(t, "audio", s.ReceivedFrames(KindAudio), p.SentFrames(KindAudio), 50)
	if s.Stats(KindVideo).PLIs < 1 {
		t.Errorf("PLIs sent = %d", s.Stats(KindVideo).PLIs)
	}
}

// The layer and playback-control links (IVS-BEHAVIOUR.md §2.2).
func TestSubscribeLayerAndPlaybackLinks(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	a := newAnswerer(t)
	a.subSource = func(kind string) MediaSource {
		if kind == KindAudio {
			return nil
		}
		return NewSyntheticSource(SyntheticOptions{})
	}
	s := subscribeTo(t, a, "pubLayers", SubscribeOptions{InitialLayer: "lowest"})
	layers, err := s.Layers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 3 || layers[0] != (Layer{EncodingID: "hi", Bitrate: 2500000, Width: 1280, Height: 720, FramesPerSecond: 30, Selected: true}) || layers[2].EncodingID != "low" {
		t.Errorf("layers = %+v", layers)
	}
	if err := s.PinLayer(ctx, "", "mid"); err != nil {
		t.Fatal(err)
	}
	if err := s.PinLayer(ctx, "7", "low"); err != nil {
		t.Fatal(err)
	}
	if err := s.Unpin(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Pause(ctx, s.Mid(KindVideo)); err != nil {
		t.Fatal(err)
	}
	if err := s.Play(ctx); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	layerBodies, playBodies := a.layerBodies, a.playBodies
	a.mu.Unlock()
	vm, am := s.Mid(KindVideo), s.Mid(KindAudio)
	wantLayer := []string{`{"encodingId":"mid","mediaId":"` + vm + `"}`, `{"encodingId":"low","mediaId":"7"}`, `{}`}
	if len(layerBodies) != len(wantLayer) {
		t.Fatalf("layer POSTs = %q", layerBodies)
	}
	for i := range wantLayer {
		if layerBodies[i] != wantLayer[i] {
			t.Errorf("layer POST %d = %s, want %s", i, layerBodies[i], wantLayer[i])
		}
	}
	wantPlay := []string{`{"pause":["` + vm + `"]}`, `{"play":["` + am + `","` + vm + `"]}`}
	if len(playBodies) != 2 || playBodies[0] != wantPlay[0] || playBodies[1] != wantPlay[1] {
		t.Errorf("playback POSTs = %q, want %q", playBodies, wantPlay)
	}
	var post *recordedRequest
	for _, r := range a.recorded() {
		if r.Method == http.MethodPost && post == nil {
			post = &r
		}
	}
	if post.Path != "/subscribe/pubLayers" || post.Header.Get("X-Stages-Initial-Layer-Pref") != "lowest" {
		t.Errorf("subscribe POST %s with layer pref %q", post.Path, post.Header.Get("X-Stages-Initial-Layer-Pref"))
	}
}

func TestSubscribeToMissingPublisher(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	a := newAnswerer(t)
	_, err := Subscribe(ctx, stageToken(t, "viewer", a.whipURL(), "ws://x"), SubscribeOptions{PublisherID: "nobody", LoopbackOnly: true})
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusNotFound || he.Code != 2004 || he.CodeName() != "RemoteStreamNotFound" {
		t.Fatalf("err = %v", err)
	}
}

func TestSubscribeNoFramesCountsPacketsOnly(t *testing.T) {
	checkLeaks(t)
	a := newAnswerer(t)
	a.subSource = func(kind string) MediaSource {
		if kind == KindAudio {
			return nil
		}
		return NewSyntheticSource(SyntheticOptions{FrameSize: 3000})
	}
	s := subscribeTo(t, a, "pubNoFrames", SubscribeOptions{NoFrames: true, ICETransport: ICEUDP})
	eventually(t, 10*time.Second, "packets", func() bool { return s.Stats(KindVideo).Packets > 30 })
	if st := s.Stats(KindVideo); st.Frames != 0 || len(s.ReceivedFrames(KindVideo)) != 0 {
		t.Errorf("frames rebuilt with NoFrames: %+v", st)
	}
	if err := s.SendPLI(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "PLI at the answerer", func() bool { return a.onlySubscriber(t).plis.Load() >= 1 })
}

package rtclient

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// publishAndCompare publishes, waits until the answerer has rebuilt enough
// frames of each kind, closes, and checks that what arrived is what was sent.
func publishAndCompare(t *testing.T, a *answerer, pid string, opts PublishOptions, minFrames map[string]int) *Publisher {
	t.Helper()
	ctx := testContext(t)
	tok := stageToken(t, pid, a.whipURL(), "ws://unused.invalid")
	opts.LoopbackOnly = true
	p, err := Publish(ctx, tok, opts)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	defer p.Close(ctx)
	s := a.publisher(t, pid)
	for kind, n := range minFrames {
		eventually(t, 20*time.Second, kind+" frames at the answerer", func() bool { return len(s.received(kind)) >= n })
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for kind, n := range minFrames {
		assertPrefix(t, kind, s.received(kind), p.SentFrames(kind), n)
		st := p.Stats(kind)
		if st.Frames < int64(n) || st.Bytes == 0 || st.FirstFrame.IsZero() {
			t.Errorf("%s stats = %+v", kind, st)
		}
	}
	return p
}

func TestPublishSyntheticFramesArriveIntact(t *testing.T) {
	checkLeaks(t)
	a := newAnswerer(t)
	p := publishAndCompare(t, a, "pubSynth", PublishOptions{
		Audio: NewSyntheticSource(SyntheticOptions{Codec: CodecOpus}),
		Video: NewSyntheticSource(SyntheticOptions{Codec: CodecVP8, KeyframeInterval: 30, FrameSize: 3000}),
	}, map[string]int{KindAudio: 50, KindVideo: 30})
	if got := p.Kinds(); len(got) != 2 || got[0] != KindAudio || got[1] != KindVideo {
		t.Errorf("Kinds = %v", got)
	}
	if k := p.Stats(KindVideo).Keyframes; k < 1 {
		t.Errorf("keyframes sent = %d", k)
	}
}

// A Publisher starts its sequence numbers and timestamps where it is told:
// here just below the 16-bit and 32-bit wraps, so that the streams cross
// both within seconds. The answerer (pion's sample builder) and a Subscriber
// through it (this package's counters and frame rebuilding) must see them
// cross unbroken, and SendStats must count across the wraps.
func TestPublishStartsNearTheWraps(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	a := newAnswerer(t)
	// Video 10 ms frames of ~3 packets, audio 5 ms: each crosses the
	// sequence wrap after about 600 packets and the timestamp wrap after
	// 2 s (video) and 3.75 s (audio).
	firstSeq, firstTS := uint16(65536-600), uint32(1<<32-180000)
	// The sources hold their second frame until the subscriber is there,
	// so that it sees the wraps however slowly it joins.
	gate := make(chan struct{})
	var opened sync.Once
	open := func() { opened.Do(func() { close(gate) }) }
	defer open()
	p, err := Publish(ctx, stageToken(t, "pubWrap", a.whipURL(), "ws://unused.invalid"), PublishOptions{
		Audio:               &gatedSource{MediaSource: NewSyntheticSource(SyntheticOptions{Codec: CodecOpus, FrameDuration: 5 * time.Millisecond}), gate: gate},
		Video:               &gatedSource{MediaSource: NewSyntheticSource(SyntheticOptions{Codec: CodecVP8, FrameDuration: 10 * time.Millisecond, FrameSize: 3000, KeyframeInterval: 50}), gate: gate},
		FirstSequenceNumber: &firstSeq, FirstTimestamp: &firstTS, LoopbackOnly: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	pub := a.publisher(t, "pubWrap")
	for _, kind := range []string{KindAudio, KindVideo} {
		eventually(t, 10*time.Second, "the answerer's first "+kind+" packet", func() bool { _, ok := pub.first(kind); return ok })
	}
	sub := subscribeTo(t, a, "pubWrap", SubscribeOptions{})
	open()
	for _, kind := range []string{KindAudio, KindVideo} {
		eventually(t, 30*time.Second, kind+" sent past both wraps", func() bool {
			st := p.Stats(kind)
			return st.LastSeq > 65536+300 && st.LastTimestamp > 1<<32+90000
		})
		eventually(t, 30*time.Second, kind+" received past the sequence wrap", func() bool {
			return sub.Stats(kind).HighestSeq > 65536+200
		})
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{KindAudio, KindVideo} {
		st := p.Stats(kind)
		if st.FirstSeq != int64(firstSeq) || st.FirstTimestamp != int64(firstTS) {
			t.Errorf("%s: first packet sent %d @%d, want %d @%d", kind, st.FirstSeq, st.FirstTimestamp, firstSeq, firstTS)
		}
		if st.Packets != st.LastSeq-st.FirstSeq+1 || st.PacketBytes <= st.Bytes || st.FirstPacket.IsZero() || st.LastPacket.Before(st.FirstPacket) {
			t.Errorf("%s: send counters %+v", kind, st)
		}
		if h, ok := pub.first(kind); !ok || h.SequenceNumber != firstSeq || h.Timestamp != firstTS {
			t.Errorf("%s: the answerer's first packet is %d @%d, want %d @%d", kind, h.SequenceNumber, h.Timestamp, firstSeq, firstTS)
		}
		// Every frame the answerer rebuilt, from the first, is the one sent.
		assertPrefix(t, kind+" at the answerer", pub.received(kind), p.SentFrames(kind), int(st.Frames/2))
		rs := sub.Stats(kind)
		if rs.Lost != 0 || rs.Late != 0 {
			t.Errorf("%s at the subscriber: lost %d, late %d", kind, rs.Lost, rs.Late)
		}
		assertContiguous(t, kind+" at the subscriber", sub.ReceivedFrames(kind), p.SentFrames(kind), 100)
	}
}

// gatedSource sends its first frame, then waits for gate to close.
type gatedSource struct {
	MediaSource
	gate <-chan struct{}
	n    int
}

func (g *gatedSource) NextFrame() (Frame, error) {
	if g.n == 1 {
		<-g.gate
	}
	g.n++
	return g.MediaSource.NextFrame()
}

func TestPublishSyntheticH264(t *testing.T) {
	checkLeaks(t)
	a := newAnswerer(t)
	// Keyframes of 12 kB span several packets (FU-A), with SPS and PPS in a STAP-A.
	publishAndCompare(t, a, "pubH264", PublishOptions{
		Video: NewSyntheticSource(SyntheticOptions{Codec: CodecH264, FrameSize: 2000, KeyframeSize: 12000, KeyframeInterval: 10}),
	}, map[string]int{KindVideo: 30})
}

func TestPublishFileSources(t *testing.T) {
	fx := fixtures(t)
	for _, tc := range []struct {
		name  string
		video string
	}{{"h264", fx.H264}, {"vp8", fx.VP8}} {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			a := newAnswerer(t)
			audio, err := NewFileSource(fx.Opus)
			if err != nil {
				t.Fatal(err)
			}
			video, err := NewFileSource(tc.video)
			if err != nil {
				t.Fatal(err)
			}
			p := publishAndCompare(t, a, "pubFile"+tc.name, PublishOptions{Audio: audio, Video: video},
				map[string]int{KindAudio: 75, KindVideo: 45})
			// The frames sent are the file's, in order.
			assertPrefix(t, "video vs file", p.SentFrames(KindVideo)[:45], video.Hashes(), 45)
			assertPrefix(t, "audio vs file", p.SentFrames(KindAudio)[:75], audio.Hashes(), 75)
		})
	}
}

// The Web SDK's simulcast: three layers with rids hi, mid, low on one
// transceiver (IVS-BEHAVIOUR.md §2.3).
func TestPublishSimulcastSynthetic(t *testing.T) {
	checkLeaks(t)
	a := newAnswerer(t)
	var layers []MediaSource
	for _, size := range []int{4000, 1500, 500} {
		layers = append(layers, NewSyntheticSource(SyntheticOptions{Codec: CodecVP8, FrameSize: size, KeyframeInterval: 30}))
	}
	p := publishAndCompare(t, a, "pubSim", PublishOptions{Simulcast: layers, Audio: NewSyntheticSource(SyntheticOptions{Codec: CodecOpus})},
		map[string]int{"video/hi": 30, "video/mid": 30, "video/low": 30, KindAudio: 30})
	// Each layer's frames are its own.
	if p.SentFrames("video/hi")[0] == p.SentFrames("video/low")[0] {
		t.Error("layers sent identical frames")
	}
}

func TestPublishSimulcastFiles(t *testing.T) {
	fx := fixtures(t)
	checkLeaks(t)
	a := newAnswerer(t)
	var layers []MediaSource
	for _, f := range fx.SimulcastH264 {
		src, err := NewFileSource(f)
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, src)
	}
	publishAndCompare(t, a, "pubSimFile", PublishOptions{Simulcast: layers},
		map[string]int{"video/hi": 30, "video/mid": 30, "video/low": 30})
}

// WHIP answers carry Location and Link headers (IVS-BEHAVIOUR.md §2.2); both
// are resolved against the URL that answered, and Close DELETEs the resource.
func TestPublishLocationLinksAndDelete(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	a := newAnswerer(t)
	tok := stageToken(t, "pubLinks", a.whipURL(), "ws://unused.invalid")
	a.token = tok
	p, err := Publish(ctx, tok, PublishOptions{Audio: NewSyntheticSource(SyntheticOptions{Codec: CodecOpus}), LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	s := a.publisher(t, "pubLinks")
	if want := a.srv.URL + "/resource/" + s.id; p.Location() != want {
		t.Errorf("Location = %q, want %q", p.Location(), want)
	}
	links := p.Links()
	for rel, want := range map[string]string{
		RelLayer:            a.srv.URL + "/layer/" + s.id,
		RelPlaybackControls: a.srv.URL + "/playback/" + s.id,
		RelSessionDelete:    a.srv.URL + "/resource/" + s.id + "/delete",
	} {
		if links[rel] != want {
			t.Errorf("link %s = %q, want %q", rel, links[rel], want)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var post, del *recordedRequest
	for _, r := range a.recorded() {
		switch {
		case r.Method == http.MethodPost && post == nil:
			post = &r
		case r.Method == http.MethodDelete:
			del = &r
		}
	}
	if post == nil || post.Path != "/publish/pubLinks" {
		t.Fatalf("POST = %+v", post)
	}
	if del == nil || del.Path != "/resource/"+s.id {
		t.Fatalf("DELETE = %+v", del)
	}
	for _, r := range []*recordedRequest{post, del} {
		if r.Header.Get("Authorization") != "Bearer "+tok {
			t.Errorf("%s without the bearer token", r.Method)
		}
		for _, h := range []string{"X-Stages-Platform", "X-Stages-SDK", "X-Stages-Request-ID", "X-Stages-Session-ID", "X-Stages-Trace-ID"} {
			if r.Header.Get(h) == "" {
				t.Errorf("%s without %s", r.Method, h)
			}
		}
		if r.Header.Get("X-Stages-WHIP-Version") != WHIPVersion {
			t.Errorf("%s X-Stages-WHIP-Version = %q", r.Method, r.Header.Get("X-Stages-WHIP-Version"))
		}
	}
	if post.Header.Get("Content-Type") != "application/sdp" {
		t.Errorf("POST Content-Type = %q", post.Header.Get("Content-Type"))
	}
	if post.Header.Get("X-Stages-Session-ID") != del.Header.Get("X-Stages-Session-ID") {
		t.Error("POST and DELETE have different session ids")
	}
	if post.Header.Get("X-Stages-Request-ID") == del.Header.Get("X-Stages-Request-ID") {
		t.Error("POST and DELETE share a request id")
	}
}

// An audio-only offer still has an H.264 video m-line, as IVS requires
// (IVS-BEHAVIOUR.md §2.1), unless NoVideoPlaceholder.
func TestPublishAudioOnlyOffersH264VideoLine(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	a := newAnswerer(t)
	for _, omit := range []bool{false, true} {
		pid := "pubAudioOnly"
		if omit {
			pid += "NoVideo"
		}
		p, err := Publish(ctx, stageToken(t, pid, a.whipURL(), "ws://x"), PublishOptions{
			Audio: NewSyntheticSource(SyntheticOptions{Codec: CodecOpus}), LoopbackOnly: true, NoVideoPlaceholder: omit,
		})
		if err != nil {
			t.Fatal(err)
		}
		offer := p.PeerConnection().LocalDescription().SDP
		hasVideo := strings.Contains(offer, "m=video") && strings.Contains(offer, "H264/90000")
		if hasVideo == omit {
			t.Errorf("NoVideoPlaceholder=%v: offer has an H.264 video line: %v", omit, hasVideo)
		}
		if strings.Contains(offer, "VP8") {
			t.Error("the placeholder offers VP8")
		}
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// The global WHIP endpoint answers 307 to a regional node; the client follows
// and keeps the Authorization header, even to another host
// (IVS-BEHAVIOUR.md §2.1). Go's own redirect policy would drop it there.
func TestPublishFollowsRedirectsKeepingAuthorization(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	a := newAnswerer(t)
	tok := stageToken(t, "pubRedirect", a.whipURL(), "ws://x")
	a.token = tok
	a.redirectHops = MaxRedirects
	_, port, _ := net.SplitHostPort(a.srv.Listener.Addr().String())
	a.redirectHost = "localhost:" + port
	if addrs, err := net.LookupHost("localhost"); err != nil || len(addrs) == 0 {
		a.redirectHost = "" // no resolver for localhost: redirect within the host
	}
	p, err := Publish(ctx, tok, PublishOptions{Video: NewSyntheticSource(SyntheticOptions{}), LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	var posts int
	for _, r := range a.recorded() {
		if r.Method != http.MethodPost {
			continue
		}
		posts++
		if r.Header.Get("Authorization") != "Bearer "+tok {
			t.Errorf("POST %d to %s without Authorization", posts, r.Host)
		}
	}
	if posts != MaxRedirects+1 {
		t.Errorf("%d POSTs, want %d", posts, MaxRedirects+1)
	}
	// The Location is resolved against the host that answered.
	if a.redirectHost != "" && !strings.HasPrefix(p.Location(), "http://"+a.redirectHost+"/resource/") {
		t.Errorf("Location = %q, want it on %s", p.Location(), a.redirectHost)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestPublishTooManyRedirects(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	a := newAnswerer(t)
	a.redirectHops = MaxRedirects + 1
	_, err := Publish(ctx, stageToken(t, "p", a.whipURL(), "ws://x"), PublishOptions{Video: NewSyntheticSource(SyntheticOptions{}), LoopbackOnly: true})
	if !errors.Is(err, ErrTooManyRedirects) {
		t.Fatalf("err = %v, want ErrTooManyRedirects", err)
	}
}

// IVS's media endpoints answer errors with a JSON body {"code":N}
// (IVS-BEHAVIOUR.md §2.2).
func TestPublishHTTPErrorCarriesIVSCode(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	a := newAnswerer(t)
	a.fail = func() (int, string) { return http.StatusForbidden, `{"code":2003}` }
	_, err := Publish(ctx, stageToken(t, "p", a.whipURL(), "ws://x"), PublishOptions{Video: NewSyntheticSource(SyntheticOptions{}), LoopbackOnly: true})
	var he *HTTPError
	if !errors.As(err, &he) {
		t.Fatalf("err = %v, want an *HTTPError", err)
	}
	if he.Status != http.StatusForbidden || he.Code != 2003 || he.CodeName() != "NoPermissions" || he.Body != `{"code":2003}` {
		t.Errorf("HTTPError = %+v (%s)", he, he.CodeName())
	}
	if !strings.Contains(he.Error(), "2003") || !strings.Contains(he.Error(), "NoPermissions") {
		t.Errorf("Error() = %q", he.Error())
	}
}

func TestHTTPErrorWithoutJSON(t *testing.T) {
	for body, code := range map[string]int{"": 0, "too many": 0, `{"code":"2013"}`: 2013, `{"code":2014,"x":1}`: 2014, `{"message":"x"}`: 0} {
		e := newHTTPError(429, []byte(body))
		if e.Code != code || e.Status != 429 || e.Body != body {
			t.Errorf("body %q: %+v, want code %d", body, e, code)
		}
	}
}

// OBS-style clients POST to the bare whip URL (IVS-BEHAVIOUR.md §2.1).
func TestPublishToBareWhipURL(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	a := newAnswerer(t)
	p, err := Publish(ctx, stageToken(t, "ignored", a.whipURL(), "ws://x"), PublishOptions{
		URL: a.srv.URL + "/whip", Video: NewSyntheticSource(SyntheticOptions{}), LoopbackOnly: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	a.publisher(t, "whip")
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// A server's PLI reaches the publisher, which counts it and asks a source
// that can for a keyframe.
func TestPublisherCountsPLIsAndRequestsKeyframes(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	a := newAnswerer(t)
	src := NewSyntheticSource(SyntheticOptions{KeyframeInterval: 1 << 30})
	p, err := Publish(ctx, stageToken(t, "pubPLI", a.whipURL(), "ws://x"), PublishOptions{Video: src, LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	s := a.publisher(t, "pubPLI")
	eventually(t, 10*time.Second, "video frames", func() bool { return len(s.received(KindVideo)) > 5 })
	if err := a.sendPLI(s, KindVideo); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "PLI at the publisher", func() bool { return p.ReceivedPLIs() >= 1 })
	eventually(t, 10*time.Second, "a second keyframe", func() bool { return p.Stats(KindVideo).Keyframes >= 2 })
	if p.Stats(KindVideo).PLIs < 1 {
		t.Errorf("video PLIs = %d", p.Stats(KindVideo).PLIs)
	}
}

// ICE-TCP: with ICETransport "tcp" the client connects over an active TCP
// candidate to the server's passive one.
func TestPublishOverICETCP(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	a := newAnswerer(t)
	l, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	mux := webrtc.NewICETCPMux(nil, l, 8)
	t.Cleanup(func() { _ = mux.Close() })
	a.tcpMux = mux
	p, err := Publish(ctx, stageToken(t, "pubTCP", a.whipURL(), "ws://x"), PublishOptions{
		Video: NewSyntheticSource(SyntheticOptions{}), LoopbackOnly: true, ICETransport: ICETCP,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	pair, err := p.PeerConnection().GetTransceivers()[0].Sender().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("selected pair: %v, %v", pair, err)
	}
	if pair.Local.Protocol != webrtc.ICEProtocolTCP || pair.Remote.Protocol != webrtc.ICEProtocolTCP {
		t.Errorf("selected pair %s ↔ %s is not TCP", pair.Local, pair.Remote)
	}
	s := a.publisher(t, "pubTCP")
	eventually(t, 10*time.Second, "video over TCP", func() bool { return len(s.received(KindVideo)) > 10 })
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	assertPrefix(t, "video over TCP", s.received(KindVideo), p.SentFrames(KindVideo), 10)
}

func TestPublishValidatesOptions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tok := stageToken(t, "p", "http://127.0.0.1:1", "ws://x")
	vp8 := func() MediaSource { return NewSyntheticSource(SyntheticOptions{}) }
	for name, opts := range map[string]PublishOptions{
		"nothing":           {},
		"video+simulcast":   {Video: vp8(), Simulcast: []MediaSource{vp8()}},
		"four layers":       {Simulcast: []MediaSource{vp8(), vp8(), vp8(), vp8()}},
		"audio is video":    {Audio: vp8()},
		"mixed layers":      {Simulcast: []MediaSource{vp8(), NewSyntheticSource(SyntheticOptions{Codec: CodecH264})}},
		"bad ICE transport": {Video: vp8(), ICETransport: "sctp"},
	} {
		if _, err := Publish(ctx, tok, opts); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Publish(ctx, "garbage", PublishOptions{Video: vp8()}); !errors.Is(err, ErrMalformedToken) {
		t.Errorf("bad token: %v", err)
	}
}

// Unpublishing a resource the server has already forgotten is not an error:
// IVS's clients ignore the 404 (IVS-BEHAVIOUR.md §2.2).
func TestPublishCloseIgnores404(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	a := newAnswerer(t)
	p, err := Publish(ctx, stageToken(t, "pubGone", a.whipURL(), "ws://x"), PublishOptions{Video: NewSyntheticSource(SyntheticOptions{}), LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	s := a.publisher(t, "pubGone")
	a.mu.Lock()
	delete(a.sessions, s.id) // the server forgets it; its peer is closed with the answerer
	a.sessions["gone-"+s.id] = s
	a.mu.Unlock()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close after the server forgot the resource: %v", err)
	}
	var status404 bool
	for _, r := range a.recorded() {
		status404 = status404 || (r.Method == http.MethodDelete && r.Path == "/resource/"+s.id)
	}
	if !status404 {
		t.Error("no DELETE was sent")
	}
}

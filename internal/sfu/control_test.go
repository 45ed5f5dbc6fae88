package sfu

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// aliceToBob starts an engine where alice publishes and bob subscribes to
// her, and returns once bob has received video; nothing may leak after.
func aliceToBob(t *testing.T, opts pubOpts) (context.Context, *Router, *testPublisher, *testSubscriber) {
	t.Helper()
	checkLeaks(t)
	ctx := testContext(t)
	r := newTestEngine(t).NewRouter("stage")
	tp := startPublisher(t, ctx, r, "alice", opts)
	ts, err := subscribe(t, ctx, r, "bob", "alice", subOpts{})
	must(t, err)
	waitFor(t, ctx, "video", func() bool { return ts.count(webrtc.RTPCodecTypeVideo) >= 10 })
	return ctx, r, tp, ts
}

// A subscriber's PLI reaches the publisher, rate-limited per encoding.
func TestPLIReachesPublisherRateLimited(t *testing.T) {
	ctx, _, tp, ts := aliceToBob(t, pubOpts{})
	// Joining asks for a keyframe (the PLI may trail the first packets).
	waitFor(t, ctx, "a PLI when the subscriber joined", func() bool { return tp.plis[0].Load() > 0 })
	ssrc := uint32(ts.track(webrtc.RTPCodecTypeVideo).SSRC())
	base := tp.plis[0].Load()
	sent := 0
	waitFor(t, ctx, "the subscriber's PLI at the publisher", func() bool {
		for range 20 {
			must(t, ts.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}))
			sent++
		}
		return tp.plis[0].Load() > base
	})
	if got := tp.plis[0].Load() - base; got >= int64(sent) {
		t.Fatalf("%d PLIs sent, %d reached the publisher: not rate-limited", sent, got)
	}
}

func TestRateLimiter(t *testing.T) {
	var r rateLimiter
	r.last.Store(-1 << 40)
	step := int64(pliInterval) / 5
	allowed := 0
	for now := int64(0); now < 10*int64(pliInterval); now += step {
		if r.allow(now) {
			allowed++
		}
	}
	if allowed != 10 {
		t.Fatalf("%d allowed in 10 intervals, want 10", allowed)
	}
}

// The WHEP playback-control link: pause and play a section; play resumes
// at a keyframe and the sequence numbers continue.
func TestPauseAndPlay(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	e := newTestEngine(t)
	r := e.NewRouter("stage")
	startPublisher(t, ctx, r, "alice", pubOpts{})
	ts, err := subscribe(t, ctx, r, "bob", "alice", subOpts{})
	must(t, err)
	waitFor(t, ctx, "video", func() bool { return ts.count(webrtc.RTPCodecTypeVideo) >= 20 })
	mid := videoMID(t, ts.sub)
	must(t, ts.sub.Pause([]string{mid}))
	paused := ts.count(webrtc.RTPCodecTypeVideo)
	audio := ts.count(webrtc.RTPCodecTypeAudio)
	// Audio keeps flowing while video is paused.
	waitFor(t, ctx, "audio while video is paused", func() bool { return ts.count(webrtc.RTPCodecTypeAudio) >= audio+100 })
	if n := ts.count(webrtc.RTPCodecTypeVideo); n > paused+5 {
		t.Fatalf("%d video packets arrived while paused", n-paused)
	}
	must(t, ts.sub.Play([]string{mid}))
	waitFor(t, ctx, "video after play", func() bool { return ts.count(webrtc.RTPCodecTypeVideo) >= paused+30 })
	// One continuous sequence across the pause, resuming at a keyframe
	// with a later timestamp.
	pkts := ts.snapshot(webrtc.RTPCodecTypeVideo)
	resume := -1
	for i := 1; i < len(pkts); i++ {
		if pkts[i].id.frame > pkts[i-1].id.frame+1 {
			resume = i
			break
		}
	}
	if resume < 0 {
		t.Fatal("no gap in frames across the pause")
	}
	a, b := pkts[resume-1], pkts[resume]
	if b.seq != a.seq+1 || !b.keyStart || int32(b.fullTS-a.fullTS) <= 0 {
		t.Fatalf("resumed with seq %d key %v ts %d after seq %d ts %d", b.seq, b.keyStart, b.fullTS, a.seq, a.fullTS)
	}
	checkStream(t, pkts[:resume], true, 0)
	checkStream(t, pkts[resume:], true, 0)
	if err := ts.sub.Pause([]string{"nope"}); !errors.Is(err, ErrUnknownMedia) {
		t.Fatalf("pausing an unknown section: %v", err)
	}
	must(t, ts.sub.Pause(nil))
	must(t, ts.sub.Play(nil))
}

// Closing a publisher closes its subscribers (OnClosed with
// ErrPublisherClosed); the publisher's own OnClosed gets nil.
func TestPublisherCloseClosesSubscribers(t *testing.T) {
	ctx, r, tp, ts := aliceToBob(t, pubOpts{})
	must(t, tp.pub.Close())
	select {
	case err := <-ts.closed:
		if !errors.Is(err, ErrPublisherClosed) {
			t.Fatalf("subscriber OnClosed(%v)", err)
		}
	case <-ctx.Done():
		t.Fatal("subscriber not closed")
	}
	select {
	case err := <-tp.closed:
		if err != nil {
			t.Fatalf("publisher OnClosed(%v)", err)
		}
	case <-ctx.Done():
		t.Fatal("publisher OnClosed not called")
	}
	if r.Publisher("alice") != nil {
		t.Fatal("closed publisher still in the router")
	}
	if _, err := subscribe(t, ctx, r, "carol", "alice", subOpts{}); !errors.Is(err, ErrPublisherNotFound) {
		t.Fatalf("subscribing to a closed publisher: %v", err)
	}
}

// A publisher whose client goes away is closed with ErrConnectionClosed.
func TestRemotePublisherCloseDetected(t *testing.T) {
	ctx, _, tp, ts := aliceToBob(t, pubOpts{})
	tp.halt()
	select {
	case err := <-tp.closed:
		if !errors.Is(err, ErrConnectionClosed) && !errors.Is(err, ErrConnectionFailed) {
			t.Fatalf("publisher OnClosed(%v)", err)
		}
	case <-ctx.Done():
		t.Fatal("publisher OnClosed not called")
	}
	select {
	case err := <-ts.closed:
		if !errors.Is(err, ErrPublisherClosed) {
			t.Fatalf("subscriber OnClosed(%v)", err)
		}
	case <-ctx.Done():
		t.Fatal("subscriber not closed")
	}
}

func TestSubscriberClose(t *testing.T) {
	ctx, _, tp, ts := aliceToBob(t, pubOpts{})
	must(t, ts.sub.Close())
	select {
	case err := <-ts.closed:
		if err != nil {
			t.Fatalf("OnClosed(%v)", err)
		}
	case <-ctx.Done():
		t.Fatal("OnClosed not called")
	}
	for _, up := range tp.pub.tracks {
		if d := up.downs.Load(); d != nil && len(*d) != 0 {
			t.Fatalf("%s track still has %d down-tracks", up.info.Kind, len(*d))
		}
	}
	if err := ts.sub.PinLayer("1", ""); !errors.Is(err, ErrClosed) {
		t.Fatalf("PinLayer after Close: %v", err)
	}
}

// A subscriber section with nothing to send (the publisher has no audio)
// is answered inactive.
func TestSectionWithoutTrackIsInactive(t *testing.T) {
	_, _, _, ts := aliceToBob(t, pubOpts{noAudio: true})
	answer := ts.pc.RemoteDescription().SDP
	audio := answer[strings.Index(answer, "m=audio"):strings.Index(answer, "m=video")]
	if !strings.Contains(audio, "a=inactive") || strings.Contains(audio, "a=ssrc") {
		t.Fatalf("audio section of the answer:\n%s", audio)
	}
	if ts.count(webrtc.RTPCodecTypeAudio) != 0 {
		t.Fatal("audio received from a video-only publisher")
	}
}

// ICE over TCP works without TURN: both peers on the engine's TCP port.
func TestICEOverTCP(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	e := newTestEngine(t)
	r := e.NewRouter("stage")
	startPublisher(t, ctx, r, "alice", pubOpts{client: clientOpts{tcpOnly: true}})
	ts, err := subscribe(t, ctx, r, "bob", "alice", subOpts{client: clientOpts{tcpOnly: true}})
	must(t, err)
	waitFor(t, ctx, "media over TCP", func() bool {
		return ts.count(webrtc.RTPCodecTypeVideo) >= 50 && ts.count(webrtc.RTPCodecTypeAudio) >= 50
	})
	pair, err := ts.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	must(t, err)
	if pair == nil || pair.Local.Protocol != webrtc.ICEProtocolTCP {
		t.Fatalf("selected pair %v is not TCP", pair)
	}
	checkStream(t, ts.snapshot(webrtc.RTPCodecTypeVideo), true, 0)
}

// Closing the engine closes every peer and leaves no goroutine behind.
func TestEngineCloseLeavesNothing(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	e, err := NewEngine(Config{}) // all interfaces, default ports
	must(t, err)
	r := e.NewRouter("stage")
	startPublisher(t, ctx, r, "alice", pubOpts{rids: []string{"hi", "mid", "low"}})
	var subs []*testSubscriber
	for _, id := range []string{"bob", "carol", "dave"} {
		ts, err := subscribe(t, ctx, r, id, "alice", subOpts{})
		must(t, err)
		subs = append(subs, ts)
	}
	for _, ts := range subs {
		waitFor(t, ctx, "video", func() bool { return ts.count(webrtc.RTPCodecTypeVideo) >= 10 })
	}
	must(t, e.Close())
	for _, ts := range subs {
		select {
		case err := <-ts.closed:
			if !errors.Is(err, ErrClosed) && !errors.Is(err, ErrPublisherClosed) {
				t.Fatalf("OnClosed(%v)", err)
			}
		case <-ctx.Done():
			t.Fatal("subscriber not closed")
		}
	}
	if _, _, err := r.Publish(ctx, "x", "v=0", PublisherCallbacks{}); err == nil {
		t.Fatal("Publish after Close succeeded")
	}
	if r2 := e.NewRouter("later"); r2 == nil {
		t.Fatal("nil router")
	} else if _, _, err := r2.Subscribe(ctx, "s", "p", "v=0", SubscribeOptions{}); err == nil {
		t.Fatal("Subscribe on a router of a closed engine succeeded")
	}
}

// Answers carry host candidates on the engine's one UDP and one TCP port,
// and Config.PublicIPs replace the interface addresses (1:1 NAT).
func TestAnswerCandidates(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	for _, public := range []bool{false, true} {
		cfg := Config{ListenIP: "127.0.0.1"}
		if public {
			cfg.PublicIPs = []string{"203.0.113.7"}
		}
		e, err := NewEngine(cfg)
		must(t, err)
		r := e.NewRouter("stage")
		pc, err := clientAPI(t, clientOpts{}).NewPeerConnection(webrtc.Configuration{})
		must(t, err)
		_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		must(t, err)
		_, answer, err := r.Publish(ctx, "alice", offerFrom(t, ctx, pc), PublisherCallbacks{})
		must(t, err)
		udpPort := strconv.Itoa(e.UDPAddr().(*net.UDPAddr).Port)
		tcpPort := strconv.Itoa(e.TCPAddr().(*net.TCPAddr).Port)
		addr := "127.0.0.1"
		if public {
			addr = "203.0.113.7"
		}
		if !strings.Contains(answer, " udp ") || !strings.Contains(answer, addr+" "+udpPort+" typ host") {
			t.Errorf("public=%v: no UDP host candidate %s:%s in\n%s", public, addr, udpPort, answer)
		}
		if !strings.Contains(answer, addr+" "+tcpPort+" typ host tcptype passive") {
			t.Errorf("public=%v: no passive TCP candidate %s:%s in\n%s", public, addr, tcpPort, answer)
		}
		if public && strings.Contains(answer, "127.0.0.1 ") {
			t.Errorf("private address advertised despite PublicIPs")
		}
		_ = pc.GracefulClose()
		must(t, e.Close())
	}
}

package sfu

import (
	"errors"
	"testing"

	"github.com/pion/webrtc/v4"
)

func TestPublishErrors(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	e := newTestEngine(t)
	r := e.NewRouter("stage")

	if _, _, err := r.Publish(ctx, "x", "this is not SDP", PublisherCallbacks{}); !errors.Is(err, ErrBadOffer) {
		t.Errorf("garbage offer: %v", err)
	}

	// An offer with only a data channel has no media to publish.
	pc, err := clientAPI(t, clientOpts{}).NewPeerConnection(webrtc.Configuration{})
	must(t, err)
	closePC(t, pc)
	_, err = pc.CreateDataChannel("chat", nil)
	must(t, err)
	if _, _, err := r.Publish(ctx, "x", offerFrom(t, ctx, pc), PublisherCallbacks{}); !errors.Is(err, ErrBadOffer) {
		t.Errorf("data-only offer: %v", err)
	}

	// VP9 only: nothing the engine forwards.
	pc, err = clientAPI(t, clientOpts{video: []string{"VP9"}, noAudio: true}).NewPeerConnection(webrtc.Configuration{})
	must(t, err)
	closePC(t, pc)
	_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	must(t, err)
	if _, _, err := r.Publish(ctx, "x", offerFrom(t, ctx, pc), PublisherCallbacks{}); !errors.Is(err, ErrNoMatchingCodec) {
		t.Errorf("VP9-only offer: %v", err)
	}

	// Opus and VP9: audio is published, the video section turned away.
	pc, err = clientAPI(t, clientOpts{video: []string{"VP9"}}).NewPeerConnection(webrtc.Configuration{})
	must(t, err)
	closePC(t, pc)
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		_, err = pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		must(t, err)
	}
	p, _, err := r.Publish(ctx, "y", offerFrom(t, ctx, pc), PublisherCallbacks{})
	must(t, err)
	if tr := p.Tracks(); len(tr) != 1 || tr[0].Kind != Audio {
		t.Errorf("tracks of an Opus+VP9 publisher: %+v", tr)
	}
}

func TestSubscribeErrors(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	e := newTestEngine(t)
	r := e.NewRouter("stage")

	if _, err := subscribe(t, ctx, r, "bob", "nobody", subOpts{}); !errors.Is(err, ErrPublisherNotFound) {
		t.Errorf("unknown publisher: %v", err)
	}
	startPublisher(t, ctx, r, "alice", pubOpts{}) // Opus + VP8
	if _, _, err := r.Subscribe(ctx, "bob", "alice", "not SDP", SubscribeOptions{}); !errors.Is(err, ErrBadOffer) {
		t.Errorf("garbage offer: %v", err)
	}
	// H.264-only video and no audio: nothing in common with the publisher.
	if _, err := subscribe(t, ctx, r, "bob", "alice", subOpts{client: clientOpts{video: []string{"H264"}, noAudio: true}}); !errors.Is(err, ErrNoMatchingCodec) {
		t.Errorf("no common codec: %v", err)
	}
	// H.264 video but Opus audio: audio only.
	ts, err := subscribe(t, ctx, r, "carol", "alice", subOpts{client: clientOpts{video: []string{"H264"}}})
	must(t, err)
	waitFor(t, ctx, "audio", func() bool { return ts.count(webrtc.RTPCodecTypeAudio) >= 10 })
	if len(ts.sub.Layers()) != 0 {
		t.Errorf("layers for a subscriber without video: %v", ts.sub.Layers())
	}
}

package sfu

import (
	"testing"

	"github.com/pion/webrtc/v4"
)

// videoMID returns the subscriber's (only) video section.
func videoMID(t *testing.T, s *Subscriber) string {
	t.Helper()
	for mid := range s.Layers() {
		return mid
	}
	t.Fatal("no video section")
	return ""
}

// lastLayers reports whether the last n video packets all came from layer.
func lastLayers(ts *testSubscriber, n int, layer uint8) bool {
	pkts := ts.snapshot(webrtc.RTPCodecTypeVideo)
	if len(pkts) < n {
		return false
	}
	for _, p := range pkts[len(pkts)-n:] {
		if p.id.layer != layer {
			return false
		}
	}
	return true
}

// IVS forwards one simulcast layer ("hi", "mid" or "low") per subscriber,
// and the WHEP layer link pins one; the switch is seamless to the player.
func TestSimulcastPinnedLayerSwitchesAtKeyframe(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	e := newTestEngine(t)
	r := e.NewRouter("stage")
	tp := startPublisher(t, ctx, r, "alice", pubOpts{rids: []string{"hi", "mid", "low"}})
	tracks := tp.pub.Tracks()
	if v := tracks[1]; !v.Simulcast || len(v.Layers) != 3 || v.Layers[0] != "hi" {
		t.Fatalf("video track %+v", v)
	}
	ts, err := subscribe(t, ctx, r, "bob", "alice", subOpts{options: SubscribeOptions{InitialLayer: "lowest"}})
	must(t, err)
	waitFor(t, ctx, "video", func() bool { return ts.count(webrtc.RTPCodecTypeVideo) >= 30 })
	mid := videoMID(t, ts.sub)

	for _, enc := range []string{"mid", "hi", "low", "hi"} {
		must(t, ts.sub.PinLayer(mid, enc))
		want := uint8(ridRank[enc])
		waitFor(t, ctx, "layer "+enc, func() bool { return lastLayers(ts, 10, want) })
		waitFor(t, ctx, enc+" selected in Layers()", func() bool {
			for _, l := range ts.sub.Layers()[mid] {
				if l.Selected {
					return l.EncodingID == enc
				}
			}
			return false
		})
	}
	ls := ts.sub.Layers()[mid]
	if len(ls) != 3 || ls[0].EncodingID != "hi" || ls[2].EncodingID != "low" || ls[0].Width != 1280 || ls[2].Height != 180 {
		t.Errorf("Layers() = %+v", ls)
	}
	must(t, ts.sub.UnpinLayer(mid))
	if err := ts.sub.PinLayer(mid, "nope"); err == nil {
		t.Error("pinning an unknown encoding succeeded")
	}
	if err := ts.sub.PinLayer("no-such-mid", "hi"); err == nil {
		t.Error("pinning an unknown section succeeded")
	}
	if err := ts.errors(); err != nil {
		t.Fatal(err)
	}
	// Continuous sequence numbers across every switch, each at a keyframe.
	checkStream(t, ts.snapshot(webrtc.RTPCodecTypeVideo), true, 0)
	checkStream(t, ts.snapshot(webrtc.RTPCodecTypeAudio), false, 0)
}

// X-Stages-Initial-Layer-Pref: highest starts at the top layer.
func TestSimulcastInitialLayerHighest(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	e := newTestEngine(t)
	r := e.NewRouter("stage")
	startPublisher(t, ctx, r, "alice", pubOpts{rids: []string{"low", "mid", "hi"}, codec: "H264"})
	ts, err := subscribe(t, ctx, r, "bob", "alice", subOpts{client: clientOpts{video: []string{"H264"}}, options: SubscribeOptions{InitialLayer: "highest"}})
	must(t, err)
	waitFor(t, ctx, "video", func() bool { return ts.count(webrtc.RTPCodecTypeVideo) >= 10 })
	if first := ts.snapshot(webrtc.RTPCodecTypeVideo)[0]; first.id.layer != 2 || !first.keyStart {
		t.Fatalf("first video packet from layer %d (keyframe %v), want the highest", first.id.layer, first.keyStart)
	}
	checkStream(t, ts.snapshot(webrtc.RTPCodecTypeVideo), true, 0)
}

package sfu

import (
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// A subscriber that connects once the keyframe it could start on from the
// cache is older than replayWindow, while the rate limit still holds
// requests back, gets a new keyframe asked for at once when the last
// request was answered — not after pliInterval (here an hour, so that
// waiting for it would never end and the test does not depend on how fast
// the machine is).
func TestStartKeyframeAskedAtOnceWhenLastAnswered(t *testing.T) {
	old := pliInterval
	pliInterval = time.Hour
	t.Cleanup(func() { pliInterval = old })
	checkLeaks(t)
	ctx := testContext(t)
	r := newTestEngine(t).NewRouter("stage")
	tp := startPublisher(t, ctx, r, "alice", pubOpts{noAudio: true, keyOnRequest: true})
	a, err := subscribe(t, ctx, r, "a", "alice", subOpts{})
	must(t, err)
	waitFor(t, ctx, "video at the first subscriber", func() bool { return a.count(webrtc.RTPCodecTypeVideo) > 0 })
	waitFor(t, ctx, "the first subscriber's keyframe request", func() bool { return tp.plis[0].Load() == 1 })

	// Its answer has come, and is too old to replay.
	l := tp.pub.tracks[0].layers[0]
	waitFor(t, ctx, "the answer to go stale", func() bool {
		return l.keyAt.Load() > l.pli.last.Load() && nanotime()-l.keyAt.Load() > int64(replayWindow)
	})
	if l.pli.wouldAllow(nanotime()) {
		t.Fatal("the rate limit lets requests through: the test shows nothing")
	}
	b, err := subscribe(t, ctx, r, "b", "alice", subOpts{})
	must(t, err)
	waitFor(t, ctx, "video at the second subscriber", func() bool { return b.count(webrtc.RTPCodecTypeVideo) > 0 })
	if got := tp.plis[0].Load(); got != 2 {
		t.Fatalf("the publisher got %d keyframe requests, want 2 (one per subscriber)", got)
	}
	if pkts := b.snapshot(webrtc.RTPCodecTypeVideo); !pkts[0].keyStart {
		t.Fatal("the second subscriber did not start at a keyframe")
	}
}

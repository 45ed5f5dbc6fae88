package sfu

import "testing"

// A keyframe request that the rate limit holds back is not lost until the
// router's next tick: the encoding's reader sends it with the first packet
// after the interval, unless a keyframe arrives first (subscribers joining
// within pliInterval of each other get their first frame that much sooner).
func TestHeldBackKeyframeRequestIsSentAfterTheInterval(t *testing.T) {
	up := newTestTrack(familyVP8)
	l := up.layers[0]
	l.ssrc.Store(1234)
	up.pub.closed.Store(true) // pli() returns early: no peer connection here
	seq := uint16(1)

	l.requestKeyframe() // allowed
	first := l.pli.last.Load()
	if l.pliDeferred.Load() {
		t.Fatal("an allowed request was deferred")
	}
	l.requestKeyframe() // within the interval: held back
	if !l.pliDeferred.Load() || l.pli.last.Load() != first {
		t.Fatal("a request within the interval was not held back")
	}
	feed(t, up, 0, &seq, 1, false, nanotime())
	if !l.pliDeferred.Load() || l.pli.last.Load() != first {
		t.Fatal("the held-back request went out before the interval passed")
	}
	// The interval passes: the next packet sends it.
	l.pli.last.Store(nanotime() - int64(pliInterval) - 1)
	before := l.pli.last.Load()
	feed(t, up, 0, &seq, 2, false, nanotime())
	if l.pliDeferred.Load() || l.pli.last.Load() == before {
		t.Fatal("the held-back request was not sent once the interval had passed")
	}

	// A keyframe arriving meanwhile answers a held-back request.
	l.requestKeyframe()
	if !l.pliDeferred.Load() {
		t.Fatal("not held back")
	}
	feed(t, up, 0, &seq, 3, true, nanotime())
	if l.pliDeferred.Load() {
		t.Fatal("a keyframe did not clear the held-back request")
	}
}

// A down-track that has not started asks for a keyframe past the rate limit
// only when the last request was answered and that keyframe has gone stale;
// otherwise its request waits like any other.
func TestStartKeyframeRequestPastTheLimit(t *testing.T) {
	up := newTestTrack(familyVP8)
	l := up.layers[0]
	l.ssrc.Store(1234)
	up.pub.closed.Store(true) // pli() returns early: no peer connection here
	now := nanotime()
	asked := now - int64(200e6)
	l.pli.last.Store(asked)

	// Not answered yet: awaited.
	l.keyAt.Store(asked - 1)
	l.requestStartKeyframe(now)
	if l.pli.last.Load() != asked || !l.pliDeferred.Load() {
		t.Fatal("a request not answered yet was repeated")
	}
	// Answered, and the answer recent (a down-track that could not replay
	// it): held to the limit.
	l.pliDeferred.Store(false)
	l.keyAt.Store(asked + int64(50e6))
	l.requestStartKeyframe(now)
	if l.pli.last.Load() != asked || !l.pliDeferred.Load() {
		t.Fatal("asked again while the answer was fresh")
	}
	// Answered, and the answer older than replayWindow: asked at once.
	l.pliDeferred.Store(false)
	later := l.keyAt.Load() + int64(replayWindow) + 1
	l.requestStartKeyframe(later)
	if l.pli.last.Load() != later || l.pliDeferred.Load() {
		t.Fatal("not asked at once once the answer was stale")
	}
}

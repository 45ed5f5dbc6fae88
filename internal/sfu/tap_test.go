package sfu

import (
	"errors"
	"sync"
	"testing"

	"github.com/pion/rtp"
)

// tapLog collects what a tap delivers, per track.
type tapLog struct {
	mu     sync.Mutex
	pkts   map[int][]received
	errs   []error
	closed chan error
}

func newTapLog() *tapLog {
	return &tapLog{pkts: map[int][]received{}, closed: make(chan error, 1)}
}

func (l *tapLog) options(tracks func() []TapTrack) TapOptions {
	return TapOptions{
		OnPacket: func(track int, h *rtp.Header, payload []byte) {
			id, err := parsePayload(payload)
			rec := received{seq: h.SequenceNumber, fullTS: h.Timestamp, ssrc: h.SSRC, pt: h.PayloadType, id: id}
			if tr := tracks(); track < len(tr) && tr[track].Kind == Video {
				if tr[track].Codec == "H264" {
					rec.keyStart, _, _ = h264Keyframe(payload)
				} else {
					rec.keyStart, _, _ = vp8Keyframe(payload)
				}
			}
			l.mu.Lock()
			defer l.mu.Unlock()
			if err != nil {
				l.errs = append(l.errs, err)
			}
			l.pkts[track] = append(l.pkts[track], rec)
		},
		OnClosed: func(err error) { l.closed <- err },
	}
}

func (l *tapLog) snapshot(track int) []received {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]received(nil), l.pkts[track]...)
}

func TestTapDeliversTheBestEncodingFromAKeyframe(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	e := newTestEngine(t)
	r := e.NewRouter("stage")
	tp := startPublisher(t, ctx, r, "alice", pubOpts{rids: []string{"low", "mid", "hi"}})
	<-tp.media

	log := newTapLog()
	var tap *Tap
	var tapMu sync.Mutex
	tracks := func() []TapTrack {
		tapMu.Lock()
		defer tapMu.Unlock()
		if tap == nil {
			return nil
		}
		return tap.tracks
	}
	tapMu.Lock()
	tap, err := r.Tap("alice", log.options(tracks))
	tapMu.Unlock()
	must(t, err)
	tt := tap.Tracks()
	if len(tt) != 2 || tt[0].Kind != Audio || tt[0].Codec != "opus" || tt[0].Clock != 48000 || tt[1].Kind != Video || tt[1].Codec != "VP8" || tt[1].SSRC == tt[0].SSRC {
		t.Fatalf("tap tracks %+v", tt)
	}
	waitFor(t, ctx, "media through the tap", func() bool {
		return len(log.snapshot(0)) >= 100 && len(log.snapshot(1)) >= 150
	})
	checkStream(t, log.snapshot(0), false, 0)
	video := log.snapshot(1)
	checkStream(t, video, true, 0)
	// The publisher sends low, mid, hi in that order: hi is layer 2 of its
	// payloads, and the tap must be on it once it has seen it sending.
	waitFor(t, ctx, "the tap on the best encoding", func() bool {
		v := log.snapshot(1)
		return v[len(v)-1].id.layer == tp.layerIndex(2)
	})
	for i, p := range video {
		if p.ssrc != tt[1].SSRC || p.pt != tt[1].PT {
			t.Fatalf("video packet %d: ssrc %x pt %d, want the tap's %x %d", i, p.ssrc, p.pt, tt[1].SSRC, tt[1].PT)
		}
	}
	if _, _, ok := tap.SenderReport(1); !ok {
		t.Fatal("no sender report for a track that is flowing")
	}
	log.mu.Lock()
	errs := log.errs
	log.mu.Unlock()
	if len(errs) > 0 {
		t.Fatalf("payloads damaged: %v", errs[0])
	}

	// The tap ends with its publisher.
	must(t, tp.pub.Close())
	if err := <-log.closed; !errors.Is(err, ErrPublisherClosed) {
		t.Fatalf("tap closed with %v, want ErrPublisherClosed", err)
	}
	closePC(t, tp.pc)
	r.Close()
}

func TestTapCloseAndMissingPublisher(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	e := newTestEngine(t)
	r := e.NewRouter("stage")
	if _, err := r.Tap("nobody", TapOptions{}); !errors.Is(err, ErrPublisherNotFound) {
		t.Fatalf("tap of a missing publisher: %v", err)
	}
	tp := startPublisher(t, ctx, r, "alice", pubOpts{codec: "H264"})
	<-tp.media
	log := newTapLog()
	tap, err := r.Tap("alice", log.options(func() []TapTrack { return nil }))
	must(t, err)
	waitFor(t, ctx, "video through the tap", func() bool { return len(log.snapshot(1)) > 0 })
	tap.Close()
	if err := <-log.closed; err != nil {
		t.Fatalf("Close: OnClosed(%v), want nil", err)
	}
	n := len(log.snapshot(1))
	// Nothing more arrives after Close, while the publisher goes on
	// sending frames that the engine reads.
	frames := &tp.pub.tracks[1].layers[0].frames
	seen := frames.Load()
	waitFor(t, ctx, "more video read from the publisher", func() bool { return frames.Load() >= seen+10 })
	if got := len(log.snapshot(1)); got != n {
		t.Fatalf("%d packets delivered after Close", got-n)
	}
	r.Close()
	closePC(t, tp.pc)
}

// Reading a publisher does not wait for the fan-out: while forwarding one
// packet is held up (here a tap that blocks; in production a keyframe
// going to hundreds of subscribers), the engine keeps reading the
// publisher's packets (pion's interceptors, which time transport-wide
// feedback and find gaps to NACK, run as it reads), and once the fan-out
// goes on, every packet read meanwhile is forwarded in order.
func TestReadingDoesNotWaitForTheFanOut(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	e := newTestEngine(t)
	r := e.NewRouter("stage")
	tp := startPublisher(t, ctx, r, "alice", pubOpts{noAudio: true})
	<-tp.media

	blocked := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	log := newTapLog()
	opts := log.options(func() []TapTrack { return []TapTrack{{Kind: Video, Codec: "VP8"}} })
	record := opts.OnPacket
	opts.OnPacket = func(track int, h *rtp.Header, payload []byte) {
		record(track, h, payload)
		once.Do(func() {
			close(blocked)
			<-release
		})
	}
	tap, err := r.Tap("alice", opts)
	must(t, err)
	defer tap.Close()
	releaseOnce := sync.OnceFunc(func() { close(release) })
	defer releaseOnce() // before Close, should the test fail while held up
	<-blocked
	read := e.stats.recvPackets.Load()
	waitFor(t, ctx, "packets read while the fan-out is held up", func() bool {
		return e.stats.recvPackets.Load() >= read+videoQueue/2
	})
	if n := len(log.snapshot(0)); n != 1 {
		t.Fatalf("%d packets forwarded while the fan-out was held up", n)
	}
	releaseOnce()
	waitFor(t, ctx, "the held-up packets forwarded", func() bool {
		return len(log.snapshot(0)) >= videoQueue
	})
	checkStream(t, log.snapshot(0), true, 0)
}

package sfu

import (
	"fmt"
	"sync"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// orderWriter records that each packet it is given follows the one before.
type orderWriter struct {
	n       int
	last    uint16
	skipped int // packets that did not follow the one before
}

func (w *orderWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	if w.n > 0 && h.SequenceNumber != w.last+1 {
		w.skipped++
	}
	w.n++
	w.last = h.SequenceNumber
	return 12 + len(payload), nil
}
func (w *orderWriter) Write(b []byte) (int, error) { return len(b), nil }

// spreadTrack is a VP8 track with n down-tracks, each writing to its own
// orderWriter, fanning out through s, started on a keyframe.
func spreadTrack(t testing.TB, s *spreader, n int) (*layer, []*orderWriter) {
	up := newTestTrack(familyVP8)
	up.spread = s
	ws := make([]*orderWriter, n)
	for i := range n {
		ws[i] = &orderWriter{}
		newTestDown(up, ws[i], false)
	}
	var p rtpPacket
	key := (vp8Frames{}).frame(0, 0, true, 640, 360)[0]
	if err := p.parse(rawPacket(0, 0, false, key, 0)); err != nil {
		t.Fatal(err)
	}
	up.layers[0].forward(&p, 1)
	return up.layers[0], ws
}

// A spread fan-out gives every down-track every packet, in order, also
// while other layers share the workers and when the down-tracks do not
// divide evenly into shards.
func TestSpreadFanOutReachesEveryDownTrackInOrder(t *testing.T) {
	s := newSpreader(3)
	defer s.close()
	const packets = 3000
	counts := []int{spreadMin - 1, spreadMin, 101, 300}
	var wg sync.WaitGroup
	for _, n := range counts {
		l, ws := spreadTrack(t, s, n)
		wg.Go(func() {
			var p rtpPacket
			for i := 1; i <= packets; i++ {
				if err := p.parse(benchPacket(uint16(i))); err != nil {
					t.Error(err)
					return
				}
				l.forward(&p, int64(i))
			}
			for i, w := range ws {
				if w.n != packets+1 || w.skipped != 0 {
					t.Errorf("%d down-tracks: #%d was given %d of %d packets, %d out of order", n, i, w.n, packets+1, w.skipped)
					return
				}
			}
		})
	}
	wg.Wait()
}

// A forwarder whose workers are gone (the engine closing) still completes
// its fan-out: it runs the shards it queued itself.
func TestSpreadFanOutWithoutWorkers(t *testing.T) {
	s := newSpreader(2)
	s.close()
	l, ws := spreadTrack(t, s, 200)
	var p rtpPacket
	for i := 1; i <= 100; i++ {
		if err := p.parse(benchPacket(uint16(i))); err != nil {
			t.Fatal(err)
		}
		l.forward(&p, int64(i))
	}
	for i, w := range ws {
		if w.n != 101 || w.skipped != 0 {
			t.Fatalf("down-track %d was given %d of 101 packets, %d out of order", i, w.n, w.skipped)
		}
	}
}

func TestNewSpreaderSizes(t *testing.T) {
	if s := newSpreader(-1); s != nil {
		t.Errorf("newSpreader(-1) = %d workers, want none", s.workers)
	}
	s := newSpreader(2)
	defer s.close()
	if s.workers != 2 {
		t.Errorf("newSpreader(2) = %d workers", s.workers)
	}
}

// BenchmarkFanoutSpread is BenchmarkFanout's engine-only path with the
// fan-out spread over GOMAXPROCS-1 workers (run it with -cpu 1,2,4): with
// writes this cheap it measures the spreading's own cost per packet.
func BenchmarkFanoutSpread(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			s := newSpreader(0)
			defer s.close()
			l, ws := spreadTrack(b, s, n)
			raw := benchPacket(1)
			var p rtpPacket
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				seq := uint16(i + 1)
				raw[2], raw[3] = byte(seq>>8), byte(seq)
				if err := p.parse(raw); err != nil {
					b.Fatal(err)
				}
				l.forward(&p, int64(i))
			}
			b.StopTimer()
			for i, w := range ws {
				if w.n != b.N+1 {
					b.Fatalf("subscriber %d was given %d of %d packets", i, w.n, b.N+1)
				}
			}
		})
	}
}

// The spread fan-out through pion to real subscribers: 40 of them (over
// spreadMin) on an engine with two fan-out workers each get the whole
// stream, in sequence, with the frames the publisher sent.
func TestSpreadFanOutToRealSubscribers(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	e, err := NewEngine(Config{ListenIP: "127.0.0.1", FanoutWorkers: 2})
	must(t, err)
	t.Cleanup(func() { _ = e.Close() })
	if e.fanout == nil || e.fanout.workers != 2 {
		t.Fatal("the engine has no fan-out workers")
	}
	r := e.NewRouter("stage")
	startPublisher(t, ctx, r, "alice", pubOpts{noAudio: true})
	const n = spreadMin + 8
	subs := make([]*testSubscriber, n)
	for i := range subs {
		subs[i], err = subscribe(t, ctx, r, fmt.Sprintf("s%d", i), "alice", subOpts{client: clientOpts{noAudio: true}})
		must(t, err)
	}
	waitFor(t, ctx, "video at every subscriber", func() bool {
		for _, ts := range subs {
			if ts.count(webrtc.RTPCodecTypeVideo) < 150 {
				return false
			}
		}
		return true
	})
	for _, ts := range subs {
		if err := ts.errors(); err != nil {
			t.Fatal(err)
		}
		checkStream(t, ts.snapshot(webrtc.RTPCodecTypeVideo), true, 0)
	}
}

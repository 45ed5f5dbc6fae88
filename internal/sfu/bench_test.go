package sfu

import (
	"fmt"
	"testing"
)

// benchPacket is a typical mid-frame VP8 packet of 1,100 bytes.
func benchPacket(seq uint16) []byte {
	pl := make([]byte, 1100)
	pl[0] = 0x00 // continuation of a frame: not a keyframe
	return rawPacket(seq, uint32(seq)*3000, false, pl, 0)
}

// BenchmarkFanout measures the engine's own forwarding path: one published
// packet parsed, cached and fanned out to N down-tracks (header rewrite,
// NACK history) that write to a no-op writer. It must not allocate.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			up := newTestTrack(familyVP8, "low", "mid", "hi")
			writers := make([]*discardWriter, n)
			for i := range n {
				writers[i] = &discardWriter{}
				d := newTestDown(up, writers[i], true)
				d.target.Store(2)
			}
			// Start every down-track on a keyframe of the top layer.
			var p rtpPacket
			key := (vp8Frames{}).frame(2, 0, true, 1280, 720)[0]
			if err := p.parse(rawPacket(0, 0, false, key, 0)); err != nil {
				b.Fatal(err)
			}
			up.layers[2].forward(&p, 1)
			raw := benchPacket(1)
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				seq := uint16(i + 1)
				raw[2], raw[3] = byte(seq>>8), byte(seq)
				if err := p.parse(raw); err != nil {
					b.Fatal(err)
				}
				up.layers[2].forward(&p, int64(i))
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/subscriber")
			// Every packet must have been forwarded to every subscriber: a
			// fan-out that drops is fast for the wrong reason (before issue
			// 15, everything from 32,768 packets on was dropped).
			for i, w := range writers {
				if w.n != b.N+1 {
					b.Fatalf("subscriber %d was given %d of %d packets", i, w.n, b.N+1)
				}
			}
		})
	}
}

// BenchmarkForwardPion is the same fan-out with pion's write path behind
// it: real subscribers over loopback, so each write goes through SRTP and a
// UDP send. A publisher with one encoding per track gives its subscribers
// nothing to choose, so they have no congestion controller; the simulcast
// cases measure the transport-wide sequence numbers and the congestion
// controller on top.
func BenchmarkForwardPion(b *testing.B) {
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) { benchPion(b, n, nil, 0) })
	}
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprintf("simulcast/subscribers=%d", n), func(b *testing.B) { benchPion(b, n, []string{"low", "mid", "hi"}, 0) })
	}
}

// BenchmarkForwardPionSpread is BenchmarkForwardPion with many subscribers,
// the fan-out inline (workers=-1) and spread over GOMAXPROCS-1 workers
// (workers=0; run it with -cpu 1,2,4). ns/op is the time from a packet's
// arrival at the forwarder until its last subscriber's write returned: the
// fan-out's share of that subscriber's latency.
func BenchmarkForwardPionSpread(b *testing.B) {
	for _, n := range []int{100, 300} {
		for _, w := range []int{-1, 0} {
			b.Run(fmt.Sprintf("subscribers=%d/workers=%d", n, w), func(b *testing.B) { benchPion(b, n, nil, w) })
		}
	}
}

func benchPion(b *testing.B, n int, rids []string, workers int) {
	ctx := testContext(b)
	e, err := NewEngine(Config{ListenIP: "127.0.0.1", FanoutWorkers: workers})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Close() })
	r := e.NewRouter("bench")
	tp := startPublisher(b, ctx, r, "pub", pubOpts{noAudio: true, silent: true, rids: rids})
	for i := range n {
		if _, err := subscribe(b, ctx, r, fmt.Sprintf("s%d", i), "pub", subOpts{client: clientOpts{noAudio: true}, noRead: true}); err != nil {
			b.Fatal(err)
		}
	}
	up := tp.pub.tracks[0]
	l := up.layers[0]
	// Feed keyframes until every down-track has started.
	var p rtpPacket
	seq := uint16(0)
	waitFor(b, ctx, "subscribers to start", func() bool {
		key := (vp8Frames{}).frame(0, uint32(seq), true, 320, 180)[0]
		_ = p.parse(rawPacket(seq, uint32(seq)*3000, true, key, 0))
		l.forward(&p, nanotime())
		seq++
		started := 0
		if downs := up.downs.Load(); downs != nil {
			for _, d := range *downs {
				d.mu.Lock()
				if d.started {
					started++
				}
				d.mu.Unlock()
			}
		}
		return started == n
	})
	raw := benchPacket(seq)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		raw[2], raw[3] = byte(seq>>8), byte(seq)
		seq++
		if err := p.parse(raw); err != nil {
			b.Fatal(err)
		}
		l.forward(&p, nanotime())
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/subscriber")
}

package sfu

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Once a subscriber is connected no goroutine waits for its RTCP: each
// packet is handed to its down-track as pion's SRTCP session queues it
// (queue.go, feedback.go). What subscribers send must all still be acted
// on: NACKs answered, PLI and FIR passed to the publisher, receiver reports
// counted, and transport-wide feedback given to the congestion controller,
// which pion's interceptor chain feeds only on the sender's reads.
// (pion's connections: lean ones have no readers to start with.)
func TestSubscriberRTCPHandledWithoutReaders(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	e := newPionEngine(t)

	// One encoding: a subscriber without congestion control, NACKs on.
	r := e.NewRouter("fixed")
	tp := startPublisher(t, ctx, r, "alice", pubOpts{})
	var dropping atomic.Bool
	var mu sync.Mutex
	dropped := map[uint16]bool{}
	drop := func(h *rtp.Header) bool {
		if !dropping.Load() || h.PayloadType != clientVP8PT || h.SequenceNumber%10 != 3 {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		if len(dropped) >= 10 || dropped[h.SequenceNumber] {
			return false
		}
		dropped[h.SequenceNumber] = true
		return true
	}
	ts, err := subscribe(t, ctx, r, "bob", "alice", subOpts{client: clientOpts{drop: drop}})
	must(t, err)
	waitFor(t, ctx, "video", func() bool { return ts.count(webrtc.RTPCodecTypeVideo) >= 30 })
	waitFor(t, ctx, "no RTCP reader left", func() bool { return ts.sub.rtcpReaders.Load() == 0 })
	if ts.sub.est != nil {
		t.Fatal("a subscriber to one encoding got a congestion controller")
	}

	// NACKs: ten packets dropped at the client come back.
	dropping.Store(true)
	waitFor(t, ctx, "ten dropped packets retransmitted", func() bool {
		got := map[uint16]bool{}
		for _, p := range ts.snapshot(webrtc.RTPCodecTypeVideo) {
			got[p.seq] = true
		}
		mu.Lock()
		defer mu.Unlock()
		if len(dropped) < 10 {
			return false
		}
		for s := range dropped {
			if !got[s] {
				return false
			}
		}
		return true
	})

	// PLI and FIR reach the publisher (rate-limited: sent until one does).
	ssrc := uint32(ts.track(webrtc.RTPCodecTypeVideo).SSRC())
	for _, req := range []rtcp.Packet{
		&rtcp.PictureLossIndication{MediaSSRC: ssrc},
		&rtcp.FullIntraRequest{MediaSSRC: ssrc, FIR: []rtcp.FIREntry{{SSRC: ssrc, SequenceNumber: 1}}},
	} {
		base := tp.plis[0].Load()
		waitFor(t, ctx, "the subscriber's keyframe request at the publisher", func() bool {
			must(t, ts.pc.WriteRTCP([]rtcp.Packet{req}))
			return tp.plis[0].Load() > base
		})
	}

	// Receiver reports (pion's client sends one a second) are counted.
	reports := e.Stats().DownstreamLoss.Count
	waitFor(t, ctx, "receiver reports counted", func() bool { return e.Stats().DownstreamLoss.Count > reports+2 })

	// Simulcast: a subscriber with the congestion controller, whose
	// estimator must go on getting the client's transport-wide feedback.
	r2 := e.NewRouter("simulcast")
	startPublisher(t, ctx, r2, "carol", pubOpts{rids: []string{"hi", "mid", "low"}})
	ts2, err := subscribe(t, ctx, r2, "dave", "carol", subOpts{})
	must(t, err)
	waitFor(t, ctx, "simulcast video", func() bool { return ts2.count(webrtc.RTPCodecTypeVideo) >= 30 })
	waitFor(t, ctx, "no RTCP reader left", func() bool { return ts2.sub.rtcpReaders.Load() == 0 })
	if ts2.sub.est == nil {
		t.Fatal("a simulcast subscriber without a congestion controller")
	}
	fb := ts2.sub.est.feedbacks()
	waitFor(t, ctx, "transport-wide feedback at the estimator", func() bool { return ts2.sub.est.feedbacks() > fb+5 })
}

// A subscriber behind a firewall that blocks UDP connects over the
// engine's TCP port, though its offer has only UDP candidates: an ICE-TCP
// client is the active side and may list no TCP candidate (pion makes its
// active one only on seeing the answer's passive candidate; Chromium's
// offers here listed none), so every answer must carry the TCP candidate
// whatever the offer says (docs/performance.md, section 8).
func TestSubscriberBehindUDPBlockingFirewall(t *testing.T) {
	for name, engine := range map[string]func(testing.TB) *Engine{"lean": newLeanEngine, "pion": newPionEngine} {
		t.Run(name, func(t *testing.T) {
			checkLeaks(t)
			ctx := testContext(t)
			e := engine(t)
			r := e.NewRouter("stage")
			startPublisher(t, ctx, r, "alice", pubOpts{})
			ts, err := subscribe(t, ctx, r, "bob", "alice", subOpts{client: clientOpts{blockUDP: true}})
			must(t, err)
			if (ts.sub.lean != nil) != (name == "lean") {
				t.Fatalf("lean connection: %v", ts.sub.lean != nil)
			}
			offer := ts.offer
			if strings.Contains(offer, " tcp ") || !strings.Contains(offer, " udp ") {
				t.Fatalf("the offer should have UDP candidates only, as a browser's:\n%s", offer)
			}
			waitFor(t, ctx, "media through the firewall", func() bool {
				return ts.count(webrtc.RTPCodecTypeVideo) >= 50 && ts.count(webrtc.RTPCodecTypeAudio) >= 50
			})
			pair, err := ts.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
			must(t, err)
			if pair == nil || pair.Local.Protocol != webrtc.ICEProtocolTCP {
				t.Fatalf("selected pair %v is not TCP", pair)
			}
		})
	}
}

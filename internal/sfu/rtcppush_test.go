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
func TestSubscriberRTCPHandledWithoutReaders(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	e := newTestEngine(t)

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
	fb := ts2.sub.est.twccReports.Load()
	waitFor(t, ctx, "transport-wide feedback at the estimator", func() bool { return ts2.sub.est.twccReports.Load() > fb+5 })
}

// The answer to a subscriber carries the engine's ICE-TCP candidate only
// when the offer can use it: it has a TCP candidate (browsers offer
// "tcptype active" ones), or none at all. An offer whose candidates are all
// UDP gets none, and still connects over UDP.
func TestSubscriberTCPCandidateByOffer(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	e := newTestEngine(t)
	r := e.NewRouter("stage")
	startPublisher(t, ctx, r, "alice", pubOpts{})
	hasTCP := func(ts *testSubscriber) bool {
		return strings.Contains(ts.pc.CurrentRemoteDescription().SDP, "tcptype passive")
	}

	udp, err := subscribe(t, ctx, r, "udp", "alice", subOpts{})
	must(t, err)
	if hasTCP(udp) {
		t.Error("an offer with UDP candidates only got a TCP candidate")
	}
	waitFor(t, ctx, "media over UDP", func() bool { return udp.count(webrtc.RTPCodecTypeVideo) >= 10 })

	// No candidate in the offer (pion's TCP-only client gathers none).
	tcp, err := subscribe(t, ctx, r, "tcp", "alice", subOpts{client: clientOpts{tcpOnly: true}})
	must(t, err)
	if !hasTCP(tcp) {
		t.Error("an offer without candidates got no TCP candidate")
	}
	waitFor(t, ctx, "media over TCP", func() bool { return tcp.count(webrtc.RTPCodecTypeVideo) >= 10 })
}

func TestWantsICETCP(t *testing.T) {
	const udpLine = "a=candidate:1 1 udp 2130706431 192.0.2.1 5000 typ host\r\n"
	bare := offerWithoutCandidates()
	withUDP := bare + udpLine
	for _, c := range []struct {
		name, offer string
		want        bool
	}{
		{"no candidates", bare, true},
		{"UDP only", withUDP, false},
		{"UDP and TCP", withTCPCandidate(withUDP), true},
		{"TCP only", withTCPCandidate(bare), true},
		{"session-level TCP", strings.Replace(withUDP, "t=0 0\r\n", "t=0 0\r\na=candidate:3 1 TCP 1518280447 192.0.2.1 9 typ host tcptype active\r\n", 1), true},
	} {
		s, err := parseOffer(c.offer)
		must(t, err)
		if got := wantsICETCP(s); got != c.want {
			t.Errorf("%s: wantsICETCP = %v, want %v", c.name, got, c.want)
		}
	}
}

// A browser behind a firewall that blocks UDP: its offer has UDP and TCP
// (active) candidates, its UDP goes nowhere, and it connects over TCP.
func TestSubscriberBehindUDPBlockingFirewall(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	e := newTestEngine(t)
	r := e.NewRouter("stage")
	startPublisher(t, ctx, r, "alice", pubOpts{})
	ts, err := subscribe(t, ctx, r, "bob", "alice", subOpts{
		client:     clientOpts{blockUDP: true},
		mungeOffer: withTCPCandidate,
	})
	must(t, err)
	if !strings.Contains(ts.pc.CurrentRemoteDescription().SDP, "tcptype passive") {
		t.Fatal("no TCP candidate in the answer")
	}
	waitFor(t, ctx, "media through the firewall", func() bool {
		return ts.count(webrtc.RTPCodecTypeVideo) >= 50 && ts.count(webrtc.RTPCodecTypeAudio) >= 50
	})
	pair, err := ts.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	must(t, err)
	if pair == nil || pair.Local.Protocol != webrtc.ICEProtocolTCP {
		t.Fatalf("selected pair %v is not TCP", pair)
	}
}

// withTCPCandidate adds to an offer's first media section the candidate a
// browser offers for ICE-TCP: an active host candidate, port 9 (RFC 6544:
// an active candidate has no port of its own).
func withTCPCandidate(offer string) string {
	const line = "a=candidate:3 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active\r\n"
	i := strings.Index(offer, "\r\nm=")
	if i < 0 {
		return offer
	}
	j := strings.Index(offer[i+2:], "\r\n")
	at := i + 2 + j + 2
	return offer[:at] + line + offer[at:]
}

func offerWithoutCandidates() string {
	return "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\n" +
		"a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n"
}

package sfu

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// The tests here are of pion's connections on the direct path (a
// simulcast publisher's subscribers, and every subscriber with
// --rtc-lean-subscribers=false): their engines make no lean connections
// (lean_test.go).

// sentDirectly reports whether the media the engine forwarded (it has
// one subscriber) left on the direct send path: pion's selected candidate
// pair counts what passes through it, which is then only RTCP and STUN.
func sentDirectly(t *testing.T, e *Engine, s *Subscriber) bool {
	t.Helper()
	st, ok := s.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePairStats()
	if !ok {
		t.Fatal("no selected candidate pair")
	}
	fwd := e.stats.fwdBytes.Load()
	if fwd == 0 {
		t.Fatal("nothing forwarded")
	}
	direct := st.BytesSent < fwd/4
	if direct != (s.direct != nil && s.direct.srtp.Load() != nil && s.direct.addr.Load() != nil) {
		t.Fatalf("pion sent %d bytes of %d forwarded, but the connection is on the direct path: %v", st.BytesSent, fwd, !direct)
	}
	return direct
}

// A subscriber gets its packets through the engine's own SRTP and send,
// whatever SRTP profile and DTLS cipher suite (SHA-256 or SHA-384 PRF) its
// client accepts: a key derived wrongly would leave the client unable to
// decrypt anything, and checkStream checks every byte of what it got. So
// does a subscriber of simulcast tracks, whose packets pass its congestion
// controller first, and one that requires its header extensions (the
// transport-wide numbers) encrypted (RFC 9335).
func TestDirectSendPathUnderEveryProfile(t *testing.T) {
	cases := []struct {
		name     string
		profiles []dtls.SRTPProtectionProfile
		suites   []dtls.CipherSuiteID
		rids     []string
		cryptex  bool
	}{
		{"AES_128_CM_HMAC_SHA1_80", []dtls.SRTPProtectionProfile{dtls.SRTP_AES128_CM_HMAC_SHA1_80}, nil, nil, false},
		{"AEAD_AES_128_GCM", []dtls.SRTPProtectionProfile{dtls.SRTP_AEAD_AES_128_GCM}, nil, nil, false},
		{"AEAD_AES_256_GCM", []dtls.SRTPProtectionProfile{dtls.SRTP_AEAD_AES_256_GCM}, nil, nil, false},
		{"SHA384 suite", nil, []dtls.CipherSuiteID{dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}, nil, false},
		{"CBC suite", nil, []dtls.CipherSuiteID{dtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}, nil, false},
		{"simulcast", nil, nil, []string{"low", "mid", "hi"}, false},
		{"simulcast, cryptex required", nil, nil, []string{"low", "mid", "hi"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkLeaks(t)
			ctx := testContext(t)
			e := newPionEngine(t)
			r := e.NewRouter("stage")
			startPublisher(t, ctx, r, "alice", pubOpts{rids: c.rids})
			ts, err := subscribe(t, ctx, r, "bob", "alice", subOpts{client: clientOpts{srtpProfiles: c.profiles, cipherSuites: c.suites, cryptex: c.cryptex}})
			must(t, err)
			waitFor(t, ctx, "media", func() bool {
				return ts.count(webrtc.RTPCodecTypeVideo) >= 100 && ts.count(webrtc.RTPCodecTypeAudio) >= 30
			})
			if (ts.sub.est != nil) != (c.rids != nil) {
				t.Fatal("congestion control is not where simulcast is")
			}
			if !sentDirectly(t, e, ts.sub) {
				t.Fatal("the subscriber's media went through pion")
			}
			if err := ts.errors(); err != nil {
				t.Fatal(err)
			}
			checkStream(t, ts.snapshot(webrtc.RTPCodecTypeVideo), true, 0)
			checkStream(t, ts.snapshot(webrtc.RTPCodecTypeAudio), false, 0)
		})
	}
}

// Where the direct path cannot be taken — the client wants to be the DTLS
// server (so the engine never sends the ServerHello it reads the server
// random from), or the connection runs over TCP — the subscriber gets its
// media through pion as before; and so does every subscriber of an engine
// told to (--rtc-direct-send=false).
func TestDirectSendPathFallsBackToPion(t *testing.T) {
	for _, c := range []string{"client is DTLS server", "TCP", "engine told to"} {
		t.Run(c, func(t *testing.T) {
			checkLeaks(t)
			ctx := testContext(t)
			e := newPionEngine(t)
			if c == "engine told to" {
				e.cfg.PionSendPath = true
			}
			r := e.NewRouter("stage")
			startPublisher(t, ctx, r, "alice", pubOpts{})
			o := subOpts{}
			switch c {
			case "TCP":
				o.client.tcpOnly = true
			case "client is DTLS server":
				o.mungeOffer = func(sdp string) string { return strings.ReplaceAll(sdp, "a=setup:actpass", "a=setup:passive") }
			}
			ts, err := subscribe(t, ctx, r, "bob", "alice", o)
			must(t, err)
			waitFor(t, ctx, "media", func() bool {
				return ts.count(webrtc.RTPCodecTypeVideo) >= 100 && ts.count(webrtc.RTPCodecTypeAudio) >= 30
			})
			if sentDirectly(t, e, ts.sub) {
				t.Fatal("the subscriber's media did not go through pion")
			}
			if err := ts.errors(); err != nil {
				t.Fatal(err)
			}
			checkStream(t, ts.snapshot(webrtc.RTPCodecTypeVideo), true, 0)
		})
	}
}

// A stream on the direct path crosses the 16-bit sequence number's wrap:
// the engine's SRTP context must move the stream's rollover counter to 1
// where the subscriber's does, or every packet after the wrap fails to
// authenticate and is dropped. Packets lost just before the wrap come back
// as plain retransmissions (no RTX) after it, with their old numbers: the
// context must encrypt those with the old counter. The fan-out is fed
// directly, at full speed (paced only enough not to overflow the
// subscriber's socket), and every byte received is checked.
func TestDirectSendPathAcrossTheSequenceWrap(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	e := newPionEngine(t)
	r := e.NewRouter("stage")
	tp := startPublisher(t, ctx, r, "alice", pubOpts{noAudio: true, silent: true})
	const start = 65536 - 3000 // the first source sequence number
	var mu sync.Mutex
	dropped := map[uint16]bool{}
	drop := func(h *rtp.Header) bool {
		// Once each: the three packets before the wrap and two after.
		s := h.SequenceNumber
		if s < 65533 && s > 1 {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		if dropped[s] {
			return false
		}
		dropped[s] = true
		return true
	}
	ts, err := subscribe(t, ctx, r, "bob", "alice", subOpts{client: clientOpts{noAudio: true, noRTX: true, drop: drop}})
	must(t, err)
	l := tp.pub.tracks[0].layers[0]
	seq, frame := uint16(start), uint32(0)
	var p rtpPacket
	sendFrame := func(key bool) {
		payloads := (vp8Frames{}).frame(0, frame, key, 320, 180)
		for k, pl := range payloads {
			putSrcSeq(pl, seq)
			must(t, p.parse(rawPacket(seq, frame*3000, k == len(payloads)-1, pl, 0)))
			l.forward(&p, nanotime())
			seq++
		}
		frame++
	}
	// Keyframes until the subscriber's stream has started on one.
	waitFor(t, ctx, "the stream to start", func() bool {
		sendFrame(true)
		time.Sleep(5 * time.Millisecond)
		return ts.count(webrtc.RTPCodecTypeVideo) > 0
	})
	// 7,000 packets more: 3,000 to the wrap and 4,000 after it.
	for frame < 3500 {
		sendFrame(false)
		if frame%10 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	last := seq - 1
	waitFor(t, ctx, "every packet, repairs included", func() bool {
		got := map[uint16]bool{}
		for _, p := range ts.snapshot(webrtc.RTPCodecTypeVideo) {
			got[p.seq] = true
		}
		for s := uint16(start + 100); s != last; s++ {
			if !got[s] {
				return false
			}
		}
		return true
	})
	if err := ts.errors(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	n := len(dropped)
	mu.Unlock()
	if n != 5 {
		t.Fatalf("%d packets dropped around the wrap, want 5", n)
	}
	checkStream(t, ts.snapshot(webrtc.RTPCodecTypeVideo), true, 0)
	if ext := extSeqs(ts.snapshot(webrtc.RTPCodecTypeVideo)); ext[len(ext)-1] < 65536 {
		t.Fatalf("the stream ended at %d, before the wrap", ext[len(ext)-1])
	}
	if !sentDirectly(t, e, ts.sub) {
		t.Fatal("the subscriber's media went through pion")
	}
}

// Packets forwarded as a batch reach a direct-path subscriber intact and
// in order however their sizes fall: equal-size runs go out as one send
// with UDP segmentation, a shorter packet ends its run, a larger one
// starts a new one, and a batch longer than one send splits. The batches
// are fed to the layer directly; every byte received is checked, and the
// subscriber does not NACK (a datagram cut wrongly would be lost, not
// repaired).
func TestDirectSendPathBatches(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	e := newPionEngine(t)
	r := e.NewRouter("stage")
	tp := startPublisher(t, ctx, r, "alice", pubOpts{noAudio: true, silent: true})
	ts, err := subscribe(t, ctx, r, "bob", "alice", subOpts{client: clientOpts{noAudio: true, noNACK: true}})
	must(t, err)
	l := tp.pub.tracks[0].layers[0]
	seq, frame := uint16(1000), uint32(0)
	// batch forwards one frame of len(sizes) packets (payload sizes) as
	// one batch, as the forwarder does with what queued up.
	var slots [2 * maxBatch]rtpPacket
	batch := func(key bool, sizes ...int) {
		ps := make([]*rtpPacket, len(sizes))
		for i, size := range sizes {
			id := packetID{frame: frame, index: uint8(i), count: uint8(len(sizes)), keyframe: key}
			prefix := []byte{0x00}
			if i == 0 {
				prefix = []byte{0x10}
				if key {
					prefix = []byte{0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00}
				} else {
					prefix = []byte{0x10, 0x11}
				}
			}
			pl := synthPayload(prefix, size, id)
			putSrcSeq(pl, seq)
			p := &slots[i]
			must(t, p.parse(rawPacket(seq, frame*3000, i == len(sizes)-1, pl, 0)))
			p.arrival = nanotime()
			ps[i] = p
			seq++
		}
		frame++
		l.forwardBatch(ps)
	}
	waitFor(t, ctx, "the stream to start", func() bool {
		batch(true, 1000, 1000, 1000, 400)
		time.Sleep(5 * time.Millisecond)
		return ts.count(webrtc.RTPCodecTypeVideo) > 0
	})
	shapes := [][]int{
		{1000, 1000, 1000, 1000, 1000, 1000},      // one run
		{1000, 1000, 300, 1000, 1000},             // a shorter one closes a run
		{300, 1000, 1000, 1000},                   // a larger one starts another
		{200, 300, 400, 500, 600, 700, 800, 1100}, // growing: a send each
		{1100, 900, 700, 500},                     // shrinking
		{1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 500}, // more than maxBatch
		{700}, // one alone
	}
	for range 20 {
		for _, s := range shapes {
			batch(false, s...)
			time.Sleep(2 * time.Millisecond)
		}
	}
	last := seq - 1
	waitFor(t, ctx, "every packet", func() bool {
		pkts := ts.snapshot(webrtc.RTPCodecTypeVideo)
		return len(pkts) > 0 && pkts[len(pkts)-1].seq == last
	})
	if err := ts.errors(); err != nil {
		t.Fatal(err)
	}
	checkStream(t, ts.snapshot(webrtc.RTPCodecTypeVideo), true, 0)
	if !sentDirectly(t, e, ts.sub) {
		t.Fatal("the subscriber's media went through pion")
	}
	if runtime.GOOS == "linux" && !segmenting(e.send) {
		t.Fatal("the kernel refused UDP segmentation: the batches went one by one")
	}
}

// Packets a real publisher sent, which the forwarder takes in batches,
// keep the time they were read: the layer's newest keyframe arrived after
// the publisher started and before now, and no packet's forward delay is
// longer than the whole test. (A batch whose packets kept no arrival time
// once dated every keyframe to the process's start, which stopped
// subscribers starting from the cache, and reported forward delays as old
// as the process.)
func TestBatchedPacketsKeepTheirArrival(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	e := newPionEngine(t)
	r := e.NewRouter("stage")
	start := nanotime()
	tp := startPublisher(t, ctx, r, "alice", pubOpts{noAudio: true})
	ts, err := subscribe(t, ctx, r, "bob", "alice", subOpts{client: clientOpts{noAudio: true}})
	must(t, err)
	waitFor(t, ctx, "media", func() bool { return ts.count(webrtc.RTPCodecTypeVideo) >= 100 })
	end := nanotime()
	if at := tp.pub.tracks[0].layers[0].keyAt.Load(); at < start || at > end {
		t.Fatalf("the newest keyframe arrived at %d, outside the test's [%d, %d]", at, start, end)
	}
	h := e.stats.fwdDelay.snapshot(delayBounds)
	if h.Count == 0 {
		t.Fatal("no forward delay observed")
	}
	if mean := h.Sum / float64(h.Count); mean > float64(end-start)/1e9 {
		t.Fatalf("mean forward delay %.3f s, longer than the test", mean)
	}
}

// The fan-out allocates nothing per packet, one packet at a time
// (forward, as local publishers feed it) or in batches (forwardBatch, as
// the forwarder takes what queued up).
func TestFanOutDoesNotAllocate(t *testing.T) {
	up := newTestTrack(familyVP8)
	w := &discardWriter{}
	newTestDown(up, w, true)
	var p rtpPacket
	key := (vp8Frames{}).frame(0, 0, true, 1280, 720)[0]
	must(t, p.parse(rawPacket(0, 0, false, key, 0)))
	up.layers[0].forward(&p, 1)
	raw := benchPacket(1)
	seq := uint16(1)
	if n := testing.AllocsPerRun(1000, func() {
		raw[2], raw[3] = byte(seq>>8), byte(seq)
		seq++
		_ = p.parse(raw)
		up.layers[0].forward(&p, nanotime())
	}); n != 0 {
		t.Errorf("forward: %.1f allocations per packet", n)
	}
	var batch [4]rtpPacket
	ps := []*rtpPacket{&batch[0], &batch[1], &batch[2], &batch[3]}
	if n := testing.AllocsPerRun(1000, func() {
		for _, q := range ps {
			raw[2], raw[3] = byte(seq>>8), byte(seq)
			seq++
			_ = q.parse(raw)
			q.arrival = nanotime()
		}
		up.layers[0].forwardBatch(ps)
	}); n != 0 {
		t.Errorf("forwardBatch: %.1f allocations per batch", n)
	}
	if w.n == 0 {
		t.Fatal("nothing forwarded")
	}
}

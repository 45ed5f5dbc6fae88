package sfu

import (
	"context"
	"crypto/tls"
	"errors"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"
)

// newLeanEngine starts an engine whose fixed subscribers are on lean
// connections.
func newLeanEngine(t testing.TB) *Engine {
	t.Helper()
	return newTestEngineWith(t, Config{ListenIP: "127.0.0.1", LeanSubscribers: true})
}

// leanSubscriber starts an engine with a publisher and one pion subscriber
// of it, on a lean connection.
func leanSubscriber(t *testing.T, ctx context.Context, o clientOpts) (*Engine, *testSubscriber) {
	t.Helper()
	e := newLeanEngine(t)
	r := e.NewRouter("stage")
	tp := startPublisher(t, ctx, r, "alice", pubOpts{})
	<-tp.media
	ts, err := subscribe(t, ctx, r, "bob", "alice", subOpts{client: o})
	must(t, err)
	if ts.sub.lean == nil {
		t.Fatal("the subscriber is not on a lean connection")
	}
	return e, ts
}

// A pion subscriber on a lean connection gets every packet, in order,
// under every SRTP profile (NACKs: TestNACKRecoversDroppedPackets, which
// runs on lean connections too); its sender reports come, and once the client has shown the handshake complete (its first
// SRTCP) the DTLS connection is gone and with it every goroutine of the
// connection.
func TestLeanSubscriberUnderEveryProfile(t *testing.T) {
	for name, p := range map[string]dtls.SRTPProtectionProfile{
		"AES_128_CM_HMAC_SHA1_80": dtls.SRTP_AES128_CM_HMAC_SHA1_80,
		"AEAD_AES_128_GCM":        dtls.SRTP_AEAD_AES_128_GCM,
		"AEAD_AES_256_GCM":        dtls.SRTP_AEAD_AES_256_GCM,
	} {
		t.Run(name, func(t *testing.T) {
			checkLeaks(t)
			ctx := testContext(t)
			e, ts := leanSubscriber(t, ctx, clientOpts{srtpProfiles: []dtls.SRTPProtectionProfile{p}})
			answer := ts.pc.RemoteDescription().SDP
			for _, want := range []string{"a=ice-lite", "a=setup:passive", "a=sendonly", "a=end-of-candidates"} {
				if !strings.Contains(answer, want) {
					t.Errorf("the answer has no %q:\n%s", want, answer)
				}
			}
			waitFor(t, ctx, "media at the subscriber", func() bool {
				return ts.count(webrtc.RTPCodecTypeAudio) >= 100 && ts.count(webrtc.RTPCodecTypeVideo) >= 150
			})
			must(t, ts.errors())
			checkStream(t, ts.snapshot(webrtc.RTPCodecTypeAudio), false, 0)
			checkStream(t, ts.snapshot(webrtc.RTPCodecTypeVideo), true, 0)
			waitFor(t, ctx, "sender reports at the subscriber", func() bool {
				ts.mu.Lock()
				defer ts.mu.Unlock()
				return len(ts.srs) > 0
			})
			waitFor(t, ctx, "the DTLS connection retired", func() bool {
				return ts.sub.lean.retired.Load()
			})
			if e.Stats().LeanSubscribers != 1 {
				t.Errorf("Stats().LeanSubscribers = %d, want 1", e.Stats().LeanSubscribers)
			}
			// Media keeps flowing after the retirement.
			n := ts.count(webrtc.RTPCodecTypeVideo)
			waitFor(t, ctx, "media after the DTLS connection is gone", func() bool {
				return ts.count(webrtc.RTPCodecTypeVideo) >= n+60
			})
		})
	}
}

// A client that hangs up (its DTLS close_notify) closes its lean
// subscriber at once, before and after the DTLS connection is retired; one
// that vanishes without a word fails after its checks stop.
func TestLeanSubscriberEnds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		retire bool // wait for the retirement first
		vanish bool
		want   error
	}{
		{"hangs up", false, false, ErrConnectionClosed},
		{"hangs up after retirement", true, false, ErrConnectionClosed},
		{"vanishes", true, true, ErrConnectionFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			if tc.vanish {
				old := leanSilenceTimeout
				leanSilenceTimeout = 4 * time.Second
				t.Cleanup(func() { leanSilenceTimeout = old })
			}
			ctx := testContext(t)
			var mute atomic.Bool
			e, ts := leanSubscriber(t, ctx, clientOpts{mute: &mute})
			waitFor(t, ctx, "media at the subscriber", func() bool { return ts.count(webrtc.RTPCodecTypeVideo) >= 30 })
			if tc.retire {
				waitFor(t, ctx, "the DTLS connection retired", func() bool { return ts.sub.lean.retired.Load() })
			}
			if tc.vanish {
				mute.Store(true)
			} else {
				must(t, ts.pc.Close())
			}
			select {
			case err := <-ts.closed:
				if !errors.Is(err, tc.want) {
					t.Errorf("closed with %v, want %v", err, tc.want)
				}
			case <-ctx.Done():
				t.Fatal("the subscriber was not closed")
			}
			if n := e.Stats().LeanSubscribers; n != 0 {
				t.Errorf("Stats().LeanSubscribers = %d after the close", n)
			}
		})
	}
}

// Offers a lean connection cannot answer stay with pion: an offerer that
// will be the DTLS server (end to end), and media not bundled or a data
// channel (readLeanOffer; pion refuses unbundled media in max-bundle
// anyway).
func TestLeanFallsBackToPion(t *testing.T) {
	ctx := testContext(t)
	e := newLeanEngine(t)
	r := e.NewRouter("stage")
	tp := startPublisher(t, ctx, r, "alice", pubOpts{})
	<-tp.media
	var offer string
	ts, err := subscribe(t, ctx, r, "bob", "alice", subOpts{mungeOffer: func(o string) string {
		offer = o
		return strings.ReplaceAll(o, "a=setup:actpass", "a=setup:passive")
	}})
	must(t, err)
	if ts.sub.lean != nil {
		t.Fatal("an offerer that insists on being the DTLS server was answered on a lean connection")
	}
	waitFor(t, ctx, "media on pion's connection", func() bool { return ts.count(webrtc.RTPCodecTypeVideo) >= 30 })

	read := func(o string) bool {
		sd, err := unmarshalOffer(o)
		must(t, err)
		_, ok := readLeanOffer(sd)
		return ok
	}
	if !read(offer) {
		t.Fatal("the client's own offer cannot be answered lean")
	}
	if read(strings.ReplaceAll(offer, "a=group:BUNDLE", "a=x-group:BUNDLE")) {
		t.Error("an offer without BUNDLE was taken")
	}
	if !strings.Contains(offer, "a=group:BUNDLE 0 1\r\n") {
		t.Fatalf("the offer's BUNDLE group is not the one this test extends:\n%s", offer)
	}
	dc := offer + "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:9\r\na=sctp-port:5000\r\n"
	if read(strings.Replace(dc, "a=group:BUNDLE 0 1", "a=group:BUNDLE 0 1 9", 1)) {
		t.Error("an offer with a data channel was taken")
	}
}

// Binding requests that do not carry a lean connection's password are not
// answered and teach the engine no address; those that do are answered.
func TestLeanBindingRequestsAuthenticate(t *testing.T) {
	e := newLeanEngine(t)
	c := e.newLeanConn(&Subscriber{created: nanotime()}, &leanOffer{}, &directConn{e: e}, tls.Certificate{})
	e.lean.add(c)
	defer e.lean.remove(c)
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	req := func(pwd string) []byte {
		m, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(c.ufrag+":client"),
			stun.NewShortTermIntegrity(pwd), stun.Fingerprint)
		must(t, err)
		return m.Raw
	}
	if !e.lean.divert(req("wrong password"), from) {
		t.Fatal("a request naming the connection's ufrag was left to pion")
	}
	if e.lean.byAddress(from) != nil {
		t.Fatal("an unauthenticated request taught the engine its address")
	}
	if !e.lean.divert(req(c.pwd), from) || e.lean.byAddress(from) != c {
		t.Fatal("an authenticated request did not reach its connection")
	}
	if e.lean.divert(append([]byte{0x80, 200}, make([]byte, 30)...), netip.MustParseAddrPort("127.0.0.1:40001")) {
		t.Fatal("RTCP from an unknown address was taken")
	}
}

// The read loop's classification of datagrams never fails on what arrives.
func FuzzLeanDivert(f *testing.F) {
	e := newLeanEngine(f)
	c := e.newLeanConn(&Subscriber{created: nanotime()}, &leanOffer{}, &directConn{e: e}, tls.Certificate{})
	e.lean.add(c)
	m, _ := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(c.ufrag+":client"), stun.NewShortTermIntegrity("x"), stun.Fingerprint)
	f.Add(m.Raw)
	f.Add([]byte{0x80, 200, 0, 1})
	f.Add([]byte{22, 254, 253})
	f.Fuzz(func(t *testing.T, b []byte) {
		e.lean.divert(b, netip.MustParseAddrPort("127.0.0.1:40000"))
	})
}

// A client that can only use TCP (ICE-TCP, RFC 6544) reaches its lean
// connection through the engine's TCP port, shared with pion's
// connections (tcpsplit.go): every packet arrives, and closing the TCP
// connection ends the subscriber.
func TestLeanSubscriberOverTCP(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	_, ts := leanSubscriber(t, ctx, clientOpts{tcpOnly: true})
	waitFor(t, ctx, "media over TCP", func() bool {
		return ts.count(webrtc.RTPCodecTypeAudio) >= 100 && ts.count(webrtc.RTPCodecTypeVideo) >= 150
	})
	must(t, ts.errors())
	checkStream(t, ts.snapshot(webrtc.RTPCodecTypeAudio), false, 0)
	checkStream(t, ts.snapshot(webrtc.RTPCodecTypeVideo), true, 0)
	if p := ts.sub.lean.media.Load(); p == nil || p.tcp == nil {
		t.Fatalf("media path %+v, want TCP", p)
	}
	must(t, ts.pc.Close())
	select {
	case err := <-ts.closed:
		if !errors.Is(err, ErrConnectionClosed) {
			t.Errorf("closed with %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the subscriber was not closed")
	}
}

// A simulcast publisher's subscriber is on a lean connection too when it
// offers transport-wide feedback: the engine writes the transport-wide
// numbers, its congestion controller gets the client's feedback from the
// read loop, and the allocator moves between layers on the estimate, with
// every switch at a keyframe and the sequence numbers continuous.
func TestLeanSimulcastSubscriber(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	e := newLeanEngine(t)
	r := e.NewRouter("stage")
	startPublisher(t, ctx, r, "alice", pubOpts{rids: []string{"hi", "mid", "low"}})
	ts, err := subscribe(t, ctx, r, "bob", "alice", subOpts{options: SubscribeOptions{InitialLayer: "lowest"}})
	must(t, err)
	if ts.sub.lean == nil || ts.sub.est == nil || !ts.sub.twcc {
		t.Fatalf("lean %v, estimator %v, transport-wide feedback %v", ts.sub.lean != nil, ts.sub.est != nil, ts.sub.twcc)
	}
	if answer := ts.pc.RemoteDescription().SDP; !strings.Contains(answer, "transport-wide-cc") || !strings.Contains(answer, "transport-cc") {
		t.Fatalf("the answer offers no transport-wide feedback:\n%s", answer)
	}
	waitFor(t, ctx, "transport-wide feedback at the estimator", func() bool { return ts.sub.est.feedbacks() > 10 })
	// Unpinned, the allocator climbs from the lowest layer on the
	// estimate (it starts above the top layer's bitrate).
	waitFor(t, ctx, "the top layer", func() bool { return lastLayers(ts, 10, uint8(ridRank["hi"])) })
	mid := videoMID(t, ts.sub)
	must(t, ts.sub.PinLayer(mid, "low"))
	waitFor(t, ctx, "the pinned low layer", func() bool { return lastLayers(ts, 10, uint8(ridRank["low"])) })
	must(t, ts.errors())
	checkStream(t, ts.snapshot(webrtc.RTPCodecTypeVideo), true, 0)
	checkStream(t, ts.snapshot(webrtc.RTPCodecTypeAudio), false, 0)
}

package sfu

import (
	"strings"
	"testing"

	"github.com/pion/dtls/v3"
	"github.com/pion/webrtc/v4"
)

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
	if direct != (s.direct != nil && s.direct.keys.Load() != nil && s.direct.addr.Load() != nil) {
		t.Fatalf("pion sent %d bytes of %d forwarded, but the connection is on the direct path: %v", st.BytesSent, fwd, !direct)
	}
	return direct
}

// A subscriber gets its packets through the engine's own SRTP and send,
// whatever SRTP profile and DTLS cipher suite (SHA-256 or SHA-384 PRF) its
// client accepts: a key derived wrongly would leave the client unable to
// decrypt anything, and checkStream checks every byte of what it got. So
// does a subscriber of simulcast tracks, whose packets pass its congestion
// controller first.
func TestDirectSendPathUnderEveryProfile(t *testing.T) {
	cases := []struct {
		name     string
		profiles []dtls.SRTPProtectionProfile
		suites   []dtls.CipherSuiteID
		rids     []string
	}{
		{"AES_128_CM_HMAC_SHA1_80", []dtls.SRTPProtectionProfile{dtls.SRTP_AES128_CM_HMAC_SHA1_80}, nil, nil},
		{"AEAD_AES_128_GCM", []dtls.SRTPProtectionProfile{dtls.SRTP_AEAD_AES_128_GCM}, nil, nil},
		{"AEAD_AES_256_GCM", []dtls.SRTPProtectionProfile{dtls.SRTP_AEAD_AES_256_GCM}, nil, nil},
		{"SHA384 suite", nil, []dtls.CipherSuiteID{dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}, nil},
		{"CBC suite", nil, []dtls.CipherSuiteID{dtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}, nil},
		{"simulcast", nil, nil, []string{"low", "mid", "hi"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkLeaks(t)
			ctx := testContext(t)
			e := newTestEngine(t)
			r := e.NewRouter("stage")
			startPublisher(t, ctx, r, "alice", pubOpts{rids: c.rids})
			ts, err := subscribe(t, ctx, r, "bob", "alice", subOpts{client: clientOpts{srtpProfiles: c.profiles, cipherSuites: c.suites}})
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
	for _, c := range []string{"client is DTLS server", "cryptex", "TCP", "engine told to"} {
		t.Run(c, func(t *testing.T) {
			checkLeaks(t)
			ctx := testContext(t)
			e := newTestEngine(t)
			if c == "engine told to" {
				e.cfg.PionSendPath = true
			}
			r := e.NewRouter("stage")
			startPublisher(t, ctx, r, "alice", pubOpts{})
			o := subOpts{}
			switch c {
			case "TCP":
				o.client.tcpOnly = true
			case "cryptex":
				o.client.cryptex = true
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

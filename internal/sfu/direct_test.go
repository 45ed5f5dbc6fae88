package sfu

import (
	"strings"
	"testing"

	"github.com/pion/dtls/v3"
	"github.com/pion/webrtc/v4"
)

// directPath reports whether each of the subscriber's down-tracks writes
// on the engine's own send path and that path has an address to send to.
func directPath(s *Subscriber) bool {
	for _, d := range s.downs {
		d.mu.Lock()
		w, ok := d.writer.(*directWriter)
		d.mu.Unlock()
		if !ok || w.c.addr.Load() == nil {
			return false
		}
	}
	return len(s.downs) > 0
}

// A subscriber of single-encoding tracks gets its packets through the
// engine's own SRTP and send, whatever SRTP profile and DTLS cipher suite
// (SHA-256 or SHA-384 PRF) its client accepts: a key derived wrongly would
// leave the client unable to decrypt anything, and checkStream checks every
// byte of what it got.
func TestDirectSendPathUnderEveryProfile(t *testing.T) {
	cases := []struct {
		name     string
		profiles []dtls.SRTPProtectionProfile
		suites   []dtls.CipherSuiteID
	}{
		{"AES_128_CM_HMAC_SHA1_80", []dtls.SRTPProtectionProfile{dtls.SRTP_AES128_CM_HMAC_SHA1_80}, nil},
		{"AEAD_AES_128_GCM", []dtls.SRTPProtectionProfile{dtls.SRTP_AEAD_AES_128_GCM}, nil},
		{"AEAD_AES_256_GCM", []dtls.SRTPProtectionProfile{dtls.SRTP_AEAD_AES_256_GCM}, nil},
		{"SHA384 suite", nil, []dtls.CipherSuiteID{dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}},
		{"CBC suite", nil, []dtls.CipherSuiteID{dtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkLeaks(t)
			ctx := testContext(t)
			e := newTestEngine(t)
			r := e.NewRouter("stage")
			startPublisher(t, ctx, r, "alice", pubOpts{})
			ts, err := subscribe(t, ctx, r, "bob", "alice", subOpts{client: clientOpts{srtpProfiles: c.profiles, cipherSuites: c.suites}})
			must(t, err)
			waitFor(t, ctx, "media", func() bool {
				return ts.count(webrtc.RTPCodecTypeVideo) >= 100 && ts.count(webrtc.RTPCodecTypeAudio) >= 30
			})
			if !directPath(ts.sub) {
				t.Fatal("the subscriber is not on the direct send path")
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
			case "client is DTLS server":
				o.mungeOffer = func(sdp string) string { return strings.ReplaceAll(sdp, "a=setup:actpass", "a=setup:passive") }
			}
			ts, err := subscribe(t, ctx, r, "bob", "alice", o)
			must(t, err)
			waitFor(t, ctx, "media", func() bool {
				return ts.count(webrtc.RTPCodecTypeVideo) >= 100 && ts.count(webrtc.RTPCodecTypeAudio) >= 30
			})
			if directPath(ts.sub) {
				t.Fatal("the subscriber is on the direct send path")
			}
			if err := ts.errors(); err != nil {
				t.Fatal(err)
			}
			checkStream(t, ts.snapshot(webrtc.RTPCodecTypeVideo), true, 0)
		})
	}
}

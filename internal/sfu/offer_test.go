package sfu

import (
	"errors"
	"strings"
	"testing"
)

// A Chrome-style simulcast publish offer, trimmed.
const chromeOffer = "v=0\r\n" +
	"o=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
	"a=group:BUNDLE 0 1\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111 63\r\n" +
	"c=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n" +
	"a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n" +
	"a=setup:actpass\r\n" +
	"a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n" +
	"a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n" +
	"a=rtpmap:63 red/48000/2\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 98 99 102 103 104 105 96 97\r\n" +
	"c=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendonly\r\n" +
	"a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n" +
	"a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n" +
	"a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n" +
	"a=rtpmap:98 VP9/90000\r\na=fmtp:98 profile-id=0\r\n" +
	"a=rtpmap:99 rtx/90000\r\na=fmtp:99 apt=98\r\n" +
	"a=rtpmap:102 H264/90000\r\na=rtcp-fb:102 nack\r\na=rtcp-fb:102 nack pli\r\n" +
	"a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f\r\n" +
	"a=rtpmap:103 rtx/90000\r\na=fmtp:103 apt=102\r\n" +
	"a=rtpmap:104 H264/90000\r\na=rtcp-fb:104 nack\r\n" +
	"a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n" +
	"a=rtpmap:105 rtx/90000\r\na=fmtp:105 apt=104\r\n" +
	"a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n" +
	"a=rid:hi send\r\na=rid:mid send\r\na=rid:low send\r\na=simulcast:send hi;mid;low\r\n"

func TestParseOfferPicksForwardableCodec(t *testing.T) {
	secs, err := parseOffer(chromeOffer)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := planPublish(secs)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != 2 {
		t.Fatalf("plan %+v", plan)
	}
	a, v := plan[0], plan[1]
	if a.family != familyOpus || a.codec.pt != 111 || a.codec.channels != 2 || !a.sec.twcc {
		t.Errorf("audio %+v", a)
	}
	// VP9 is skipped, H.264 with packetization-mode 0 too: the first
	// forwardable codec in the offer's order is H.264 42e01f mode 1.
	if v.family != familyH264 || v.codec.pt != 104 || v.codec.rtxPT != 105 {
		t.Errorf("video codec %+v", v.codec)
	}
	if strings.Join(v.sec.rids, ",") != "hi,mid,low" || v.sec.mid != "1" {
		t.Errorf("video section %+v", v.sec)
	}
	prefs := v.codec.preferences(Video)
	if len(prefs) != 2 || prefs[0].PayloadType != 104 || prefs[1].SDPFmtpLine != "apt=104" {
		t.Errorf("preferences %+v", prefs)
	}
}

func TestParseOfferErrors(t *testing.T) {
	if _, err := parseOffer("nonsense"); !errors.Is(err, ErrBadOffer) {
		t.Errorf("nonsense: %v", err)
	}
	noMid := strings.ReplaceAll(chromeOffer, "a=mid:1\r\n", "")
	if _, err := parseOffer(noMid); !errors.Is(err, ErrBadOffer) {
		t.Errorf("no mid: %v", err)
	}
	recvonly := strings.ReplaceAll(chromeOffer, "a=sendonly", "a=recvonly")
	secs, err := parseOffer(recvonly)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := planPublish(secs); !errors.Is(err, ErrBadOffer) {
		t.Errorf("publishing a recvonly offer: %v", err)
	}
}

func TestH264Acceptable(t *testing.T) {
	for fmtp, want := range map[string]bool{
		"level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f": true,
		"packetization-mode=1;profile-level-id=42001f":                           true,
		"packetization-mode=1;profile-level-id=42E034":                           true, // any level
		"packetization-mode=0;profile-level-id=42e01f":                           false,
		"packetization-mode=1;profile-level-id=4d001f":                           false, // main
		"packetization-mode=1;profile-level-id=64001f":                           false, // high
		"packetization-mode=1":                                                   false,
		"":                                                                       false,
	} {
		if got := h264Acceptable(fmtp); got != want {
			t.Errorf("%q: %v, want %v", fmtp, got, want)
		}
	}
}

func TestParseOfferRefusesWhatNoClientSends(t *testing.T) {
	extraVideo := chromeOffer[strings.Index(chromeOffer, "m=video"):]
	for name, tc := range map[string]struct {
		offer, says string
	}{
		"4 rids":             {chromeOffer + "a=rid:x send\r\n", "at most 3 simulcast layers"},
		"a repeated mid":     {strings.Replace(chromeOffer, "a=mid:1", "a=mid:0", 1), "a=mid:0 names two media sections"},
		"two mids":           {chromeOffer + "a=mid:2\r\n", "two a=mid lines"},
		"two video sections": {chromeOffer + strings.Replace(extraVideo, "a=mid:1", "a=mid:2", 1), "more than one video section"},
		"5 sections":         {chromeOffer + strings.Repeat("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n", 3), "5 media sections"},
		"65 candidates":      {chromeOffer + strings.Repeat("a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n", 65), "65 ICE candidates"},
		"65 ssrc lines":      {chromeOffer + strings.Repeat("a=ssrc:1 cname:x\r\n", 65), "a=ssrc lines"},
	} {
		_, err := parseOffer(tc.offer)
		if !errors.Is(err, ErrBadOffer) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := parseOffer(chromeOffer); err != nil {
		t.Errorf("Chrome's offer: %v", err)
	}
}

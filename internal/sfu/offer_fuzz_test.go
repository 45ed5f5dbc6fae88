package sfu

import (
	"strings"
	"testing"
)

// FuzzParseOffer feeds arbitrary SDP to the engine's own offer reader, which
// runs on every WHIP and subscribe request before pion sees the offer: it
// must never panic, and every section it returns must be well formed.
func FuzzParseOffer(f *testing.F) {
	f.Add(strings.Join([]string{
		"v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
		"m=audio 9 UDP/TLS/RTP/SAVPF 111", "c=IN IP4 0.0.0.0", "a=mid:0", "a=sendonly", "a=rtpmap:111 opus/48000/2",
		"m=video 9 UDP/TLS/RTP/SAVPF 96 97 102", "a=mid:1", "a=sendonly", "a=rtpmap:96 VP8/90000", "a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96",
		"a=rtpmap:102 H264/90000", "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
		"a=rid:hi send", "a=rid:mid send", "a=simulcast:send hi;mid", "",
	}, "\r\n"))
	f.Add("v=0\r\nm=video 9 RTP/AVP 96\r\na=rtpmap:96\r\n")
	f.Add("m=\r\na=rtpmap:999 x/y\r\na=fmtp:abc\r\n")
	f.Fuzz(func(t *testing.T, offer string) {
		sections, err := parseOffer(offer)
		if err != nil {
			return
		}
		for _, s := range sections {
			s.sends()
			s.receives()
			s.firstSupported()
		}
	})
}

package sfu

import (
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
)

func TestChooseLayer(t *testing.T) {
	ladder := []layerStat{{200e3, true}, {700e3, true}, {2500e3, true}}
	for _, c := range []struct {
		name           string
		layers         []layerStat
		budget         int64
		target, pinned int32
		want           int32
	}{
		{"all fits", ladder, 10e6, 0, -1, 2},
		{"mid fits", ladder, 1e6, 0, -1, 1},
		{"nothing fits: lowest", ladder, 50e3, 2, -1, 0},
		{"stay at hi just under headroom", ladder, 2600e3, 2, -1, 2},
		{"no move up without headroom", ladder, 2600e3, 1, -1, 1},
		{"pinned wins", ladder, 50e3, 0, 2, 2},
		{"pinned not sending: nearest lower", []layerStat{{200e3, true}, {700e3, true}, {0, false}}, 10e6, 0, 2, 1},
		{"pinned lowest not sending: next up", []layerStat{{0, false}, {700e3, true}, {2500e3, true}}, 10e6, 0, 0, 1},
		{"top not sending", []layerStat{{200e3, true}, {700e3, true}, {0, false}}, 10e6, 2, -1, 1},
		{"nothing sending: keep", []layerStat{{}, {}, {}}, 10e6, 2, -1, 2},
		{"single layer", []layerStat{{1e6, true}}, 10e3, 0, -1, 0},
	} {
		if got := chooseLayer(c.layers, c.budget, c.target, c.pinned); got != c.want {
			t.Errorf("%s: got %d, want %d", c.name, got, c.want)
		}
	}
}

func TestRankRIDs(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{[]string{"hi", "mid", "low"}, []string{"low", "mid", "hi"}},
		{[]string{"f", "q", "h"}, []string{"q", "h", "f"}},
		{[]string{"r0", "r1", "r2"}, []string{"r0", "r1", "r2"}},
		{nil, nil},
	} {
		got := rankRIDs(c.in)
		if len(got) != len(c.want) {
			t.Fatalf("%v: got %v", c.in, got)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Fatalf("%v: got %v, want %v", c.in, got, c.want)
			}
		}
	}
}

// TestInitialEstimateTakesTopLayer: before any feedback a subscriber's
// estimate lets the allocator pick the top layer of IVS's default simulcast
// ladder at its full bitrate, with audio and an encoder's early overshoot,
// whichever layer preference it asked for: pion's estimator grows slowly
// and does not probe, so a lower start would hold the top layer back for
// many seconds (docs/performance.md, "Time to full quality").
func TestInitialEstimateTakesTopLayer(t *testing.T) {
	for _, initial := range []int{initialBitrate, initialBitrateHighest} {
		est, err := newEstimator(initial)
		must(t, err)
		budget := int64(est.GetTargetBitrate()) - 64e3 // Opus
		must(t, est.Close())
		ladder := []layerStat{{200e3, true}, {700e3, true}, {2500e3 * 12 / 10, true}}
		for _, from := range []int32{0, 1} {
			if got := chooseLayer(ladder, budget, from, -1); got != 2 {
				t.Errorf("initial %d from layer %d: chose %d", initial, from, got)
			}
		}
	}
}

func TestWithStartBitrate(t *testing.T) {
	answer := strings.Join([]string{
		"v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
		"m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1",
		"m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103", "a=rtpmap:96 VP8/90000", "a=rtcp-fb:96 nack",
		"a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96",
		"a=rtpmap:102 H264/90000", "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
		"a=rtpmap:103 rtx/90000", "a=fmtp:103 apt=102",
		"m=video 9 UDP/TLS/RTP/SAVPF 98", "a=rtpmap:98 VP8/90000", "a=fmtp:98 x-google-start-bitrate=500",
		"",
	}, "\r\n")
	got := withStartBitrate(answer, 1200)
	want := strings.Join([]string{
		"v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
		"m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1",
		"m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103", "a=rtpmap:96 VP8/90000", "a=fmtp:96 x-google-start-bitrate=1200", "a=rtcp-fb:96 nack",
		"a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96",
		"a=rtpmap:102 H264/90000", "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f;x-google-start-bitrate=1200",
		"a=rtpmap:103 rtx/90000", "a=fmtp:103 apt=102",
		"m=video 9 UDP/TLS/RTP/SAVPF 98", "a=rtpmap:98 VP8/90000", "a=fmtp:98 x-google-start-bitrate=500",
		"",
	}, "\r\n")
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(got); err != nil {
		t.Errorf("the answer no longer parses: %v", err)
	}
}

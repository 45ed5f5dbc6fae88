package sfu

import (
	"bytes"
	"testing"

	"github.com/pion/rtp/codecs"
)

func TestVP8Keyframe(t *testing.T) {
	key := vp8Frames{}.frame(0, 0, true, 640, 360)
	delta := vp8Frames{}.frame(0, 1, false, 0, 0)
	for _, c := range []struct {
		name   string
		pl     []byte
		key    bool
		width  int
		height int
	}{
		{"keyframe start", key[0], true, 640, 360},
		{"keyframe continuation", key[1], false, 0, 0},
		{"interframe start", delta[0], false, 0, 0},
		// X=1, I=1 with a 15-bit picture ID, L=1, T=1; then a key frame tag.
		{"extended descriptor", []byte{0x90, 0xe0, 0x81, 0x23, 0x05, 0x40, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01}, true, 640, 480},
		{"7-bit picture ID, interframe", []byte{0x90, 0x80, 0x12, 0x01, 0x00, 0x00}, false, 0, 0},
		{"partition 1", []byte{0x11, 0x10, 0, 0}, false, 0, 0},
		{"truncated", []byte{0x90, 0x80}, false, 0, 0},
		{"empty", nil, false, 0, 0},
	} {
		k, w, h := vp8Keyframe(c.pl)
		if k != c.key || w != c.width || h != c.height {
			t.Errorf("%s: got %v %dx%d, want %v %dx%d", c.name, k, w, h, c.key, c.width, c.height)
		}
	}
}

func TestH264Keyframe(t *testing.T) {
	key := h264Frames{}.frame(0, 0, true, 1280, 720)
	delta := h264Frames{}.frame(0, 1, false, 0, 0)
	sps := testSPS(640, 360)
	for _, c := range []struct {
		name          string
		pl            []byte
		key           bool
		width, height int
	}{
		{"STAP-A with SPS and PPS", key[0], true, 1280, 720},
		{"FU-A start of IDR", key[1], true, 0, 0},
		{"FU-A middle of IDR", key[2], false, 0, 0},
		{"non-IDR slice", delta[0], false, 0, 0},
		{"single SPS", sps, true, 640, 360},
		{"single IDR", []byte{0x65, 0x88, 0x80}, true, 0, 0},
		{"STAP-A with a bad size", []byte{0x78, 0xff, 0xff, 0x67}, false, 0, 0},
		{"FU-A too short", []byte{0x7c}, false, 0, 0},
		{"empty", nil, false, 0, 0},
	} {
		k, w, h := h264Keyframe(c.pl)
		if k != c.key || w != c.width || h != c.height {
			t.Errorf("%s: got %v %dx%d, want %v %dx%d", c.name, k, w, h, c.key, c.width, c.height)
		}
	}
}

func TestH264SPSSize(t *testing.T) {
	for _, c := range []struct {
		profile uint32
		w, h    int
	}{
		{66, 1920, 1080}, {66, 1280, 720}, {66, 640, 360}, {66, 320, 180}, {66, 176, 144},
		{100, 1920, 1080}, {100, 854, 480},
	} {
		w, h, ok := h264SPSSize(testSPSProfile(c.profile, c.w, c.h))
		if !ok || w != c.w || h != c.h {
			t.Errorf("profile %d %dx%d: got %dx%d ok=%v", c.profile, c.w, c.h, w, h, ok)
		}
	}
	// A real encoder's SPS (x264, 1280x720 constrained baseline).
	real := []byte{0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x0f, 0x03, 0xc6, 0x0c, 0xa8}
	if w, h, ok := h264SPSSize(real); !ok || w != 1280 || h != 720 {
		t.Errorf("x264 SPS: %dx%d ok=%v", w, h, ok)
	}
}

func TestBitReaderSkipsEmulationPrevention(t *testing.T) {
	r := bitReader{b: []byte{0x00, 0x00, 0x03, 0x01, 0xff}}
	if got := r.bits(24); got != 0x000001 || r.err {
		t.Fatalf("read %06x err=%v", got, r.err)
	}
	if got := r.bits(8); got != 0xff {
		t.Fatalf("then %02x", got)
	}
	r.bits(1)
	if !r.err {
		t.Fatal("reading past the end is not an error")
	}
}

// The keyframe detectors agree with pion's depacketizers on what the
// payloads contain (pion finds the same partition/NAL boundaries).
func TestKeyframeFramingMatchesPion(t *testing.T) {
	var vp8 codecs.VP8Packet
	for _, pl := range (vp8Frames{}).frame(0, 0, true, 320, 180) {
		if _, err := vp8.Unmarshal(pl); err != nil {
			t.Fatal(err)
		}
	}
	var h264 codecs.H264Packet
	out, err := h264.Unmarshal(h264Frames{}.frame(0, 0, true, 320, 180)[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, testSPS(320, 180)) {
		t.Fatal("pion does not find our SPS in the STAP-A")
	}
}

package rtclient

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp/codecs"
)

func TestFrameHashH264IsCanonical(t *testing.T) {
	sps, pps, idr := []byte{0x67, 0x42, 0xe0, 0x1f}, []byte{0x68, 0xce}, []byte{0x65, 0x88, 0x84}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	sc4, sc3 := []byte{0, 0, 0, 1}, []byte{0, 0, 1}
	aud := []byte{0x09, 0xf0}
	canonical := cat(sc4, sps, sc4, pps, sc4, idr)
	want := sha256.Sum256(canonical)
	for name, frame := range map[string][]byte{
		"canonical":       canonical,
		"3-byte codes":    cat(sc3, sps, sc3, pps, sc3, idr),
		"mixed codes":     cat(sc4, sps, sc3, pps, sc4, idr),
		"with AUD":        cat(sc4, aud, sc4, sps, sc4, pps, sc4, idr),
		"trailing zeros":  cat(sc4, sps, []byte{0, 0}, sc4, pps, sc4, idr, []byte{0}),
		"filler data":     cat(sc4, sps, sc4, pps, sc4, []byte{0x0c, 0xff, 0xff, 0x80}, sc4, idr),
		"depacketized":    depacketizeH264(t, cat(sc4, sps, sc4, pps, sc4, idr)),
		"leading 4 zeros": cat([]byte{0}, sc4, sps, sc4, pps, sc4, idr),
	} {
		if got := FrameHash(CodecH264.MimeType, frame); got != want {
			t.Errorf("%s: hash differs from the canonical form's", name)
		}
	}
	if FrameHash(CodecH264.MimeType, cat(sc4, sps, sc4, idr)) == want {
		t.Error("a frame without its PPS hashes the same")
	}
	// Other codecs: the bytes as they are.
	if FrameHash(CodecVP8.MimeType, canonical) != sha256.Sum256(canonical) {
		t.Error("VP8 hash is not plain SHA-256")
	}
}

// depacketizeH264 sends a frame through pion's payloader and depacketizer,
// as a publisher and a subscriber do.
func depacketizeH264(t *testing.T, frame []byte) []byte {
	t.Helper()
	var out []byte
	pay := &codecs.H264Payloader{}
	dep := &codecs.H264Packet{}
	for _, p := range pay.Payload(1200, frame) {
		b, err := dep.Unmarshal(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

func TestIsKeyframe(t *testing.T) {
	for _, tc := range []struct {
		mime  string
		frame []byte
		want  bool
	}{
		{CodecVP8.MimeType, []byte{0x10, 0, 0, 0x9d, 0x01, 0x2a}, true},
		{CodecVP8.MimeType, []byte{0x11, 0, 0}, false},
		{CodecH264.MimeType, []byte{0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x65, 0x88}, true},
		{CodecH264.MimeType, []byte{0, 0, 0, 1, 0x41, 0x9a}, false},
		{CodecOpus.MimeType, []byte{0xfc}, false},
	} {
		if got := isKeyframe(tc.mime, tc.frame); got != tc.want {
			t.Errorf("isKeyframe(%s, %x) = %v", tc.mime, tc.frame, got)
		}
	}
}

func TestSyntheticVP8Frames(t *testing.T) {
	src := NewSyntheticSource(SyntheticOptions{Width: 1280, Height: 720, KeyframeInterval: 3, FrameSize: 100, Frames: 7})
	if src.Codec().MimeType != CodecVP8.MimeType {
		t.Fatalf("codec = %v", src.Codec())
	}
	seen := map[[32]byte]bool{}
	for i := 0; ; i++ {
		f, err := src.NextFrame()
		if errors.Is(err, io.EOF) {
			if i != 7 {
				t.Fatalf("EOF after %d frames, want 7", i)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		key := i%3 == 0
		if f.Keyframe != key || isKeyframe(CodecVP8.MimeType, f.Data) != key {
			t.Errorf("frame %d: keyframe %v, want %v", i, f.Keyframe, key)
		}
		if key {
			if !bytes.Equal(f.Data[3:6], []byte{0x9d, 0x01, 0x2a}) || f.Data[6] != 0x00 || f.Data[7] != 0x05 || f.Data[8] != 0xd0 || f.Data[9] != 0x02 {
				t.Errorf("frame %d: key frame header % x", i, f.Data[:10])
			}
			if len(f.Data) < 400 {
				t.Errorf("keyframe of %d bytes, want 400", len(f.Data))
			}
		} else if len(f.Data) != 100 {
			t.Errorf("frame of %d bytes, want 100", len(f.Data))
		}
		if f.Data[0]&0x10 == 0 {
			t.Errorf("frame %d: show_frame not set", i)
		}
		if f.Duration != time.Second/30 {
			t.Errorf("duration %v", f.Duration)
		}
		if n, ok := SyntheticFrameNumber(f.Data); !ok || n != i {
			t.Errorf("frame %d: SyntheticFrameNumber = %d, %v", i, n, ok)
		}
		h := FrameHash(CodecVP8.MimeType, f.Data)
		if seen[h] {
			t.Errorf("frame %d repeats an earlier one", i)
		}
		seen[h] = true
	}
	if src.FramesMade() != 7 {
		t.Errorf("FramesMade = %d", src.FramesMade())
	}
}

func TestSyntheticFrameNumberRejectsOtherData(t *testing.T) {
	for _, b := range []string{"", "rtclient frame ", "rtclient frame x ", "frame 1 ", "rtclient frame 12"} {
		if n, ok := SyntheticFrameNumber([]byte(b)); ok {
			t.Errorf("%q: %d", b, n)
		}
	}
}

func TestSyntheticKeyframeOnRequest(t *testing.T) {
	src := NewSyntheticSource(SyntheticOptions{KeyframeInterval: 1000})
	if f, _ := src.NextFrame(); !f.Keyframe {
		t.Fatal("first frame is not a keyframe")
	}
	if f, _ := src.NextFrame(); f.Keyframe {
		t.Fatal("second frame is a keyframe")
	}
	src.RequestKeyframe()
	if f, _ := src.NextFrame(); !f.Keyframe {
		t.Fatal("no keyframe after RequestKeyframe")
	}
	if f, _ := src.NextFrame(); f.Keyframe {
		t.Fatal("keyframe request not consumed")
	}
}

func TestSyntheticH264AndOpusFrames(t *testing.T) {
	h := NewSyntheticSource(SyntheticOptions{Codec: CodecH264, KeyframeInterval: 2})
	for i := 0; i < 4; i++ {
		f, err := h.NextFrame()
		if err != nil {
			t.Fatal(err)
		}
		var types []byte
		splitAnnexB(f.Data, func(nal []byte) { types = append(types, nal[0]&0x1f) })
		want := []byte{nalSlice}
		if i%2 == 0 {
			want = []byte{nalSPS, nalPPS, nalIDR}
		}
		if !bytes.Equal(types, want) || f.Keyframe != (i%2 == 0) {
			t.Errorf("frame %d: NAL types %v, keyframe %v", i, types, f.Keyframe)
		}
		// It survives pion's payloader and depacketizer whole.
		if FrameHash(CodecH264.MimeType, depacketizeH264(t, f.Data)) != FrameHash(CodecH264.MimeType, f.Data) {
			t.Errorf("frame %d does not survive packetization", i)
		}
	}
	o := NewSyntheticSource(SyntheticOptions{Codec: CodecOpus})
	f, err := o.NextFrame()
	if err != nil {
		t.Fatal(err)
	}
	if f.Data[0] != 0xfc || opusDuration(f.Data) != 20*time.Millisecond || f.Duration != 20*time.Millisecond || f.Keyframe {
		t.Errorf("opus frame % x, %v", f.Data[:4], f.Duration)
	}
}

func TestOpusDuration(t *testing.T) {
	for _, tc := range []struct {
		pkt  []byte
		want time.Duration
	}{
		{[]byte{0xfc}, 20 * time.Millisecond},                    // CELT FB 20 ms
		{[]byte{0x78}, 20 * time.Millisecond},                    // config 15: hybrid FB 20 ms
		{[]byte{0x08 | 0x01}, 40 * time.Millisecond},             // SILK NB 20 ms, two frames
		{[]byte{0x18 | 0x03, 0x03}, 180 * time.Millisecond},      // SILK NB 60 ms × 3
		{[]byte{0x80 | 0x03, 0x08}, 8 * 2500 * time.Microsecond}, // CELT NB 2.5 ms × 8
		{[]byte{}, 0},
	} {
		if got := opusDuration(tc.pkt); got != tc.want {
			t.Errorf("opusDuration(% x) = %v, want %v", tc.pkt, got, tc.want)
		}
	}
}

func TestSeqTracker(t *testing.T) {
	var tr seqTracker
	feed := func(seqs ...uint16) {
		for _, s := range seqs {
			tr.add(s)
		}
	}
	feed(65530, 65531, 65533, 65535, 0, 1) // across the wrap; 65532 and 65534 missing
	if tr.lost() != 2 {
		t.Fatalf("lost = %d, want 2", tr.lost())
	}
	if res, ext, _ := tr.add(65534); res != seqNew || ext != 65534 {
		t.Fatalf("late arrival: %v %d", res, ext)
	}
	if tr.lost() != 1 {
		t.Fatalf("lost after a retransmission = %d, want 1", tr.lost())
	}
	if res, _, _ := tr.add(65534); res != seqDuplicate {
		t.Fatalf("duplicate not noticed: %v", res)
	}
	if res, ext, prev := tr.add(5); res != seqNew || ext != 65536+5 || prev != 65536+1 {
		t.Fatalf("gap: %v %d %d", res, ext, prev)
	}
	if tr.lost() != 4 {
		t.Fatalf("lost = %d, want 4", tr.lost())
	}
	// Far ahead: the window resets, the gap counts as lost.
	feed(5 + 10000)
	if tr.lost() != 4+9999 {
		t.Fatalf("lost = %d, want %d", tr.lost(), 4+9999)
	}
	if res, _, _ := tr.add(6); res != seqTooLate {
		t.Fatalf("packet from before the window: %v", res)
	}
	// Reordered before the first packet.
	var r seqTracker
	r.add(100)
	r.add(98)
	if r.lost() != 1 || r.first != 98 {
		t.Fatalf("reordered start: lost %d first %d", r.lost(), r.first)
	}
}

// A stream that jumps ahead by 32,768 or more (a relay that dropped that
// many packets) looks, number by number, like packets from long ago. Two
// consecutive ones make the tracker follow it; without that every later
// packet would count as too late for good.
func TestSeqTrackerFollowsAJumpAhead(t *testing.T) {
	var tr seqTracker
	for s := 0; s < 100; s++ {
		tr.add(uint16(s))
	}
	jump := 99 + 40000 // 40,000 numbers never arrive
	if res, _, _ := tr.add(uint16(jump)); res != seqTooLate {
		t.Fatalf("first packet after the jump: %v, want too late (it cannot be told yet)", res)
	}
	res, ext, _ := tr.add(uint16(jump + 1))
	if res != seqJump || ext != int64(jump+1) {
		t.Fatalf("second packet after the jump: %v ext %d, want a jump to %d", res, ext, jump+1)
	}
	for s := jump + 2; s < jump+70000; s++ { // and on, across two wraps
		if res, _, _ := tr.add(uint16(s)); res != seqNew {
			t.Fatalf("packet %d after the jump: %v", s, res)
		}
	}
	if tr.late != 0 || tr.lost() != 39999 || tr.highest != int64(jump+69999) {
		t.Fatalf("late %d lost %d highest %d; want 0, 39999, %d", tr.late, tr.lost(), tr.highest, jump+69999)
	}
	// A lone packet from long ago stays late, and does not move the stream.
	tr.add(uint16(jump + 70000))
	if res, _, _ := tr.add(uint16(jump + 70000 - 10000)); res != seqTooLate {
		t.Fatalf("a lone old packet: %v", res)
	}
	if res, _, _ := tr.add(uint16(jump + 70001)); res != seqNew || tr.late != 1 {
		t.Fatalf("after a lone old packet: %v, late %d", res, tr.late)
	}
}

func TestTimestampUnwrap(t *testing.T) {
	var u TimestampUnwrapper
	start := uint32(1<<32 - 3000)
	want := int64(start)
	if got := u.Unwrap(start); got != want {
		t.Fatalf("first: %d", got)
	}
	for i := 1; i <= 10; i++ { // 3000 ticks a frame, across the wrap
		want += 3000
		if got := u.Unwrap(start + uint32(i*3000)); got != want {
			t.Fatalf("frame %d: %d, want %d", i, got, want)
		}
	}
	if got := u.Unwrap(start + 9*3000); got != want-3000 { // reordered: a little back
		t.Fatalf("reordered: %d, want %d", got, want-3000)
	}
}

func TestNACKListAndSort(t *testing.T) {
	l := newNACKList()
	now := time.Now()
	l.gap(10, 13, now) // 10, 11, 12
	l.fill(11)
	got, more := l.due(now, 13, nil)
	if len(got) != 2 || !more {
		t.Fatalf("due = %v, %v", got, more)
	}
	if got, _ := l.due(now.Add(nackRetry/2), 13, nil); len(got) != 0 {
		t.Fatalf("re-asked before the retry time: %v", got)
	}
	if got, _ := l.due(now.Add(nackRetry), 13, nil); len(got) != 2 {
		t.Fatalf("not re-asked after the retry time: %v", got)
	}
	for i := 0; i < nackMaxTries; i++ {
		l.due(now.Add(time.Duration(i+2)*nackRetry), 13, nil)
	}
	if _, more := l.due(now.Add(time.Hour), 13, nil); more {
		t.Fatal("given-up entries remain")
	}
	l.gap(0, 2000, now)
	if len(l.pending) != nackMaxAge {
		t.Fatalf("a huge gap keeps %d entries, want %d", len(l.pending), nackMaxAge)
	}
	// Across the 16-bit wrap, in RTP order: due sorts the extended numbers.
	w := newNACKList()
	w.gap(65534, 65536+4, now) // 65534, 65535, then 0..3 of the next cycle
	w.fill(65536 + 2)
	ext, _ := w.due(now, 65536+4, nil)
	wire := wireSeqs(ext, nil)
	if want := []uint16{65534, 65535, 0, 1, 3}; !slices.Equal(wire, want) {
		t.Fatalf("NACKed %v, want %v", wire, want)
	}
	pairs := rtcp.NackPairsFromSequenceNumbers(wire)
	if len(pairs) != 1 || pairs[0].PacketID != 65534 {
		t.Fatalf("NACK pairs %+v, want one from 65534", pairs)
	}
}

func TestParseLinks(t *testing.T) {
	base, _ := url.Parse("https://node-1.example/publish/p1")
	links := parseLinks(base, []string{
		`</layer/abc>; rel="` + RelLayer + `", <https://other.example/pc?a=1,2>; rel="` + RelPlaybackControls + `"`,
		`<stun:stun.example:3478>; rel="ice-server"`,
		`<https://x.example/d>; rel="a ` + RelSessionDelete + `"; type="x"`,
		`garbage`,
		`</second>; rel="` + RelLayer + `"`,
	})
	want := map[string]string{
		RelLayer:            "https://node-1.example/layer/abc",
		RelPlaybackControls: "https://other.example/pc?a=1,2",
		"ice-server":        "stun:stun.example:3478",
		"a":                 "https://x.example/d",
		RelSessionDelete:    "https://x.example/d",
	}
	if len(links) != len(want) {
		t.Errorf("links = %v", links)
	}
	for k, v := range want {
		if links[k] != v {
			t.Errorf("link %s = %q, want %q", k, links[k], v)
		}
	}
}

func TestFileSources(t *testing.T) {
	fx := fixtures(t)
	for _, tc := range []struct {
		path      string
		mime      string
		frames    int
		keyframes int
		frameDur  time.Duration
	}{
		{fx.H264, CodecH264.MimeType, 90, 3, time.Second / 30},
		{fx.VP8, CodecVP8.MimeType, 90, 3, time.Second / 30},
		{fx.Opus, CodecOpus.MimeType, 150, 0, 20 * time.Millisecond},
		{fx.SimulcastH264[0], CodecH264.MimeType, 90, 3, time.Second / 30},
		{fx.SimulcastVP8[2], CodecVP8.MimeType, 90, 3, time.Second / 30},
	} {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			src, err := NewFileSource(tc.path, WithoutLoop())
			if err != nil {
				t.Fatal(err)
			}
			if src.Codec().MimeType != tc.mime {
				t.Errorf("codec %s, want %s", src.Codec().MimeType, tc.mime)
			}
			if tc.mime == CodecH264.MimeType && !strings.Contains(src.Codec().SDPFmtpLine, "profile-level-id=42e01f") {
				t.Errorf("baseline file offered as %q", src.Codec().SDPFmtpLine)
			}
			// Opus may carry an extra packet or two of encoder delay.
			if n := src.Len(); n < tc.frames || n > tc.frames+2 {
				t.Errorf("%d frames, want %d", n, tc.frames)
			}
			if d := src.Duration(); d < 3*time.Second-50*time.Millisecond || d > 3*time.Second+50*time.Millisecond {
				t.Errorf("duration %v, want 3s", d)
			}
			keys := 0
			for i := 0; ; i++ {
				f, err := src.NextFrame()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if f.Keyframe {
					keys++
				}
				if f.Keyframe != isKeyframe(tc.mime, f.Data) {
					t.Errorf("frame %d: Keyframe %v disagrees with its data", i, f.Keyframe)
				}
				if i == 0 && tc.keyframes > 0 && !f.Keyframe {
					t.Error("first frame is not a keyframe")
				}
				if d := f.Duration - tc.frameDur; d < -time.Millisecond || d > time.Millisecond {
					t.Errorf("frame %d lasts %v, want %v", i, f.Duration, tc.frameDur)
					break
				}
			}
			if keys != tc.keyframes {
				t.Errorf("%d keyframes, want %d", keys, tc.keyframes)
			}
			// A clone starts over and loops.
			c := src.Clone()
			c.loop = true
			first, _ := c.NextFrame()
			for i := 1; i < src.Len(); i++ {
				_, _ = c.NextFrame()
			}
			again, err := c.NextFrame()
			if err != nil || !bytes.Equal(first.Data, again.Data) {
				t.Errorf("loop does not restart at the first frame: %v", err)
			}
		})
	}
}

// x264 writes SPS and PPS before every IDR and one SEI first; each access
// unit of the H.264 fixture is one picture.
func TestFileSourceH264AccessUnits(t *testing.T) {
	fx := fixtures(t)
	src, err := NewFileSource(fx.H264)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < src.Len(); i++ {
		f, _ := src.NextFrame()
		var types []byte
		splitAnnexB(f.Data, func(nal []byte) { types = append(types, nal[0]&0x1f) })
		slices := bytes.Count(types, []byte{nalSlice}) + bytes.Count(types, []byte{nalIDR})
		if slices != 1 {
			t.Fatalf("frame %d has NAL types %v", i, types)
		}
		if i%30 == 0 && (types[0] != nalSPS || types[1] != nalPPS) {
			t.Errorf("keyframe %d starts with NAL types %v", i, types)
		}
	}
}

func TestFileSourceRejectsOtherFiles(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "x.bin")
	if err := os.WriteFile(bad, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewFileSource(bad); !errors.Is(err, ErrUnsupportedMedia) {
		t.Errorf("err = %v", err)
	}
	if _, err := NewFileSource(filepath.Join(dir, "missing")); err == nil {
		t.Error("no error for a missing file")
	}
	if _, err := NewFileSource(bad, WithFrameRate(0)); err == nil {
		t.Error("no error for frame rate 0")
	}
}

// GenerateFixtures keeps files that are already there.
func TestGenerateFixturesReusesFiles(t *testing.T) {
	fx := fixtures(t)
	st, err := os.Stat(fx.H264)
	if err != nil {
		t.Fatal(err)
	}
	again, err := GenerateFixtures(testContext(t), fx.Dir)
	if err != nil {
		t.Fatal(err)
	}
	st2, err := os.Stat(again.H264)
	if err != nil {
		t.Fatal(err)
	}
	if again != fx || !st2.ModTime().Equal(st.ModTime()) {
		t.Error("fixtures were made again")
	}
}

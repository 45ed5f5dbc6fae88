package loadtest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/rostrum-dev/rostrum/internal/rtclient"
)

// A send time recorded for a payload is found by the same payload, to the
// microsecond; another payload is not found, nor one whose slot a later
// payload took.
func TestSentTimes(t *testing.T) {
	s := newSentTimes()
	at := s.base.Add(1234567 * time.Microsecond)
	a := bytes.Repeat([]byte("frame A "), 150)
	s.record(a, at)
	got, ok := s.lookup(append([]byte(nil), a...))
	if !ok || !got.Equal(at) {
		t.Fatalf("lookup = %v, %v; want %v", got, ok, at)
	}
	if _, ok := s.lookup(a[:len(a)-1]); ok {
		t.Error("a different payload was found")
	}
	// Fill the table past its size with other payloads: the first one is
	// gone or still right, never another's time.
	for i := range 3 << sentSlotBits {
		s.record([]byte(strings.Repeat("x", i%97)+string(rune(i))), at.Add(time.Duration(i+1)*time.Microsecond))
	}
	if got, ok := s.lookup(a); ok && !got.Equal(at) {
		t.Errorf("after overwriting, lookup = %v, want %v or nothing", got, at)
	}
}

// rtpPayload finds the payload behind CSRCs and a header extension, and
// before padding, in packets marshalled by pion.
func TestRTPPayload(t *testing.T) {
	payload := []byte("the payload")
	ext := rtp.Header{Version: 2, PayloadType: 96}
	if err := ext.SetExtension(1, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	for _, h := range []rtp.Header{
		{Version: 2, PayloadType: 96, SequenceNumber: 1, Timestamp: 2, SSRC: 3},
		{Version: 2, PayloadType: 96, CSRC: []uint32{7, 8}},
		ext,
	} {
		for _, pad := range []byte{0, 4} {
			p := rtp.Packet{Header: h, Payload: payload, PaddingSize: pad}
			p.Padding = pad > 0
			b, err := p.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got, err := rtpPayload(b)
			if err != nil || !bytes.Equal(got, payload) {
				t.Errorf("%+v padding %d: payload %q, %v", h, pad, got, err)
			}
		}
	}
	for _, bad := range [][]byte{nil, make([]byte, 11), append([]byte{0x40}, make([]byte, 20)...), append([]byte{0x90}, make([]byte, 12)...)} {
		if _, err := rtpPayload(bad); !errors.Is(err, errNotRTP) {
			t.Errorf("%x: err %v", bad, err)
		}
	}
}

// makeTestVideo encodes a short small VP8 file with ffmpeg, or skips the
// test without ffmpeg (outside CI, which installs it).
func makeTestVideo(t *testing.T, o VideoFileOptions) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "video.ivf")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := MakeVideoFile(ctx, path, o)
	if errors.Is(err, rtclient.ErrNoFFmpeg) {
		if testingCI() {
			t.Fatal("ffmpeg is required in CI (apt-get install ffmpeg)")
		}
		t.Skip("ffmpeg not installed")
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// The file MakeVideoFile encodes is what it was asked for: VP8 frames at the
// frame rate, for the length, a keyframe every interval.
func TestMakeVideoFile(t *testing.T) {
	path := makeTestVideo(t, VideoFileOptions{Width: 320, Height: 180, FPS: 30, Bitrate: 300_000, KeyframeInterval: time.Second, Length: 2 * time.Second})
	src, err := rtclient.NewFileSource(path, rtclient.WithoutLoop())
	if err != nil {
		t.Fatal(err)
	}
	if src.Codec().MimeType != rtclient.CodecVP8.MimeType || src.Len() != 60 {
		t.Fatalf("%s, %d frames; want VP8, 60", src.Codec().MimeType, src.Len())
	}
	keys := 0
	for i := range src.Len() {
		f, err := src.NextFrame()
		if err != nil {
			t.Fatal(err)
		}
		if f.Keyframe {
			keys++
			if i%30 != 0 {
				t.Errorf("keyframe at frame %d", i)
			}
		}
	}
	if keys != 2 {
		t.Errorf("%d keyframes, want 2", keys)
	}
}

// A run whose publisher loops a real VP8 file (which loops about three
// times here): every subscription gets the video, what arrived is counted
// against what was sent, and the latency of the video comes from the send
// times recorded by payload.
func TestMediaVideoFile(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and runs media for a few seconds")
	}
	path := makeTestVideo(t, VideoFileOptions{Width: 320, Height: 180, FPS: 30, Bitrate: 300_000, Length: time.Second})
	tgt := startServer(t)
	rep, err := RunMedia(testContext(t), tgt, MediaOptions{
		Subscribers: 2, NoAudio: true, VideoFile: path,
		Duration: 2 * time.Second, Warmup: 500 * time.Millisecond, JoinRate: 50, LoopbackOnly: true,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Joins.OK != 2 || rep.VideoStreams != 2 || rep.AudioStreams != 0 {
		t.Fatalf("joins %+v, %d video and %d audio streams", rep.Joins, rep.VideoStreams, rep.AudioStreams)
	}
	l := rep.Load
	if l.VideoFile != path || l.Codec != "vp8" || l.Width != 320 || l.Height != 180 || l.FPS != 30 || l.VideoBitrate <= 0 {
		t.Errorf("load: %+v", l)
	}
	d := rep.Delivery
	if d.Expected == 0 || d.VideoShare <= 0 || d.Stalls != 0 || rep.Errors.Count != 0 {
		t.Fatalf("delivery %+v, errors %+v", d, rep.Errors)
	}
	if rep.Latency.Count == 0 || rep.Latency.P50 <= 0 || rep.Latency.P50 > rep.Latency.Max {
		t.Fatalf("latency: %+v", rep.Latency)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "(looped)") {
		t.Errorf("table does not name the file:\n%s", table.String())
	}
}

// A video file is one layer of video.
func TestMediaVideoFileRefusesSimulcast(t *testing.T) {
	o := MediaOptions{VideoFile: "x.ivf", Simulcast: true}
	if err := o.defaults(); err == nil {
		t.Error("simulcast with a video file was accepted")
	}
	o = MediaOptions{VideoFile: "x.ivf", NoVideo: true}
	if err := o.defaults(); err == nil {
		t.Error("no video with a video file was accepted")
	}
}

func testingCI() bool { return os.Getenv("CI") != "" }

// frames is a MediaSource of numbered frames, every third a keyframe.
type frames struct{ n int }

func (f *frames) Codec() webrtc.RTPCodecCapability { return rtclient.CodecVP8 }
func (f *frames) NextFrame() (rtclient.Frame, error) {
	f.n++
	return rtclient.Frame{Data: []byte{byte(f.n)}, Duration: time.Millisecond, Keyframe: f.n%3 == 0}, nil
}

// keyframeGate runs a function once, just before the next keyframe is
// returned, and atNextKeyframe waits for it; without a keyframe it gives up.
func TestKeyframeGate(t *testing.T) {
	g := &keyframeGate{MediaSource: &frames{}}
	if _, err := g.NextFrame(); err != nil { // frame 1
		t.Fatal(err)
	}
	ranAt := make(chan int, 2)
	done := make(chan bool)
	go func() { done <- g.atNextKeyframe(func() { ranAt <- g.MediaSource.(*frames).n }, time.Minute) }()
	// Frames are asked for until the function has run (it is set
	// asynchronously); it must have run once, at a keyframe.
	var got []rtclient.Frame
	for len(ranAt) == 0 {
		f, _ := g.NextFrame()
		got = append(got, f)
	}
	if !<-done {
		t.Fatal("atNextKeyframe reported no keyframe")
	}
	n := <-ranAt
	if n%3 != 0 || !got[len(got)-1].Keyframe || got[len(got)-1].Data[0] != byte(n) {
		t.Errorf("ran at frame %d; the last frame returned was %v", n, got[len(got)-1])
	}
	for range 6 {
		_, _ = g.NextFrame()
	}
	if len(ranAt) != 0 {
		t.Error("ran again")
	}
	// No frames asked for: it gives up, and the function never runs.
	ran := false
	if g.atNextKeyframe(func() { ran = true }, 10*time.Millisecond) {
		t.Error("reported a keyframe that never came")
	}
	for range 6 {
		_, _ = g.NextFrame()
	}
	if ran {
		t.Error("ran after giving up")
	}
}

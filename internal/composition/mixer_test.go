package composition

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/composition/compotest"
	"github.com/rostrum-dev/rostrum/internal/composition/layout"
	"github.com/rostrum-dev/rostrum/internal/rtclient"
	"github.com/rostrum-dev/rostrum/internal/sfu"
	"github.com/rostrum-dev/rostrum/internal/sfu/sfutest"
	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// These tests mix real pion publishers (solid-colour H.264 or VP8 made by
// ffmpeg, and Opus) through the real forwarding engine, ffmpeg decoders
// and encoder, and check what comes out with ffprobe and by decoding
// pictures and reading their colours where the layout put each tile.

func needFFmpeg(t testing.TB) string {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
	p, _ := exec.LookPath("ffmpeg")
	return p
}

var opusFixture struct {
	once sync.Once
	path string
	err  error
}

func opus(t testing.TB) rtclient.MediaSource {
	t.Helper()
	opusFixture.once.Do(func() {
		dir := filepath.Join(os.TempDir(), "rostrum-composition-fixtures")
		os.MkdirAll(dir, 0o755)
		opusFixture.path = filepath.Join(dir, "sine-440.ogg")
		tmp := fmt.Sprintf("%s.%d.tmp", opusFixture.path, os.Getpid())
		out, err := exec.Command("ffmpeg", "-y", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
			"-i", "sine=frequency=440:sample_rate=48000", "-t", "20", "-ac", "2", "-c:a", "libopus", "-b:a", "64k",
			"-f", "ogg", tmp).CombinedOutput()
		if err != nil {
			opusFixture.err = fmt.Errorf("%v: %s", err, out)
			return
		}
		opusFixture.err = os.Rename(tmp, opusFixture.path)
	})
	if opusFixture.err != nil {
		t.Fatal(opusFixture.err)
	}
	src, err := rtclient.NewFileSource(opusFixture.path)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// testRouter is a real engine's router for one stage session.
func testRouter(t *testing.T) *sfu.Router {
	t.Helper()
	e, err := sfu.NewEngine(sfu.Config{ListenIP: "127.0.0.1", TCPPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	r := e.NewRouter("st-1")
	t.Cleanup(func() {
		_ = r.Close()
		_ = e.Close()
	})
	return r
}

// fileWriter collects an encode's FLV.
type fileWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *fileWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *fileWriter) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Len()
}

func (w *fileWriter) save(t *testing.T) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := filepath.Join(t.TempDir(), "out.flv")
	if err := os.WriteFile(p, w.buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// view is a stage view of publishers joined in order.
func view(r *sfu.Router, ids ...string) StageView {
	v := StageView{SessionID: "st-1", Source: r}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, id := range ids {
		v.Participants = append(v.Participants, Participant{ID: id, Publishing: true, Joined: base.Add(time.Duration(i) * time.Second)})
	}
	return v
}

func TestMixerGridOfTwoThenOne(t *testing.T) {
	bin := needFFmpeg(t)
	testutil.CheckLeaks(t)
	r := testRouter(t)
	alice := sfutest.Publish(t, r, "alice", compotest.Video(t, compotest.Red, "H264", 640, 360), opus(t))
	defer alice.Close()
	bob := sfutest.Publish(t, r, "bob", compotest.Video(t, compotest.Blue, "VP8", 640, 360), opus(t))

	enc := Encoder{Width: 1280, Height: 720, Framerate: 30, Bitrate: 2_500_000}
	out := &fileWriter{}
	media := make(chan struct{})
	mx, err := startMixer(mixerConfig{FFmpeg: bin, Layout: layout.DefaultGrid(), Log: testLog(t),
		Outs: []encodeOut{{Encoder: enc, W: out}}, OnMedia: func() { close(media) }})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	mx.setView(view(r, "alice", "bob"))
	select {
	case <-media:
	case <-time.After(30 * time.Second):
		t.Fatal("no picture was decoded")
	}
	firstPicture := time.Since(start)
	// Both tiles show their colours once both decoders run.
	two, _ := layout.Compute(layout.Size{Width: 1280, Height: 720}, layout.DefaultGrid(), []layout.Participant{
		{ID: "alice", Video: true, VideoSize: layout.Size{Width: 640, Height: 360}, Arrival: 1},
		{ID: "bob", Video: true, VideoSize: layout.Size{Width: 640, Height: 360}, Arrival: 2}})
	time.Sleep(3 * time.Second)
	bob.Close()
	mx.setView(view(r, "alice"))
	time.Sleep(3 * time.Second)
	if err := mx.close(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	path := out.save(t)
	pr := testutil.FFprobe(t, path)
	if v, w, h := pr.Stream("video"); v != "h264" || w != 1280 || h != 720 {
		t.Fatalf("video %s %dx%d, want h264 1280x720", v, w, h)
	}
	if a, _, _ := pr.Stream("audio"); a != "aac" {
		t.Fatalf("audio %q, want aac", a)
	}
	t.Logf("first picture %v after the view; output %.1f s, %d bytes", firstPicture, pr.Duration(), out.Len())

	// The picture shows both tiles, then alice alone. (The stream's time
	// follows the wall clock only as long as the encoder keeps up, which a
	// loaded machine may not: the phases are looked for in order.)
	one, _ := layout.Compute(layout.Size{Width: 1280, Height: 720}, layout.DefaultGrid(), []layout.Participant{
		{ID: "alice", Video: true, VideoSize: layout.Size{Width: 640, Height: 360}, Arrival: 1}})
	if phase, ok := compotest.InOrder(compotest.Pictures(t, path, 4, 1280, 720), compotest.TilesShow(two, map[string]compotest.RGB{"alice": compotest.Red, "bob": compotest.Blue}), compotest.TilesShow(one, map[string]compotest.RGB{"alice": compotest.Red})); !ok {
		t.Fatalf("phase %d (0: alice and bob, 1: alice alone) never shows", phase)
	}
}

// testLog logs to the test at debug level.
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// tileCase is a publisher of a colour, with its token attributes.
type tileCase struct {
	id    string
	c     compotest.RGB
	codec string
	attrs map[string]string
}

// mixAndCheck mixes the publishers for a few seconds into a 1280×720
// encode and checks that the centre of each participant's tile, where the
// layout package puts it, shows the participant's colour.
func mixAndCheck(t *testing.T, lc layout.Config, cases []tileCase) {
	bin := needFFmpeg(t)
	r := testRouter(t)
	v := StageView{SessionID: "st-1", Source: r}
	var ps []layout.Participant
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, tc := range cases {
		p := sfutest.Publish(t, r, tc.id, compotest.Video(t, tc.c, tc.codec, 640, 360))
		defer p.Close()
		joined := base.Add(time.Duration(i) * time.Second)
		v.Participants = append(v.Participants, Participant{ID: tc.id, Attributes: tc.attrs, Publishing: true, Joined: joined})
		ps = append(ps, layout.Participant{ID: tc.id, Attributes: tc.attrs, Video: true, VideoSize: layout.Size{Width: 640, Height: 360}, Arrival: joined.UnixNano()})
	}
	out := &fileWriter{}
	mx, err := startMixer(mixerConfig{FFmpeg: bin, Layout: lc, Log: testLog(t),
		Outs: []encodeOut{{Encoder: Encoder{Width: 1280, Height: 720, Framerate: 30, Bitrate: 2_500_000}, W: out}}})
	if err != nil {
		t.Fatal(err)
	}
	mx.setView(v)
	// Every participant's picture is drawn once each decoder runs.
	testutil.Eventually(t, "every participant decoded", func() bool {
		mx.mu.Lock()
		defer mx.mu.Unlock()
		for _, tc := range cases {
			in := mx.inputs[tc.id]
			if in == nil {
				return false
			}
			in.mu.Lock()
			ok := in.latest != nil
			in.mu.Unlock()
			if !ok {
				return false
			}
		}
		return true
	})
	time.Sleep(2 * time.Second)
	if err := mx.close(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	path := out.save(t)
	pr := testutil.FFprobe(t, path)
	want, err := layout.Compute(layout.Size{Width: 1280, Height: 720}, lc, ps)
	if err != nil {
		t.Fatal(err)
	}
	pic := compotest.PictureAt(t, path, pr.Duration()-0.5, 1280, 720)
	for _, tc := range cases {
		tile, ok := want.Tile(tc.id)
		if !ok {
			t.Fatalf("%s has no tile", tc.id)
		}
		x, y := compotest.Centre(tile.Dest)
		if got := compotest.At(pic, 1280, x, y); !compotest.Near(got, tc.c) {
			t.Errorf("%s's tile %+v: centre (%d,%d) is %v, want %s", tc.id, tile.Rect, x, y, got, tc.c.Name)
		}
	}
}

func TestMixerGridOfFourInAttributeOrder(t *testing.T) {
	testutil.CheckLeaks(t)
	lc := layout.DefaultGrid()
	lc.ParticipantOrderAttribute = "seat"
	// Joined a, b, c, d; seats put d first and a last.
	mixAndCheck(t, lc, []tileCase{
		{"a", compotest.Red, "H264", map[string]string{"seat": "4"}},
		{"b", compotest.Green, "VP8", map[string]string{"seat": "2"}},
		{"c", compotest.Blue, "H264", map[string]string{"seat": "3"}},
		{"d", compotest.White, "VP8", map[string]string{"seat": "1"}},
	})
}

func TestMixerPictureInPicture(t *testing.T) {
	testutil.CheckLeaks(t)
	lc := layout.DefaultPip()
	lc.PipParticipantAttribute = "pip"
	lc.PipPosition = layout.PipTopLeft
	mixAndCheck(t, lc, []tileCase{
		{"host", compotest.Red, "H264", nil},
		{"guest", compotest.Blue, "VP8", map[string]string{"pip": "true"}},
	})
}

func TestMixerFeaturedParticipant(t *testing.T) {
	testutil.CheckLeaks(t)
	lc := layout.DefaultGrid()
	lc.FeaturedParticipantAttribute = "featured"
	lc.VideoFillMode = layout.FillModeContain
	mixAndCheck(t, lc, []tileCase{
		{"a", compotest.Red, "H264", nil},
		{"b", compotest.Green, "VP8", map[string]string{"featured": "true"}},
		{"c", compotest.Blue, "H264", nil},
	})
}

func TestMixerOmitsStoppedVideo(t *testing.T) {
	testutil.CheckLeaks(t)
	bin := needFFmpeg(t)
	r := testRouter(t)
	a := sfutest.Publish(t, r, "a", compotest.Video(t, compotest.Red, "H264", 640, 360))
	defer a.Close()
	b := sfutest.Publish(t, r, "b", compotest.Video(t, compotest.Blue, "H264", 640, 360))
	defer b.Close()
	lc := layout.DefaultGrid()
	lc.OmitStoppedVideo = true
	out := &fileWriter{}
	mx, err := startMixer(mixerConfig{FFmpeg: bin, Layout: lc, Log: testLog(t),
		Outs: []encodeOut{{Encoder: Encoder{Width: 1280, Height: 720, Framerate: 30, Bitrate: 2_500_000}, W: out}}})
	if err != nil {
		t.Fatal(err)
	}
	v := view(r, "a", "b")
	mx.setView(v)
	tiles := func() int {
		mx.mu.Lock()
		defer mx.mu.Unlock()
		return len(mx.frame.Tiles)
	}
	testutil.Eventually(t, "two tiles", func() bool { return tiles() == 2 })
	// b's client says its video is stopped (the IVS SDK's mute): b leaves
	// the picture, a fills it.
	v.Participants[1].VideoStopped = true
	mx.setView(v)
	if n := tiles(); n != 1 {
		t.Fatalf("%d tiles with b's video stopped, want 1", n)
	}
	time.Sleep(2 * time.Second)
	if err := mx.close(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	path := out.save(t)
	pic := compotest.PictureAt(t, path, testutil.FFprobe(t, path).Duration()-0.5, 1280, 720)
	for _, pt := range [][2]int{{20, 360}, {640, 360}, {1260, 360}} {
		if got := compotest.At(pic, 1280, pt[0], pt[1]); !compotest.Near(got, compotest.Red) {
			t.Errorf("(%d,%d) is %v, want a's compotest.Red across the frame", pt[0], pt[1], got)
		}
	}
}

// A composition stopped right after its start ends: closing the mixer
// never waits on an encoder that waits on an input the mixer stopped
// feeding.
func TestMixerClosesRightAfterStart(t *testing.T) {
	bin := needFFmpeg(t)
	testutil.CheckLeaks(t)
	r := testRouter(t)
	a := sfutest.Publish(t, r, "a", compotest.Video(t, compotest.Red, "H264", 640, 360), opus(t))
	defer a.Close()
	for i := range 5 {
		mx, err := startMixer(mixerConfig{FFmpeg: bin, Layout: layout.DefaultGrid(), Log: testLog(t),
			Outs: []encodeOut{{Encoder: Encoder{Width: 1280, Height: 720, Framerate: 30, Bitrate: 2_500_000}, W: io.Discard},
				{Encoder: Encoder{ARN: "x", Width: 640, Height: 360, Framerate: 30, Bitrate: 1_000_000}, W: io.Discard}}})
		if err != nil {
			t.Fatal(err)
		}
		mx.setView(view(r, "a"))
		time.Sleep(time.Duration(i) * 100 * time.Millisecond)
		done := make(chan error, 1)
		go func() { done <- mx.close(10 * time.Second) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Fatalf("round %d: the mixer did not close", i)
		}
	}
}

package composition

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

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

// rgb is a colour as ffmpeg's color source names it, and its RGB.
type rgb struct {
	name    string
	r, g, b int
}

var (
	red   = rgb{"red", 255, 0, 0}
	green = rgb{"lime", 0, 255, 0}
	blue  = rgb{"blue", 0, 0, 255}
	white = rgb{"white", 255, 255, 255}
	black = rgb{"black", 0, 0, 0}
)

var colourFiles sync.Map // name → path

// colourVideo is a file of solid-colour video of size w×h, codec "H264"
// or "VP8", made once per test binary.
func colourVideo(t testing.TB, c rgb, codec string, w, h int) rtclient.MediaSource {
	t.Helper()
	key := fmt.Sprintf("%s-%s-%dx%d", c.name, codec, w, h)
	path, ok := colourFiles.Load(key)
	if !ok {
		dir := filepath.Join(os.TempDir(), "rostrum-composition-fixtures")
		os.MkdirAll(dir, 0o755)
		args := []string{"-y", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
			"-i", fmt.Sprintf("color=c=%s:size=%dx%d:rate=30", c.name, w, h), "-t", "20"}
		var p string
		if codec == "VP8" {
			p = filepath.Join(dir, key+".ivf")
			args = append(args, "-c:v", "libvpx", "-b:v", "300k", "-g", "30", "-deadline", "realtime", "-cpu-used", "8",
				"-auto-alt-ref", "0", "-lag-in-frames", "0", "-pix_fmt", "yuv420p", "-f", "ivf", p)
		} else {
			p = filepath.Join(dir, key+".h264")
			args = append(args, "-c:v", "libx264", "-profile:v", "baseline", "-bf", "0", "-g", "30",
				"-pix_fmt", "yuv420p", "-preset", "veryfast", "-f", "h264", p)
		}
		if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
			t.Fatalf("making %s: %v\n%s", key, err, out)
		}
		path, _ = colourFiles.LoadOrStore(key, p)
	}
	src, err := rtclient.NewFileSource(path.(string))
	if err != nil {
		t.Fatal(err)
	}
	return src
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
		out, err := exec.Command("ffmpeg", "-y", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
			"-i", "sine=frequency=440:sample_rate=48000", "-t", "20", "-ac", "2", "-c:a", "libopus", "-b:a", "64k",
			"-f", "ogg", opusFixture.path).CombinedOutput()
		if err != nil {
			opusFixture.err = fmt.Errorf("%v: %s", err, out)
		}
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

// pictureAt decodes the picture at second sec of the file as RGB24.
func pictureAt(t *testing.T, path string, sec float64, w, h int) []byte {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-ss", strconv.FormatFloat(sec, 'f', 2, 64),
		"-i", path, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1").Output()
	if err != nil {
		t.Fatalf("decoding %s at %gs: %v", path, sec, err)
	}
	if len(out) != w*h*3 {
		t.Fatalf("picture at %gs: %d bytes, want %d", sec, len(out), w*h*3)
	}
	return out
}

// colourAt says whether the picture's pixel at (x, y) is near c.
func colourAt(pic []byte, w, x, y int) rgb {
	i := (y*w + x) * 3
	return rgb{r: int(pic[i]), g: int(pic[i+1]), b: int(pic[i+2])}
}

func near(a, b rgb) bool {
	d := func(x, y int) bool { return x-y < 40 && y-x < 40 }
	return d(a.r, b.r) && d(a.g, b.g) && d(a.b, b.b)
}

func centre(r layout.Rect) (int, int) { return r.X + r.Width/2, r.Y + r.Height/2 }

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
	alice := sfutest.Publish(t, r, "alice", colourVideo(t, red, "H264", 640, 360), opus(t))
	defer alice.Close()
	bob := sfutest.Publish(t, r, "bob", colourVideo(t, blue, "VP8", 640, 360), opus(t))

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
	twoUntil := time.Since(start)
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

	pic := pictureAt(t, path, twoUntil.Seconds()-0.5, 1280, 720)
	for _, tc := range []struct {
		id   string
		want rgb
	}{{"alice", red}, {"bob", blue}} {
		tile, _ := two.Tile(tc.id)
		x, y := centre(tile.Rect)
		if got := colourAt(pic, 1280, x, y); !near(got, tc.want) {
			t.Errorf("two publishers: %s's tile centre (%d,%d) is %v, want %s", tc.id, x, y, got, tc.want.name)
		}
	}
	if got := colourAt(pic, 1280, 2, 2); !near(got, black) {
		t.Errorf("two publishers: the corner is %v, want the black background", got)
	}
	// Alone, alice fills the frame's one tile.
	one, _ := layout.Compute(layout.Size{Width: 1280, Height: 720}, layout.DefaultGrid(), []layout.Participant{
		{ID: "alice", Video: true, VideoSize: layout.Size{Width: 640, Height: 360}, Arrival: 1}})
	pic = pictureAt(t, path, pr.Duration()-0.5, 1280, 720)
	tile, _ := one.Tile("alice")
	for _, pt := range [][2]int{{tile.Rect.X + 10, tile.Rect.Y + 10}, {tile.Rect.Right() - 10, tile.Rect.Bottom() - 10}} {
		if got := colourAt(pic, 1280, pt[0], pt[1]); !near(got, red) {
			t.Errorf("one publisher: (%d,%d) is %v, want red", pt[0], pt[1], got)
		}
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

package output

import (
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rostrum-dev/rostrum/internal/composition/flv"
	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// liveEncode is an ffmpeg encoding a test pattern and a tone in real time,
// H.264 + AAC in FLV, into a Stream: what the mixer's encoder does.
type liveEncode struct {
	Stream *flv.Stream
	cmd    *exec.Cmd
	done   chan struct{}
}

func startEncode(t testing.TB, w, h, fps int) *liveEncode {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("no ffmpeg")
	}
	e := &liveEncode{Stream: flv.NewStream(flv.Options{}), done: make(chan struct{})}
	e.cmd = exec.Command("ffmpeg", "-hide_banner", "-nostats", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", w, h, fps),
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
		"-g", strconv.Itoa(2*fps), "-b:v", "1500k",
		"-c:a", "aac", "-b:a", "128k", "-f", "flv", "pipe:1")
	out, err := e.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(e.done)
		_, err := io.Copy(e.Stream, out)
		if err != nil {
			e.Stream.CloseWithError(err)
		}
		e.Stream.Close()
		_ = e.cmd.Wait()
	}()
	t.Cleanup(e.Stop)
	return e
}

// Stop ends the encode; the stream ends with it.
func (e *liveEncode) Stop() {
	_ = e.cmd.Process.Kill()
	<-e.done
}

// waitMedia waits until the encode has made n more keyframes (2 s each).
func (e *liveEncode) waitKeyframes(t testing.TB, n int64) {
	t.Helper()
	start := e.Stream.Stats().Keyframes
	testutil.Eventually(t, fmt.Sprintf("%d keyframes", n), func() bool { return e.Stream.Stats().Keyframes >= start+n })
}

// states records an output's state changes.
type states struct {
	mu  sync.Mutex
	all []string // "STATE" or "STATE: reason"
}

func (s *states) on(state, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if reason != "" {
		state += ": " + reason
	}
	s.all = append(s.all, state)
}

func (s *states) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.all...)
}

// count is how often state was entered.
func (s *states) count(state string) int {
	n := 0
	for _, x := range s.list() {
		if x == state || strings.HasPrefix(x, state+": ") {
			n++
		}
	}
	return n
}

func (s *states) last() string {
	l := s.list()
	if len(l) == 0 {
		return ""
	}
	return l[len(l)-1]
}

func (s *states) wait(t testing.TB, state string, n int) {
	t.Helper()
	testutil.Eventually(t, fmt.Sprintf("state %s (×%d); states so far %q", state, n, s.list()), func() bool { return s.count(state) >= n })
}

// mediaInfo is what ffprobe says of a file's streams, with frame rates.
type mediaInfo struct {
	Streams []struct {
		CodecType    string `json:"codec_type"`
		CodecName    string `json:"codec_name"`
		Width        int    `json:"width"`
		Height       int    `json:"height"`
		AvgFrameRate string `json:"avg_frame_rate"`
		RFrameRate   string `json:"r_frame_rate"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func probe(t testing.TB, path string) mediaInfo {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var m mediaInfo
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m mediaInfo) duration() float64 {
	d, _ := strconv.ParseFloat(m.Format.Duration, 64)
	return d
}

// check fails unless the media is H.264 of w×h at fps and AAC.
func (m mediaInfo) check(t testing.TB, w, h, fps int) {
	t.Helper()
	var v, a bool
	for _, s := range m.Streams {
		switch s.CodecType {
		case "video":
			v = true
			if s.CodecName != "h264" || s.Width != w || s.Height != h {
				t.Fatalf("video %s %dx%d, want h264 %dx%d", s.CodecName, s.Width, s.Height, w, h)
			}
			if s.RFrameRate != fmt.Sprintf("%d/1", fps) {
				t.Fatalf("frame rate %s (avg %s), want %d", s.RFrameRate, s.AvgFrameRate, fps)
			}
		case "audio":
			a = true
			if s.CodecName != "aac" {
				t.Fatalf("audio %s, want aac", s.CodecName)
			}
		}
	}
	if !v || !a {
		t.Fatalf("video %v, audio %v", v, a)
	}
}

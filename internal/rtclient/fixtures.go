package rtclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// ErrNoFFmpeg is returned by GenerateFixtures when ffmpeg is not installed.
var ErrNoFFmpeg = errors.New("rtclient: ffmpeg not found in PATH")

// Fixtures are the paths of the test media GenerateFixtures makes. All are 3
// seconds of ffmpeg's test patterns at 30 fps (a 440 Hz tone for audio), with
// a keyframe every 30 frames.
type Fixtures struct {
	Dir  string
	H264 string // 640×360 H.264 constrained baseline, no B-frames, Annex-B
	VP8  string // 640×360 VP8 in IVF
	Opus string // stereo 48 kHz Opus in Ogg
	// Simulcast layers hi (1280×720), mid (640×360), low (320×180), in the
	// order of SimulcastRIDs.
	SimulcastH264 [3]string
	SimulcastVP8  [3]string
}

// fixtureSeconds is the length of every fixture.
const fixtureSeconds = 3

// GenerateFixtures makes the fixtures in dir with ffmpeg. Files already
// there are kept, so a directory can be shared by tests; each file is written
// under a temporary name and renamed, so a half-written one is never taken.
// It returns ErrNoFFmpeg when ffmpeg is missing.
func GenerateFixtures(ctx context.Context, dir string) (Fixtures, error) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return Fixtures{}, ErrNoFFmpeg
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Fixtures{}, err
	}
	f := Fixtures{Dir: dir}
	type job struct {
		path *string
		name string
		args []string
	}
	h264 := func(w, h int) []string {
		return []string{
			"-f", "lavfi", "-i", fmt.Sprintf("testsrc=size=%dx%d:rate=30", w, h),
			"-t", strconv.Itoa(fixtureSeconds),
			"-c:v", "libx264", "-profile:v", "baseline", "-bf", "0", "-g", "30", "-sc_threshold", "0",
			"-pix_fmt", "yuv420p", "-preset", "veryfast", "-f", "h264",
		}
	}
	vp8 := func(w, h int, bitrate string) []string {
		return []string{
			"-f", "lavfi", "-i", fmt.Sprintf("testsrc=size=%dx%d:rate=30", w, h),
			"-t", strconv.Itoa(fixtureSeconds),
			"-c:v", "libvpx", "-b:v", bitrate, "-g", "30", "-keyint_min", "30",
			"-deadline", "realtime", "-cpu-used", "8", "-auto-alt-ref", "0", "-lag-in-frames", "0",
			"-pix_fmt", "yuv420p", "-f", "ivf",
		}
	}
	jobs := []job{
		{&f.H264, "video-640x360.h264", h264(640, 360)},
		{&f.VP8, "video-640x360.ivf", vp8(640, 360, "700k")},
		{&f.Opus, "audio-stereo-48k.ogg", []string{
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
			"-t", strconv.Itoa(fixtureSeconds), "-ac", "2",
			"-c:a", "libopus", "-b:a", "64k", "-f", "ogg",
		}},
	}
	sizes := [3][2]int{{1280, 720}, {640, 360}, {320, 180}}
	rates := [3]string{"2500k", "700k", "200k"} // the Web SDK's layer bitrates (IVS-BEHAVIOUR.md §2.3)
	for i, sz := range sizes {
		jobs = append(jobs,
			job{&f.SimulcastH264[i], fmt.Sprintf("simulcast-%s-%dx%d.h264", SimulcastRIDs[i], sz[0], sz[1]), h264(sz[0], sz[1])},
			job{&f.SimulcastVP8[i], fmt.Sprintf("simulcast-%s-%dx%d.ivf", SimulcastRIDs[i], sz[0], sz[1]), vp8(sz[0], sz[1], rates[i])},
		)
	}
	for _, j := range jobs {
		out, err := makeFixture(ctx, ffmpeg, dir, j.name, j.args)
		if err != nil {
			return Fixtures{}, err
		}
		*j.path = out
	}
	return f, nil
}

// makeFixture makes dir/name with ffmpeg's args unless it is there.
func makeFixture(ctx context.Context, ffmpeg, dir, name string, args []string) (string, error) {
	out := filepath.Join(dir, name)
	if st, err := os.Stat(out); err == nil && st.Size() > 0 {
		return out, nil
	}
	// Under a name of this process's: several test binaries may make the
	// same file at once.
	tmp := fmt.Sprintf("%s.%d.tmp", out, os.Getpid())
	args = append([]string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y"}, args...)
	args = append(args, tmp)
	cmd := exec.CommandContext(ctx, ffmpeg, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("rtclient: ffmpeg making %s: %w: %s", name, err, bytes.TrimSpace(stderr.Bytes()))
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	return out, nil
}

// ColourFixture makes (once, in dir) 20 seconds of video of one solid
// colour (a name ffmpeg's color source knows: "red", "lime", "blue", …) at
// w×h, 30 fps, a keyframe a second, as H.264 constrained baseline
// (codec "H264", Annex-B) or VP8 ("VP8", IVF): what tests of compositions
// use to tell participants apart in a picture.
func ColourFixture(ctx context.Context, dir, colour, codec string, w, h int) (string, error) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return "", ErrNoFFmpeg
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	args := []string{"-f", "lavfi", "-i", fmt.Sprintf("color=c=%s:size=%dx%d:rate=30", colour, w, h), "-t", "20"}
	name := fmt.Sprintf("colour-%s-%dx%d", colour, w, h)
	switch codec {
	case "VP8":
		name += ".ivf"
		args = append(args, "-c:v", "libvpx", "-b:v", "300k", "-g", "30", "-deadline", "realtime", "-cpu-used", "8",
			"-auto-alt-ref", "0", "-lag-in-frames", "0", "-pix_fmt", "yuv420p", "-f", "ivf")
	case "H264":
		name += ".h264"
		args = append(args, "-c:v", "libx264", "-profile:v", "baseline", "-bf", "0", "-g", "30",
			"-pix_fmt", "yuv420p", "-preset", "veryfast", "-f", "h264")
	default:
		return "", fmt.Errorf("rtclient: no colour fixture in %q", codec)
	}
	return makeFixture(ctx, ffmpeg, dir, name, args)
}

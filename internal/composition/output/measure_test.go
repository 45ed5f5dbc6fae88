package output

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/composition/flv"
	"github.com/rostrum-dev/rostrum/internal/objstore/folder"
	"github.com/rostrum-dev/rostrum/internal/testutil"
	"github.com/rostrum-dev/rostrum/internal/testutil/rtmpserver"
)

// TestMeasureOutputCost measures what the outputs cost the machine: the CPU
// of their ffmpeg processes (user + system time over a 20 s window) for an
// encode of 1280×720 30 fps at 2.5 Mbit/s (IVS's default) and of
// 1920×1080 30 fps at 6 Mbit/s, each with 128 kbit/s AAC: a pusher to
// nginx-rtmp, and the HLS writer without thumbnails, with thumbnails every
// 2 s decoded from keyframes only (what it does), and with thumbnails
// decoded from every frame (what it would cost without -skip_frame). The
// encode is made beforehand and fed at real time, so its own cost is not
// counted. A measurement, not a check: it runs with ROSTRUM_MEASURE=1 and
// reports; docs/composition.md has the figures.
//
//	ROSTRUM_MEASURE=1 go test -run TestMeasureOutputCost -v -timeout 20m ./internal/composition/output/
func TestMeasureOutputCost(t *testing.T) {
	testutil.Measurement(t)
	const window = 20 * time.Second
	tick := testutil.ClockTicks
	for _, c := range []struct {
		name          string
		w, h, bitrate int
	}{{"720p30", 1280, 720, 2_500_000}, {"1080p30", 1920, 1080, 6_000_000}} {
		file := filepath.Join(t.TempDir(), c.name+".flv")
		out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=30", c.w, c.h),
			"-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "45",
			"-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-pix_fmt", "yuv420p",
			"-b:v", strconv.Itoa(c.bitrate), "-maxrate", strconv.Itoa(c.bitrate), "-bufsize", strconv.Itoa(c.bitrate),
			"-c:a", "aac", "-b:a", "128k", "-f", "flv", file).CombinedOutput()
		if err != nil {
			t.Fatalf("encoding the %s source: %v: %s", c.name, err, out)
		}
		measure := func(what string, pid func() int) {
			p := pid()
			if p == 0 {
				t.Fatalf("%s %s: no ffmpeg", c.name, what)
			}
			time.Sleep(5 * time.Second) // past ffmpeg's start
			t0, r0 := mustTicks(t, p), procRSS(p)
			start := time.Now()
			time.Sleep(window)
			cpu := float64(mustTicks(t, p)-t0) / float64(tick) / time.Since(start).Seconds()
			t.Logf("%s %-40s CPU %5.1f%% of a core, RSS %d MiB", c.name, what, 100*cpu, max(r0, procRSS(p))>>20)
		}

		// The pusher.
		srv := rtmpserver.Start(t)
		src := replay(t, file)
		pu, err := StartPusher(PusherConfig{URL: srv.URL("live", c.name), Source: src})
		if err != nil {
			t.Fatal(err)
		}
		measure("RTMP pusher", func() int {
			for range 100 {
				pu.mu.Lock()
				cur := pu.cur
				pu.mu.Unlock()
				if cur != nil {
					return cur.cmd.Process.Pid
				}
				time.Sleep(100 * time.Millisecond)
			}
			return 0
		})
		stop(t, pu.Stop)

		// The HLS writer.
		for _, v := range []struct {
			what   string
			thumbs []Thumbnail
			all    bool
		}{
			{"HLS writer, no thumbnails", nil, false},
			{"HLS writer, thumbnails every 2 s (keyframes)", []Thumbnail{{IntervalSeconds: 2, Sequential: true, Latest: true}}, false},
			{"HLS writer, thumbnails every 2 s (all frames)", []Thumbnail{{IntervalSeconds: 2, Sequential: true, Latest: true}}, true},
		} {
			st, _ := folder.New(t.TempDir())
			src := replay(t, file)
			w, err := StartHLS(HLSConfig{
				Storage: st, Bucket: "bucket", Prefix: "p", StageARN: testStage,
				Renditions: []Rendition{{Name: c.name + "-x", Width: c.w, Height: c.h, Framerate: 30, Bitrate: c.bitrate, Source: src}},
				Thumbnails: v.thumbs, SpoolDir: filepath.Join(t.TempDir(), "spool"),
				decodeAllFrames: v.all,
			})
			if err != nil {
				t.Fatal(err)
			}
			measure(v.what, func() int {
				for range 100 {
					w.mu.Lock()
					cur := w.rends[0].cur
					w.mu.Unlock()
					if cur != nil {
						return cur.cmd.Process.Pid
					}
					time.Sleep(100 * time.Millisecond)
				}
				return 0
			})
			stop(t, w.Stop)
		}
	}
}

// replay feeds an FLV file into a new Stream at real time (ffmpeg -re -c
// copy), as the mixer's encoder would.
func replay(t *testing.T, file string) *flv.Stream {
	s := flv.NewStream(flv.Options{})
	cmd := exec.Command("ffmpeg", "-v", "error", "-re", "-i", file, "-c", "copy", "-f", "flv", "pipe:1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(s, out)
		s.Close()
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	return s
}

func stop(t *testing.T, f func(ctx context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f(ctx); err != nil {
		t.Fatal(err)
	}
}

// procRSS is a process's resident memory in bytes (0 if it is gone).
func procRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseInt(f[1], 10, 64)
	return n * int64(os.Getpagesize())
}

func mustTicks(t *testing.T, pid int) int64 {
	c, ok := testutil.CPUTicks(pid)
	if !ok {
		t.Fatalf("process %d is gone", pid)
	}
	return c
}

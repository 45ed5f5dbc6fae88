package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// TestMeasureRTMPIngestCost measures what RTMP ingest costs the server: the
// CPU of the AAC-to-Opus ffmpeg per stream, and the server process's own
// CPU (TLS, RTMP reading, H.264 repacketizing, the engine's fan-out to no
// subscriber: what a subscriber adds is the media plane's figure), for N encoders pushing 1280×720 30 fps H.264 at
// 2.5 Mbit/s with 128 kbit/s stereo AAC. The encoders replay a file made
// beforehand (-c copy), so that their own encoding does not load the
// machine. A measurement, not a check: it runs only with ROSTRUM_MEASURE=1;
// docs/performance.md has the figures.
//
//	ROSTRUM_MEASURE=1 ROSTRUM_MEASURE_N=4 go test -run TestMeasureRTMPIngestCost -v -timeout 10m ./test/e2e/
func TestMeasureRTMPIngestCost(t *testing.T) {
	testutil.Measurement(t)
	needFFmpeg(t)
	n := testutil.MeasureInt("ROSTRUM_MEASURE_N", 1)
	ctx := testContext(t)
	file := filepath.Join(t.TempDir(), "source.flv")
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "20",
		"-c:v", "libx264", "-profile:v", "baseline", "-preset", "veryfast", "-tune", "zerolatency", "-g", "60", "-pix_fmt", "yuv420p",
		"-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "5000k", "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-f", "flv", file}
	if out, err := exec.CommandContext(ctx, "ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("making the source: %v\n%s", err, out)
	}
	ts := startServer(t, "")
	c := ts.client()
	for range n {
		stage := newStage(t, c)
		ic := newIngest(t, c, stage, types.IngestProtocolRtmps, false)
		url := fmt.Sprintf("rtmps://%s/app/%s", ts.Ingest.RTMPSAddr(), aws.ToString(ic.StreamKey))
		push(t, url, []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1", "-i", file, "-c", "copy"})
		waitIngestState(t, c, aws.ToString(ic.Arn), types.IngestConfigurationStateActive)
	}
	testutil.Eventually(t, "every transcoder", func() bool { return len(ts.Ingest.TranscoderPIDs()) == n })
	time.Sleep(3 * time.Second)
	pids := ts.Ingest.TranscoderPIDs()
	self := os.Getpid()
	window := 30 * time.Second
	ff0, srv0 := procTicks(t, pids...), procTicks(t, self)
	start := time.Now()
	time.Sleep(window)
	ff1, srv1 := procTicks(t, pids...), procTicks(t, self)
	el := time.Since(start).Seconds()
	ffCores := float64(ff1-ff0) / 100 / el // USER_HZ is 100 on Linux
	srvCores := float64(srv1-srv0) / 100 / el
	var rss, pss int64
	for _, p := range pids {
		rss += testutil.ProcBytes(p, "status", "VmRSS:")
		pss += testutil.ProcBytes(p, "smaps_rollup", "Pss:")
	}
	t.Logf("%d RTMPS streams (720p30 H.264 2.5 Mbit/s + AAC 128k) for %.0f s: AAC->Opus ffmpeg %.3f cores per stream (RSS %.1f MiB, PSS %.1f MiB each); server process %.3f cores in all, %.3f per stream",
		n, el, ffCores/float64(n), float64(rss)/float64(n)/(1<<20), float64(pss)/float64(n)/(1<<20), srvCores, srvCores/float64(n))
}

// procTicks sums the CPU time of the processes.
func procTicks(t *testing.T, pids ...int) int64 {
	var sum int64
	for _, pid := range pids {
		c, ok := testutil.CPUTicks(pid)
		if !ok {
			t.Fatalf("process %d is gone", pid)
		}
		sum += c
	}
	return sum
}

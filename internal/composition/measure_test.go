package composition

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/composition/layout"
	"github.com/rostrum-dev/rostrum/internal/rtclient"
	"github.com/rostrum-dev/rostrum/internal/sfu/sfutest"
	"github.com/rostrum-dev/rostrum/internal/testutil"
	"github.com/rostrum-dev/rostrum/internal/testutil/rtmpserver"
)

// TestMeasureCompositionCost measures what one composition costs the
// machine: the CPU and memory of its ffmpeg processes (decoders, encoder,
// RTMP pusher) and of the mixer in this process, for N publishers of
// 1280×720 30 fps H.264 (ffmpeg's testsrc: detail and motion, not a solid
// colour) with Opus, composed in a grid to one RTMP destination at the
// given size, and the time from Start to the destination's first frame at
// the RTMP server. It is a measurement, not a check: it runs only with
// ROSTRUM_MEASURE=1, and reports; docs/performance.md has the figures.
//
//	ROSTRUM_MEASURE=1 ROSTRUM_MEASURE_N=4 ROSTRUM_MEASURE_SIZE=1920x1080 \
//	  go test -run TestMeasureCompositionCost -v -timeout 10m ./internal/composition/
func TestMeasureCompositionCost(t *testing.T) {
	testutil.Measurement(t)
	bin := needFFmpeg(t)
	n := testutil.MeasureInt("ROSTRUM_MEASURE_N", 1)
	w, h := 1280, 720
	if s := os.Getenv("ROSTRUM_MEASURE_SIZE"); s != "" {
		fmt.Sscanf(s, "%dx%d", &w, &h)
	}
	window := 30 * time.Second
	f, err := rtclient.GenerateFixtures(context.Background(), filepath.Join(os.TempDir(), "rostrum-recording-fixtures"))
	if err != nil {
		t.Fatal(err)
	}
	rtmp := rtmpserver.Start(t)
	r := testRouter(t)
	var ids []string
	for i := range n {
		id := fmt.Sprintf("p%d", i)
		v, err := rtclient.NewFileSource(f.SimulcastH264[0])
		if err != nil {
			t.Fatal(err)
		}
		p := sfutest.Publish(t, r, id, v, opus(t))
		defer p.Close()
		ids = append(ids, id)
	}
	time.Sleep(3 * time.Second)
	self0, _ := testutil.CPUTicks(os.Getpid())
	base0 := time.Now()
	time.Sleep(10 * time.Second)
	selfBase := float64(mustCPU(t, os.Getpid())-self0) / 100 / time.Since(base0).Seconds() // publishers and engine alone

	feed := &stageFeed{view: view(r, ids...)}
	rep := &reports{}
	m := NewManager(Config{FFmpeg: bin, Watcher: feed, Reporter: rep, Logger: testLog(t)})
	spec := channelSpec(rtmp.URL("live", "m"), layout.DefaultGrid())
	spec.Destinations[0].Channel.Encoder.Width, spec.Destinations[0].Channel.Encoder.Height = w, h
	if w*h > 1280*720 {
		spec.Destinations[0].Channel.Encoder.Bitrate = 6_000_000
	}
	start := time.Now()
	if err := m.Start(spec); err != nil {
		t.Fatal(err)
	}
	rep.await(t, "dest dest12345678 ACTIVE")
	firstFrame := rtmp.Publishes("live", "m")[0].Start.Sub(start)
	time.Sleep(5 * time.Second) // past the decoders' start
	kids := testutil.Children("ffmpeg")
	c0 := map[int]int64{}
	for _, pid := range kids {
		c0[pid], _ = testutil.CPUTicks(pid)
	}
	s0 := mustCPU(t, os.Getpid())
	t0 := time.Now()
	time.Sleep(window)
	elapsed := time.Since(t0).Seconds()
	var dec, enc, push float64
	var rss, pss int64
	for _, pid := range kids {
		c1, ok := testutil.CPUTicks(pid)
		if !ok {
			continue
		}
		cores := float64(c1-c0[pid]) / 100 / elapsed
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		switch args := string(cmd); {
		case strings.Contains(args, "libx264"):
			enc += cores
		case strings.Contains(args, "rtmp://"):
			push += cores
		default:
			dec += cores
		}
		rss += testutil.ProcBytes(pid, "status", "VmRSS:")
		pss += testutil.ProcBytes(pid, "smaps_rollup", "Pss:")
	}
	self := float64(mustCPU(t, os.Getpid())-s0)/100/elapsed - selfBase
	t.Logf("grid of %d at %dx%d 30 fps: %.2f cores in all = encoder %.2f + %d decoders %.2f + pusher %.2f + mixer (this process, less the publishers' %.2f) %.2f; ffmpeg RSS %.0f MiB, PSS %.0f MiB; Start → first RTMP publish %v; frames late %d",
		n, w, h, enc+dec+push+self, enc, len(kids)-2, dec, push, selfBase, self, float64(rss)/(1<<20), float64(pss)/(1<<20), firstFrame.Round(time.Millisecond), 0)
	m.Close(t.Context())
}

func mustCPU(t *testing.T, pid int) int64 {
	c, ok := testutil.CPUTicks(pid)
	if !ok {
		t.Fatalf("no /proc/%d/stat", pid)
	}
	return c
}

package recording

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/sfu/sfutest"
	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// TestMeasureRecordingCost measures what recordings cost the machine: the
// CPU and memory of their ffmpeg processes, per recording, for N
// publishers of 1280×720 30 fps H.264 (the remux path) or VP8 (encoded to
// H.264) with Opus, recorded with IVS's defaults (6 s segments, a
// thumbnail every 60 s). It is a measurement, not a check: it runs only
// with ROSTRUM_MEASURE=1, and reports; docs/performance.md has the figures.
//
//	ROSTRUM_MEASURE=1 ROSTRUM_MEASURE_N=8 ROSTRUM_MEASURE_CODEC=h264 \
//	  go test -run TestMeasureRecordingCost -v -timeout 10m ./internal/recording/
func TestMeasureRecordingCost(t *testing.T) {
	testutil.Measurement(t)
	f := needMedia(t)
	n := testutil.MeasureInt("ROSTRUM_MEASURE_N", 1)
	video := f.SimulcastH264[0]
	if strings.EqualFold(os.Getenv("ROSTRUM_MEASURE_CODEC"), "vp8") {
		video = f.SimulcastVP8[0]
	}
	window := 30 * time.Second
	ev := newEnv(t, false)
	s := settings()
	s.SegmentSeconds, s.ThumbnailIntervalSeconds, s.ThumbnailLatest = 6, 60, false
	var pubs []*sfutest.Publisher
	for i := range n {
		id := fmt.Sprintf("p%d", i)
		pubs = append(pubs, publish(t, ev.router, id, sources(t, f, video)...))
		p := alice
		p.ParticipantID = id
		ev.mgr.Publishing(p, s, ev.router)
	}
	for range n {
		ev.changes.await(t, Active)
	}
	time.Sleep(5 * time.Second) // ffmpeg past its start
	pids := func() []int {
		ev.mgr.mu.Lock()
		defer ev.mgr.mu.Unlock()
		var out []int
		for _, r := range ev.mgr.recs {
			if rn := r.cur.Load(); rn != nil {
				out = append(out, rn.cmd.Process.Pid)
			}
		}
		return out
	}()
	cpu0 := cpuTicks(t, pids)
	start := time.Now()
	time.Sleep(window)
	cpu1 := cpuTicks(t, pids)
	elapsed := time.Since(start).Seconds()
	var rss, pss int64
	for _, pid := range pids {
		rss += testutil.ProcBytes(pid, "status", "VmRSS:")
		pss += testutil.ProcBytes(pid, "smaps_rollup", "Pss:")
	}
	cores := float64(cpu1-cpu0) / 100 / elapsed // USER_HZ is 100 on Linux
	per := float64(len(pids)) * (1 << 20)
	t.Logf("%d recordings of %s for %.0f s: ffmpeg %.3f cores in all; per recording %.4f cores, RSS %.1f MiB, PSS %.1f MiB (shared libraries counted once)",
		len(pids), video, elapsed, cores, cores/float64(len(pids)), float64(rss)/per, float64(pss)/per)
	for _, p := range pubs {
		p.Close()
	}
}

// cpuTicks sums the CPU time of the processes.
func cpuTicks(t *testing.T, pids []int) int64 {
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

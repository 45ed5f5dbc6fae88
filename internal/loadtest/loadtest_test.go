package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/config"
	"github.com/rostrum-dev/rostrum/internal/rtclient"
	"github.com/rostrum-dev/rostrum/internal/server"
)

// TestMain doubles as `rostrum serve` for TestSpawn: the test binary
// re-executed with LOADTEST_TEST_SERVE=1 runs a server with the flags it
// is given.
func TestMain(m *testing.M) {
	if os.Getenv("LOADTEST_TEST_SERVE") == "1" {
		os.Exit(serveForTest(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func serveForTest(args []string) int {
	cfg, err := config.Parse(args, func(string) string { return "" }, io.Discard)
	if err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	srv, err := server.Start(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return 1
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return 0
}

// startServer runs a server in this process on free loopback ports.
func startServer(t *testing.T) Target {
	t.Helper()
	cfg, err := config.Parse([]string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--rtc-udp-port", "0",
		"--rtc-tcp-port", "-1", "--rtc-listen-ip", "127.0.0.1", "--session-grace", "200ms"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return Target{Endpoint: srv.BaseURL, Region: cfg.Region, AccessKeyID: cfg.AccessKeyID, SecretAccessKey: cfg.SecretAccessKey,
		ServerPID: os.Getpid(), ServerDescription: "in-process (test)"}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// The smoke run: a few seconds of one publisher and two subscribers, with
// simulcast and audio. Media must have flowed to every subscription, and
// the report must be complete and survive JSON.
func TestMediaSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and runs media for a few seconds")
	}
	tgt := startServer(t)
	var lines []string
	rep, err := RunMedia(testContext(t), tgt, MediaOptions{
		Subscribers: 2, Simulcast: true, VideoBitrate: 600_000, Width: 640, Height: 360,
		Duration: 2 * time.Second, Warmup: 500 * time.Millisecond, JoinRate: 50, LoopbackOnly: true,
		Pace: 2.5, PaceBurst: 40 * time.Millisecond,
	}, func(s string) { lines = append(lines, s) })
	if err != nil {
		t.Fatal(err)
	}
	if rep.Joins.OK != 2 || rep.Joins.Failed != 0 || rep.Joins.NoMedia != 0 {
		t.Fatalf("joins: %+v", rep.Joins)
	}
	if rep.StreamsForwarded != 4 || rep.VideoStreams != 2 || rep.AudioStreams != 2 {
		t.Fatalf("streams: %d (%d video, %d audio), want 4 (2, 2)", rep.StreamsForwarded, rep.VideoStreams, rep.AudioStreams)
	}
	if rep.Video.PacketsPerSecond <= 0 || rep.Audio.PacketsPerSecond <= 0 || rep.Total.BitsPerSecond <= 0 {
		t.Fatalf("rates: video %+v audio %+v total %+v", rep.Video, rep.Audio, rep.Total)
	}
	if rep.Latency.Count == 0 || rep.Latency.P50 <= 0 || rep.Latency.P50 > rep.Latency.P99 || rep.Latency.P99 > rep.Latency.Max {
		t.Fatalf("latency: %+v", rep.Latency)
	}
	if rep.Joins.ToFirstFrame.Count != 2 || rep.Joins.Connect.Count != 2 || rep.Joins.ConnectedToFirstFrame.Count != 2 {
		t.Fatalf("join times: %+v", rep.Joins)
	}
	if rep.Loss.Expected == 0 {
		t.Fatalf("loss: nothing expected: %+v", rep.Loss)
	}
	if !rep.Server.Measured || rep.Server.RSSBytes == 0 {
		t.Fatalf("server stats: %+v", rep.Server)
	}
	if rep.Errors.Count != 0 {
		t.Fatalf("errors: %+v", rep.Errors)
	}
	// Delivery: simulcast video has no expected count, audio does; nothing
	// stalled; a series point per second of the window.
	d := rep.Delivery
	if len(d.Streams) != 4 || d.VideoShare != -1 || d.AudioShare <= 0 || d.Stalls != 0 || d.StoppedStreams != 0 {
		t.Fatalf("delivery: %+v", d)
	}
	if len(rep.Series) == 0 || rep.SeriesIntervalSec != 1 || rep.Series[0].AudioPacketsPerSecond <= 0 || rep.Series[0].ServerRSSBytes == 0 {
		t.Fatalf("series (%.0f s): %+v", rep.SeriesIntervalSec, rep.Series)
	}
	if len(lines) == 0 {
		t.Error("no progress reported")
	}

	if p := rep.Load.Pacing; p.Rate != int(2.5*(600_000+200_000+60_000)) || p.BurstMs != 40 {
		t.Fatalf("pacing %+v, want 2.5 × the three layers' bitrate, 40 ms bursts", p)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"paced at 2.5 ×", "connected → first frame", "streams forwarded", "join → first frame", "latency, send → receive", "server memory", "errors",
		"received of sent", "stalls (silent > 1 s)", "over time (every 1 s)"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var js bytes.Buffer
	if err := WriteJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	var back MediaReport
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.StreamsForwarded != rep.StreamsForwarded || back.Latency != rep.Latency || back.Mode != "media" {
		t.Fatalf("JSON round trip changed the report:\n%s", js.String())
	}
	var generic map[string]any
	if err := json.Unmarshal(js.Bytes(), &generic); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"streamsForwarded", "joins", "perSubscriberVideo", "loss", "jitterMs", "latency", "serverStats", "errors", "delivery", "series"} {
		if _, ok := generic[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
}

// pauseVideo pauses a subscriber's video through the playback-controls
// link, as a viewer's app does, and waits until its video has been silent
// for longer than a stall takes: the server stopped forwarding it while
// the publisher goes on sending.
func pauseVideo(t *testing.T, ctx context.Context, sub *rtclient.Subscriber) {
	// Video first flows (from the first keyframe after joining).
	for ctx.Err() == nil && sub.Stats(rtclient.KindVideo).LastPacket.IsZero() {
		time.Sleep(50 * time.Millisecond)
	}
	if err := sub.Pause(ctx, sub.Mid(rtclient.KindVideo)); err != nil {
		t.Errorf("pause: %v", err)
		return
	}
	for ctx.Err() == nil {
		if last := sub.Stats(rtclient.KindVideo).LastPacket; !last.IsZero() && time.Since(last) > stallAfter*3/2 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The load generator must see a stream that stops while its publisher goes
// on sending (issue 15: it reported "loss 0.000 %" and no errors for a run
// in which video stopped for five of eight minutes). One of two subscribers
// pauses its video through the real server's playback controls mid-window
// and never resumes: the report must show that stream stalled to the end,
// stopped, and an error; the other streams must be whole.
func TestMediaReportsAStoppedStream(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and runs media for a few seconds")
	}
	tgt := startServer(t)
	rep, err := RunMedia(testContext(t), tgt, MediaOptions{
		Subscribers: 2, VideoBitrate: 300_000, Width: 320, Height: 180,
		Duration: 2 * time.Second, Warmup: 500 * time.Millisecond, JoinRate: 50, LoopbackOnly: true,
		atMeasure: func(ctx context.Context, subs []*rtclient.Subscriber, _ []*rtclient.Publisher) {
			pauseVideo(t, ctx, subs[0])
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := rep.Delivery
	if len(d.Streams) != 4 {
		t.Fatalf("streams: %+v", d.Streams)
	}
	for _, s := range d.Streams {
		paused := s.Subscriber == 0 && s.Kind == "video"
		switch {
		case paused && (!s.Stopped || len(s.Stalls) != 1 || !s.Stalls[0].Open || s.Sent == 0 || s.Share >= 1):
			t.Errorf("paused video: %+v, want one open stall, stopped, less than what was sent", s)
		case !paused && (s.Stopped || len(s.Stalls) != 0 || s.Sent == 0 || s.Received == 0):
			t.Errorf("stream %+v, want whole", s)
		}
	}
	if d.StoppedStreams != 1 || d.Stalls != 1 || d.StalledStreams != 1 {
		t.Errorf("delivery: %+v", d)
	}
	if rep.Errors.Count != 1 || len(rep.Errors.Kinds) != 1 || !strings.Contains(rep.Errors.Kinds[0], "stream stopped: the video of 1 subscription") {
		t.Errorf("errors: %+v", rep.Errors)
	}
	// The series shows the stalled stream.
	stalled := 0
	for _, p := range rep.Series {
		stalled = max(stalled, p.StalledStreams)
	}
	if stalled != 1 {
		t.Errorf("series: most stalled streams %d, want 1: %+v", stalled, rep.Series)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1 stream(s) stopped", "subscriber 0 ← publisher 0 video", "–end s", "stream stopped"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

// A stream that stalls and comes back is a stall, not an error.
func TestMediaReportsARecoveredStall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and runs media for a few seconds")
	}
	tgt := startServer(t)
	rep, err := RunMedia(testContext(t), tgt, MediaOptions{
		Subscribers: 2, VideoBitrate: 300_000, Width: 320, Height: 180, NoAudio: true,
		Duration: 2 * time.Second, Warmup: 500 * time.Millisecond, JoinRate: 50, LoopbackOnly: true,
		atMeasure: func(ctx context.Context, subs []*rtclient.Subscriber, pubs []*rtclient.Publisher) {
			sub := subs[1]
			received := func() int64 { st := sub.Stats(rtclient.KindVideo); return st.Packets - st.Duplicates }
			sent := func() int64 { return pubs[0].Stats(rtclient.KindVideo).Packets }
			r0, s0 := received(), sent()
			pauseVideo(t, ctx, sub)
			resumed := time.Now()
			if err := sub.Play(ctx, sub.Mid(rtclient.KindVideo)); err != nil {
				t.Errorf("play: %v", err)
				return
			}
			// The window ends once video flows again and has made up
			// enough that the stream is not starved (half of what was
			// sent) but stalled once.
			for ctx.Err() == nil && (!sub.Stats(rtclient.KindVideo).LastPacket.After(resumed) || 4*(received()-r0) < 3*(sent()-s0)) {
				time.Sleep(50 * time.Millisecond)
			}
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := rep.Delivery
	if len(d.Streams) != 2 || d.Stalls != 1 || d.StoppedStreams != 0 || rep.Errors.Count != 0 {
		t.Fatalf("delivery %+v, errors %+v", d, rep.Errors)
	}
	for _, s := range d.Streams {
		if s.Subscriber == 1 && (len(s.Stalls) != 1 || s.Stalls[0].Open || s.Stalls[0].Sec() <= 1) {
			t.Errorf("resumed video: %+v, want one closed stall over a second", s)
		}
	}
}

// The control-plane mode through the command line, as a user runs it
// against a server of theirs.
func TestAPISmokeCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	tgt := startServer(t)
	var out, errs bytes.Buffer
	code := Main([]string{"api", "--endpoint", tgt.Endpoint, "--ops", strings.Join(APIOperations, ","), "--concurrency", "2",
		"--duration", "300ms", "--warmup", "0s", "--server-pid", "0", "--json", "-", "--quiet"}, &out, &errs)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	var rep APIReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if len(rep.Operations) != len(APIOperations) {
		t.Fatalf("operations: %+v", rep.Operations)
	}
	for _, op := range rep.Operations {
		if op.Requests == 0 || op.Errors != 0 || op.PerSecond <= 0 || op.Latency.P50 <= 0 {
			t.Errorf("%s: %+v", op.Operation, op)
		}
	}
}

// Spawn starts a server process (here this test binary, standing in for
// rostrum serve), pinned to one CPU, and stops it.
func TestSpawn(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("LOADTEST_TEST_SERVE", "1")
	srv, err := Spawn(testContext(t), SpawnOptions{Command: []string{exe}, CPUs: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	ps, err := readProc(srv.PID)
	if err != nil {
		t.Fatal(err)
	}
	if ps.rss == 0 || ps.threads == 0 {
		t.Fatalf("/proc of the server: %+v", ps)
	}
	m, err := getAffinity(srv.PID)
	if err != nil {
		t.Fatal(err)
	}
	if *m != *maskOf([]int{0}) {
		t.Errorf("server affinity %x, want CPU 0 only", m[0])
	}
	rep, err := RunAPI(testContext(t), Target{Endpoint: srv.Endpoint, Region: "us-east-1", AccessKeyID: devAccessKeyID,
		SecretAccessKey: devSecretAccessKey, ServerPID: srv.PID}, APIOptions{Operations: []string{"GetStage"}, Concurrency: 2, Duration: 300 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if op := rep.Operations[0]; op.Requests == 0 || op.Errors != 0 {
		t.Fatalf("GetStage against the spawned server: %+v", op)
	}
	srv.Stop()
	select {
	case <-srv.exited:
	default:
		t.Fatal("the server still runs after Stop")
	}
}

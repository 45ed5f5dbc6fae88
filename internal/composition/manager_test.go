package composition

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/composition/compotest"
	"github.com/rostrum-dev/rostrum/internal/composition/layout"
	"github.com/rostrum-dev/rostrum/internal/sfu/sfutest"
	"github.com/rostrum-dev/rostrum/internal/testutil"
	"github.com/rostrum-dev/rostrum/internal/testutil/rtmpserver"
)

// stageFeed is a StageWatcher the test drives: it stands for the stage
// layer, in front of a real router.
type stageFeed struct {
	mu      sync.Mutex
	view    StageView
	watches map[int]func(StageView)
	n       int
}

func (s *stageFeed) WatchStage(arn string, f func(StageView)) (func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watches == nil {
		s.watches = map[int]func(StageView){}
	}
	s.n++
	id := s.n
	s.watches[id] = f
	f(s.view)
	return func() {
		s.mu.Lock()
		delete(s.watches, id)
		s.mu.Unlock()
	}, nil
}

func (s *stageFeed) set(v StageView) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.view = v
	for _, f := range s.watches {
		f(v)
	}
}

func (s *stageFeed) watching() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.watches)
}

// reports records what the Manager reports.
type reports struct {
	mu  sync.Mutex
	all []string // "composition STATE" or "dest ID STATE"
}

func (r *reports) CompositionState(arn, state string, at time.Time, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, "composition "+state)
}

func (r *reports) DestinationState(arn, id, state string, at time.Time, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, "dest "+id+" "+state)
}

func (r *reports) has(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range r.all {
		if x == s {
			return true
		}
	}
	return false
}

func (r *reports) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.all...)
}

func (r *reports) await(t *testing.T, s string) {
	t.Helper()
	testutil.Eventually(t, s, func() bool { return r.has(s) })
}

const compARN = "arn:aws:ivs:us-east-1:123456789012:composition/abcdABCDef12"

func channelSpec(url string, lc layout.Config) Spec {
	return Spec{ARN: compARN, ID: "abcdABCDef12", StageARN: "arn:aws:ivs:us-east-1:123456789012:stage/stage1234567", StageID: "stage1234567",
		Layout: lc, StartedAt: time.Now(),
		Destinations: []Destination{{ID: "dest12345678", Channel: &ChannelTarget{ChannelARN: "arn:aws:ivs:us-east-1:123456789012:channel/ch", URL: url,
			Encoder: Encoder{Width: 1280, Height: 720, Framerate: 30, Bitrate: 2_500_000}}}}}
}

func TestCompositionToRTMP(t *testing.T) {
	bin := needFFmpeg(t)
	rtmp := rtmpserver.Start(t)
	testutil.CheckLeaks(t)
	r := testRouter(t)
	alice := sfutest.Publish(t, r, "alice", compotest.Video(t, compotest.Red, "H264", 640, 360), opus(t))
	defer alice.Close()
	bob := sfutest.Publish(t, r, "bob", compotest.Video(t, compotest.Green, "VP8", 640, 360), opus(t))
	defer bob.Close()

	feed := &stageFeed{view: view(r, "alice", "bob")}
	rep := &reports{}
	m := NewManager(Config{FFmpeg: bin, Watcher: feed, Reporter: rep, Logger: testLog(t)})
	spec := channelSpec(rtmp.URL("live", "show"), layout.DefaultGrid())
	started := time.Now()
	if err := m.Start(spec); err != nil {
		t.Fatal(err)
	}
	rep.await(t, "composition ACTIVE")
	rep.await(t, "dest dest12345678 ACTIVE")
	t.Logf("StartComposition → destination ACTIVE: %v", time.Since(started))
	time.Sleep(4 * time.Second)
	bob.Close()
	feed.set(view(r, "alice"))
	time.Sleep(4 * time.Second)
	if err := m.Stop(spec.ARN); err != nil {
		t.Fatal(err)
	}
	rep.await(t, "composition STOPPED")
	want := []string{"composition STARTING", "dest dest12345678 STARTING", "dest dest12345678 ACTIVE", "composition ACTIVE",
		"composition STOPPING", "dest dest12345678 STOPPING", "dest dest12345678 STOPPED", "composition STOPPED"}
	got := rep.list()
	if fmt.Sprint(sortedStates(got)) != fmt.Sprint(sortedStates(want)) {
		t.Errorf("states %v, want %v (in some order)", got, want)
	}
	if feed.watching() != 0 {
		t.Error("the stage is still watched after the composition stopped")
	}
	// One RTMP connection for the whole show, across the layout change.
	if n := len(rtmp.Publishes("live", "show")); n != 1 {
		t.Fatalf("%d publish connections, want 1", n)
	}
	recs := rtmp.Recordings("live", "show")
	if len(recs) != 1 {
		t.Fatalf("recordings %v", recs)
	}
	pr := testutil.FFprobe(t, recs[0])
	if v, w, h := pr.Stream("video"); v != "h264" || w != 1280 || h != 720 {
		t.Fatalf("video %s %dx%d", v, w, h)
	}
	if a, _, _ := pr.Stream("audio"); a != "aac" {
		t.Fatalf("audio %q", a)
	}
	t.Logf("RTMP recording: %.1f s", pr.Duration())
	two, _ := layout.Compute(layout.Size{Width: 1280, Height: 720}, layout.DefaultGrid(), []layout.Participant{
		{ID: "alice", Video: true, VideoSize: layout.Size{Width: 640, Height: 360}, Arrival: 1},
		{ID: "bob", Video: true, VideoSize: layout.Size{Width: 640, Height: 360}, Arrival: 2}})
	one, _ := layout.Compute(layout.Size{Width: 1280, Height: 720}, layout.DefaultGrid(), []layout.Participant{
		{ID: "alice", Video: true, VideoSize: layout.Size{Width: 640, Height: 360}, Arrival: 1}})
	if phase, ok := compotest.InOrder(compotest.Pictures(t, recs[0], 4, 1280, 720), compotest.TilesShow(two, map[string]compotest.RGB{"alice": compotest.Red, "bob": compotest.Green}), compotest.TilesShow(one, map[string]compotest.RGB{"alice": compotest.Red})); !ok {
		t.Fatalf("phase %d (0: alice and bob, 1: alice alone) never shows at the RTMP server", phase)
	}
	m.Close(t.Context())
}

func sortedStates(s []string) map[string]int {
	m := map[string]int{}
	for _, x := range s {
		m[x]++
	}
	return m
}

func TestCompositionStopsWithoutPublishers(t *testing.T) {
	bin := needFFmpeg(t)
	rtmp := rtmpserver.Start(t)
	testutil.CheckLeaks(t)
	r := testRouter(t)
	feed := &stageFeed{view: StageView{SessionID: "st-1", Source: r}}
	rep := &reports{}
	m := NewManager(Config{FFmpeg: bin, Watcher: feed, Reporter: rep, Logger: testLog(t), IdleTimeout: 2 * time.Second})
	if err := m.Start(channelSpec(rtmp.URL("live", "idle"), layout.DefaultGrid())); err != nil {
		t.Fatal(err)
	}
	rep.await(t, "composition STOPPED")
	if rep.has("composition FAILED") {
		t.Fatalf("states %v", rep.list())
	}
	// Publishing keeps it; the last publisher leaving starts the clock.
	alice := sfutest.Publish(t, r, "alice", compotest.Video(t, compotest.Red, "H264", 640, 360))
	defer alice.Close()
	rep2 := &reports{}
	m2 := NewManager(Config{FFmpeg: bin, Watcher: feed, Reporter: rep2, Logger: testLog(t), IdleTimeout: 2 * time.Second})
	feed.set(view(r, "alice"))
	if err := m2.Start(channelSpec(rtmp.URL("live", "idle2"), layout.DefaultGrid())); err != nil {
		t.Fatal(err)
	}
	rep2.await(t, "dest dest12345678 ACTIVE")
	time.Sleep(3 * time.Second) // longer than the idle timeout
	if rep2.has("composition STOPPING") {
		t.Fatal("the composition stopped while a participant published")
	}
	feed.set(StageView{SessionID: "st-1", Source: r})
	rep2.await(t, "composition STOPPED")
	m.Close(t.Context())
	m2.Close(t.Context())
}

func TestCompositionDestinationReconnectsThenFails(t *testing.T) {
	bin := needFFmpeg(t)
	rtmp := rtmpserver.Start(t)
	testutil.CheckLeaks(t)
	r := testRouter(t)
	alice := sfutest.Publish(t, r, "alice", compotest.Video(t, compotest.Red, "H264", 640, 360))
	defer alice.Close()
	feed := &stageFeed{view: view(r, "alice")}
	rep := &reports{}
	m := NewManager(Config{FFmpeg: bin, Watcher: feed, Reporter: rep, Logger: testLog(t), RetryWindow: 4 * time.Second})
	if err := m.Start(channelSpec(rtmp.URL("live", "flaky"), layout.DefaultGrid())); err != nil {
		t.Fatal(err)
	}
	rep.await(t, "dest dest12345678 ACTIVE")
	rtmp.Kill()
	rep.await(t, "dest dest12345678 RECONNECTING")
	rtmp.Restart()
	testutil.Eventually(t, "a second publish", func() bool { return len(rtmp.Publishes("live", "flaky")) == 2 })
	testutil.Eventually(t, "ACTIVE again", func() bool {
		l := rep.list()
		return l[len(l)-1] == "dest dest12345678 ACTIVE"
	})
	rtmp.Kill()
	rep.await(t, "dest dest12345678 FAILED")
	rep.await(t, "composition FAILED")
	m.Close(t.Context())
}

func TestCompositionsAreIsolated(t *testing.T) {
	bin := needFFmpeg(t)
	rtmp := rtmpserver.Start(t)
	testutil.CheckLeaks(t)
	r := testRouter(t)
	alice := sfutest.Publish(t, r, "alice", compotest.Video(t, compotest.Red, "H264", 640, 360), opus(t))
	defer alice.Close()
	feed := &stageFeed{view: view(r, "alice")}
	rep := &reports{}
	m := NewManager(Config{FFmpeg: bin, Watcher: feed, Reporter: rep, Logger: testLog(t)})
	one := channelSpec(rtmp.URL("live", "one"), layout.DefaultGrid())
	two := channelSpec(rtmp.URL("live", "two"), layout.DefaultPip())
	two.ARN, two.ID = compARN[:len(compARN)-1]+"X", "abcdABCDef1X"
	for _, s := range []Spec{one, two} {
		if err := m.Start(s); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, "both publishing", func() bool {
		return rtmp.Publishing("live", "one") && rtmp.Publishing("live", "two")
	})
	// Kill the first composition's encoder: it fails, the other goes on.
	m.mu.Lock()
	enc := m.comps[one.ARN].mixer().enc
	m.mu.Unlock()
	enc.cmd.Process.Kill()
	testutil.Eventually(t, "the first composition failed", func() bool { return !m.Running(one.ARN) })
	if !m.Running(two.ARN) || !rtmp.Publishing("live", "two") {
		t.Fatal("the second composition ended with the first")
	}
	n := len(rtmp.Publishes("live", "two"))
	time.Sleep(2 * time.Second)
	if len(rtmp.Publishes("live", "two")) != n || !rtmp.Publishing("live", "two") {
		t.Fatal("the second composition's RTMP connection was disturbed")
	}
	m.Close(t.Context())
}

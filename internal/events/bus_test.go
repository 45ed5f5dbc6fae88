package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/store"
	"github.com/rostrum-dev/rostrum/internal/store/sqlite"
	"github.com/rostrum-dev/rostrum/internal/testutil"
)

var fixedTime = time.Date(2025, 4, 23, 6, 36, 53, 0, time.UTC)

func openStore(t *testing.T) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rostrum.db")
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// fakeSink records what it delivers; fail decides which attempts fail.
type fakeSink struct {
	name  string
	batch int
	mu    sync.Mutex
	got   []Delivery // every attempt that succeeded, in order
	tries int
	fail  func(d Delivery) bool
	calls chan struct{}
}

func newFakeSink(name string, fail func(Delivery) bool) *fakeSink {
	return &fakeSink{name: name, batch: 1, fail: fail, calls: make(chan struct{}, 1000)}
}

func (f *fakeSink) Name() string   { return f.name }
func (f *fakeSink) BatchSize() int { return f.batch }
func (f *fakeSink) Deliver(ctx context.Context, batch []Delivery) []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	errs := make([]error, len(batch))
	for i, d := range batch {
		f.tries++
		if f.fail != nil && f.fail(d) {
			errs[i] = errors.New("refused")
			continue
		}
		f.got = append(f.got, d)
	}
	select {
	case f.calls <- struct{}{}:
	default:
	}
	return errs
}

func (f *fakeSink) delivered() []Delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Delivery(nil), f.got...)
}

func (f *fakeSink) attempts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tries
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newBus(t *testing.T, st store.Store, cfg Config) *Bus {
	t.Helper()
	cfg.Store = st
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	if cfg.Retry == (Retry{}) {
		cfg.Retry = Retry{Initial: time.Millisecond, Max: 4 * time.Millisecond}
	}
	b, err := NewBus(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func stageARN(n int) string { return fmt.Sprintf("arn:aws:ivs:us-east-1:123456789012:stage/s%d", n) }

// update is an IVS Stage Update event numbered n (in participant_id).
func update(stage, n int) *Event {
	return NewStageUpdate(stageARN(stage), fixedTime, StageUpdate{SessionID: "st-1", EventName: ParticipantPublished, ParticipantID: fmt.Sprint(n)})
}

func participantOf(t *testing.T, d Delivery) (stage, n string) {
	t.Helper()
	ev, err := Parse(d.Doc)
	if err != nil {
		t.Fatal(err)
	}
	var det StageUpdate
	if err := json.Unmarshal(ev.Detail, &det); err != nil {
		t.Fatal(err)
	}
	return ev.Resources[0], det.ParticipantID
}

func publish(t *testing.T, b *Bus, ev *Event) {
	t.Helper()
	if err := b.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
}

// Events of one stage arrive in order, whatever fails and is retried; every
// event arrives; other stages are not held back by one being retried.
func TestBusDeliversInOrderPerStageThroughFailures(t *testing.T) {
	st, _ := openStore(t)
	var mu sync.Mutex
	failed := map[string]int{}
	sink := newFakeSink("s", func(d Delivery) bool {
		mu.Lock()
		defer mu.Unlock()
		// Every event fails twice before it is taken.
		failed[d.ID]++
		return failed[d.ID] <= 2
	})
	b := newBus(t, st, Config{Sinks: []SinkConfig{{Sink: sink}}})
	const stages, per = 3, 8
	for i := range per {
		for s := range stages {
			publish(t, b, update(s, i))
		}
	}
	testutil.Eventually(t, "every event", func() bool { return len(sink.delivered()) == stages*per })
	next := map[string]int{}
	seen := map[string]bool{}
	for _, d := range sink.delivered() {
		if seen[d.ID] {
			t.Errorf("event %s delivered twice", d.ID)
		}
		seen[d.ID] = true
		stage, n := participantOf(t, d)
		if want := fmt.Sprint(next[stage]); n != want {
			t.Fatalf("stage %s: event %s arrived when %s was due", stage, n, want)
		}
		next[stage]++
		if d.Attempt != 3 {
			t.Errorf("event %s delivered on attempt %d, want 3", d.ID, d.Attempt)
		}
	}
	testutil.Eventually(t, "an empty outbox", func() bool { c, _ := st.CountEvents(context.Background()); return c["s"] == 0 })
	if s := b.Stats().Sinks[0]; s.Delivered != stages*per || s.Failures != 2*stages*per || s.Queued != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestBusStageBeingRetriedHoldsBackNoOtherStage(t *testing.T) {
	st, _ := openStore(t)
	sink := newFakeSink("s", func(d Delivery) bool { return strings.Contains(string(d.Doc), stageARN(0)) })
	b := newBus(t, st, Config{Sinks: []SinkConfig{{Sink: sink}}})
	for i := range 5 {
		publish(t, b, update(0, i))
		publish(t, b, update(1, i))
	}
	testutil.Eventually(t, "stage 1's events", func() bool { return len(sink.delivered()) == 5 })
	for _, d := range sink.delivered() {
		if stage, _ := participantOf(t, d); stage != stageARN(1) {
			t.Errorf("delivered an event of %s", stage)
		}
	}
	testutil.Eventually(t, "stage 0 retried", func() bool { return sink.attempts() > 8 && b.Stats().Sinks[0].Delivered == 5 })
	ready, _, err := st.PendingEvents(context.Background(), "s", time.Now().Add(time.Hour), 0)
	if err != nil || len(ready) != 1 || ready[0].Attempts == 0 {
		t.Fatalf("stage 0's head: %+v, %v", ready, err)
	}
}

// A sink that stays down holds back neither the other sinks nor the
// publisher.
func TestBusSinkDownBlocksNothingElse(t *testing.T) {
	st, _ := openStore(t)
	down := newFakeSink("down", func(Delivery) bool { return true })
	up := newFakeSink("up", nil)
	b := newBus(t, st, Config{Sinks: []SinkConfig{{Sink: down}, {Sink: up}}})
	for i := range 20 {
		publish(t, b, update(i%2, i))
	}
	testutil.Eventually(t, "the working sink's events", func() bool { return len(up.delivered()) == 20 })
	if n := len(down.delivered()); n != 0 {
		t.Errorf("the failing sink delivered %d", n)
	}
	testutil.Eventually(t, "the deliveries counted", func() bool { return b.Stats().Sinks[1].Queued == 0 })
	stats := b.Stats()
	if stats.Sinks[0].Queued != 20 || stats.Sinks[1].Queued != 0 || stats.Published[DetailTypeStageUpdate] != 20 {
		t.Errorf("stats %+v", stats)
	}
}

func TestBusQueueIsBoundedAndSaysWhatItDropped(t *testing.T) {
	st, _ := openStore(t)
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))
	down := newFakeSink("down", func(Delivery) bool { return true })
	up := newFakeSink("up", nil)
	b := newBus(t, st, Config{Sinks: []SinkConfig{{Sink: down}, {Sink: up}}, QueueMax: 3, Logger: log})
	var ids []string
	for i := range 5 {
		ev := update(0, i)
		ids = append(ids, ev.ID)
		publish(t, b, ev)
		// The working sink's queue never fills.
		testutil.Eventually(t, "the working sink's event", func() bool { return len(up.delivered()) == i+1 })
	}
	testutil.Eventually(t, "the deliveries counted", func() bool { return b.Stats().Sinks[1].Delivered == 5 })
	s := b.Stats().Sinks
	if s[0].DroppedQueueFull != 2 || s[0].Queued != 3 || s[1].DroppedQueueFull != 0 {
		t.Errorf("stats %+v", s)
	}
	logMu.Lock()
	text := logs.String()
	logMu.Unlock()
	for _, id := range ids[3:] {
		if !strings.Contains(text, "event dropped: the sink's queue is full") || !strings.Contains(text, "event_id="+id) {
			t.Errorf("the log does not name dropped event %s:\n%s", id, text)
		}
	}
	if n := b.Stats().Published[DetailTypeStageUpdate]; n != 5 {
		t.Errorf("published %d IVS Stage Update events, want 5", n)
	}
}

// Two sinks that show the same name (webhooks on one host) are told apart
// by their position, so that logs and metrics never merge them.
func TestBusTellsSinksWithTheSameDisplayApart(t *testing.T) {
	st, _ := openStore(t)
	a, b := &shownSink{newFakeSink("hook a", nil)}, &shownSink{newFakeSink("hook b", nil)}
	bus := newBus(t, st, Config{Sinks: []SinkConfig{{Sink: a}, {Sink: b}}})
	s := bus.Stats().Sinks
	if s[0].Sink != "webhook https://h" || s[1].Sink != "webhook https://h #2" {
		t.Errorf("sinks shown as %q and %q", s[0].Sink, s[1].Sink)
	}
}

type shownSink struct{ *fakeSink }

func (shownSink) String() string { return "webhook https://h" }

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestBusGivesUpAfterTheRetryWindow(t *testing.T) {
	st, _ := openStore(t)
	down := newFakeSink("down", func(Delivery) bool { return true })
	b := newBus(t, st, Config{Sinks: []SinkConfig{{Sink: down}}, Retry: Retry{Initial: time.Millisecond, Max: time.Millisecond, For: time.Nanosecond}})
	publish(t, b, update(0, 0))
	testutil.Eventually(t, "the event dropped", func() bool { return b.Stats().Sinks[0].DroppedExpired == 1 })
	if c, _ := st.CountEvents(context.Background()); c["down"] != 0 {
		t.Errorf("outbox %v", c)
	}
}

// An event accepted by the bus is delivered after a restart.
func TestBusDeliversAfterRestart(t *testing.T) {
	_, path := openStore(t)
	st1, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	down := newFakeSink("hook", func(Delivery) bool { return true })
	b1, err := NewBus(Config{Store: st1, Sinks: []SinkConfig{{Sink: down}}, Logger: quiet, Retry: Retry{Initial: time.Millisecond, Max: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 4 {
		ev := update(0, i)
		want = append(want, ev.ID)
		publish(t, b1, ev)
	}
	testutil.Eventually(t, "a failed attempt", func() bool { return down.attempts() > 0 })
	b1.Close()
	st1.Close()

	st2, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	up := newFakeSink("hook", nil)
	newBus(t, st2, Config{Sinks: []SinkConfig{{Sink: up}}})
	testutil.Eventually(t, "the events after the restart", func() bool { return len(up.delivered()) == 4 })
	for i, d := range up.delivered() {
		if d.ID != want[i] {
			t.Errorf("event %d is %s, want %s", i, d.ID, want[i])
		}
	}
}

func TestBusPreparedFollowsTheWrite(t *testing.T) {
	st, _ := openStore(t)
	sink := newFakeSink("s", nil)
	b := newBus(t, st, Config{Sinks: []SinkConfig{{Sink: sink}}, QueueMax: 1})
	p := b.Prepare(update(0, 0))
	if len(p.Entries()) != 1 {
		t.Fatalf("%d entries", len(p.Entries()))
	}
	p.Done(errors.New("the write failed"))
	// The failed write released its place in the queue.
	p = b.Prepare(update(0, 1))
	if len(p.Entries()) != 1 {
		t.Fatalf("%d entries after a failed write", len(p.Entries()))
	}
	if err := st.EnqueueEvents(context.Background(), p.Entries()...); err != nil {
		t.Fatal(err)
	}
	p.Done(nil)
	testutil.Eventually(t, "the event", func() bool { return len(sink.delivered()) == 1 })
	if _, n := participantOf(t, sink.delivered()[0]); n != "1" {
		t.Errorf("delivered event %s", n)
	}
	var none *Prepared
	if none.Entries() != nil {
		t.Error("a nil Prepared has entries")
	}
	none.Done(nil)
}

func TestBusRoutesByPattern(t *testing.T) {
	st, _ := openStore(t)
	ivsOnly := newFakeSink("ivs", nil)
	activity := newFakeSink("activity", nil)
	p, err := SinkPattern(`{"detail-type":["Rostrum Stage Activity"],"resources":["` + stageARN(1) + `"]}`)
	if err != nil {
		t.Fatal(err)
	}
	b := newBus(t, st, Config{Sinks: []SinkConfig{{Sink: ivsOnly}, {Sink: activity, Pattern: p}}})
	publish(t, b, update(1, 0))
	publish(t, b, NewSessionEvent(stageARN(0), "st-1", fixedTime, true))
	publish(t, b, NewSessionEvent(stageARN(1), "st-1", fixedTime, true))
	testutil.Eventually(t, "deliveries", func() bool { return len(ivsOnly.delivered()) == 1 && len(activity.delivered()) == 1 })
	if ev, _ := Parse(activity.delivered()[0].Doc); ev.DetailType != DetailTypeStageActivity || ev.Resources[0] != stageARN(1) {
		t.Errorf("activity sink got %s of %s", ev.DetailType, ev.Resources[0])
	}
	if ev, _ := Parse(ivsOnly.delivered()[0].Doc); ev.DetailType != DetailTypeStageUpdate {
		t.Errorf("IVS sink got %s", ev.DetailType)
	}
}

// Composition and recording events, which no stored fact carries, go
// through Publish, ordered with their stage's events.
func TestBusPublishesCompositionAndRecordingEvents(t *testing.T) {
	st, _ := openStore(t)
	sink := newFakeSink("s", nil)
	b := newBus(t, st, Config{Sinks: []SinkConfig{{Sink: sink}}})
	comp := "arn:aws:ivs:us-east-1:123456789012:composition/c1"
	for _, ev := range []*Event{
		NewCompositionStateChange(comp, fixedTime, CompositionStateChange{EventName: CompositionSessionStart, StageARN: stageARN(0)}),
		NewCompositionStateChange(comp, fixedTime, CompositionStateChange{EventName: CompositionDestinationStart, StageARN: stageARN(0), DestinationID: "d1"}),
		NewParticipantRecordingStateChange(stageARN(0), fixedTime, ParticipantRecordingStateChange{SessionID: "st-1", EventName: RecordingStart, ParticipantID: "p1"}),
		NewCompositionStateChange(comp, fixedTime, CompositionStateChange{EventName: CompositionDestinationEnd, StageARN: stageARN(0), DestinationID: "d1"}),
		NewCompositionStateChange(comp, fixedTime, CompositionStateChange{EventName: CompositionSessionEnd, StageARN: stageARN(0)}),
	} {
		publish(t, b, ev)
	}
	testutil.Eventually(t, "5 events", func() bool { return len(sink.delivered()) == 5 })
	var names []string
	for _, d := range sink.delivered() {
		ev, _ := Parse(d.Doc)
		var det struct {
			EventName string `json:"event_name"`
		}
		json.Unmarshal(ev.Detail, &det)
		names = append(names, det.EventName)
	}
	if got := strings.Join(names, ","); got != "Session Start,Destination Start,Recording Start,Destination End,Session End" {
		t.Errorf("order %s", got)
	}
	if err := b.Publish(context.Background(), NewSessionEvent(stageARN(0), "st", fixedTime, true)); err != nil {
		t.Errorf("an event no sink wants: %v", err)
	}
}

func TestBackoffGrowsWithJitterUpToTheCap(t *testing.T) {
	b := &Bus{cfg: Config{Retry: Retry{Initial: 100 * time.Millisecond, Max: time.Second}}}
	for retry, full := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 60: time.Second} {
		for range 50 {
			if d := b.backoff(retry); d < full/2 || d > full {
				t.Fatalf("retry %d: %v, want within [%v, %v]", retry, d, full/2, full)
			}
		}
	}
}

func TestNewBusRejectsDuplicateSinks(t *testing.T) {
	st, _ := openStore(t)
	if _, err := NewBus(Config{Store: st, Sinks: []SinkConfig{{Sink: newFakeSink("a", nil)}, {Sink: newFakeSink("a", nil)}}}); err == nil {
		t.Error("two sinks of one name accepted")
	}
	if _, err := NewBus(Config{}); err == nil {
		t.Error("a bus without store accepted")
	}
}

func TestRedactURLsKeepsSchemeAndHost(t *testing.T) {
	for in, want := range map[string]string{
		"webhook https://u:p@hooks.example:8443/T0/secret?token=x": "webhook https://hooks.example:8443",
		"eventbridge http://127.0.0.1:4566 us-east-1 bus":          "eventbridge http://127.0.0.1:4566 us-east-1 bus",
		"eventbridge aws us-east-1 bus":                            "eventbridge aws us-east-1 bus",
	} {
		if got := redactURLs(in); got != want {
			t.Errorf("redactURLs(%q) = %q, want %q", in, got, want)
		}
	}
}

package ivs

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/events"
	"github.com/rostrum-dev/rostrum/internal/store/sqlite"
)

// recordingSink keeps what the bus delivers.
type recordingSink struct {
	mu   sync.Mutex
	docs []*events.Event
}

func (s *recordingSink) Name() string   { return "test" }
func (s *recordingSink) BatchSize() int { return 1 }
func (s *recordingSink) Deliver(_ context.Context, batch []events.Delivery) []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range batch {
		ev, err := events.Parse(d.Doc)
		if err != nil {
			panic(err)
		}
		s.docs = append(s.docs, ev)
	}
	return make([]error, len(batch))
}

func (s *recordingSink) got() []*events.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*events.Event(nil), s.docs...)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newTestService(t *testing.T, withBus bool) (*Service, *recordingSink, *events.Bus) {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "rostrum.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sink := &recordingSink{}
	var bus *events.Bus
	if withBus {
		every, err := events.SinkPattern(`{"detail-type":[{"prefix":""}]}`)
		if err != nil {
			t.Fatal(err)
		}
		bus, err = events.NewBus(events.Config{Store: st, Sinks: []events.SinkConfig{{Sink: sink, Pattern: every}}, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		if err := bus.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(bus.Close)
	}
	svc, err := New(context.Background(), Config{Region: "us-east-1", AccountID: "123456789012", Store: st, Events: bus, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return svc, sink, bus
}

func detailOf(t *testing.T, ev *events.Event) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(ev.Detail, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The media plane's facts and the delivered events tell one story: each
// Record* call that succeeds publishes its event, one that fails publishes
// nothing.
func TestRecordedFactsPublishTheirEvents(t *testing.T) {
	ctx := context.Background()
	svc, sink, _ := newTestService(t, true)
	out, err := svc.CreateStage(ctx, &api.CreateStageRequest{Name: api.Ptr("s")})
	if err != nil {
		t.Fatal(err)
	}
	stage := out.Stage.Arn
	sid, err := svc.StartStageSession(ctx, stage)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Millisecond)
	if err := svc.RecordParticipant(ctx, stage, sid, &api.Participant{ParticipantId: api.Ptr("p1"), UserId: api.Ptr("alice"), FirstJoinTime: &at}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT"} {
		if err := svc.RecordParticipantEvent(ctx, stage, sid, &api.Event{Name: api.Ptr(name), ParticipantId: api.Ptr("p1")}); err != nil {
			t.Fatal(err)
		}
	}
	// A participant event in no session is refused, and makes no event.
	if err := svc.RecordParticipantEvent(ctx, stage, "st-nope", &api.Event{Name: api.Ptr("PUBLISH_STARTED"), ParticipantId: api.Ptr("p1")}); err == nil {
		t.Fatal("an event of a missing session was recorded")
	}
	if err := svc.EndStageSession(ctx, stage, sid); err != nil {
		t.Fatal(err)
	}
	comp := "arn:aws:ivs:us-east-1:123456789012:composition/c1"
	if err := svc.PublishCompositionEvent(ctx, comp, events.CompositionStateChange{EventName: events.CompositionSessionStart, StageARN: stage}); err != nil {
		t.Fatal(err)
	}
	if err := svc.PublishParticipantRecordingEvent(ctx, stage, events.ParticipantRecordingStateChange{SessionID: sid, EventName: events.RecordingStart, ParticipantID: "p1"}); err != nil {
		t.Fatal(err)
	}

	want := []struct{ detailType, name string }{
		{events.DetailTypeStageActivity, events.SessionStarted},
		{events.DetailTypeStageActivity, events.ParticipantJoined},
		{events.DetailTypeStageUpdate, events.ParticipantPublished},
		{events.DetailTypeStageUpdate, events.ParticipantUnpublished},
		{events.DetailTypeStageActivity, events.ParticipantLeft},
		{events.DetailTypeStageActivity, events.SessionEnded},
		{events.DetailTypeCompositionChange, events.CompositionSessionStart},
		{events.DetailTypeRecordingChange, events.RecordingStart},
	}
	eventually(t, "every event", func() bool { return len(sink.got()) >= len(want) })
	got := sink.got()
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	for i, w := range want {
		ev, d := got[i], detailOf(t, got[i])
		if ev.DetailType != w.detailType || d["event_name"] != w.name {
			t.Errorf("event %d: %s %v, want %s %s", i, ev.DetailType, d["event_name"], w.detailType, w.name)
		}
		if ev.Account != "123456789012" || ev.Region != "us-east-1" || ev.Source != "aws.ivs" {
			t.Errorf("event %d envelope %+v", i, ev)
		}
		if w.detailType == events.DetailTypeStageUpdate || w.name == events.ParticipantJoined {
			if d["user_id"] != "alice" || d["participant_id"] != "p1" || d["session_id"] != sid {
				t.Errorf("event %d detail %v", i, d)
			}
		}
	}
	if got[6].Resources[0] != comp || detailOf(t, got[6])["stage_arn"] != stage {
		t.Errorf("composition event %+v", got[6])
	}
	// ListParticipantEvents shows the same facts.
	list, err := svc.ListParticipantEvents(ctx, &api.ListParticipantEventsRequest{StageArn: stage, SessionId: sid, ParticipantId: "p1"})
	if err != nil || len(list.Events) != 4 {
		t.Fatalf("ListParticipantEvents: %+v, %v", list, err)
	}
}

func TestRecordingWithoutBus(t *testing.T) {
	ctx := context.Background()
	svc, _, _ := newTestService(t, false)
	out, err := svc.CreateStage(ctx, &api.CreateStageRequest{})
	if err != nil {
		t.Fatal(err)
	}
	sid, err := svc.StartStageSession(ctx, out.Stage.Arn)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.RecordParticipantEvent(ctx, out.Stage.Arn, sid, &api.Event{Name: api.Ptr("JOINED"), ParticipantId: api.Ptr("p")}); err != nil {
		t.Fatal(err)
	}
	if err := svc.EndStageSession(ctx, out.Stage.Arn, sid); err != nil {
		t.Fatal(err)
	}
	if err := svc.PublishCompositionEvent(ctx, "arn:aws:ivs:us-east-1:123456789012:composition/c", events.CompositionStateChange{}); err != nil {
		t.Fatal(err)
	}
}

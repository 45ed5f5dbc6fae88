// Package eventstest has what the tests of the bus's neighbours (sinks,
// the stream) share: a running bus on a real SQLite store and events to
// publish on it.
package eventstest

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/events"
	"github.com/rostrum-dev/rostrum/internal/store/sqlite"
)

// FixedTime is the time of the events Update makes.
var FixedTime = time.Date(2025, 4, 23, 6, 36, 53, 0, time.UTC)

// NewBus starts a bus on a new SQLite store in a temporary directory, with
// fast retries unless cfg says otherwise; both close when the test ends.
func NewBus(t testing.TB, cfg events.Config) *events.Bus {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "rostrum.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg.Store = st
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Retry == (events.Retry{}) {
		cfg.Retry = events.Retry{Initial: time.Millisecond, Max: 4 * time.Millisecond}
	}
	b, err := events.NewBus(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// StageARN is the ARN of test stage n.
func StageARN(n int) string { return fmt.Sprintf("arn:aws:ivs:us-east-1:123456789012:stage/s%d", n) }

// Update is an IVS Stage Update event of a stage, numbered n (in
// participant_id).
func Update(stage, n int) *events.Event {
	return events.NewStageUpdate(StageARN(stage), FixedTime, events.StageUpdate{SessionID: "st-1", EventName: events.ParticipantPublished, ParticipantID: fmt.Sprint(n)})
}

// Publish publishes an event and fails the test if the bus refuses it.
func Publish(t testing.TB, b *events.Bus, ev *events.Event) {
	t.Helper()
	if err := b.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
}

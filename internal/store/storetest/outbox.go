package storetest

// The event outbox: entries written with the facts, pending in order per
// partition, deferred, deleted.

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/store"
)

func outboxEntry(sink, partition string, n int, at time.Time) *store.OutboxEntry {
	return &store.OutboxEntry{
		Sink: sink, Partition: partition, EventID: fmt.Sprintf("ev-%s-%d", partition, n),
		Doc: []byte(fmt.Sprintf(`{"n":%d}`, n)), NextAttempt: at, CreatedAt: at,
	}
}

func checkEntries(t *testing.T, what string, got []*store.OutboxEntry, want ...*store.OutboxEntry) {
	t.Helper()
	if len(got) != len(want) {
		var ids []string
		for _, g := range got {
			ids = append(ids, g.EventID)
		}
		t.Fatalf("%s: %d entries %q, want %d", what, len(got), ids, len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Seq != w.Seq || g.Sink != w.Sink || g.Partition != w.Partition || g.EventID != w.EventID ||
			!bytes.Equal(g.Doc, w.Doc) || g.Attempts != w.Attempts || g.LastError != w.LastError {
			t.Errorf("%s: entry %d = {%d %s %s %s %s %d %q}, want {%d %s %s %s %s %d %q}", what, i,
				g.Seq, g.Sink, g.Partition, g.EventID, g.Doc, g.Attempts, g.LastError,
				w.Seq, w.Sink, w.Partition, w.EventID, w.Doc, w.Attempts, w.LastError)
		}
		checkTime(t, what+" NextAttempt", g.NextAttempt, w.NextAttempt)
		checkTime(t, what+" CreatedAt", g.CreatedAt, w.CreatedAt)
	}
}

func pending(t *testing.T, s store.Store, sink string, now time.Time, limit int) ([]*store.OutboxEntry, time.Time) {
	t.Helper()
	ready, next, err := s.PendingEvents(ctx, sink, now, limit)
	if err != nil {
		t.Fatalf("PendingEvents(%s): %v", sink, err)
	}
	return ready, next
}

func counts(t *testing.T, s store.Store) map[string]int {
	t.Helper()
	c, err := s.CountEvents(ctx)
	if err != nil {
		t.Fatalf("CountEvents: %v", err)
	}
	return c
}

func testOutbox(t *testing.T, s store.Store) {
	if got, next := pending(t, s, "w1", ts(0), 0); len(got) != 0 || !next.IsZero() {
		t.Fatalf("empty outbox: %d entries, next %v", len(got), next)
	}
	if c := counts(t, s); len(c) != 0 {
		t.Fatalf("CountEvents of an empty outbox: %v", c)
	}
	a1, b1, a2 := outboxEntry("w1", "a", 1, ts(0)), outboxEntry("w1", "b", 1, ts(0)), outboxEntry("w1", "a", 2, ts(0))
	other := outboxEntry("w2", "a", 1, ts(0))
	if err := s.EnqueueEvents(ctx, a1, b1, a2, other); err != nil {
		t.Fatal(err)
	}
	if a1.Seq <= 0 || b1.Seq <= a1.Seq || a2.Seq <= b1.Seq || other.Seq <= a2.Seq {
		t.Fatalf("Seqs not increasing: %d %d %d %d", a1.Seq, b1.Seq, a2.Seq, other.Seq)
	}
	if err := s.EnqueueEvents(ctx); err != nil {
		t.Fatalf("EnqueueEvents of nothing: %v", err)
	}
	if c := counts(t, s); c["w1"] != 3 || c["w2"] != 1 || len(c) != 2 {
		t.Fatalf("CountEvents = %v", c)
	}

	// One entry per partition, the oldest, in Seq order; per sink.
	got, next := pending(t, s, "w1", ts(0), 0)
	checkEntries(t, "PendingEvents(w1)", got, a1, b1)
	if !next.IsZero() {
		t.Errorf("next = %v with nothing deferred", next)
	}
	got, _ = pending(t, s, "w1", ts(0), 1)
	checkEntries(t, "PendingEvents(w1, limit 1)", got, a1)
	got, _ = pending(t, s, "w2", ts(0), 0)
	checkEntries(t, "PendingEvents(w2)", got, other)
	got, _ = pending(t, s, "nobody", ts(0), 0)
	checkEntries(t, "PendingEvents(nobody)", got)
	// Not yet due: an entry whose NextAttempt is after now.
	got, next = pending(t, s, "w1", ts(0).Add(-time.Second), 0)
	checkEntries(t, "PendingEvents before the entries are due", got)
	checkTime(t, "next", next, ts(0))

	// A failed delivery holds its partition back until it is due again.
	if err := s.DeferEvent(ctx, "w1", a1.Seq, ts(30), "HTTP 503"); err != nil {
		t.Fatal(err)
	}
	a1.Attempts, a1.NextAttempt, a1.LastError = 1, ts(30), "HTTP 503"
	got, next = pending(t, s, "w1", ts(1), 0)
	checkEntries(t, "PendingEvents with a deferred", got, b1)
	checkTime(t, "next", next, ts(30))
	if err := s.DeferEvent(ctx, "w1", a1.Seq, ts(40), "timeout"); err != nil {
		t.Fatal(err)
	}
	a1.Attempts, a1.NextAttempt, a1.LastError = 2, ts(40), "timeout"
	got, _ = pending(t, s, "w1", ts(40), 0)
	checkEntries(t, "PendingEvents once due", got, a1, b1)
	wantErr(t, "DeferEvent of another sink's entry", s.DeferEvent(ctx, "w2", a1.Seq, ts(1), ""), store.ErrNotFound)
	wantErr(t, "DeferEvent of a missing entry", s.DeferEvent(ctx, "w1", 1<<40, ts(1), ""), store.ErrNotFound)

	// Deleting the head offers the next entry of its partition.
	if err := s.DeleteEvents(ctx, "w1", a1.Seq, b1.Seq, 1<<40); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteEvents(ctx, "w2", a2.Seq); err != nil { // another sink's: ignored
		t.Fatal(err)
	}
	if err := s.DeleteEvents(ctx, "w1"); err != nil {
		t.Fatalf("DeleteEvents of nothing: %v", err)
	}
	got, _ = pending(t, s, "w1", ts(0), 0)
	checkEntries(t, "PendingEvents after deletes", got, a2)
	if c := counts(t, s); c["w1"] != 1 || c["w2"] != 1 {
		t.Fatalf("CountEvents after deletes = %v", c)
	}
	if err := s.DeleteEvents(ctx, "w1", a2.Seq); err != nil {
		t.Fatal(err)
	}
	if c := counts(t, s); c["w1"] != 0 || c["w2"] != 1 {
		t.Fatalf("CountEvents after the last delete = %v", c)
	}
}

func testOutboxOrderPerPartition(t *testing.T, s store.Store) {
	var want []*store.OutboxEntry
	for i := range 20 {
		e := outboxEntry("w", fmt.Sprintf("p%d", i%3), i, ts(0))
		want = append(want, e)
	}
	if err := s.EnqueueEvents(ctx, want...); err != nil {
		t.Fatal(err)
	}
	// Draining by repeatedly delivering what is pending yields every entry
	// once, each partition in its order.
	var got []*store.OutboxEntry
	for round := 0; len(got) < len(want); round++ {
		if round > len(want) {
			t.Fatalf("no progress after %d rounds", round)
		}
		ready, _ := pending(t, s, "w", ts(0), 2)
		var seqs []int64
		for _, e := range ready {
			got = append(got, e)
			seqs = append(seqs, e.Seq)
		}
		if err := s.DeleteEvents(ctx, "w", seqs...); err != nil {
			t.Fatal(err)
		}
	}
	last := map[string]int64{}
	seen := map[int64]bool{}
	for _, e := range got {
		if seen[e.Seq] {
			t.Fatalf("entry %d offered twice", e.Seq)
		}
		seen[e.Seq] = true
		if e.Seq <= last[e.Partition] {
			t.Fatalf("partition %s: entry %d after %d", e.Partition, e.Seq, last[e.Partition])
		}
		last[e.Partition] = e.Seq
	}
}

func testOutboxWithFacts(t *testing.T, s store.Store) {
	stage := mustCreate(t, s, newRes(owner1, kStage, "a", ""))
	missing := arn(owner1, kStage, "nope")
	n := 0
	entry := func() *store.OutboxEntry { n++; return outboxEntry("w", stage.ARN, n, ts(0)) }
	total := func() int { t.Helper(); return counts(t, s)["w"] }

	// Failures write no entries.
	wantErr(t, "StartStageSession on a missing stage",
		s.StartStageSession(ctx, &store.StageSession{StageARN: missing, SessionID: "st-1", StartTime: ts(0)}, entry()), store.ErrNotFound)
	wantErr(t, "AddParticipantEvent in a missing session",
		s.AddParticipantEvent(ctx, &store.ParticipantEvent{StageARN: stage.ARN, SessionID: "st-1", ParticipantID: "p", EventTime: ts(0)}, entry()), store.ErrNotFound)
	wantErr(t, "EndStageSession of a missing session", s.EndStageSession(ctx, stage.ARN, "st-1", ts(1), entry()), store.ErrNotFound)
	if got := total(); got != 0 {
		t.Fatalf("%d outbox entries written by failed writes", got)
	}
	startSession(t, s, stage.ARN, "st-0")
	wantErr(t, "StartStageSession of an existing session",
		s.StartStageSession(ctx, &store.StageSession{StageARN: stage.ARN, SessionID: "st-0", StartTime: ts(0)}, entry()), store.ErrAlreadyExists)
	if got := total(); got != 0 {
		t.Fatalf("%d outbox entries written by a failed StartStageSession", got)
	}

	// Successes write them, in the order of the writes.
	var want []*store.OutboxEntry
	e1, e2 := entry(), entry()
	if err := s.StartStageSession(ctx, &store.StageSession{StageARN: stage.ARN, SessionID: "st-1", StartTime: ts(0)}, e1, e2); err != nil {
		t.Fatal(err)
	}
	want = append(want, e1, e2)
	e3 := entry()
	if err := s.AddParticipantEvent(ctx, &store.ParticipantEvent{StageARN: stage.ARN, SessionID: "st-1", ParticipantID: "p", EventTime: ts(1)}, e3); err != nil {
		t.Fatal(err)
	}
	want = append(want, e3)
	if err := s.AddParticipantEvent(ctx, &store.ParticipantEvent{StageARN: stage.ARN, SessionID: "st-1", ParticipantID: "p", EventTime: ts(2)}); err != nil {
		t.Fatalf("AddParticipantEvent without outbox entries: %v", err)
	}
	e4 := entry()
	if err := s.EndStageSession(ctx, stage.ARN, "st-1", ts(3), e4); err != nil {
		t.Fatal(err)
	}
	want = append(want, e4)
	if got := total(); got != len(want) {
		t.Fatalf("%d outbox entries, want %d", got, len(want))
	}
	var got []*store.OutboxEntry
	for range want {
		ready, _ := pending(t, s, "w", ts(0), 0)
		if len(ready) != 1 {
			t.Fatalf("%d pending entries of one partition, want 1", len(ready))
		}
		got = append(got, ready[0])
		if err := s.DeleteEvents(ctx, "w", ready[0].Seq); err != nil {
			t.Fatal(err)
		}
	}
	for i := range want {
		if got[i].EventID != want[i].EventID || !bytes.Equal(got[i].Doc, want[i].Doc) {
			t.Errorf("entry %d = %s %s, want %s %s", i, got[i].EventID, got[i].Doc, want[i].EventID, want[i].Doc)
		}
	}
	// The session and events were written too.
	if ss, err := s.GetStageSession(ctx, stage.ARN, "st-1"); err != nil || ss.EndTime == nil {
		t.Fatalf("session: %+v, %v", ss, err)
	}
	if evs, err := s.ListParticipantEvents(ctx, stage.ARN, "st-1", "p", store.Page{}); err != nil || len(evs) != 2 {
		t.Fatalf("participant events: %d, %v", len(evs), err)
	}
}

func testOutboxOutlivesStage(t *testing.T, s store.Store) {
	stage := mustCreate(t, s, newRes(owner1, kStage, "a", ""))
	if err := s.StartStageSession(ctx, &store.StageSession{StageARN: stage.ARN, SessionID: "st-1", StartTime: ts(0)},
		outboxEntry("w", stage.ARN, 1, ts(0))); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteResource(ctx, stage.ARN, noCheck); err != nil {
		t.Fatal(err)
	}
	ready, _ := pending(t, s, "w", ts(0), 0)
	if len(ready) != 1 || ready[0].Partition != stage.ARN {
		t.Fatalf("outbox after deleting the stage: %d entries", len(ready))
	}
}

package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/config"
	"github.com/rostrum-dev/rostrum/internal/store"
	"github.com/rostrum-dev/rostrum/internal/store/sqlite"
)

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "rostrum.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// The sweep goes on batch after batch until nothing expired is left.
func TestSweepExpiredInBatches(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	const stage = "arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234"
	if err := st.CreateResource(ctx, &store.Resource{ARN: stage, Kind: "stage", Owner: "us-east-1:123456789012", Doc: []byte(`{}`)}, 0); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		sid := fmt.Sprintf("st-%013d", i)
		if err := st.StartStageSession(ctx, &store.StageSession{StageARN: stage, SessionID: sid, StartTime: start}); err != nil {
			t.Fatal(err)
		}
		if err := st.PutParticipant(ctx, &store.Participant{StageARN: stage, SessionID: sid, ParticipantID: "p", State: "DISCONNECTED", FirstJoinTime: start, Doc: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
		for range 4 {
			if err := st.AddParticipantEvent(ctx, &store.ParticipantEvent{StageARN: stage, SessionID: sid, ParticipantID: "p", EventTime: start, Doc: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
		}
		// Two ended at 1h, one at 3h.
		if err := st.EndStageSession(ctx, stage, sid, start.Add(time.Duration(1+i/2*2)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := sweepExpired(ctx, st, start.Add(2*time.Hour), 4)
	if err != nil || n != 2*(1+1+4) {
		t.Fatalf("sweepExpired: %d rows, %v; want 12", n, err)
	}
	left, err := st.ListStageSessions(ctx, stage, store.Page{})
	if err != nil || len(left) != 1 || left[0].SessionID != "st-0000000000002" {
		t.Fatalf("sessions left: %+v, %v", left, err)
	}
	// A cancelled sweep stops.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := sweepExpired(cctx, st, start.Add(4*time.Hour), 4); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled sweep: %v", err)
	}
}

// A generated node id is kept: the next start is the same node.
func TestNodeIDIsKept(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	cfg := &config.Config{}
	a, err := resolveNodeID(ctx, cfg, st)
	if err != nil || a == "" {
		t.Fatalf("first node id: %q, %v", a, err)
	}
	b, err := resolveNodeID(ctx, cfg, st)
	if err != nil || b != a {
		t.Fatalf("second node id: %q, %v; want %q", b, err, a)
	}
	cfg.Node.ID = "edge-1"
	if c, err := resolveNodeID(ctx, cfg, st); err != nil || c != "edge-1" {
		t.Fatalf("configured node id: %q, %v", c, err)
	}
}

// One data directory, one server: a second one on it is refused with a
// message that says what to do, and can start once the first has stopped.
func TestDataDirIsOneServers(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse([]string{"--listen", "127.0.0.1:0", "--data-dir", dir, "--rtc-udp-port", "0", "--rtc-tcp-port", "0",
		"--rtc-listen-ip", "127.0.0.1"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	first, err := Start(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Start(ctx, cfg, log)
	if err == nil {
		second.Shutdown(ctx)
		first.Shutdown(ctx)
		t.Fatal("a second server started on the same data dir")
	}
	if !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), fmt.Sprint(os.Getpid())) || !strings.Contains(err.Error(), "--data-dir") {
		t.Errorf("refusal: %v", err)
	}
	if err := first.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	again, err := Start(ctx, cfg, log)
	if err != nil {
		t.Fatalf("start after the first stopped: %v", err)
	}
	if err := again.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

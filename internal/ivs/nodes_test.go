package ivs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/events"
	"github.com/rostrum-dev/rostrum/internal/store"
)

// A node that stopped with people on a stage: closing its sessions stops
// what each connected participant had open, makes it leave and ends the
// session, as of the node's last heartbeat, with the events a live stage
// would have published.
func TestCloseNodeSessionsAsTheStageWouldHave(t *testing.T) {
	ctx := context.Background()
	svc, sink, _ := newTestService(t, true)
	svc.cfg.NodeID = "n1"
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
	join := func(pid, user, state string) {
		t.Helper()
		if err := svc.RecordParticipant(ctx, stage, sid, &api.Participant{ParticipantId: api.Ptr(pid), UserId: api.Ptr(user),
			State: api.Ptr(state), FirstJoinTime: &at, Published: api.Ptr(false)}); err != nil {
			t.Fatal(err)
		}
	}
	ev := func(pid, name, remote string) {
		t.Helper()
		e := &api.Event{Name: api.Ptr(name), ParticipantId: api.Ptr(pid)}
		if remote != "" {
			e.RemoteParticipantId = api.Ptr(remote)
		}
		if err := svc.RecordParticipantEvent(ctx, stage, sid, e); err != nil {
			t.Fatal(err)
		}
	}
	join("alice", "u-alice", "CONNECTED")
	join("bob", "u-bob", "CONNECTED")
	join("carol", "u-carol", "DISCONNECTED")
	join("dave", "u-dave", "CONNECTED")
	ev("alice", "JOINED", "")
	ev("alice", "PUBLISH_STARTED", "")
	ev("bob", "JOINED", "")
	ev("carol", "JOINED", "")
	ev("carol", "PUBLISH_STARTED", "")
	ev("bob", "SUBSCRIBE_STARTED", "alice")
	ev("bob", "SUBSCRIBE_STARTED", "carol")
	ev("carol", "PUBLISH_STOPPED", "")
	ev("bob", "SUBSCRIBE_STOPPED", "carol")
	ev("carol", "LEFT", "")
	// dave published, left and came back: nothing of his is open.
	ev("dave", "JOINED", "")
	ev("dave", "PUBLISH_STARTED", "")
	ev("dave", "LEFT", "")
	ev("dave", "JOINED", "")
	const before = 1 + 14 // the session's start and the events above
	eventually(t, "the live events", func() bool { return len(sink.got()) >= before })

	// The node's last heartbeat is its last sign of life.
	beat := time.Now().UTC().Add(time.Hour).Truncate(time.Millisecond)
	if err := svc.store.Heartbeat(ctx, "n1", beat); err != nil {
		t.Fatal(err)
	}
	// A peer that saw an old heartbeat does not close a live node.
	if _, err := svc.CloseNodeSessions(ctx, "n1", beat); !errors.Is(err, store.ErrNodeAlive) {
		t.Fatalf("closing a live node: %v, want ErrNodeAlive", err)
	}
	n, err := svc.CloseNodeSessions(ctx, "n1", time.Time{})
	if err != nil || n != 1 {
		t.Fatalf("CloseNodeSessions: %d, %v", n, err)
	}

	want := []string{
		events.ParticipantUnsubscribed + " bob alice",
		events.ParticipantUnpublished + " alice ",
		events.ParticipantLeft + " alice ",
		events.ParticipantLeft + " bob ",
		events.ParticipantLeft + " dave ",
		events.SessionEnded + "  ",
	}
	eventually(t, "the closing events", func() bool { return len(sink.got()) >= before+len(want) })
	got := sink.got()
	if len(got) != before+len(want) {
		t.Fatalf("%d events, want %d", len(got), before+len(want))
	}
	for i, w := range want {
		e := got[before+i]
		d := detailOf(t, e)
		line := fmt.Sprintf("%v %v %v", d["event_name"], str(d["participant_id"]), str(d["remote_participant_id"]))
		if line != w {
			t.Errorf("closing event %d: %q, want %q", i, line, w)
		}
		if e.Time != events.FormatTime(beat) || d["session_id"] != sid {
			t.Errorf("closing event %d at %s in %v, want %s in %s", i, e.Time, d["session_id"], events.FormatTime(beat), sid)
		}
		if pid := str(d["participant_id"]); pid != "" && d["user_id"] != "u-"+pid {
			t.Errorf("closing event %d: user_id %v", i, d["user_id"])
		}
	}

	// The API tells the same story.
	g, err := svc.GetStageSession(ctx, &api.GetStageSessionRequest{StageArn: stage, SessionId: sid})
	if err != nil || g.StageSession.EndTime == nil || !g.StageSession.EndTime.Equal(beat) {
		t.Fatalf("GetStageSession: %+v, %v; want end %v", g, err, beat)
	}
	st, err := svc.GetStage(ctx, &api.GetStageRequest{Arn: stage})
	if err != nil || st.Stage.ActiveSessionId != nil {
		t.Fatalf("GetStage: active session %v, %v", api.Val(st.Stage.ActiveSessionId), err)
	}
	connected, err := svc.ListParticipants(ctx, &api.ListParticipantsRequest{StageArn: stage, SessionId: sid, FilterByState: api.Ptr("CONNECTED")})
	if err != nil || len(connected.Participants) != 0 {
		t.Fatalf("CONNECTED participants: %+v, %v", connected, err)
	}
	p, err := svc.GetParticipant(ctx, &api.GetParticipantRequest{StageArn: stage, SessionId: sid, ParticipantId: "bob"})
	if err != nil || api.Val(p.Participant.State) != "DISCONNECTED" || api.Val(p.Participant.UserId) != "u-bob" {
		t.Fatalf("bob: %+v, %v", p, err)
	}
	list, err := svc.ListParticipantEvents(ctx, &api.ListParticipantEventsRequest{StageArn: stage, SessionId: sid, ParticipantId: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range list.Events {
		names = append(names, api.Val(e.Name)+":"+api.Val(e.RemoteParticipantId))
	}
	if got := strings.Join(names, ","); got != "JOINED:,SUBSCRIBE_STARTED:alice,SUBSCRIBE_STARTED:carol,SUBSCRIBE_STOPPED:carol,SUBSCRIBE_STOPPED:alice,LEFT:" {
		t.Errorf("bob's events: %s", got)
	}
	if last := list.Events[len(list.Events)-1]; !last.EventTime.Equal(beat) {
		t.Errorf("LEFT at %v, want %v", last.EventTime, beat)
	}
	// Nothing is left to close, and a new session starts on the stage.
	if n, err := svc.CloseNodeSessions(ctx, "n1", time.Time{}); err != nil || n != 0 {
		t.Errorf("closing again: %d, %v", n, err)
	}
	if _, err := svc.StartStageSession(ctx, stage); err != nil {
		t.Fatal(err)
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

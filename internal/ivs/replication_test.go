package ivs

import (
	"context"
	"strings"
	"testing"
	"time"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/events"
)

// A node that stopped while a participant replicated: closing its sessions
// ends the replication as the media plane would have — REPLICATION_STOPPED
// on the source, the record STOPPED, the source and the replica STOPPED —
// so that ListParticipantReplicas never shows a replication nobody runs.
func TestCloseNodeSessionsEndsReplications(t *testing.T) {
	ctx := context.Background()
	svc, sink, _ := newTestService(t, true)
	svc.cfg.NodeID = "n1"
	stages := make([]string, 2)
	for i := range stages {
		out, err := svc.CreateStage(ctx, &api.CreateStageRequest{})
		if err != nil {
			t.Fatal(err)
		}
		stages[i] = out.Stage.Arn
	}
	src, dst := stages[0], stages[1]
	sidA, err := svc.StartStageSession(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	sidB, err := svc.StartStageSession(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Millisecond)
	alice := ParticipantRecord{ID: "alice", UserID: "u-alice", Connected: true, FirstJoin: at, Published: true}
	source := alice
	source.Replication = &ReplicationView{Type: api.ReplicationTypeSource, Active: true}
	replica := alice
	replica.Replication = &ReplicationView{Type: api.ReplicationTypeReplica, Active: true, SourceStageARN: src, SourceSessionID: sidA}
	for _, x := range []struct {
		stage, sid string
		p          ParticipantRecord
		events     []ParticipantEvent
	}{
		{src, sidA, source, []ParticipantEvent{{Name: "JOINED"}, {Name: "PUBLISH_STARTED"},
			{Name: "REPLICATION_STARTED", DestinationStageARN: dst, DestinationSessionID: sidB}}},
		{dst, sidB, replica, []ParticipantEvent{{Name: "JOINED", Replica: true}, {Name: "PUBLISH_STARTED", Replica: true}}},
	} {
		if err := svc.RecordParticipantState(ctx, x.stage, x.sid, x.p); err != nil {
			t.Fatal(err)
		}
		for _, e := range x.events {
			e.ParticipantID, e.UserID = "alice", "u-alice"
			if err := svc.RecordEvent(ctx, x.stage, x.sid, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	// bob replicates too, but had stopped publishing and left when the node
	// stopped: his replica waited for him, within its reconnect window.
	bob := ParticipantRecord{ID: "bob", UserID: "u-bob", FirstJoin: at, Published: true,
		Replication: &ReplicationView{Type: api.ReplicationTypeSource, Active: true}}
	if err := svc.RecordParticipantState(ctx, src, sidA, bob); err != nil {
		t.Fatal(err)
	}
	for _, e := range []ParticipantEvent{{Name: "JOINED"}, {Name: "PUBLISH_STARTED"},
		{Name: "REPLICATION_STARTED", DestinationStageARN: dst, DestinationSessionID: sidB}, {Name: "PUBLISH_STOPPED"}, {Name: "LEFT"}} {
		e.ParticipantID, e.UserID = "bob", "u-bob"
		if err := svc.RecordEvent(ctx, src, sidA, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, pid := range []string{"alice", "bob"} {
		if err := svc.RecordReplica(ctx, ReplicaRecord{SourceStageARN: src, SourceSessionID: sidA, DestinationStageARN: dst,
			DestinationSessionID: sidB, ParticipantID: pid, Active: true}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := svc.CloseNodeSessions(ctx, "n1", time.Time{}); err != nil || n != 2 {
		t.Fatalf("CloseNodeSessions: %d, %v", n, err)
	}

	list, err := svc.ListParticipantReplicas(ctx, &api.ListParticipantReplicasRequest{SourceStageArn: src, ParticipantId: "alice"})
	if err != nil || len(list.Replicas) != 1 {
		t.Fatalf("ListParticipantReplicas: %+v, %v", list, err)
	}
	want := api.ParticipantReplica{SourceStageArn: src, SourceSessionId: sidA, DestinationStageArn: dst, DestinationSessionId: sidB,
		ParticipantId: "alice", ReplicationState: api.ReplicationStateStopped}
	if list.Replicas[0] != want {
		t.Errorf("the replica after the node stopped: %+v, want %+v", list.Replicas[0], want)
	}
	evs, err := svc.ListParticipantEvents(ctx, &api.ListParticipantEventsRequest{StageArn: src, SessionId: sidA, ParticipantId: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range evs.Events {
		names = append(names, api.Val(e.Name))
	}
	stopped := evs.Events[len(evs.Events)-2]
	if got := strings.Join(names, ","); got != "JOINED,PUBLISH_STARTED,REPLICATION_STARTED,PUBLISH_STOPPED,REPLICATION_STOPPED,LEFT" ||
		api.Val(stopped.DestinationStageArn) != dst || api.Val(stopped.DestinationSessionId) != sidB {
		t.Errorf("alice's events in the source: %s; REPLICATION_STOPPED %+v", got, stopped)
	}
	for _, x := range []struct{ stage, sid, typ string }{{src, sidA, api.ReplicationTypeSource}, {dst, sidB, api.ReplicationTypeReplica}} {
		p, err := svc.GetParticipant(ctx, &api.GetParticipantRequest{StageArn: x.stage, SessionId: x.sid, ParticipantId: "alice"})
		if err != nil || api.Val(p.Participant.ReplicationType) != x.typ || api.Val(p.Participant.ReplicationState) != api.ReplicationStateStopped ||
			api.Val(p.Participant.State) != api.ParticipantStateDisconnected {
			t.Errorf("alice in %s: %+v, %v", x.stage, p, err)
		}
	}
	// bob's replication ended too, at the session's end.
	list, err = svc.ListParticipantReplicas(ctx, &api.ListParticipantReplicasRequest{SourceStageArn: src, ParticipantId: "bob"})
	if err != nil || len(list.Replicas) != 1 || list.Replicas[0].ReplicationState != api.ReplicationStateStopped {
		t.Errorf("bob's replicas: %+v, %v", list, err)
	}
	evs, err = svc.ListParticipantEvents(ctx, &api.ListParticipantEventsRequest{StageArn: src, SessionId: sidA, ParticipantId: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if last := evs.Events[len(evs.Events)-1]; api.Val(last.Name) != api.EventNameReplicationStopped || api.Val(last.DestinationStageArn) != dst {
		t.Errorf("bob's last event: %+v", last)
	}
	if p, err := svc.GetParticipant(ctx, &api.GetParticipantRequest{StageArn: src, SessionId: sidA, ParticipantId: "bob"}); err != nil ||
		api.Val(p.Participant.ReplicationState) != api.ReplicationStateStopped {
		t.Errorf("bob: %+v, %v", p, err)
	}

	// The Stage Update event of the end is delivered, naming the
	// destination.
	eventually(t, "Participant Replication Ended", func() bool {
		for _, e := range sink.got() {
			d := detailOf(t, e)
			if d["event_name"] == events.ParticipantReplicationEnded && d["destination_stage_arn"] == dst &&
				d["destination_session_id"] == sidB && d["session_id"] == sidA && e.Resources[0] == src {
				return true
			}
		}
		return false
	})
}

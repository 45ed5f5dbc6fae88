package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"

	"github.com/rostrum-dev/rostrum/internal/config"
	"github.com/rostrum-dev/rostrum/internal/store"
	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// Ended sessions older than --session-retention are deleted with their
// participants and events by the periodic sweep; younger ones and active
// ones are kept.
func TestRetentionDeletesExpiredSessions(t *testing.T) {
	ts := startServer(t, "", func(c *config.Config) {
		c.Retention.Sessions = time.Hour
		c.Retention.Sweep = 20 * time.Millisecond
	})
	c := ts.client()
	// A session that just ended, and one still active.
	stage, recent, pid := recordStageLife(t, ts)
	activeStage := newStage(t, c)
	active, err := ts.service().StartStageSession(bg, activeStage)
	if err != nil {
		t.Fatal(err)
	}

	// A session of the same stage that ended two hours ago, written into
	// the server's database beside it as the media plane would have then.
	db, err := openServerDatabase(ts.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const old = "st-0ldSessi0nXYZ"
	start := time.Now().Add(-3 * time.Hour).UTC().Truncate(time.Millisecond)
	if err := db.StartStageSession(bg, &store.StageSession{StageARN: stage, SessionID: old, StartTime: start}); err != nil {
		t.Fatal(err)
	}
	doc, _ := json.Marshal(map[string]any{"participantId": "p-old", "userId": "dan", "state": "DISCONNECTED", "firstJoinTime": start})
	if err := db.PutParticipant(bg, &store.Participant{StageARN: stage, SessionID: old, ParticipantID: "p-old", UserID: "dan",
		State: "DISCONNECTED", FirstJoinTime: start, Doc: doc}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"JOINED", "LEFT"} {
		ev, _ := json.Marshal(map[string]any{"name": name, "participantId": "p-old", "eventTime": start})
		if err := db.AddParticipantEvent(bg, &store.ParticipantEvent{StageARN: stage, SessionID: old, ParticipantID: "p-old", EventTime: start, Doc: ev}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.EndStageSession(bg, stage, old, start.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Before the sweep, the API shows it.
	listed := func() []string {
		out, err := c.ListStageSessions(bg, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(stage)})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range out.StageSessions {
			ids = append(ids, aws.ToString(s.SessionId))
		}
		return ids
	}

	testutil.Eventually(t, "the expired session to be deleted", func() bool {
		_, err := c.GetStageSession(bg, &ivsrealtime.GetStageSessionInput{StageArn: aws.String(stage), SessionId: aws.String(old)})
		return err != nil && apiErrorCode(t, err) == "ResourceNotFoundException"
	})
	// The sweep that deleted it kept the others.
	if ids := listed(); len(ids) != 1 || ids[0] != recent {
		t.Errorf("ListStageSessions after the sweep: %v, want [%s]", ids, recent)
	}
	ps, err := c.ListParticipants(bg, &ivsrealtime.ListParticipantsInput{StageArn: aws.String(stage), SessionId: aws.String(old)})
	if err != nil || len(ps.Participants) != 0 {
		t.Errorf("participants of the deleted session: %+v, %v", ps, err)
	}
	evs, err := c.ListParticipantEvents(bg, &ivsrealtime.ListParticipantEventsInput{StageArn: aws.String(stage), SessionId: aws.String(old), ParticipantId: aws.String("p-old")})
	if err != nil || len(evs.Events) != 0 {
		t.Errorf("events of the deleted session: %+v, %v", evs, err)
	}
	if ps, err := c.ListParticipants(bg, &ivsrealtime.ListParticipantsInput{StageArn: aws.String(stage), SessionId: aws.String(recent)}); err != nil || len(ps.Participants) != 1 {
		t.Errorf("participants of the recent session: %+v, %v", ps, err)
	}
	if evs, err := c.ListParticipantEvents(bg, &ivsrealtime.ListParticipantEventsInput{StageArn: aws.String(stage), SessionId: aws.String(recent), ParticipantId: aws.String(pid)}); err != nil || len(evs.Events) != 4 {
		t.Errorf("events of the recent session: %+v, %v", evs, err)
	}
	g, err := c.GetStageSession(bg, &ivsrealtime.GetStageSessionInput{StageArn: aws.String(activeStage), SessionId: aws.String(active)})
	if err != nil || g.StageSession.EndTime != nil {
		t.Errorf("the active session: %+v, %v", g, err)
	}
}

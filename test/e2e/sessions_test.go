package e2e

import (
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
)

// The media plane records sessions, participants and events through the
// service; these tests record them the same way and read them back through
// the AWS SDK.
func TestSessionsParticipantsAndEvents(t *testing.T) {
	ts := startServer(t, "")
	c := ts.client()
	svc := ts.service()
	st, _ := c.CreateStage(bg, &ivsrealtime.CreateStageInput{})
	stage := *st.Stage.Arn

	old, err := svc.StartStageSession(bg, stage)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.EndStageSession(bg, stage, old); err != nil {
		t.Fatal(err)
	}
	sid, err := svc.StartStageSession(bg, stage)
	if err != nil {
		t.Fatal(err)
	}
	if len(sid) != 16 {
		t.Errorf("session id %q is not the model's 16 characters", sid)
	}
	g, _ := c.GetStage(bg, &ivsrealtime.GetStageInput{Arn: &stage})
	if aws.ToString(g.Stage.ActiveSessionId) != sid {
		t.Errorf("activeSessionId = %v, want %s", g.Stage.ActiveSessionId, sid)
	}
	ls, _ := c.ListStages(bg, &ivsrealtime.ListStagesInput{})
	if aws.ToString(ls.Stages[0].ActiveSessionId) != sid {
		t.Errorf("ListStages activeSessionId = %v", ls.Stages[0].ActiveSessionId)
	}

	joined := time.Now().UTC().Truncate(time.Millisecond)
	for _, p := range []struct {
		id, user, state string
		published       bool
	}{{"pAlice000001", "alice", "CONNECTED", true}, {"pBob00000002", "bob", "CONNECTED", false}, {"pCarol000003", "carol", "DISCONNECTED", false}} {
		err := svc.RecordParticipant(bg, stage, sid, &api.Participant{
			ParticipantId: api.Ptr(p.id), UserId: api.Ptr(p.user), State: api.Ptr(p.state), Published: api.Ptr(p.published),
			FirstJoinTime: api.Ptr(joined), Attributes: map[string]string{"name": p.user}, Protocol: api.Ptr("WHIP"),
			BrowserName: api.Ptr("Chrome"), RecordingState: api.Ptr("DISABLED"),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, name := range []string{"JOINED", "PUBLISH_STARTED", "SUBSCRIBE_STARTED"} {
		e := &api.Event{ParticipantId: api.Ptr("pAlice000001"), Name: api.Ptr(name), EventTime: api.Ptr(joined.Add(time.Duration(i) * time.Second))}
		if name == "SUBSCRIBE_STARTED" {
			e.RemoteParticipantId = api.Ptr("pBob00000002")
		}
		if err := svc.RecordParticipantEvent(bg, stage, sid, e); err != nil {
			t.Fatal(err)
		}
	}

	gs, err := c.GetStageSession(bg, &ivsrealtime.GetStageSessionInput{StageArn: &stage, SessionId: &sid})
	if err != nil || aws.ToString(gs.StageSession.SessionId) != sid || gs.StageSession.EndTime != nil || gs.StageSession.StartTime == nil {
		t.Fatalf("GetStageSession = %+v, %v", gs, err)
	}
	sessions, err := c.ListStageSessions(bg, &ivsrealtime.ListStageSessionsInput{StageArn: &stage})
	if err != nil || len(sessions.StageSessions) != 2 || aws.ToString(sessions.StageSessions[0].SessionId) != sid ||
		sessions.StageSessions[1].EndTime == nil {
		t.Fatalf("ListStageSessions (newest first) = %+v, %v", sessions, err)
	}
	page, err := c.ListStageSessions(bg, &ivsrealtime.ListStageSessionsInput{StageArn: &stage, MaxResults: aws.Int32(1)})
	if err != nil || len(page.StageSessions) != 1 || page.NextToken == nil {
		t.Fatalf("first page = %+v, %v", page, err)
	}
	page2, err := c.ListStageSessions(bg, &ivsrealtime.ListStageSessionsInput{StageArn: &stage, MaxResults: aws.Int32(1), NextToken: page.NextToken})
	if err != nil || len(page2.StageSessions) != 1 || aws.ToString(page2.StageSessions[0].SessionId) != old || page2.NextToken != nil {
		t.Fatalf("second page = %+v, %v", page2, err)
	}

	gp, err := c.GetParticipant(bg, &ivsrealtime.GetParticipantInput{StageArn: &stage, SessionId: &sid, ParticipantId: aws.String("pAlice000001")})
	if err != nil {
		t.Fatal(err)
	}
	p := gp.Participant
	if aws.ToString(p.UserId) != "alice" || p.State != types.ParticipantStateConnected || !p.Published || p.Attributes["name"] != "alice" ||
		p.Protocol != types.ParticipantProtocolWhip || aws.ToString(p.BrowserName) != "Chrome" || !p.FirstJoinTime.Equal(joined) {
		t.Errorf("participant = %+v", p)
	}
	_, err = c.GetParticipant(bg, &ivsrealtime.GetParticipantInput{StageArn: &stage, SessionId: &sid, ParticipantId: aws.String("nobody")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("missing participant: %v", err)
	}

	count := func(in *ivsrealtime.ListParticipantsInput) int {
		t.Helper()
		in.StageArn, in.SessionId = &stage, &sid
		out, err := c.ListParticipants(bg, in)
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Participants)
	}
	if n := count(&ivsrealtime.ListParticipantsInput{}); n != 3 {
		t.Errorf("all participants: %d", n)
	}
	if n := count(&ivsrealtime.ListParticipantsInput{FilterByUserId: aws.String("bob")}); n != 1 {
		t.Errorf("filterByUserId: %d", n)
	}
	if n := count(&ivsrealtime.ListParticipantsInput{FilterByPublished: true}); n != 1 {
		t.Errorf("filterByPublished: %d", n)
	}
	if n := count(&ivsrealtime.ListParticipantsInput{FilterByState: types.ParticipantStateDisconnected}); n != 1 {
		t.Errorf("filterByState: %d", n)
	}
	if n := count(&ivsrealtime.ListParticipantsInput{FilterByRecordingState: types.ParticipantRecordingFilterByRecordingStateActive}); n != 0 {
		t.Errorf("filterByRecordingState ACTIVE: %d", n)
	}
	_, err = c.ListParticipants(bg, &ivsrealtime.ListParticipantsInput{StageArn: &stage, SessionId: &sid, FilterByUserId: aws.String("bob"), FilterByState: types.ParticipantStateConnected})
	if code := apiErrorCode(t, err); code != "ValidationException" {
		t.Errorf("two filters: %s", code)
	}
	var ids []string
	pp := ivsrealtime.NewListParticipantsPaginator(c, &ivsrealtime.ListParticipantsInput{StageArn: &stage, SessionId: &sid, MaxResults: aws.Int32(2)})
	for pp.HasMorePages() {
		page, err := pp.NextPage(bg)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Participants {
			ids = append(ids, aws.ToString(p.ParticipantId))
		}
	}
	if len(ids) != 3 || ids[0] != "pAlice000001" || ids[2] != "pCarol000003" {
		t.Errorf("paged participants in join order = %v", ids)
	}

	ev, err := c.ListParticipantEvents(bg, &ivsrealtime.ListParticipantEventsInput{StageArn: &stage, SessionId: &sid, ParticipantId: aws.String("pAlice000001")})
	if err != nil || len(ev.Events) != 3 {
		t.Fatalf("events = %+v, %v", ev, err)
	}
	if ev.Events[0].Name != types.EventNameJoined || ev.Events[2].Name != types.EventNameSubscribeStarted ||
		aws.ToString(ev.Events[2].RemoteParticipantId) != "pBob00000002" || !ev.Events[1].EventTime.Equal(joined.Add(time.Second)) {
		t.Errorf("events = %+v", ev.Events)
	}
	none, err := c.ListParticipantEvents(bg, &ivsrealtime.ListParticipantEventsInput{StageArn: &stage, SessionId: &sid, ParticipantId: aws.String("pBob00000002")})
	if err != nil || len(none.Events) != 0 {
		t.Errorf("bob's events = %+v, %v", none, err)
	}

	if err := svc.RecordParticipantReplica(bg, &api.ParticipantReplica{
		SourceStageArn: stage, SourceSessionId: sid, ParticipantId: "pAlice000001",
		DestinationStageArn: "arn:aws:ivs:us-east-1:123456789012:stage/DestStage001", DestinationSessionId: "st-DestSession01", ReplicationState: "ACTIVE",
	}); err != nil {
		t.Fatal(err)
	}
	reps, err := c.ListParticipantReplicas(bg, &ivsrealtime.ListParticipantReplicasInput{SourceStageArn: &stage, ParticipantId: aws.String("pAlice000001")})
	if err != nil || len(reps.Replicas) != 1 || aws.ToString(reps.Replicas[0].DestinationSessionId) != "st-DestSession01" {
		t.Errorf("replicas = %+v, %v", reps, err)
	}

	if err := svc.EndStageSession(bg, stage, sid); err != nil {
		t.Fatal(err)
	}
	g, _ = c.GetStage(bg, &ivsrealtime.GetStageInput{Arn: &stage})
	if g.Stage.ActiveSessionId != nil {
		t.Errorf("activeSessionId after the session ended = %v", *g.Stage.ActiveSessionId)
	}
	gs, _ = c.GetStageSession(bg, &ivsrealtime.GetStageSessionInput{StageArn: &stage, SessionId: &sid})
	if gs.StageSession.EndTime == nil {
		t.Error("ended session has no endTime")
	}
}

package ivs

import (
	"context"
	"errors"
	"time"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/events"
	"github.com/rostrum-dev/rostrum/internal/store"
)

// The media plane reports what happens on a stage through the Record*
// methods; the API's session, participant and event operations read it back.

// StartStageSession records a new active session of a stage, starting now,
// and returns its id.
func (s *Service) StartStageSession(ctx context.Context, stageARN string) (string, error) {
	id := NewSessionID()
	return id, s.RecordStageSessionStart(ctx, stageARN, id, s.nowMillis())
}

// RecordStageSessionStart records a session whose id the media plane chose
// when it started it. Like the other Record* methods and EndStageSession,
// it writes the event the fact makes (Rostrum Stage Activity: Session
// Started) to the event outbox in the same store transaction.
func (s *Service) RecordStageSessionStart(ctx context.Context, stageARN, sessionID string, at time.Time) error {
	at = at.UTC().Truncate(time.Millisecond)
	p := s.prepare(events.NewSessionEvent(stageARN, sessionID, at, true))
	err := s.store.StartStageSession(ctx, &store.StageSession{StageARN: stageARN, SessionID: sessionID, StartTime: at, NodeID: s.cfg.NodeID}, p.Entries()...)
	p.Done(err)
	return err
}

// EndStageSession records the end of a session, now.
func (s *Service) EndStageSession(ctx context.Context, stageARN, sessionID string) error {
	at := s.nowMillis()
	p := s.prepare(events.NewSessionEvent(stageARN, sessionID, at, false))
	err := s.store.EndStageSession(ctx, stageARN, sessionID, at, p.Entries()...)
	p.Done(err)
	return err
}

// RecordParticipant inserts or replaces a participant of a session.
func (s *Service) RecordParticipant(ctx context.Context, stageARN, sessionID string, p *api.Participant) error {
	if p.ParticipantId == nil {
		return errors.New("ivs: participant without id")
	}
	row := &store.Participant{
		StageARN:       stageARN,
		SessionID:      sessionID,
		ParticipantID:  *p.ParticipantId,
		UserID:         api.Val(p.UserId),
		State:          api.Val(p.State),
		Published:      api.Val(p.Published),
		RecordingState: api.Val(p.RecordingState),
		FirstJoinTime:  api.Val(p.FirstJoinTime),
		Doc:            mustJSON(p),
	}
	return s.store.PutParticipant(ctx, row)
}

// RecordParticipantEvent appends an event (JOINED, PUBLISH_STARTED, …) to a
// participant's history; EventTime defaults to now. It is the one place the
// media plane's participant events enter: the EventBridge-shaped event it
// makes (IVS Stage Update or Rostrum Stage Activity) is written to the
// outbox in the same transaction, so ListParticipantEvents and the
// delivered events tell the same story.
func (s *Service) RecordParticipantEvent(ctx context.Context, stageARN, sessionID string, e *api.Event) error {
	if e.ParticipantId == nil || e.Name == nil {
		return errors.New("ivs: event without participant id or name")
	}
	if e.EventTime == nil {
		e.EventTime = api.Ptr(s.nowMillis())
	}
	var userID string
	if s.events != nil {
		userID = s.userID(ctx, stageARN, sessionID, *e.ParticipantId)
	}
	return s.recordEvent(ctx, stageARN, sessionID, userID, e)
}

// RecordParticipantReplica inserts or replaces a replication record.
func (s *Service) RecordParticipantReplica(ctx context.Context, r *api.ParticipantReplica) error {
	return s.store.PutParticipantReplica(ctx, &store.ParticipantReplica{
		SourceStageARN: r.SourceStageArn, ParticipantID: r.ParticipantId, DestinationStageARN: r.DestinationStageArn,
		State: r.ReplicationState, Doc: mustJSON(r),
	})
}

// ownStage checks that a stage ARN in a query belongs to the caller. The
// stage itself need not exist any more: sessions outlive deleted stages.
func (s *Service) ownStage(ctx context.Context, arn string) error {
	p, ok := parseARN(arn)
	if !ok {
		return api.Validationf("stageArn: %s is not a stage ARN.", arn)
	}
	if p.Account != s.account(ctx) {
		return api.AccessDeniedf("User is not authorized to access resource %s.", arn)
	}
	return nil
}

func sessionView(ss *store.StageSession) (start, end *time.Time) {
	start = api.Ptr(ss.StartTime.UTC())
	if ss.EndTime != nil {
		end = api.Ptr(ss.EndTime.UTC())
	}
	return start, end
}

func (s *Service) GetStageSession(ctx context.Context, in *api.GetStageSessionRequest) (*api.GetStageSessionResponse, error) {
	if err := s.ownStage(ctx, in.StageArn); err != nil {
		return nil, err
	}
	ss, err := s.store.GetStageSession(ctx, in.StageArn, in.SessionId)
	if errors.Is(err, store.ErrNotFound) {
		return nil, api.NotFoundf("Session %s of stage %s not found.", in.SessionId, in.StageArn)
	}
	if err != nil {
		return nil, s.internal(ctx, err)
	}
	start, end := sessionView(ss)
	return &api.GetStageSessionResponse{StageSession: &api.StageSession{SessionId: api.Ptr(ss.SessionID), StartTime: start, EndTime: end}}, nil
}

func (s *Service) ListStageSessions(ctx context.Context, in *api.ListStageSessionsRequest) (*api.ListStageSessionsResponse, error) {
	if err := s.ownStage(ctx, in.StageArn); err != nil {
		return nil, err
	}
	after, err := parsePageToken("ListStageSessions", in.NextToken)
	if err != nil {
		return nil, err
	}
	limit := pageSize(in.MaxResults, 50)
	rows, err := s.store.ListStageSessions(ctx, in.StageArn, store.Page{After: after, Limit: limit})
	if err != nil {
		return nil, s.internal(ctx, err)
	}
	rows, next := pageOf("ListStageSessions", rows, limit, func(r *store.StageSession) int64 { return r.Seq })
	out := &api.ListStageSessionsResponse{StageSessions: []api.StageSessionSummary{}, NextToken: next}
	for _, ss := range rows {
		start, end := sessionView(ss)
		out.StageSessions = append(out.StageSessions, api.StageSessionSummary{SessionId: api.Ptr(ss.SessionID), StartTime: start, EndTime: end})
	}
	return out, nil
}

func (s *Service) GetParticipant(ctx context.Context, in *api.GetParticipantRequest) (*api.GetParticipantResponse, error) {
	if err := s.ownStage(ctx, in.StageArn); err != nil {
		return nil, err
	}
	row, err := s.store.GetParticipant(ctx, in.StageArn, in.SessionId, in.ParticipantId)
	if errors.Is(err, store.ErrNotFound) {
		return nil, api.NotFoundf("Participant %s of session %s not found.", in.ParticipantId, in.SessionId)
	}
	if err != nil {
		return nil, s.internal(ctx, err)
	}
	p, err := decodeRow[api.Participant](row.Doc)
	if err != nil {
		return nil, s.internal(ctx, err)
	}
	// The model: the bucket and prefix of the participant's recording, or
	// "" when it is not recorded (recording is not built yet).
	p.RecordingS3BucketName = api.Ptr(api.Val(p.RecordingS3BucketName))
	p.RecordingS3Prefix = api.Ptr(api.Val(p.RecordingS3Prefix))
	return &api.GetParticipantResponse{Participant: p}, nil
}

func (s *Service) ListParticipants(ctx context.Context, in *api.ListParticipantsRequest) (*api.ListParticipantsResponse, error) {
	if err := s.ownStage(ctx, in.StageArn); err != nil {
		return nil, err
	}
	filters := 0
	for _, set := range []bool{in.FilterByUserId != nil, in.FilterByPublished != nil, in.FilterByState != nil, in.FilterByRecordingState != nil} {
		if set {
			filters++
		}
	}
	if filters > 1 {
		return nil, api.Validationf("Only one of filterByUserId, filterByPublished, filterByState or filterByRecordingState may be given.")
	}
	after, err := parsePageToken("ListParticipants", in.NextToken)
	if err != nil {
		return nil, err
	}
	limit := pageSize(in.MaxResults, 50)
	rows, err := s.store.ListParticipants(ctx, store.ParticipantQuery{
		StageARN: in.StageArn, SessionID: in.SessionId,
		UserID: in.FilterByUserId, Published: in.FilterByPublished, State: in.FilterByState, RecordingState: in.FilterByRecordingState,
		Page: store.Page{After: after, Limit: limit},
	})
	if err != nil {
		return nil, s.internal(ctx, err)
	}
	rows, next := pageOf("ListParticipants", rows, limit, func(r *store.Participant) int64 { return r.Seq })
	out := &api.ListParticipantsResponse{Participants: []api.ParticipantSummary{}, NextToken: next}
	for _, row := range rows {
		p, err := decodeRow[api.Participant](row.Doc)
		if err != nil {
			return nil, s.internal(ctx, err)
		}
		out.Participants = append(out.Participants, api.ParticipantSummary{
			ParticipantId: p.ParticipantId, UserId: p.UserId, State: p.State, FirstJoinTime: p.FirstJoinTime,
			Published: p.Published, RecordingState: p.RecordingState, ReplicationType: p.ReplicationType,
			ReplicationState: p.ReplicationState, SourceStageArn: p.SourceStageArn, SourceSessionId: p.SourceSessionId,
			RedundantIngest: p.RedundantIngest, IngestConfigurationArn: p.IngestConfigurationArn,
		})
	}
	return out, nil
}

func (s *Service) ListParticipantEvents(ctx context.Context, in *api.ListParticipantEventsRequest) (*api.ListParticipantEventsResponse, error) {
	if err := s.ownStage(ctx, in.StageArn); err != nil {
		return nil, err
	}
	after, err := parsePageToken("ListParticipantEvents", in.NextToken)
	if err != nil {
		return nil, err
	}
	limit := pageSize(in.MaxResults, 50)
	rows, err := s.store.ListParticipantEvents(ctx, in.StageArn, in.SessionId, in.ParticipantId, store.Page{After: after, Limit: limit})
	if err != nil {
		return nil, s.internal(ctx, err)
	}
	rows, next := pageOf("ListParticipantEvents", rows, limit, func(r *store.ParticipantEvent) int64 { return r.Seq })
	out := &api.ListParticipantEventsResponse{Events: []api.Event{}, NextToken: next}
	for _, row := range rows {
		e, err := decodeRow[api.Event](row.Doc)
		if err != nil {
			return nil, s.internal(ctx, err)
		}
		out.Events = append(out.Events, *e)
	}
	return out, nil
}

func (s *Service) ListParticipantReplicas(ctx context.Context, in *api.ListParticipantReplicasRequest) (*api.ListParticipantReplicasResponse, error) {
	if err := s.ownStage(ctx, in.SourceStageArn); err != nil {
		return nil, err
	}
	after, err := parsePageToken("ListParticipantReplicas", in.NextToken)
	if err != nil {
		return nil, err
	}
	limit := pageSize(in.MaxResults, 50)
	rows, err := s.store.ListParticipantReplicas(ctx, in.SourceStageArn, in.ParticipantId, store.Page{After: after, Limit: limit})
	if err != nil {
		return nil, s.internal(ctx, err)
	}
	rows, next := pageOf("ListParticipantReplicas", rows, limit, func(r *store.ParticipantReplica) int64 { return r.Seq })
	out := &api.ListParticipantReplicasResponse{Replicas: []api.ParticipantReplica{}, NextToken: next}
	for _, row := range rows {
		r, err := decodeRow[api.ParticipantReplica](row.Doc)
		if err != nil {
			return nil, s.internal(ctx, err)
		}
		out.Replicas = append(out.Replicas, *r)
	}
	return out, nil
}

package ivs

import (
	"context"
	"errors"
	"maps"
	"time"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/store"
)

// Participant replication copies a publishing participant of one stage into
// another (StartParticipantReplication). The service checks the request and
// the stages; the media plane (the Replicator) does the copying and reports
// what happens through the Record* methods, as it does for every
// participant.

// MaxReplicasPerParticipant is IVS's quota of concurrent replications of
// one participant (IVS-BEHAVIOUR.md §7; not adjustable).
const MaxReplicasPerParticipant = 5

// Replicator is the media plane's side of replication. The media plane
// that implements MediaPlane implements it too where replication is built.
type Replicator interface {
	// StartReplication starts copying the source stage's publishing
	// participant into the destination stage, or fails with one of the
	// Err* replication errors below (wrapped, with details).
	StartReplication(ctx context.Context, r ReplicationRequest) error
	// StopReplication ends an active replication (ErrReplicationNotFound
	// when there is none).
	StopReplication(ctx context.Context, sourceStageARN, destinationStageARN, participantID string) error
}

// ReplicationRequest is a checked StartParticipantReplication.
type ReplicationRequest struct {
	Source, Destination *StageInfo
	ParticipantID       string
	// ReconnectWindow is how long the replica stays while its source is
	// not publishing, waiting for it to publish again.
	ReconnectWindow time.Duration
	// Attributes are merged over the source participant's token
	// attributes for the replica.
	Attributes map[string]string
	// MaxReplicas bounds the participant's concurrent replications.
	MaxReplicas int
}

// The media plane's refusals of a replication; the service answers each
// with the API error the model gives it.
var (
	// ErrReplicationSourceNotFound: the participant is not publishing in
	// the source stage (on this node).
	ErrReplicationSourceNotFound = errors.New("the participant is not publishing in the source stage")
	// ErrReplicaOfReplica: the participant is itself a replica.
	ErrReplicaOfReplica = errors.New("the participant is itself a replica")
	// ErrAlreadyReplicated: the participant already replicates into the
	// destination stage.
	ErrAlreadyReplicated = errors.New("the participant is already replicated to the destination stage")
	// ErrParticipantIDInUse: the destination stage has a participant of
	// that id that is not its replica.
	ErrParticipantIDInUse = errors.New("the destination stage already has a participant with this id")
	// ErrDestinationFull: the destination stage has its maximum of
	// publishers.
	ErrDestinationFull = errors.New("the destination stage has its maximum number of publishers")
	// ErrTooManyReplicas: the participant has its maximum of concurrent
	// replications.
	ErrTooManyReplicas = errors.New("the participant has its maximum number of replicas")
	// ErrReplicationNotFound: no active replication of the participant
	// into that stage.
	ErrReplicationNotFound = errors.New("no active replication of the participant into the destination stage")
	// ErrStageGone: one of the stages is being deleted.
	ErrStageGone = errors.New("the stage was deleted")
	// ErrOtherNode: on several nodes, a replication copies between stages
	// of one node, and one of the stages runs on another node than the
	// one the request reached.
	ErrOtherNode = errors.New("replication copies between stages of one node")
)

func (s *Service) replicator() (Replicator, bool) {
	r, ok := s.media.(Replicator)
	return r, ok
}

// replicationStages loads the two stages of a replication request.
func (s *Service) replicationStages(ctx context.Context, src, dst string) (*store.Resource, *store.Resource, error) {
	if src == dst {
		return nil, nil, api.Validationf("destinationStageArn: a participant cannot be replicated into its own stage %s.", src)
	}
	sr, err := s.getRef(ctx, "sourceStageArn", src, kindStage, missingIsNotFound)
	if err != nil {
		return nil, nil, err
	}
	dr, err := s.getRef(ctx, "destinationStageArn", dst, kindStage, missingIsNotFound)
	if err != nil {
		return nil, nil, err
	}
	return sr, dr, nil
}

func (s *Service) StartParticipantReplication(ctx context.Context, in *api.StartParticipantReplicationRequest) (*api.StartParticipantReplicationResponse, error) {
	rep, ok := s.replicator()
	if !ok {
		return nil, notYet("StartParticipantReplication")
	}
	if err := checkTokenAttributes("attributes", in.Attributes); err != nil {
		return nil, err
	}
	sr, dr, err := s.replicationStages(ctx, in.SourceStageArn, in.DestinationStageArn)
	if err != nil {
		return nil, err
	}
	req := ReplicationRequest{
		ParticipantID: in.ParticipantId,
		Attributes:    maps.Clone(in.Attributes),
		MaxReplicas:   MaxReplicasPerParticipant,
	}
	if w := in.ReconnectWindowSeconds; w != nil {
		req.ReconnectWindow = time.Duration(*w) * time.Second
	}
	if req.Source, err = s.stageInfo(ctx, sr); err != nil {
		return nil, s.internal(ctx, err)
	}
	if req.Destination, err = s.stageInfo(ctx, dr); err != nil {
		return nil, s.internal(ctx, err)
	}
	if err := rep.StartReplication(ctx, req); err != nil {
		return nil, s.replicationErr(ctx, err, in.SourceStageArn, in.DestinationStageArn, in.ParticipantId)
	}
	return &api.StartParticipantReplicationResponse{}, nil
}

func (s *Service) StopParticipantReplication(ctx context.Context, in *api.StopParticipantReplicationRequest) (*api.StopParticipantReplicationResponse, error) {
	rep, ok := s.replicator()
	if !ok {
		return nil, notYet("StopParticipantReplication")
	}
	if _, _, err := s.replicationStages(ctx, in.SourceStageArn, in.DestinationStageArn); err != nil {
		return nil, err
	}
	if err := rep.StopReplication(ctx, in.SourceStageArn, in.DestinationStageArn, in.ParticipantId); err != nil {
		return nil, s.replicationErr(ctx, err, in.SourceStageArn, in.DestinationStageArn, in.ParticipantId)
	}
	return &api.StopParticipantReplicationResponse{}, nil
}

// replicationErr is the one table from the media plane's replication
// errors to the API's.
func (s *Service) replicationErr(ctx context.Context, err error, src, dst, pid string) error {
	switch {
	case errors.Is(err, ErrReplicationSourceNotFound):
		return api.NotFoundf("Participant %s is not publishing in stage %s.", pid, src)
	case errors.Is(err, ErrReplicationNotFound):
		return api.NotFoundf("Participant %s of stage %s is not being replicated to stage %s.", pid, src, dst)
	case errors.Is(err, ErrStageGone):
		return api.NotFoundf("%s", err.Error())
	case errors.Is(err, ErrReplicaOfReplica):
		return api.Validationf("participantId: participant %s of stage %s is a replica; replicate its source participant instead.", pid, src)
	case errors.Is(err, ErrAlreadyReplicated):
		return api.Conflictf("Participant %s of stage %s is already being replicated to stage %s.", pid, src, dst)
	case errors.Is(err, ErrParticipantIDInUse):
		return api.Conflictf("Stage %s already has a participant %s that is not a replica of stage %s.", dst, pid, src)
	case errors.Is(err, ErrDestinationFull):
		return api.QuotaExceededf("Stage %s has its maximum number of publishers: %s.", dst, err.Error())
	case errors.Is(err, ErrOtherNode):
		return api.Conflictf("%s.", err.Error())
	case errors.Is(err, ErrTooManyReplicas):
		return api.QuotaExceededf("Participant %s of stage %s is already replicated to %d stages, the maximum.", pid, src, MaxReplicasPerParticipant)
	}
	return s.internal(ctx, err)
}

// ReplicaRecord is a replication as the media plane reports it.
type ReplicaRecord struct {
	SourceStageARN, SourceSessionID           string
	DestinationStageARN, DestinationSessionID string
	ParticipantID                             string
	Active                                    bool
}

// RecordReplica inserts or replaces the record of a replication, kept with
// its source stage (ListParticipantReplicas).
func (s *Service) RecordReplica(ctx context.Context, r ReplicaRecord) error {
	state := api.ReplicationStateStopped
	if r.Active {
		state = api.ReplicationStateActive
	}
	return s.RecordParticipantReplica(ctx, &api.ParticipantReplica{
		SourceStageArn: r.SourceStageARN, SourceSessionId: r.SourceSessionID,
		DestinationStageArn: r.DestinationStageARN, DestinationSessionId: r.DestinationSessionID,
		ParticipantId: r.ParticipantID, ReplicationState: state,
	})
}

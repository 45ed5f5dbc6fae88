package ivs

import (
	"context"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
)

// These operations need participant replication, which Rostrum does not
// have yet. They answer NotImplementedException (HTTP 501) rather than a
// success that pretends.

func notYet(op string) error {
	return api.NotImplementedf("%s is not available yet in this Rostrum server: it needs a capability that has not been built (see the README's list of operations).", op)
}

func (s *Service) StartParticipantReplication(context.Context, *api.StartParticipantReplicationRequest) (*api.StartParticipantReplicationResponse, error) {
	return nil, notYet("StartParticipantReplication")
}

func (s *Service) StopParticipantReplication(context.Context, *api.StopParticipantReplicationRequest) (*api.StopParticipantReplicationResponse, error) {
	return nil, notYet("StopParticipantReplication")
}

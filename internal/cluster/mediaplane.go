package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rostrum-dev/rostrum/internal/ivs"
)

// The channel on which nodes tell each other what the API asked of the
// media plane.
const mediaChannel = "rostrum_media"

type mediaMessage struct {
	Op          string `json:"op"` // "disconnect" | "deleted"
	Stage       string `json:"stage"`
	Participant string `json:"participant,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// MediaPlane is the media plane of a node in a cluster: what the API asks
// of it (DisconnectParticipant, DeleteStage) is done here and told to
// every other node, so that the node running the stage does it, whichever
// node the request reached.
type MediaPlane struct {
	local ivs.MediaPlane
	c     *Cluster
}

var _ ivs.MediaPlane = (*MediaPlane)(nil)

// NewMediaPlane wraps this node's media plane; call it before Start.
func NewMediaPlane(c *Cluster, local ivs.MediaPlane) *MediaPlane {
	mp := &MediaPlane{local: local, c: c}
	c.Handle(mediaChannel, mp.receive)
	return mp
}

// DisconnectParticipant implements ivs.MediaPlane. The token is revoked
// before this is called, so a node that misses the message still refuses
// the participant's next connection; the message ends the connections it
// has now.
func (mp *MediaPlane) DisconnectParticipant(ctx context.Context, stageARN, participantID, reason string) error {
	if err := mp.local.DisconnectParticipant(ctx, stageARN, participantID, reason); err != nil {
		return err
	}
	return mp.tell(ctx, mediaMessage{Op: "disconnect", Stage: stageARN, Participant: participantID, Reason: reason})
}

// StageDeleting implements ivs.MediaPlane (this node's part: other nodes
// drop what they would record when told the stage is deleted).
func (mp *MediaPlane) StageDeleting(stageARN string) { mp.local.StageDeleting(stageARN) }

// StageDeleted implements ivs.MediaPlane.
func (mp *MediaPlane) StageDeleted(ctx context.Context, stageARN string) {
	mp.local.StageDeleted(ctx, stageARN)
	if err := mp.tell(ctx, mediaMessage{Op: "deleted", Stage: stageARN}); err != nil {
		mp.c.log.Error("telling the other nodes that a stage was deleted", "stage", stageARN, "err", err)
	}
}

var _ ivs.Replicator = (*MediaPlane)(nil)

// StartReplication implements ivs.Replicator on a node of a cluster. A
// replication copies between stages of one node (a tap feeds a local
// publisher): the source's stage must run on the node the request reached,
// and the destination's is taken for it unless another node runs it.
func (mp *MediaPlane) StartReplication(ctx context.Context, r ivs.ReplicationRequest) error {
	rep, ok := mp.local.(ivs.Replicator)
	if !ok {
		return fmt.Errorf("this node's media plane does not replicate")
	}
	self := mp.c.NodeID()
	owner, err := mp.c.Owner(ctx, r.Source.ARN)
	if err != nil {
		return err
	}
	if owner != nil && owner.ID != self {
		return fmt.Errorf("%w: source stage %s runs on node %s and this request reached node %s; send it to that node", ivs.ErrOtherNode, r.Source.ARN, owner.ID, self)
	}
	here, node, err := mp.c.Claim(ctx, r.Destination.ARN)
	if err != nil {
		return err
	}
	if !here {
		return fmt.Errorf("%w: destination stage %s runs on node %s, source stage %s on node %s", ivs.ErrOtherNode, r.Destination.ARN, node, r.Source.ARN, self)
	}
	return rep.StartReplication(ctx, r)
}

// StopReplication implements ivs.Replicator: the replication runs on the
// node of its stages.
func (mp *MediaPlane) StopReplication(ctx context.Context, sourceStageARN, destinationStageARN, participantID string) error {
	rep, ok := mp.local.(ivs.Replicator)
	if !ok {
		return fmt.Errorf("this node's media plane does not replicate")
	}
	err := rep.StopReplication(ctx, sourceStageARN, destinationStageARN, participantID)
	if errors.Is(err, ivs.ErrReplicationNotFound) {
		if owner, oerr := mp.c.Owner(ctx, destinationStageARN); oerr == nil && owner != nil && owner.ID != mp.c.NodeID() {
			return fmt.Errorf("%w: the replication runs on node %s (its stages' node) and this request reached node %s; send it to that node", ivs.ErrOtherNode, owner.ID, mp.c.NodeID())
		}
	}
	return err
}

func (mp *MediaPlane) tell(ctx context.Context, m mediaMessage) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := mp.c.Notify(ctx, mediaChannel, string(b)); err != nil {
		return fmt.Errorf("telling the other nodes: %w", err)
	}
	return nil
}

func (mp *MediaPlane) receive(from, body string) {
	var m mediaMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		mp.c.log.Warn("an unreadable media plane message from another node", "from", from, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(mp.c.ctx, 10*time.Second)
	defer cancel()
	switch m.Op {
	case "disconnect":
		if err := mp.local.DisconnectParticipant(ctx, m.Stage, m.Participant, m.Reason); err != nil {
			mp.c.log.Error("disconnecting a participant as another node asked", "from", from, "stage", m.Stage, "participant", m.Participant, "err", err)
		}
	case "deleted":
		mp.local.StageDeleting(m.Stage)
		mp.local.StageDeleted(ctx, m.Stage)
	}
}

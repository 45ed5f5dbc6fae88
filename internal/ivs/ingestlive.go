package ivs

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/store"
)

// What the RTMP ingest (internal/ingest) asks of ingest configurations
// while it streams: resolving a stream key, and the configuration's state.

// ErrUnknownStreamKey: no ingest configuration has the stream key (wrong,
// or its configuration was deleted).
var ErrUnknownStreamKey = errors.New("ivs: no ingest configuration has this stream key")

// IngestTarget is an ingest configuration as its stream key resolves it.
type IngestTarget struct {
	ARN string
	// StageARN is "" when the configuration is attached to no stage.
	StageARN      string
	ParticipantID string // of the key's path (the redundant path has its own)
	UserID        string
	Attributes    map[string]string
	// Protocol is the configuration's ingestProtocol (RTMP or RTMPS);
	// InsecureIngest allows plain RTMP.
	Protocol        string
	InsecureIngest  bool
	RedundantIngest bool
}

// IngestByStreamKey resolves a stream key of IVS's form
// rt_{account}_{region}_{id}_{secret}: the configuration it names, if the
// key is that configuration's (or its redundant path's). A key that names
// an existing configuration with the wrong secret returns
// ErrUnknownStreamKey and the configuration too (ParticipantID its
// primary one), so that the refusal can be reported on its stage.
func (s *Service) IngestByStreamKey(ctx context.Context, key string) (*IngestTarget, error) {
	parts := strings.Split(key, "_")
	if len(parts) != 5 || parts[0] != "rt" || parts[2] != s.region {
		return nil, ErrUnknownStreamKey
	}
	arn := fmt.Sprintf("arn:aws:ivs:%s:%s:%s/%s", parts[2], parts[1], kindIngestConfiguration, parts[3])
	r, err := s.store.GetResource(ctx, arn)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownStreamKey
	}
	if err != nil {
		return nil, fmt.Errorf("ivs: reading ingest configuration %s: %w", arn, err)
	}
	doc, err := decodeDoc[ingestDoc](r)
	if err != nil {
		return nil, err
	}
	t := &IngestTarget{
		ARN: doc.Arn, StageARN: doc.StageArn, UserID: api.Val(doc.UserId), Attributes: doc.Attributes,
		Protocol: doc.IngestProtocol, InsecureIngest: doc.InsecureIngest, RedundantIngest: api.Val(doc.RedundantIngest),
	}
	switch {
	case sameKey(key, doc.StreamKey):
		t.ParticipantID = doc.ParticipantId
	case len(doc.RedundantIngestCredentials) > 0 && sameKey(key, api.Val(doc.RedundantIngestCredentials[0].StreamKey)):
		t.ParticipantID = api.Val(doc.RedundantIngestCredentials[0].ParticipantId)
	default:
		t.ParticipantID = doc.ParticipantId
		return t, ErrUnknownStreamKey
	}
	return t, nil
}

func sameKey(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// SetIngestState records that the configuration's publisher is connected
// (ACTIVE, held by this node) or not (INACTIVE). A configuration deleted
// meanwhile is not an error: there is nothing left to record.
func (s *Service) SetIngestState(ctx context.Context, arn string, active bool) error {
	_, err := s.store.UpdateResource(ctx, arn, func(r *store.Resource) error {
		doc, err := decodeDoc[ingestDoc](r)
		if err != nil {
			return err
		}
		doc.State, doc.Node = ingestInactive, ""
		if active {
			doc.State, doc.Node = ingestActive, s.cfg.NodeID
		}
		r.State = doc.State
		r.Doc = mustJSON(doc)
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// ResetIngestStates makes INACTIVE the configurations of owner (region:account) that a
// previous run of this node left ACTIVE (it did not stop cleanly, so no
// stream it held is live any more).
func (s *Service) ResetIngestStates(ctx context.Context) (int, error) {
	rows, err := s.store.ListResources(ctx, store.ResourceQuery{Kind: kindIngestConfiguration, Owner: s.owner(ctx), State: ingestActive, Page: store.Page{Limit: 1 << 20}})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, row := range rows {
		doc, err := decodeDoc[ingestDoc](row)
		if err != nil || doc.Node != s.cfg.NodeID {
			continue
		}
		if err := s.SetIngestState(ctx, row.ARN, false); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// detachIngestOf clears the stage of the ingest configuration whose
// participant DisconnectParticipant removed, as IVS does for RTMP
// publishers: the encoder's reconnects then join no stage.
func (s *Service) detachIngestOf(ctx context.Context, stageARN, participantID string) {
	s.detachIngest(ctx, stageARN, func(d *ingestDoc) bool { return d.hasParticipant(participantID) })
}

var errNoChange = errors.New("ivs: nothing to change")

func (d *ingestDoc) hasParticipant(pid string) bool {
	if d.ParticipantId == pid {
		return true
	}
	for _, c := range d.RedundantIngestCredentials {
		if api.Val(c.ParticipantId) == pid {
			return true
		}
	}
	return false
}

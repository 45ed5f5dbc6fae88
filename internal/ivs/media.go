package ivs

import (
	"context"
	"crypto/ecdsa"
	"errors"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/store"
	"github.com/rostrum-dev/rostrum/internal/token"
)

// MediaPlane is what the service drives in the media plane: the stage layer
// implements it. The service stays ignorant of connections; it only says
// which participant must go and which stage is gone.
type MediaPlane interface {
	// DisconnectParticipant closes every connection of the participant
	// within a second; the participant's token is already revoked.
	DisconnectParticipant(ctx context.Context, stageARN, participantID, reason string) error
	// StageDeleted disconnects everyone from a deleted stage.
	StageDeleted(ctx context.Context, stageARN string)
}

// SetMediaPlane connects the media plane; until it is set, the operations
// that need it answer NotImplementedException.
func (s *Service) SetMediaPlane(m MediaPlane) { s.media = m }

func (s *Service) DisconnectParticipant(ctx context.Context, in *api.DisconnectParticipantRequest) (*api.DisconnectParticipantResponse, error) {
	if s.media == nil {
		return nil, notYet("DisconnectParticipant")
	}
	if _, err := s.get(ctx, in.StageArn, kindStage, foreignAccessDenied); err != nil {
		return nil, err
	}
	// Revoke first: the token can never join again, even if the
	// participant is reconnecting at this very moment.
	if err := s.store.RevokeParticipant(ctx, in.StageArn, in.ParticipantId, s.nowMillis()); err != nil {
		return nil, s.storeErr(ctx, err, in.StageArn)
	}
	if err := s.media.DisconnectParticipant(ctx, in.StageArn, in.ParticipantId, api.Val(in.Reason)); err != nil {
		return nil, s.internal(ctx, err)
	}
	return &api.DisconnectParticipantResponse{}, nil
}

// StageInfo is what the media plane needs of a stage to admit a
// participant.
type StageInfo struct {
	ARN, ID, Owner string
	Recording      *api.AutoParticipantRecordingConfiguration
}

// ErrStageNotFound is returned by LookupStage for a stage that does not
// exist (or no longer does).
var ErrStageNotFound = errors.New("ivs: stage not found")

// LookupStage reads a stage by ARN for the media plane, whoever's it is:
// the caller is a participant token, not an account.
func (s *Service) LookupStage(ctx context.Context, arn string) (*StageInfo, error) {
	p, ok := parseARN(arn)
	if !ok || p.Kind != kindStage || p.Region != s.region {
		return nil, ErrStageNotFound
	}
	r, err := s.store.GetResource(ctx, arn)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrStageNotFound
	}
	if err != nil {
		return nil, err
	}
	doc, err := decodeDoc[stageDoc](r)
	if err != nil {
		return nil, err
	}
	return &StageInfo{ARN: arn, ID: p.ID, Owner: r.Owner, Recording: doc.AutoParticipantRecordingConfiguration}, nil
}

// TokenKey returns the public key a participant token's kid names: the
// server's own signing key, or a public key imported into the stage's
// account with ImportPublicKey (self-signed tokens).
func (s *Service) TokenKey(ctx context.Context, kid, stageARN string) (*ecdsa.PublicKey, error) {
	if kid == s.key.ID {
		return s.key.Public(), nil
	}
	kp, ok := parseARN(kid)
	sp, ok2 := parseARN(stageARN)
	if !ok || !ok2 || kp.Kind != kindPublicKey || kp.Account != sp.Account || kp.Region != sp.Region {
		return nil, errors.New("ivs: the token's kid names no key of the stage's account")
	}
	r, err := s.store.GetResource(ctx, kid)
	if err != nil {
		return nil, err
	}
	doc, err := decodeDoc[api.PublicKey](r)
	if err != nil {
		return nil, err
	}
	return token.ParsePublicKeyPEM(api.Val(doc.PublicKeyMaterial))
}

// IsParticipantRevoked reports whether DisconnectParticipant revoked the
// participant id on the stage.
func (s *Service) IsParticipantRevoked(ctx context.Context, stageARN, participantID string) (bool, error) {
	return s.store.IsParticipantRevoked(ctx, stageARN, participantID)
}

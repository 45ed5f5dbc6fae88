package ivs

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"time"

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
	// StageDeleting is told, inside the delete's transaction, that a stage
	// and its records are going: what the media plane still writes of it
	// is dropped from then on, not reported as failing.
	StageDeleting(stageARN string)
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
	s.detachIngestOf(ctx, in.StageArn, in.ParticipantId)
	return &api.DisconnectParticipantResponse{}, nil
}

// StageInfo is what the media plane needs of a stage to admit a
// participant.
type StageInfo struct {
	ARN, ID, Owner string
	// Recording is whether the stage records its participants
	// (auto-participant recording with a storage configuration).
	Recording bool
	// RecordingSettings are how, when Recording.
	RecordingSettings *RecordingSettings
}

// RecordingSettings are a stage's autoParticipantRecordingConfiguration,
// with its defaults applied and the storage configuration's bucket.
type RecordingSettings struct {
	StorageConfigurationARN string
	Bucket                  string
	MediaTypes              string // api.ParticipantRecordingMediaType*
	// ThumbnailIntervalSeconds is 0 when thumbnails are DISABLED.
	ThumbnailIntervalSeconds int
	ThumbnailSequential      bool
	ThumbnailLatest          bool
	SegmentSeconds           int
	ReconnectWindowSeconds   int
	// RecordReplicas is recordParticipantReplicas: whether participants
	// replicated into the stage are recorded too.
	RecordReplicas bool
}

// recordingSettings resolves a stage's recording configuration.
func (s *Service) recordingSettings(ctx context.Context, c *api.AutoParticipantRecordingConfiguration) (*RecordingSettings, error) {
	r, err := s.store.GetResource(ctx, c.StorageConfigurationArn)
	if err != nil {
		return nil, fmt.Errorf("ivs: reading storage configuration %s: %w", c.StorageConfigurationArn, err)
	}
	sc, err := decodeDoc[api.StorageConfiguration](r)
	if err != nil {
		return nil, err
	}
	rs := &RecordingSettings{StorageConfigurationARN: c.StorageConfigurationArn, MediaTypes: api.ParticipantRecordingMediaTypeAudioVideo, SegmentSeconds: 6}
	if sc.S3 != nil {
		rs.Bucket = sc.S3.BucketName
	}
	if len(c.MediaTypes) > 0 {
		rs.MediaTypes = c.MediaTypes[0]
	}
	if h := c.HlsConfiguration; h != nil && h.TargetSegmentDurationSeconds != nil {
		rs.SegmentSeconds = int(*h.TargetSegmentDurationSeconds)
	}
	if w := c.RecordingReconnectWindowSeconds; w != nil {
		rs.ReconnectWindowSeconds = int(*w)
	}
	// IVS's defaults: INTERVAL, every 60 s, SEQUENTIAL.
	th := api.ParticipantThumbnailConfiguration{}
	if c.ThumbnailConfiguration != nil {
		th = *c.ThumbnailConfiguration
	}
	if api.Val(th.RecordingMode) != api.ThumbnailRecordingModeDisabled {
		rs.ThumbnailIntervalSeconds = 60
		if th.TargetIntervalSeconds != nil {
			rs.ThumbnailIntervalSeconds = int(*th.TargetIntervalSeconds)
		}
		if len(th.Storage) == 0 {
			th.Storage = []string{api.ThumbnailStorageTypeSequential}
		}
		for _, st := range th.Storage {
			rs.ThumbnailSequential = rs.ThumbnailSequential || st == api.ThumbnailStorageTypeSequential
			rs.ThumbnailLatest = rs.ThumbnailLatest || st == api.ThumbnailStorageTypeLatest
		}
	}
	return rs, nil
}

// Errors of Admit. Any other error is the store's: the caller answers it as
// an internal error, not as the token's fault.
var (
	// ErrUnknownKey: the token's kid names neither the server's key nor a
	// public key imported into the stage's account.
	ErrUnknownKey = errors.New("ivs: the token's kid names no key of the stage's account")
)

// Admission is what the service knows about a participant token's claims:
// the key that must have signed it, its stage (nil when it does not exist),
// and whether DisconnectParticipant revoked its participant for good.
type Admission struct {
	Key     *ecdsa.PublicKey
	Stage   *StageInfo
	Revoked bool
	// MaxLifetime is the longest exp − iat a token signed by Key may
	// declare: the operator's limit for self-signed tokens, 0 (the
	// default, 14 days) for the server's own.
	MaxLifetime time.Duration
}

// Admit answers, in one call, everything the media plane asks the service
// to let a participant token in: the key its kid names (the server's own,
// or a public key imported into the stage's account with ImportPublicKey),
// its stage, and the revocation of its participant id. The caller verifies
// the signature with Key before trusting anything else of the answer (a
// missing stage included).
func (s *Service) Admit(ctx context.Context, kid, stageARN, participantID string) (*Admission, error) {
	a := &Admission{}
	sp, ok := parseARN(stageARN)
	if !ok || sp.Kind != kindStage || sp.Region != s.region {
		if kid != s.key.ID {
			return nil, ErrUnknownKey
		}
		a.Key = s.key.Public()
		return a, nil
	}
	if kid == s.key.ID {
		a.Key = s.key.Public()
	} else {
		kp, ok := parseARN(kid)
		if !ok || kp.Kind != kindPublicKey || kp.Account != sp.Account || kp.Region != sp.Region {
			return nil, ErrUnknownKey
		}
		r, err := s.store.GetResource(ctx, kid)
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrUnknownKey
		}
		if err != nil {
			return nil, fmt.Errorf("ivs: reading public key %s: %w", kid, err)
		}
		doc, err := decodeDoc[api.PublicKey](r)
		if err != nil {
			return nil, err
		}
		a.MaxLifetime = s.cfg.SelfSignedTokenMaxLifetime
		if a.Key, err = token.ParsePublicKeyPEM(api.Val(doc.PublicKeyMaterial)); err != nil {
			return nil, fmt.Errorf("ivs: public key %s: %w", kid, err)
		}
	}
	var err error
	if a.Stage, err = s.StageInfo(ctx, stageARN); err != nil {
		return nil, err
	}
	if a.Stage == nil {
		return a, nil
	}
	if a.Revoked, err = s.store.IsParticipantRevoked(ctx, stageARN, participantID); err != nil {
		return nil, fmt.Errorf("ivs: reading revocations of %s: %w", stageARN, err)
	}
	return a, nil
}

// StageInfo is what the media plane needs of a stage, or nil when it does
// not exist. Admit uses it for tokens; participants that publish without
// one (RTMP ingest, replicas) are admitted with it directly.
func (s *Service) StageInfo(ctx context.Context, stageARN string) (*StageInfo, error) {
	sp, ok := parseARN(stageARN)
	if !ok || sp.Kind != kindStage || sp.Region != s.region {
		return nil, nil
	}
	r, err := s.store.GetResource(ctx, stageARN)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ivs: reading stage %s: %w", stageARN, err)
	}
	return s.stageInfo(ctx, r)
}

// stageInfo is what the media plane needs of a stored stage.
func (s *Service) stageInfo(ctx context.Context, r *store.Resource) (*StageInfo, error) {
	sp, _ := parseARN(r.ARN)
	doc, err := decodeDoc[stageDoc](r)
	if err != nil {
		return nil, err
	}
	rec := doc.AutoParticipantRecordingConfiguration
	info := &StageInfo{ARN: r.ARN, ID: sp.ID, Owner: r.Owner, Recording: rec != nil && rec.StorageConfigurationArn != ""}
	if info.Recording {
		if info.RecordingSettings, err = s.recordingSettings(ctx, rec); err != nil {
			return nil, err
		}
		info.RecordingSettings.RecordReplicas = rec.RecordParticipantReplicas == nil || *rec.RecordParticipantReplicas
	}
	return info, nil
}

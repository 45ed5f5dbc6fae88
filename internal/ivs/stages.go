package ivs

import (
	"context"
	"fmt"
	"time"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/store"
	"github.com/rostrum-dev/rostrum/internal/token"
)

// stageDoc is what is stored of a stage: the API's Stage without the members
// that are derived when it is read (endpoints, activeSessionId).
type stageDoc = api.Stage

func (s *Service) CreateStage(ctx context.Context, in *api.CreateStageRequest) (*api.CreateStageResponse, error) {
	if err := s.checkTags(in.Tags); err != nil {
		return nil, err
	}
	for i, c := range in.ParticipantTokenConfigurations {
		if err := checkTokenAttributes(fmt.Sprintf("participantTokenConfigurations.%d.member.attributes", i+1), c.Attributes); err != nil {
			return nil, err
		}
	}
	// CreateStage declares no ResourceNotFoundException.
	rec, refs, err := s.recordingConfig(ctx, in.AutoParticipantRecordingConfiguration, nil, missingIsInvalid)
	if err != nil {
		return nil, err
	}
	id := newID(12)
	doc := &stageDoc{
		Arn:                                   s.arn(ctx, kindStage, id),
		Name:                                  api.Ptr(api.Val(in.Name)),
		Tags:                                  tagsOrEmpty(in.Tags),
		AutoParticipantRecordingConfiguration: rec,
	}
	r := &store.Resource{ARN: doc.Arn, Kind: kindStage, Owner: s.owner(ctx), Refs: refs, Doc: mustJSON(doc)}
	if err := s.create(ctx, r, s.cfg.Quotas.Stages, "stages"); err != nil {
		return nil, err
	}
	out := &api.CreateStageResponse{Stage: s.stageView(doc, r), ParticipantTokens: []api.ParticipantToken{}}
	for _, c := range in.ParticipantTokenConfigurations {
		t, err := s.mintToken(doc.Arn, id, c.Duration, c.UserId, c.Attributes, c.Capabilities)
		if err != nil {
			return nil, s.internal(ctx, err)
		}
		out.ParticipantTokens = append(out.ParticipantTokens, *t)
	}
	return out, nil
}

// recordingConfig validates an autoParticipantRecordingConfiguration and
// fills in IVS's defaults. An absent configuration keeps prev (UpdateStage)
// or is the disabled one; storageConfigurationArn "" disables recording and
// resets the other members.
func (s *Service) recordingConfig(ctx context.Context, in, prev *api.AutoParticipantRecordingConfiguration, missing missingRef) (*api.AutoParticipantRecordingConfiguration, []string, error) {
	if in == nil {
		if prev != nil {
			return prev, refsOf(prev), nil
		}
		in = &api.AutoParticipantRecordingConfiguration{}
	}
	c := *in
	if c.StorageConfigurationArn != "" {
		if _, err := s.getRef(ctx, "autoParticipantRecordingConfiguration.storageConfigurationArn", c.StorageConfigurationArn, kindStorageConfiguration, missing); err != nil {
			return nil, nil, err
		}
	} else {
		c = api.AutoParticipantRecordingConfiguration{StorageConfigurationArn: ""}
	}
	if len(c.MediaTypes) == 0 {
		c.MediaTypes = []string{"AUDIO_VIDEO"}
	}
	th := api.ParticipantThumbnailConfiguration{}
	if c.ThumbnailConfiguration != nil {
		th = *c.ThumbnailConfiguration
	}
	if th.RecordingMode == nil {
		th.RecordingMode = api.Ptr("DISABLED")
	}
	if th.TargetIntervalSeconds == nil {
		th.TargetIntervalSeconds = api.Ptr(int32(60))
	}
	if len(th.Storage) == 0 {
		th.Storage = []string{"SEQUENTIAL"}
	}
	if hasDuplicates(th.Storage) {
		return nil, nil, api.Validationf("autoParticipantRecordingConfiguration.thumbnailConfiguration.storage: values must be unique.")
	}
	c.ThumbnailConfiguration = &th
	if c.RecordingReconnectWindowSeconds == nil {
		c.RecordingReconnectWindowSeconds = api.Ptr(int32(0))
	}
	if c.HlsConfiguration == nil || c.HlsConfiguration.TargetSegmentDurationSeconds == nil {
		c.HlsConfiguration = &api.ParticipantRecordingHlsConfiguration{TargetSegmentDurationSeconds: api.Ptr(int32(6))}
	}
	if c.RecordParticipantReplicas == nil {
		// The model's default is false, its documentation says true; IVS
		// records replicas unless told not to.
		c.RecordParticipantReplicas = api.Ptr(true)
	}
	return &c, refsOf(&c), nil
}

func refsOf(c *api.AutoParticipantRecordingConfiguration) []string {
	if c == nil || c.StorageConfigurationArn == "" {
		return nil
	}
	return []string{c.StorageConfigurationArn}
}

func hasDuplicates(list []string) bool {
	seen := map[string]bool{}
	for _, v := range list {
		if seen[v] {
			return true
		}
		seen[v] = true
	}
	return false
}

// stageView is the Stage as the API returns it: the stored document plus
// the active session and this server's endpoints.
func (s *Service) stageView(doc *stageDoc, r *store.Resource) *api.Stage {
	v := *doc
	v.Tags = tagsOrEmpty(v.Tags)
	if r.ActiveSessionID != "" {
		v.ActiveSessionId = api.Ptr(r.ActiveSessionID)
	}
	e := s.cfg.Endpoints
	v.Endpoints = &api.StageEndpoints{}
	for _, p := range []struct {
		dst **string
		val string
	}{{&v.Endpoints.Events, e.Events}, {&v.Endpoints.Whip, e.WHIP}, {&v.Endpoints.Rtmp, e.RTMP}, {&v.Endpoints.Rtmps, e.RTMPS}} {
		if p.val != "" {
			*p.dst = api.Ptr(p.val)
		}
	}
	return &v
}

func (s *Service) GetStage(ctx context.Context, in *api.GetStageRequest) (*api.GetStageResponse, error) {
	r, err := s.get(ctx, in.Arn, kindStage, foreignAccessDenied)
	if err != nil {
		return nil, err
	}
	doc, err := decodeDoc[stageDoc](r)
	if err != nil {
		return nil, s.internal(ctx, err)
	}
	return &api.GetStageResponse{Stage: s.stageView(doc, r)}, nil
}

func (s *Service) UpdateStage(ctx context.Context, in *api.UpdateStageRequest) (*api.UpdateStageResponse, error) {
	if _, err := s.get(ctx, in.Arn, kindStage, foreignAccessDenied); err != nil {
		return nil, err
	}
	// Validate the new recording configuration before the update: the
	// update's callback must not call the store.
	var rec *api.AutoParticipantRecordingConfiguration
	var refs []string
	if in.AutoParticipantRecordingConfiguration != nil {
		var err error
		if rec, refs, err = s.recordingConfig(ctx, in.AutoParticipantRecordingConfiguration, nil, missingIsNotFound); err != nil {
			return nil, err
		}
	}
	var doc *stageDoc
	r, err := s.store.UpdateResource(ctx, in.Arn, func(r *store.Resource) error {
		var err error
		if doc, err = decodeDoc[stageDoc](r); err != nil {
			return err
		}
		if in.Name != nil {
			doc.Name = in.Name
		}
		if rec != nil {
			if r.ActiveSessionID != "" && recordingEnabled(doc.AutoParticipantRecordingConfiguration) {
				return api.Conflictf("autoParticipantRecordingConfiguration cannot be changed while stage %s has an active session with recording.", in.Arn)
			}
			doc.AutoParticipantRecordingConfiguration = rec
			r.Refs = refs
		}
		r.Doc = mustJSON(doc)
		return nil
	})
	if err != nil {
		return nil, s.storeErr(ctx, err, in.Arn)
	}
	return &api.UpdateStageResponse{Stage: s.stageView(doc, r)}, nil
}

func recordingEnabled(c *api.AutoParticipantRecordingConfiguration) bool {
	return c != nil && c.StorageConfigurationArn != ""
}

func (s *Service) DeleteStage(ctx context.Context, in *api.DeleteStageRequest) (*api.DeleteStageResponse, error) {
	if _, err := s.get(ctx, in.Arn, kindStage, foreignAccessDenied); err != nil {
		return nil, err
	}
	err := s.store.DeleteResource(ctx, in.Arn, func(r *store.Resource, referrers []*store.Resource) error {
		// Before the delete commits: a write of the stage's activity that
		// lands after it would fail for a reason that is no fault.
		if s.media != nil {
			s.media.StageDeleting(in.Arn)
		}
		return nil
	})
	if err != nil {
		return nil, s.storeErr(ctx, err, in.Arn)
	}
	// IVS disconnects everyone and detaches ingest configurations from a
	// deleted stage.
	if s.media != nil {
		s.media.StageDeleted(ctx, in.Arn)
	}
	s.detachIngestConfigurations(ctx, in.Arn)
	// A deleted stage's compositions end (STOPPED).
	s.stopStageCompositions(ctx, in.Arn)
	return &api.DeleteStageResponse{}, nil
}

func (s *Service) ListStages(ctx context.Context, in *api.ListStagesRequest) (*api.ListStagesResponse, error) {
	after, err := parsePageToken("ListStages", in.NextToken)
	if err != nil {
		return nil, err
	}
	limit := pageSize(in.MaxResults, 50)
	rows, err := s.store.ListResources(ctx, store.ResourceQuery{Kind: kindStage, Owner: s.owner(ctx), Page: store.Page{After: after, Limit: limit}})
	if err != nil {
		return nil, s.internal(ctx, err)
	}
	rows, next := pageOf("ListStages", rows, limit, func(r *store.Resource) int64 { return r.Seq })
	out := &api.ListStagesResponse{Stages: []api.StageSummary{}, NextToken: next}
	for _, r := range rows {
		doc, err := decodeDoc[stageDoc](r)
		if err != nil {
			return nil, s.internal(ctx, err)
		}
		sum := api.StageSummary{Arn: doc.Arn, Name: doc.Name, Tags: tagsOrEmpty(doc.Tags)}
		if r.ActiveSessionID != "" {
			sum.ActiveSessionId = api.Ptr(r.ActiveSessionID)
		}
		out.Stages = append(out.Stages, sum)
	}
	return out, nil
}

func (s *Service) CreateParticipantToken(ctx context.Context, in *api.CreateParticipantTokenRequest) (*api.CreateParticipantTokenResponse, error) {
	if err := checkTokenAttributes("attributes", in.Attributes); err != nil {
		return nil, err
	}
	r, err := s.get(ctx, in.StageArn, kindStage, foreignAccessDenied)
	if err != nil {
		return nil, err
	}
	p, _ := parseARN(r.ARN)
	t, err := s.mintToken(r.ARN, p.ID, in.Duration, in.UserId, in.Attributes, in.Capabilities)
	if err != nil {
		return nil, s.internal(ctx, err)
	}
	return &api.CreateParticipantTokenResponse{ParticipantToken: t}, nil
}

// checkTokenAttributes enforces IVS's documented 1 KB limit on the total
// size of a token's attributes (keys and values, in bytes).
func checkTokenAttributes(field string, attrs map[string]string) error {
	n := 0
	for k, v := range attrs {
		n += len(k) + len(v)
	}
	if n > maxTokenAttributesBytes {
		return api.Validationf("%s: attributes may total at most %d bytes of keys and values, got %d.", field, maxTokenAttributesBytes, n)
	}
	return nil
}

// mintToken signs a participant token with IVS's claims.
func (s *Service) mintToken(stageARN, stageID string, duration *int32, userID *string, attrs map[string]string, caps []string) (*api.ParticipantToken, error) {
	mins := int32(defaultTokenDurationMins)
	if duration != nil {
		mins = *duration
	}
	if caps == nil {
		caps = []string{"PUBLISH", "SUBSCRIBE"}
	}
	var c token.Capabilities
	for _, cp := range caps {
		switch cp {
		case "PUBLISH":
			c.Publish = true
		case "SUBSCRIBE":
			c.Subscribe = true
		}
	}
	now := s.now().UTC().Truncate(time.Second)
	exp := now.Add(time.Duration(mins) * time.Minute)
	pid := newID(12)
	raw, err := s.key.Sign(token.Claims{
		ExpiresAt:     exp.Unix(),
		IssuedAt:      now.Unix(),
		ParticipantID: pid,
		Resource:      stageARN,
		Topic:         stageID,
		EventsURL:     s.cfg.Endpoints.Events,
		WhipURL:       s.cfg.Endpoints.WHIP,
		UserID:        api.Val(userID),
		Attributes:    attrs,
		Capabilities:  c,
		Version:       "0.0",
	})
	if err != nil {
		return nil, err
	}
	t := &api.ParticipantToken{
		ParticipantId:  api.Ptr(pid),
		Token:          api.Ptr(raw),
		UserId:         userID,
		Duration:       api.Ptr(mins),
		Capabilities:   caps,
		ExpirationTime: &exp,
		Attributes:     attrs,
	}
	return t, nil
}

package ivs

import (
	"context"
	"errors"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/store"
)

// ingestDoc is a stored ingest configuration: the API document plus the one
// creation setting the API never returns.
type ingestDoc struct {
	api.IngestConfiguration
	InsecureIngest bool `json:"rostrum:insecureIngest,omitempty"`
	// Node is the node whose RTMP listener holds the stream while the
	// configuration is ACTIVE (ingestlive.go).
	Node string `json:"rostrum:node,omitempty"`
}

const (
	ingestActive   = "ACTIVE"
	ingestInactive = "INACTIVE"
)

func (s *Service) CreateIngestConfiguration(ctx context.Context, in *api.CreateIngestConfigurationRequest) (*api.CreateIngestConfigurationResponse, error) {
	if err := s.checkTags(in.Tags); err != nil {
		return nil, err
	}
	insecure := api.Val(in.InsecureIngest)
	if in.IngestProtocol == "RTMP" && !insecure {
		return nil, api.Validationf("insecureIngest: must be true when ingestProtocol is RTMP.")
	}
	if err := checkTokenAttributes("attributes", in.Attributes); err != nil {
		return nil, err
	}
	stageARN := api.Val(in.StageArn)
	if stageARN != "" {
		// CreateIngestConfiguration declares no ResourceNotFoundException.
		if _, err := s.getRef(ctx, "stageArn", stageARN, kindStage, missingIsInvalid); err != nil {
			return nil, err
		}
	}
	id := newID(12)
	doc := &ingestDoc{InsecureIngest: insecure}
	doc.IngestConfiguration = api.IngestConfiguration{
		Arn:             s.arn(ctx, kindIngestConfiguration, id),
		Name:            api.Ptr(api.Val(in.Name)),
		IngestProtocol:  in.IngestProtocol,
		StageArn:        stageARN,
		ParticipantId:   newID(12),
		State:           ingestInactive,
		UserId:          api.Ptr(api.Val(in.UserId)),
		Attributes:      in.Attributes,
		RedundantIngest: api.Ptr(api.Val(in.RedundantIngest)),
		Tags:            tagsOrEmpty(in.Tags),
	}
	doc.StreamKey = s.streamKey(ctx, id)
	if api.Val(in.RedundantIngest) {
		doc.RedundantIngestCredentials = s.redundantCredentials(ctx, id)
	}
	r := &store.Resource{ARN: doc.Arn, Kind: kindIngestConfiguration, Owner: s.owner(ctx), State: doc.State, Refs: stageRefs(stageARN), Doc: mustJSON(doc)}
	if err := s.create(ctx, r, s.cfg.Quotas.IngestConfigurations, "ingest configurations"); err != nil {
		return nil, err
	}
	return &api.CreateIngestConfigurationResponse{IngestConfiguration: doc.view()}, nil
}

// view is the ingest configuration as the API shows it: as AWS answers,
// userId and tags are present when empty ("" and {}), for documents stored
// before Rostrum wrote them so too.
func (d *ingestDoc) view() *api.IngestConfiguration {
	v := d.IngestConfiguration
	v.UserId = api.Ptr(api.Val(v.UserId))
	v.Tags = tagsOrEmpty(v.Tags)
	return &v
}

// streamKey has IVS's form rt_{account}_{region}_{id}_{secret}.
func (s *Service) streamKey(ctx context.Context, id string) string {
	return "rt_" + s.account(ctx) + "_" + s.region + "_" + id + "_" + newID(32)
}

// redundantCredentials are the participant id and stream key of the second
// (redundant) ingest path.
func (s *Service) redundantCredentials(ctx context.Context, id string) []api.RedundantIngestCredential {
	return []api.RedundantIngestCredential{{ParticipantId: api.Ptr(newID(12)), StreamKey: api.Ptr(s.streamKey(ctx, id))}}
}

func stageRefs(stageARN string) []string {
	if stageARN == "" {
		return nil
	}
	return []string{stageARN}
}

func (s *Service) GetIngestConfiguration(ctx context.Context, in *api.GetIngestConfigurationRequest) (*api.GetIngestConfigurationResponse, error) {
	r, err := s.get(ctx, in.Arn, kindIngestConfiguration, foreignAccessDenied)
	if err != nil {
		return nil, err
	}
	doc, err := decodeDoc[ingestDoc](r)
	if err != nil {
		return nil, s.internal(ctx, err)
	}
	return &api.GetIngestConfigurationResponse{IngestConfiguration: doc.view()}, nil
}

func (s *Service) UpdateIngestConfiguration(ctx context.Context, in *api.UpdateIngestConfigurationRequest) (*api.UpdateIngestConfigurationResponse, error) {
	if _, err := s.get(ctx, in.Arn, kindIngestConfiguration, foreignAccessDenied); err != nil {
		return nil, err
	}
	if in.StageArn != nil && *in.StageArn != "" {
		if _, err := s.getRef(ctx, "stageArn", *in.StageArn, kindStage, missingIsNotFound); err != nil {
			return nil, err
		}
	}
	var doc *ingestDoc
	_, err := s.store.UpdateResource(ctx, in.Arn, func(r *store.Resource) error {
		var err error
		if doc, err = decodeDoc[ingestDoc](r); err != nil {
			return err
		}
		if doc.State == ingestActive {
			return api.Conflictf("Ingest configuration %s is ACTIVE (a publisher is connected) and cannot be updated.", in.Arn)
		}
		if in.StageArn != nil {
			doc.StageArn = *in.StageArn
			r.Refs = stageRefs(doc.StageArn)
		}
		if in.RedundantIngest != nil && *in.RedundantIngest != api.Val(doc.RedundantIngest) {
			doc.RedundantIngest = in.RedundantIngest
			doc.RedundantIngestCredentials = nil
			if *in.RedundantIngest {
				p, _ := parseARN(in.Arn)
				doc.RedundantIngestCredentials = s.redundantCredentials(ctx, p.ID)
			}
		}
		r.Doc = mustJSON(doc)
		return nil
	})
	if err != nil {
		return nil, s.storeErr(ctx, err, in.Arn)
	}
	return &api.UpdateIngestConfigurationResponse{IngestConfiguration: doc.view()}, nil
}

func (s *Service) DeleteIngestConfiguration(ctx context.Context, in *api.DeleteIngestConfigurationRequest) (*api.DeleteIngestConfigurationResponse, error) {
	if _, err := s.get(ctx, in.Arn, kindIngestConfiguration, foreignAccessDenied); err != nil {
		return nil, err
	}
	var live *ingestDoc
	err := s.store.DeleteResource(ctx, in.Arn, func(r *store.Resource, _ []*store.Resource) error {
		if r.State == ingestActive && !api.Val(in.Force) {
			return api.Conflictf("Ingest configuration %s is ACTIVE; pass force=true to disconnect its publisher and delete it.", in.Arn)
		}
		if r.State == ingestActive {
			live, _ = decodeDoc[ingestDoc](r)
		}
		return nil
	})
	if err != nil {
		return nil, s.storeErr(ctx, err, in.Arn)
	}
	// force: the publisher streaming with the deleted key is disconnected.
	if live != nil && live.StageArn != "" && s.media != nil {
		pids := []string{live.ParticipantId}
		for _, c := range live.RedundantIngestCredentials {
			pids = append(pids, api.Val(c.ParticipantId))
		}
		for _, pid := range pids {
			if err := s.media.DisconnectParticipant(ctx, live.StageArn, pid, "the ingest configuration was deleted"); err != nil {
				s.log.ErrorContext(ctx, "disconnecting the publisher of a deleted ingest configuration", "arn", in.Arn, "err", err)
			}
		}
	}
	return &api.DeleteIngestConfigurationResponse{}, nil
}

func (s *Service) ListIngestConfigurations(ctx context.Context, in *api.ListIngestConfigurationsRequest) (*api.ListIngestConfigurationsResponse, error) {
	if in.FilterByStageArn != nil && in.FilterByState != nil {
		return nil, api.Validationf("Only one of filterByStageArn or filterByState may be given.")
	}
	// Filtering by another account's stage is refused as ListStageSessions
	// and ListParticipants refuse it; a stage of one's own that does not
	// exist (any more) just matches nothing.
	if in.FilterByStageArn != nil {
		if err := s.ownStage(ctx, *in.FilterByStageArn); err != nil {
			return nil, err
		}
	}
	q := store.ResourceQuery{Kind: kindIngestConfiguration, Ref: api.Val(in.FilterByStageArn), State: api.Val(in.FilterByState)}
	out := &api.ListIngestConfigurationsResponse{IngestConfigurations: []api.IngestConfigurationSummary{}}
	next, err := listDocs(ctx, s, "ListIngestConfigurations", q, in.NextToken, in.MaxResults, 50,
		func(d *ingestDoc, _ *store.Resource) {
			out.IngestConfigurations = append(out.IngestConfigurations, api.IngestConfigurationSummary{
				Arn: d.Arn, Name: d.Name, IngestProtocol: d.IngestProtocol, StageArn: d.StageArn,
				ParticipantId: d.ParticipantId, State: d.State, UserId: api.Ptr(api.Val(d.UserId)), RedundantIngest: d.RedundantIngest,
			})
		})
	out.NextToken = next
	return out, err
}

// detachIngestConfigurations clears the stage of every ingest configuration
// that pointed at a deleted stage, as IVS does.
func (s *Service) detachIngestConfigurations(ctx context.Context, stageARN string) {
	s.detachIngest(ctx, stageARN, func(*ingestDoc) bool { return true })
}

// detachIngest clears the stage of the ingest configurations of stageARN
// that which selects.
func (s *Service) detachIngest(ctx context.Context, stageARN string, which func(*ingestDoc) bool) {
	rows, err := s.store.ListResources(ctx, store.ResourceQuery{Kind: kindIngestConfiguration, Owner: s.owner(ctx), Ref: stageARN, Page: store.Page{Limit: 1 << 20}})
	if err != nil {
		s.log.ErrorContext(ctx, "list ingest configurations of a stage", "stage", stageARN, "err", err)
		return
	}
	for _, row := range rows {
		_, err := s.store.UpdateResource(ctx, row.ARN, func(r *store.Resource) error {
			doc, err := decodeDoc[ingestDoc](r)
			if err != nil {
				return err
			}
			if doc.StageArn != stageARN || !which(doc) {
				return errNoChange
			}
			doc.StageArn = ""
			r.Refs = nil
			r.Doc = mustJSON(doc)
			return nil
		})
		if err != nil && !errors.Is(err, errNoChange) && !errors.Is(err, store.ErrNotFound) {
			s.log.ErrorContext(ctx, "detach ingest configuration", "arn", row.ARN, "err", err)
		}
	}
}

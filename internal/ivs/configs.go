package ivs

import (
	"context"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/store"
)

// maxEncoderPixels is IVS's documented limit on width × height (1920×1080).
const maxEncoderPixels = 2073600

func (s *Service) CreateEncoderConfiguration(ctx context.Context, in *api.CreateEncoderConfigurationRequest) (*api.CreateEncoderConfigurationResponse, error) {
	if err := s.checkTags(in.Tags); err != nil {
		return nil, err
	}
	v := api.Video{Width: api.Ptr(int32(1280)), Height: api.Ptr(int32(720)), Framerate: api.Ptr(float32(30)), Bitrate: api.Ptr(int32(2500000))}
	if in.Video != nil {
		if in.Video.Width != nil {
			v.Width = in.Video.Width
		}
		if in.Video.Height != nil {
			v.Height = in.Video.Height
		}
		if in.Video.Framerate != nil {
			v.Framerate = in.Video.Framerate
		}
		if in.Video.Bitrate != nil {
			v.Bitrate = in.Video.Bitrate
		}
	}
	if *v.Width%2 != 0 {
		return nil, api.Validationf("video.width: must be an even number, got %d.", *v.Width)
	}
	if *v.Height%2 != 0 {
		return nil, api.Validationf("video.height: must be an even number, got %d.", *v.Height)
	}
	if px := int64(*v.Width) * int64(*v.Height); px > maxEncoderPixels {
		return nil, api.Validationf("video: width × height must be at most %d pixels (1920x1080 or 1080x1920), got %dx%d.", maxEncoderPixels, *v.Width, *v.Height)
	}
	doc := &api.EncoderConfiguration{
		Arn:   s.arn(ctx, kindEncoderConfiguration, newID(12)),
		Name:  api.Ptr(api.Val(in.Name)),
		Video: &v,
		Tags:  tagsOrEmpty(in.Tags),
	}
	r := &store.Resource{ARN: doc.Arn, Kind: kindEncoderConfiguration, Owner: s.owner(ctx), Doc: mustJSON(doc)}
	if err := s.create(ctx, r, s.cfg.Quotas.EncoderConfigurations, "encoder configurations"); err != nil {
		return nil, err
	}
	return &api.CreateEncoderConfigurationResponse{EncoderConfiguration: doc}, nil
}

func (s *Service) GetEncoderConfiguration(ctx context.Context, in *api.GetEncoderConfigurationRequest) (*api.GetEncoderConfigurationResponse, error) {
	r, err := s.get(ctx, in.Arn, kindEncoderConfiguration, foreignAccessDenied)
	if err != nil {
		return nil, err
	}
	doc, err := decodeDoc[api.EncoderConfiguration](r)
	if err != nil {
		return nil, s.internal(ctx, err)
	}
	doc.Tags = tagsOrEmpty(doc.Tags)
	return &api.GetEncoderConfigurationResponse{EncoderConfiguration: doc}, nil
}

func (s *Service) DeleteEncoderConfiguration(ctx context.Context, in *api.DeleteEncoderConfigurationRequest) (*api.DeleteEncoderConfigurationResponse, error) {
	if err := s.deleteUnreferenced(ctx, in.Arn, kindEncoderConfiguration, "Encoder configuration"); err != nil {
		return nil, err
	}
	return &api.DeleteEncoderConfigurationResponse{}, nil
}

func (s *Service) ListEncoderConfigurations(ctx context.Context, in *api.ListEncoderConfigurationsRequest) (*api.ListEncoderConfigurationsResponse, error) {
	out := &api.ListEncoderConfigurationsResponse{EncoderConfigurations: []api.EncoderConfigurationSummary{}}
	next, err := listDocs(ctx, s, "ListEncoderConfigurations", store.ResourceQuery{Kind: kindEncoderConfiguration}, in.NextToken, in.MaxResults, 100,
		func(d *api.EncoderConfiguration, _ *store.Resource) {
			out.EncoderConfigurations = append(out.EncoderConfigurations, api.EncoderConfigurationSummary{Arn: d.Arn, Name: d.Name, Tags: tagsOrEmpty(d.Tags)})
		})
	out.NextToken = next
	return out, err
}

func (s *Service) CreateStorageConfiguration(ctx context.Context, in *api.CreateStorageConfigurationRequest) (*api.CreateStorageConfigurationResponse, error) {
	if err := s.checkTags(in.Tags); err != nil {
		return nil, err
	}
	doc := &api.StorageConfiguration{
		Arn:  s.arn(ctx, kindStorageConfiguration, newID(12)),
		Name: api.Ptr(api.Val(in.Name)),
		S3:   in.S3,
		Tags: tagsOrEmpty(in.Tags),
	}
	r := &store.Resource{ARN: doc.Arn, Kind: kindStorageConfiguration, Owner: s.owner(ctx), Doc: mustJSON(doc)}
	if err := s.create(ctx, r, s.cfg.Quotas.StorageConfigurations, "storage configurations"); err != nil {
		return nil, err
	}
	return &api.CreateStorageConfigurationResponse{StorageConfiguration: doc}, nil
}

func (s *Service) GetStorageConfiguration(ctx context.Context, in *api.GetStorageConfigurationRequest) (*api.GetStorageConfigurationResponse, error) {
	r, err := s.get(ctx, in.Arn, kindStorageConfiguration, foreignAccessDenied)
	if err != nil {
		return nil, err
	}
	doc, err := decodeDoc[api.StorageConfiguration](r)
	if err != nil {
		return nil, s.internal(ctx, err)
	}
	doc.Tags = tagsOrEmpty(doc.Tags)
	return &api.GetStorageConfigurationResponse{StorageConfiguration: doc}, nil
}

func (s *Service) DeleteStorageConfiguration(ctx context.Context, in *api.DeleteStorageConfigurationRequest) (*api.DeleteStorageConfigurationResponse, error) {
	if err := s.deleteUnreferenced(ctx, in.Arn, kindStorageConfiguration, "Storage configuration"); err != nil {
		return nil, err
	}
	return &api.DeleteStorageConfigurationResponse{}, nil
}

func (s *Service) ListStorageConfigurations(ctx context.Context, in *api.ListStorageConfigurationsRequest) (*api.ListStorageConfigurationsResponse, error) {
	out := &api.ListStorageConfigurationsResponse{StorageConfigurations: []api.StorageConfigurationSummary{}}
	next, err := listDocs(ctx, s, "ListStorageConfigurations", store.ResourceQuery{Kind: kindStorageConfiguration}, in.NextToken, in.MaxResults, 100,
		func(d *api.StorageConfiguration, _ *store.Resource) {
			out.StorageConfigurations = append(out.StorageConfigurations, api.StorageConfigurationSummary{Arn: d.Arn, Name: d.Name, S3: d.S3, Tags: tagsOrEmpty(d.Tags)})
		})
	out.NextToken = next
	return out, err
}

// deleteUnreferenced deletes an encoder or storage configuration unless a
// stage (auto participant recording) or a running composition uses it: IVS
// answers ConflictException then.
func (s *Service) deleteUnreferenced(ctx context.Context, arn, kind, what string) error {
	if _, err := s.get(ctx, arn, kind, foreignAccessDenied); err != nil {
		return err
	}
	err := s.store.DeleteResource(ctx, arn, func(_ *store.Resource, referrers []*store.Resource) error {
		for _, ref := range referrers {
			if ref.Kind == kindComposition && (ref.State == "STOPPED" || ref.State == "FAILED") {
				continue
			}
			return api.Conflictf("%s %s is in use by %s.", what, arn, ref.ARN)
		}
		return nil
	})
	return s.storeErr(ctx, err, arn)
}

// listDocs pages through the caller's resources of q.Kind and hands each
// decoded document to add; it returns the next page's token.
func listDocs[T any](ctx context.Context, s *Service, list string, q store.ResourceQuery, tok *string, max *int32, def int, add func(*T, *store.Resource)) (*string, error) {
	after, err := parsePageToken(list, tok)
	if err != nil {
		return nil, err
	}
	q.Owner = s.owner(ctx)
	q.Page = store.Page{After: after, Limit: pageSize(max, def)}
	rows, err := s.store.ListResources(ctx, q)
	if err != nil {
		return nil, s.internal(ctx, err)
	}
	rows, next := pageOf(list, rows, q.Limit, func(r *store.Resource) int64 { return r.Seq })
	for _, r := range rows {
		d, err := decodeDoc[T](r)
		if err != nil {
			return nil, s.internal(ctx, err)
		}
		add(d, r)
	}
	return next, nil
}

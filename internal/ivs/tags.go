package ivs

import (
	"context"
	"encoding/json"
	"maps"
	"slices"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/store"
)

// Every resource document keeps its tags in a "tags" member, so tag
// operations work on any resource kind without knowing its shape.

func readTags(r *store.Resource) (map[string]json.RawMessage, map[string]string, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(r.Doc, &doc); err != nil {
		return nil, nil, err
	}
	tags := map[string]string{}
	if raw, ok := doc["tags"]; ok {
		if err := json.Unmarshal(raw, &tags); err != nil {
			return nil, nil, err
		}
	}
	return doc, tags, nil
}

func (s *Service) ListTagsForResource(ctx context.Context, in *api.ListTagsForResourceRequest) (*api.ListTagsForResourceResponse, error) {
	r, err := s.get(ctx, in.ResourceArn, "", foreignNotFound)
	if err != nil {
		return nil, err
	}
	_, tags, err := readTags(r)
	if err != nil {
		return nil, s.internal(ctx, err)
	}
	return &api.ListTagsForResourceResponse{Tags: tags}, nil
}

func (s *Service) TagResource(ctx context.Context, in *api.TagResourceRequest) (*api.TagResourceResponse, error) {
	if err := checkTagKeys(maps.Keys(in.Tags)); err != nil {
		return nil, err
	}
	return &api.TagResourceResponse{}, s.updateTags(ctx, in.ResourceArn, func(tags map[string]string) {
		for k, v := range in.Tags {
			tags[k] = v
		}
	})
}

func (s *Service) UntagResource(ctx context.Context, in *api.UntagResourceRequest) (*api.UntagResourceResponse, error) {
	// AWS's own tags can be neither set nor removed.
	if err := checkTagKeys(slices.Values(in.TagKeys)); err != nil {
		return nil, err
	}
	return &api.UntagResourceResponse{}, s.updateTags(ctx, in.ResourceArn, func(tags map[string]string) {
		for _, k := range in.TagKeys {
			delete(tags, k)
		}
	})
}

func (s *Service) updateTags(ctx context.Context, arn string, change func(map[string]string)) error {
	if _, err := s.get(ctx, arn, "", foreignNotFound); err != nil {
		return err
	}
	_, err := s.store.UpdateResource(ctx, arn, func(r *store.Resource) error {
		doc, tags, err := readTags(r)
		if err != nil {
			return err
		}
		change(tags)
		if err := s.checkTagCount(tags); err != nil {
			return err
		}
		doc["tags"] = mustJSON(tags)
		r.Doc = mustJSON(doc)
		return nil
	})
	return s.storeErr(ctx, err, arn)
}

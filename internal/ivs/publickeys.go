package ivs

import (
	"context"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/store"
	"github.com/rostrum-dev/rostrum/internal/token"
)

func (s *Service) ImportPublicKey(ctx context.Context, in *api.ImportPublicKeyRequest) (*api.ImportPublicKeyResponse, error) {
	if err := s.checkTags(in.Tags); err != nil {
		return nil, err
	}
	pub, err := token.ParsePublicKeyPEM(in.PublicKeyMaterial)
	if err != nil {
		return nil, api.Validationf("%v", err) // the message names publicKeyMaterial
	}
	fp := token.Fingerprint(pub)
	// The same key imported twice would make "which key signed this token"
	// ambiguous; IVS refuses it with ConflictException.
	existing, err := s.store.ListResources(ctx, store.ResourceQuery{Kind: kindPublicKey, Owner: s.owner(ctx), Page: store.Page{Limit: 1 << 20}})
	if err != nil {
		return nil, s.internal(ctx, err)
	}
	for _, r := range existing {
		d, err := decodeDoc[api.PublicKey](r)
		if err != nil {
			return nil, s.internal(ctx, err)
		}
		if api.Val(d.Fingerprint) == fp {
			return nil, api.Conflictf("This public key is already imported as %s.", api.Val(d.Arn))
		}
	}
	doc := &api.PublicKey{
		Arn:               api.Ptr(s.arn(ctx, kindPublicKey, newID(12))),
		Name:              api.Ptr(api.Val(in.Name)),
		PublicKeyMaterial: api.Ptr(in.PublicKeyMaterial),
		Fingerprint:       api.Ptr(fp),
		Tags:              tagsOrEmpty(in.Tags),
	}
	r := &store.Resource{ARN: *doc.Arn, Kind: kindPublicKey, Owner: s.owner(ctx), Doc: mustJSON(doc)}
	if err := s.create(ctx, r, s.cfg.Quotas.PublicKeys, "public keys"); err != nil {
		return nil, err
	}
	return &api.ImportPublicKeyResponse{PublicKey: doc}, nil
}

func (s *Service) GetPublicKey(ctx context.Context, in *api.GetPublicKeyRequest) (*api.GetPublicKeyResponse, error) {
	r, err := s.get(ctx, in.Arn, kindPublicKey, foreignAccessDenied)
	if err != nil {
		return nil, err
	}
	doc, err := decodeDoc[api.PublicKey](r)
	if err != nil {
		return nil, s.internal(ctx, err)
	}
	doc.Tags = tagsOrEmpty(doc.Tags)
	return &api.GetPublicKeyResponse{PublicKey: doc}, nil
}

func (s *Service) DeletePublicKey(ctx context.Context, in *api.DeletePublicKeyRequest) (*api.DeletePublicKeyResponse, error) {
	if _, err := s.get(ctx, in.Arn, kindPublicKey, foreignAccessDenied); err != nil {
		return nil, err
	}
	if err := s.store.DeleteResource(ctx, in.Arn, nil); err != nil {
		return nil, s.storeErr(ctx, err, in.Arn)
	}
	return &api.DeletePublicKeyResponse{}, nil
}

func (s *Service) ListPublicKeys(ctx context.Context, in *api.ListPublicKeysRequest) (*api.ListPublicKeysResponse, error) {
	out := &api.ListPublicKeysResponse{PublicKeys: []api.PublicKeySummary{}}
	next, err := listDocs(ctx, s, "ListPublicKeys", store.ResourceQuery{Kind: kindPublicKey}, in.NextToken, in.MaxResults, 50,
		func(d *api.PublicKey, _ *store.Resource) {
			out.PublicKeys = append(out.PublicKeys, api.PublicKeySummary{Arn: d.Arn, Name: d.Name, Tags: tagsOrEmpty(d.Tags)})
		})
	out.NextToken = next
	return out, err
}

package ivs

import (
	"context"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
)

// These operations need server-side composition, which Rostrum does not
// have yet. They answer
// NotImplementedException (HTTP 501) rather than a success that pretends.

func notYet(op string) error {
	return api.NotImplementedf("%s is not available yet in this Rostrum server: it needs a capability that has not been built (see the README's list of operations).", op)
}

func (s *Service) StartComposition(context.Context, *api.StartCompositionRequest) (*api.StartCompositionResponse, error) {
	return nil, notYet("StartComposition")
}

func (s *Service) StopComposition(context.Context, *api.StopCompositionRequest) (*api.StopCompositionResponse, error) {
	return nil, notYet("StopComposition")
}

func (s *Service) GetComposition(context.Context, *api.GetCompositionRequest) (*api.GetCompositionResponse, error) {
	return nil, notYet("GetComposition")
}

func (s *Service) ListCompositions(context.Context, *api.ListCompositionsRequest) (*api.ListCompositionsResponse, error) {
	return nil, notYet("ListCompositions")
}

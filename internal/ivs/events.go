package ivs

import (
	"context"
	"errors"

	"github.com/rostrum-dev/rostrum/internal/events"
	"github.com/rostrum-dev/rostrum/internal/store"
)

// Events the service publishes (docs/events.md). Participant events and
// session starts and ends are published by the Record* methods with the
// facts they report; compositions and individual participant recordings
// publish theirs through the methods below once those capabilities exist
// (nothing calls them yet).

// prepare makes an event's outbox entries; nil when there is no bus or no
// event.
func (s *Service) prepare(ev *events.Event) *events.Prepared {
	if s.events == nil || ev == nil {
		return nil
	}
	return s.events.Prepare(ev)
}

// userID is a participant's user id for its events, "" if it has none or
// is not recorded.
func (s *Service) userID(ctx context.Context, stageARN, sessionID, participantID string) string {
	p, err := s.store.GetParticipant(ctx, stageARN, sessionID, participantID)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.WarnContext(ctx, "reading a participant for its event", "stage", stageARN, "participant", participantID, "err", err)
		}
		return ""
	}
	return p.UserID
}

// PublishCompositionEvent publishes an "IVS Composition State Change" event
// of a composition (Session Start/End/Failure, Destination
// Start/End/Reconnecting/Failure), ordered with its stage's events.
func (s *Service) PublishCompositionEvent(ctx context.Context, compositionARN string, d events.CompositionStateChange) error {
	if s.events == nil {
		return nil
	}
	return s.events.Publish(ctx, events.NewCompositionStateChange(compositionARN, s.nowMillis(), d))
}

// PublishParticipantRecordingEvent publishes an "IVS Participant Recording
// State Change" event (Recording Start/End/Start Failure/End Failure) of a
// stage.
func (s *Service) PublishParticipantRecordingEvent(ctx context.Context, stageARN string, d events.ParticipantRecordingStateChange) error {
	if s.events == nil {
		return nil
	}
	return s.events.Publish(ctx, events.NewParticipantRecordingStateChange(stageARN, s.nowMillis(), d))
}

package ivs

import (
	"context"
	"errors"
	"sync"
	"time"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/composition"
	"github.com/rostrum-dev/rostrum/internal/events"
	"github.com/rostrum-dev/rostrum/internal/store"
)

// The service is the compositions' composition.Reporter: each state change
// is queued and applied in order by one worker, so that the Manager never
// waits on the store, and a composition's changes land (and their events
// go out) in the order they happened.

var _ composition.Reporter = (*Service)(nil)

// compReport is one queued state change: of the composition when
// destination is "", else of that destination.
type compReport struct {
	arn, destination, state, reason string
	at                              time.Time
}

// reportQueue is an unbounded FIFO drained by at most one goroutine, which
// runs only while there is something to apply.
type reportQueue struct {
	mu      sync.Mutex
	items   []compReport
	running bool
	drained chan struct{} // closed when the running worker finds the queue empty
}

// CompositionState implements composition.Reporter.
func (s *Service) CompositionState(arn, state string, at time.Time, reason string) {
	s.enqueueReport(compReport{arn: arn, state: state, at: at, reason: reason})
}

// DestinationState implements composition.Reporter.
func (s *Service) DestinationState(arn, destinationID, state string, at time.Time, reason string) {
	s.enqueueReport(compReport{arn: arn, destination: destinationID, state: state, at: at, reason: reason})
}

// endComposition ends a composition's record as state (STOPPED or
// FAILED), with its live destinations, through the same queue as the
// compositor's reports.
func (s *Service) endComposition(arn, state, reason string) {
	s.enqueueReport(compReport{arn: arn, state: state, at: s.nowMillis(), reason: reason})
}

func (s *Service) failComposition(arn, reason string) {
	s.endComposition(arn, composition.StateFailed, reason)
}

func (s *Service) enqueueReport(r compReport) {
	if r.at.IsZero() {
		r.at = s.now()
	}
	r.at = r.at.UTC().Truncate(time.Millisecond)
	q := &s.reports
	q.mu.Lock()
	defer q.mu.Unlock()
	q.items = append(q.items, r)
	if !q.running {
		q.running = true
		q.drained = make(chan struct{})
		go s.applyReports()
	}
}

func (s *Service) applyReports() {
	q := &s.reports
	for {
		q.mu.Lock()
		if len(q.items) == 0 {
			q.running = false
			close(q.drained)
			q.mu.Unlock()
			return
		}
		r := q.items[0]
		q.items[0] = compReport{}
		q.items = q.items[1:]
		q.mu.Unlock()
		s.applyReport(r)
	}
}

// FlushCompositionReports waits until every state change reported so far
// is written and its events published: a stopping server calls it after
// its compositions ended, before the event bus closes.
func (s *Service) FlushCompositionReports(ctx context.Context) error {
	q := &s.reports
	q.mu.Lock()
	if !q.running {
		q.mu.Unlock()
		return nil
	}
	ch := q.drained
	q.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errUnchanged aborts an update that would change nothing.
var errUnchanged = errors.New("ivs: unchanged")

// reportWrite bounds one report's store write and event publication.
const reportWrite = 30 * time.Second

func (s *Service) applyReport(r compReport) {
	ctx, cancel := context.WithTimeout(context.Background(), reportWrite)
	defer cancel()
	var evs []events.CompositionStateChange
	_, err := s.store.UpdateResource(ctx, r.arn, func(res *store.Resource) error {
		doc, err := decodeDoc[compositionDoc](res)
		if err != nil {
			return err
		}
		if r.destination == "" {
			evs = applyCompositionState(&doc.Composition, r)
		} else {
			evs = applyDestinationState(&doc.Composition, r)
		}
		if len(evs) == 0 && doc.State == res.State && !changed(res.Doc, doc) {
			return errUnchanged
		}
		res.State = doc.State
		res.Doc = mustJSON(doc)
		return nil
	})
	switch {
	case errors.Is(err, errUnchanged):
		return
	case errors.Is(err, store.ErrNotFound):
		s.log.Warn("a state change of a composition that no longer exists", "composition", r.arn, "destination", r.destination, "state", r.state)
		return
	case err != nil:
		s.log.Error("recording a composition's state", "composition", r.arn, "destination", r.destination, "state", r.state, "err", err)
		return
	}
	s.log.Info("composition state", "composition", r.arn, "destination", r.destination, "state", r.state, "reason", r.reason)
	if s.events == nil {
		return
	}
	for _, d := range evs {
		if err := s.events.Publish(ctx, events.NewCompositionStateChange(r.arn, r.at, d)); err != nil {
			s.log.Error("publishing a composition event", "composition", r.arn, "event", d.EventName, "err", err)
		}
	}
}

func changed(before []byte, doc *compositionDoc) bool {
	return string(before) != string(mustJSON(doc))
}

// applyCompositionState moves a composition to r.state and returns the
// events that makes. An ended composition never changes again; ending one
// ends its destinations first, each with its event, then the session's
// (IVS: "Destination End" for each destination, then "Session End").
func applyCompositionState(c *api.Composition, r compReport) []events.CompositionStateChange {
	if endedState(c.State) || c.State == r.state || r.state == composition.StateStarting {
		return nil
	}
	// A stopping composition only ends.
	if c.State == composition.StateStopping && !endedState(r.state) {
		return nil
	}
	var evs []events.CompositionStateChange
	prev := c.State
	c.State = r.state
	switch r.state {
	case composition.StateActive:
		if prev == composition.StateStarting {
			evs = append(evs, events.CompositionStateChange{EventName: events.CompositionSessionStart, StageARN: c.StageArn})
			// Destinations that started before the session did get their
			// Destination Start now, after Session Start.
			for _, d := range c.Destinations {
				if d.StartTime != nil {
					evs = append(evs, events.CompositionStateChange{EventName: events.CompositionDestinationStart, StageARN: c.StageArn, DestinationID: d.Id})
				}
			}
		}
	case composition.StateStopped, composition.StateFailed:
		for i := range c.Destinations {
			d := &c.Destinations[i]
			if endedState(d.State) {
				continue
			}
			evs = append(evs, endDestination(c.StageArn, d, r.state, r.at, r.reason))
		}
		c.EndTime = &r.at
		if r.state == composition.StateStopped {
			evs = append(evs, events.CompositionStateChange{EventName: events.CompositionSessionEnd, StageARN: c.StageArn})
		} else {
			evs = append(evs, events.CompositionStateChange{EventName: events.CompositionSessionFailure, StageARN: c.StageArn, Reason: r.reason})
		}
	}
	return evs
}

func endDestination(stageARN string, d *api.Destination, state string, at time.Time, reason string) events.CompositionStateChange {
	d.State = state
	d.EndTime = &at
	if state == composition.StateFailed {
		return events.CompositionStateChange{EventName: events.CompositionDestinationFailure, StageARN: stageARN, DestinationID: d.Id, Reason: reason}
	}
	return events.CompositionStateChange{EventName: events.CompositionDestinationEnd, StageARN: stageARN, DestinationID: d.Id}
}

// applyDestinationState moves one destination to r.state and returns the
// event that makes, if any.
func applyDestinationState(c *api.Composition, r compReport) []events.CompositionStateChange {
	if endedState(c.State) {
		return nil
	}
	for i := range c.Destinations {
		d := &c.Destinations[i]
		if d.Id != r.destination {
			continue
		}
		if endedState(d.State) || d.State == r.state || r.state == composition.StateStarting {
			return nil
		}
		if d.State == composition.StateStopping && !endedState(r.state) {
			return nil
		}
		switch r.state {
		case composition.StateActive:
			d.State = r.state
			// Back from RECONNECTING is no new start; a start before the
			// session's is told after Session Start.
			if d.StartTime == nil {
				d.StartTime = &r.at
				if c.State != composition.StateStarting {
					return []events.CompositionStateChange{{EventName: events.CompositionDestinationStart, StageARN: c.StageArn, DestinationID: d.Id}}
				}
			}
		case composition.StateReconnecting:
			d.State = r.state
			return []events.CompositionStateChange{{EventName: events.CompositionDestinationReconnect, StageARN: c.StageArn, DestinationID: d.Id, Reason: r.reason}}
		case composition.StateStopped, composition.StateFailed:
			return []events.CompositionStateChange{endDestination(c.StageArn, d, r.state, r.at, r.reason)}
		default:
			d.State = r.state
		}
		return nil
	}
	return nil
}

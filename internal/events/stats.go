package events

import "sync/atomic"

// SinkStats are one sink's counters.
type SinkStats struct {
	// Sink names the sink as logs and metrics do: SinkConfig.Label, or
	// the sink's own name when it has none.
	Sink string
	// Queued is how many events wait in the outbox.
	Queued int64
	// Enqueued, Delivered: events accepted for and delivered to the sink.
	Enqueued, Delivered int64
	// Failures counts failed attempts (each retried, or dropped if expired).
	Failures int64
	// DroppedQueueFull: events not accepted because the queue was full;
	// DroppedExpired: events given up after Retry.For.
	DroppedQueueFull, DroppedExpired int64
}

// Stats is a snapshot of the bus's counters; the metrics package reads it
// on each scrape.
type Stats struct {
	Published     map[string]int64 // by detail-type
	Sinks         []SinkStats
	StreamClients int64
	// StreamLagged counts stream clients cut off for falling behind.
	StreamLagged int64
}

// Stats returns the bus's counters.
func (b *Bus) Stats() Stats {
	s := Stats{Published: map[string]int64{}, StreamClients: b.live.clients.Load(), StreamLagged: b.live.lagged.Load()}
	b.published.Range(func(k, v any) bool {
		s.Published[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	for _, r := range b.sinks {
		s.Sinks = append(s.Sinks, SinkStats{
			Sink: r.display, Queued: r.depth.Load(), Enqueued: r.enqueued.Load(), Delivered: r.delivered.Load(),
			Failures: r.failures.Load(), DroppedQueueFull: r.droppedFull.Load(), DroppedExpired: r.droppedExpired.Load(),
		})
	}
	return s
}

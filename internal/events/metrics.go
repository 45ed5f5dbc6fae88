package events

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
)

// SinkStats are one sink's counters.
type SinkStats struct {
	Sink string // as logs name it
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

// Stats is a snapshot of the bus's counters.
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

// WriteMetrics writes the counters in the Prometheus text format.
func (b *Bus) WriteMetrics(w io.Writer) error {
	s := b.Stats()
	var out strings.Builder
	metric := func(name, typ, help string) {
		fmt.Fprintf(&out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	metric("rostrum_events_published_total", "counter", "Events the bus accepted, by detail-type.")
	types := make([]string, 0, len(s.Published))
	for t := range s.Published {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		fmt.Fprintf(&out, "rostrum_events_published_total{detail_type=%s} %d\n", label(t), s.Published[t])
	}
	perSink := []struct {
		name, typ, help string
		get             func(SinkStats) int64
		reason          string
	}{
		{"rostrum_events_queued", "gauge", "Events waiting in the outbox for the sink.", func(x SinkStats) int64 { return x.Queued }, ""},
		{"rostrum_events_enqueued_total", "counter", "Events accepted for the sink.", func(x SinkStats) int64 { return x.Enqueued }, ""},
		{"rostrum_events_delivered_total", "counter", "Events delivered to the sink.", func(x SinkStats) int64 { return x.Delivered }, ""},
		{"rostrum_events_delivery_failures_total", "counter", "Failed delivery attempts.", func(x SinkStats) int64 { return x.Failures }, ""},
		{"rostrum_events_dropped_total", "counter", "Events dropped for the sink: queue_full (not accepted: the queue was at --event-queue-max) or expired (not delivered within --event-retry-for).", func(x SinkStats) int64 { return x.DroppedQueueFull }, "queue_full"},
		{"rostrum_events_dropped_total", "", "", func(x SinkStats) int64 { return x.DroppedExpired }, "expired"},
	}
	for _, m := range perSink {
		if m.typ != "" {
			metric(m.name, m.typ, m.help)
		}
		for _, x := range s.Sinks {
			if m.reason != "" {
				fmt.Fprintf(&out, "%s{sink=%s,reason=%s} %d\n", m.name, label(x.Sink), label(m.reason), m.get(x))
			} else {
				fmt.Fprintf(&out, "%s{sink=%s} %d\n", m.name, label(x.Sink), m.get(x))
			}
		}
	}
	metric("rostrum_events_stream_clients", "gauge", "Clients of the live event stream (/v1/events).")
	fmt.Fprintf(&out, "rostrum_events_stream_clients %d\n", s.StreamClients)
	metric("rostrum_events_stream_lagged_total", "counter", "Live stream clients disconnected for falling behind.")
	fmt.Fprintf(&out, "rostrum_events_stream_lagged_total %d\n", s.StreamLagged)
	_, err := io.WriteString(w, out.String())
	return err
}

// MetricsHandler serves WriteMetrics.
func (b *Bus) MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		b.WriteMetrics(w)
	})
}

// label quotes a Prometheus label value.
func label(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(v) + `"`
}

package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rostrum-dev/rostrum/internal/events"
)

// Events registers the event bus's metrics, read from its snapshot on
// each scrape. Sinks are labelled as the bus shows them: a webhook by its
// scheme and host only, never its path, query or credentials.
func (r *Registry) Events(stats func() events.Stats) {
	r.reg.MustRegister(&eventsCollector{stats: stats})
}

var (
	publishedDesc     = desc("events_published_total", "Events the bus accepted, by detail-type.", "detail_type")
	queuedDesc        = desc("events_queued", "Events waiting in the outbox for the sink.", "sink")
	enqueuedDesc      = desc("events_enqueued_total", "Events accepted for the sink.", "sink")
	deliveredDesc     = desc("events_delivered_total", "Events delivered to the sink.", "sink")
	failuresDesc      = desc("events_delivery_failures_total", "Failed delivery attempts.", "sink")
	droppedDesc       = desc("events_dropped_total", "Events dropped for the sink: queue_full (not accepted: the queue was at --event-queue-max) or expired (not delivered within --event-retry-for).", "sink", "reason")
	streamClientsDesc = desc("events_stream_clients", "Clients of the live event stream (/v1/events).")
	streamLaggedDesc  = desc("events_stream_lagged_total", "Live stream clients disconnected for falling behind.")
)

type eventsCollector struct{ stats func() events.Stats }

func (c *eventsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{publishedDesc, queuedDesc, enqueuedDesc, deliveredDesc, failuresDesc, droppedDesc, streamClientsDesc, streamLaggedDesc} {
		ch <- d
	}
}

func (c *eventsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	m := func(d *prometheus.Desc, t prometheus.ValueType, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, t, float64(v), labels...)
	}
	for dt, n := range s.Published {
		m(publishedDesc, prometheus.CounterValue, n, dt)
	}
	for _, x := range s.Sinks {
		m(queuedDesc, prometheus.GaugeValue, x.Queued, x.Sink)
		m(enqueuedDesc, prometheus.CounterValue, x.Enqueued, x.Sink)
		m(deliveredDesc, prometheus.CounterValue, x.Delivered, x.Sink)
		m(failuresDesc, prometheus.CounterValue, x.Failures, x.Sink)
		m(droppedDesc, prometheus.CounterValue, x.DroppedQueueFull, x.Sink, "queue_full")
		m(droppedDesc, prometheus.CounterValue, x.DroppedExpired, x.Sink, "expired")
	}
	m(streamClientsDesc, prometheus.GaugeValue, s.StreamClients)
	m(streamLaggedDesc, prometheus.CounterValue, s.StreamLagged)
}

// Package metrics exposes Rostrum's metrics in Prometheus's format, through
// prometheus/client_golang: the API (requests, latency and errors per
// operation), the media plane (stages, sessions, participants, publishers,
// subscribers, forwarded packets and bytes, NACKs, keyframe requests, loss,
// join time), the store (latency and errors per operation), the event bus
// (per-sink queues, deliveries, drops) and the Go runtime and process.
//
// What the media plane and the event bus count is read on scrape from their
// own snapshots (sfu.Engine.Stats, stage.Manager.Stats, events.Bus.Stats):
// nothing on the packet path calls into this package. Metric names and
// labels are in docs/metrics.md.
package metrics

import (
	"log/slog"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "rostrum"

// Registry holds one server's metrics.
type Registry struct {
	reg *prometheus.Registry
	log *slog.Logger

	// The store's metrics, shared by every store Store wraps.
	storeOnce     sync.Once
	storeDuration *prometheus.HistogramVec
	storeErrors   *prometheus.CounterVec
}

// New returns a registry with the Go runtime's and the process's metrics.
func New(log *slog.Logger) *Registry {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Registry{reg: reg, log: log}
}

// Handler serves the metrics (GET /metrics).
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(r.log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// Gatherer is the registry, for tests and other exporters.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

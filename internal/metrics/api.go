package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// API counts the AWS API's requests; it implements awsapi.Observer.
type API struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}

// API registers and returns the API's metrics.
func (r *Registry) API() *API {
	a := &API{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "api", Name: "requests_total",
			Help: "AWS API requests, by operation (unknown: no operation matched) and HTTP status code.",
		}, []string{"operation", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "api", Name: "request_duration_seconds",
			Help:    "Time to answer an AWS API request, from its arrival to the last byte of the answer written, by operation.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"operation"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "api", Name: "errors_total",
			Help: "AWS API requests answered with an error, by operation and error type (x-amzn-ErrorType, e.g. ValidationException).",
		}, []string{"operation", "error_type"}),
	}
	r.reg.MustRegister(a.requests, a.duration, a.errors)
	return a
}

// ObserveRequest records one answered request; errorType is empty for a
// success. Label values come from the model's operation names and error
// codes, so the series stay few.
func (a *API) ObserveRequest(operation string, status int, errorType string, d time.Duration) {
	a.requests.WithLabelValues(operation, strconv.Itoa(status)).Inc()
	a.duration.WithLabelValues(operation).Observe(d.Seconds())
	if errorType != "" {
		a.errors.WithLabelValues(operation, errorType).Inc()
	}
}

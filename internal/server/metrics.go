package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/rostrum-dev/rostrum/internal/awsapi"
	"github.com/rostrum-dev/rostrum/internal/metrics"
)

// observe connects the API, the media plane and the event bus to the
// registry (the store was wrapped when it was opened).
func (s *Server) observe(reg *metrics.Registry, api *awsapi.Handler) {
	api.Observer = reg.API()
	reg.Media(s.Stages.Stats, s.engine.Stats)
	reg.Events(s.Events.Stats)
	s.metrics = reg
}

// startMetricsListener serves /metrics on --metrics-listen, when set; then
// the main listener does not serve it.
func (s *Server) startMetricsListener(addr string, profiles bool) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return listenError(err, "metrics", "--metrics-listen", addr)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	if profiles { // --pprof
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	s.metricsHTTP = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	s.metricsListener = ln
	go func() {
		if err := s.metricsHTTP.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics listener stopped", "err", err)
		}
	}()
	return nil
}

// MetricsAddr is the metrics listener's address, nil when /metrics is on
// the main listener.
func (s *Server) MetricsAddr() net.Addr {
	if s.metricsListener == nil {
		return nil
	}
	return s.metricsListener.Addr()
}

func (s *Server) stopMetricsListener(ctx context.Context) error {
	if s.metricsHTTP == nil {
		return nil
	}
	return s.metricsHTTP.Shutdown(ctx)
}

// Package server assembles a running Rostrum: the store, the IVS service and
// the HTTP listener that carries the AWS API, health checks and (as they are
// built) the media endpoints.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rostrum-dev/rostrum/internal/awsapi"
	"github.com/rostrum-dev/rostrum/internal/composition"
	"github.com/rostrum-dev/rostrum/internal/config"
	"github.com/rostrum-dev/rostrum/internal/events"
	"github.com/rostrum-dev/rostrum/internal/events/stream"
	"github.com/rostrum-dev/rostrum/internal/ingest"
	"github.com/rostrum-dev/rostrum/internal/ivs"
	"github.com/rostrum-dev/rostrum/internal/metrics"
	"github.com/rostrum-dev/rostrum/internal/objstore"
	"github.com/rostrum-dev/rostrum/internal/recording"
	"github.com/rostrum-dev/rostrum/internal/sfu"
	"github.com/rostrum-dev/rostrum/internal/signal"
	"github.com/rostrum-dev/rostrum/internal/sigv4"
	"github.com/rostrum-dev/rostrum/internal/stage"
	"github.com/rostrum-dev/rostrum/internal/store"
	"github.com/rostrum-dev/rostrum/web"
)

// Server is a running Rostrum.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	listener net.Listener
	http     *http.Server
	store    store.Store
	engine   *sfu.Engine
	Stages   *stage.Manager
	Service  *ivs.Service
	Events   *events.Bus
	// Storage is where recordings are written (OpenStorage).
	Storage objstore.Storage
	// Recordings records the publishers of stages that record.
	Recordings *recording.Manager
	BaseURL    string
	ready      atomic.Bool
	done       chan error
	stopOnce   sync.Once
	stopErr    error

	// Compositions runs the stages' compositions (StartComposition).
	Compositions *composition.Manager

	// housekeeping: heartbeat, dead peers' sessions, retention (nodes.go).
	housekeeping *housekeeping
	unlock       func() // releases the data dir (datadir_unix.go)

	eventStream http.Handler
	// cluster: the nodes sharing this PostgreSQL database (cluster.go);
	// nil on SQLite.
	cluster *clusterNode

	metrics         *metrics.Registry // metrics.go
	metricsHTTP     *http.Server
	metricsListener net.Listener

	// Ingest is the RTMP(S) listeners (ingest.go).
	Ingest *ingest.Server
}

// Start opens the store, binds the listener and starts serving.
func Start(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Server, error) {
	storage, err := OpenStorage(cfg)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	started := false
	defer func() {
		if !started {
			unlock()
		}
	}()
	dbStore, err := openDatabase(ctx, cfg) // database.go
	if err != nil {
		return nil, err
	}
	reg := metrics.New(log)
	st := reg.Store(dbStore)
	node, err := resolveNodeID(ctx, cfg, st)
	if err != nil {
		st.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		st.Close()
		return nil, listenError(err, "HTTP", "--listen", cfg.Listen)
	}
	base := cfg.BaseURL(ln.Addr())
	cn, err := openCluster(ctx, cfg, node, base, log) // cluster.go
	if err != nil {
		ln.Close()
		st.Close()
		return nil, err
	}
	rtmp, err := listenIngest(cfg, base, log, cn) // ingest.go
	if err != nil {
		cn.close(ctx)
		ln.Close()
		st.Close()
		return nil, err
	}
	bus, err := startEventBus(ctx, cfg, st, log, cn.busOptions)
	if err != nil {
		rtmp.Close()
		cn.close(ctx)
		ln.Close()
		st.Close()
		return nil, err
	}
	endpoints := base
	if cfg.Cluster.URL != "" {
		endpoints = cfg.Cluster.URL
	}
	svc, err := ivs.New(ctx, ivs.Config{
		Region:    cfg.Region,
		AccountID: cfg.AccountID,
		Endpoints: ingestEndpoints(signal.Endpoints(endpoints), base, rtmp),
		Quotas:    cfg.Quotas,
		Store:     st,
		Events:    bus,
		NodeID:    node,
		Logger:    log,

		SelfSignedTokenMaxLifetime: cfg.SelfSignedTokenMaxLifetime,
		Channels:                   cfg.Compositions.Channels,
	})
	if err == nil {
		err = closeLeftovers(ctx, svc, log)
	}
	if err != nil {
		rtmp.Close()
		bus.Close()
		cn.close(ctx)
		ln.Close()
		st.Close()
		return nil, err
	}
	engine, err := sfu.NewEngine(sfu.Config{
		UDPPort:         cfg.RTCUDPPort,
		TCPPort:         cfg.RTCTCPPort,
		ListenIP:        cfg.MediaListenIP(),
		PublicIPs:       cfg.PublicIPs(),
		FanoutWorkers:   cfg.RTCFanoutWorkers,
		PionSendPath:    !cfg.RTCDirectSend,
		OneByOne:        !cfg.RTCBatchSends,
		LeanSubscribers: cfg.RTCLean,
		Logger:          log,
	})
	if err != nil {
		bus.Close()
		cn.close(ctx)
		ln.Close()
		st.Close()
		rtmp.Close()
		return nil, engineError(err, cfg.RTCUDPPort, cfg.RTCTCPPort)
	}
	stages := stage.NewManager(stage.Config{
		SessionGrace:   cfg.SessionGrace,
		MaxPublishers:  cfg.MaxPublishers,
		MaxSubscribers: cfg.MaxSubscribers,
		TokenLeeway:    stage.Defaults.TokenLeeway,
		ConnectRate:    cfg.ParticipantConnectRate,
		ConnectBurst:   cfg.ParticipantConnectBurst,
		Logger:         log,
	}, svc, stage.EngineOf(engine))
	svc.SetMediaPlane(cn.attach(bus, stages))
	recordings := recording.NewManager(recording.Config{
		Storage:  storage,
		SpoolDir: filepath.Join(cfg.DataDir, "recording-spool"),
		Logger:   log,
		OnChange: stages.RecordingChanged,
	})
	stages.SetRecorder(recordings)
	// Compositions: the Manager mixes stages (it follows them through the
	// stage layer) and tells the service what happens to each.
	compositions := composition.NewManager(composition.Config{
		Watcher:     stages,
		Reporter:    svc,
		Storage:     storage,
		SpoolDir:    filepath.Join(cfg.DataDir, "composition-spool"),
		Logger:      log,
		IdleTimeout: cfg.Compositions.IdleTimeout,
		RetryWindow: cfg.Compositions.ReconnectWindow,
	})
	svc.SetCompositor(cn.compositor(compositions))
	verifier := &sigv4.Verifier{
		Service:     "ivs",
		Region:      cfg.Region,
		Credentials: []sigv4.Credential{{AccessKeyID: cfg.AccessKeyID, SecretAccessKey: cfg.SecretAccessKey, AccountID: cfg.AccountID}},
	}
	s := &Server{cfg: cfg, log: log, listener: ln, store: st, engine: engine, Stages: stages, Service: svc, BaseURL: base, done: make(chan error, 1), cluster: cn}
	s.Ingest = rtmp
	startIngest(ctx, rtmp, svc, stages, log)
	s.Events = bus
	s.Storage = storage
	s.Recordings = recordings
	s.Compositions = compositions
	log.Info("recording storage", "storage", storage.String())
	// Recordings a killed server left half-written are closed (FAILED,
	// with what had been written) while the server starts serving.
	go func() {
		n, err := recordings.Recover(ctx)
		if err != nil {
			log.Warn("closing recordings left by the previous run", "err", err)
		} else if n > 0 {
			log.Warn("closed recordings left open by the previous run", "recordings", n)
		}
		// And the composite recordings (S3 destinations) it left.
		n, err = compositions.RecoverS3(ctx)
		if err != nil {
			log.Warn("closing composite recordings left by the previous run", "err", err)
		} else if n > 0 {
			log.Warn("closed composite recordings left open by the previous run", "recordings", n)
		}
	}()
	s.eventStream = stream.Handler(bus, stream.Auth{Verifier: verifier, Token: cfg.Events.StreamToken})
	api := awsapi.New(svc, verifier, log)
	s.observe(reg, api)
	if err := s.startMetricsListener(cfg.HTTP.MetricsListen, cfg.HTTP.Pprof); err != nil {
		rtmp.Close()
		stages.Close()
		bus.Close()
		cn.close(ctx)
		engine.Close()
		ln.Close()
		st.Close()
		return nil, err
	}
	// Every request is bounded (a slow body, a slow reader, an idle
	// keep-alive); the events websocket (hijacked) and the live event
	// stream (http.ResponseController) lift the bounds once accepted.
	s.http = &http.Server{
		Handler:           s.routes(api, cn.media(signal.New(stages, log), stages, svc), verifier),
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout(),
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() { s.done <- s.http.Serve(ln) }()
	s.housekeeping = startHousekeeping(cfg, svc, st, log)
	cn.start()
	s.unlock, started = unlock, true
	s.ready.Store(true)
	return s, nil
}

func (s *Server) routes(apiHandler *awsapi.Handler, media http.Handler, verifier *sigv4.Verifier) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		// Ready means the store answers.
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if _, err := s.store.CountResources(ctx, "stage", ""); err != nil {
			http.Error(w, "store unavailable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	// The media endpoints: WHIP publish, subscribe, their resources and the
	// stage events websocket.
	for _, p := range signal.Prefixes {
		mux.Handle(p, media)
	}
	// The live event stream (server-sent events) and, unless
	// --metrics-listen moves them, the metrics.
	mux.Handle("/v1/events", s.eventStream)
	// This node's state and draining (cluster.go).
	mux.Handle("/v1/node", s.nodeAdmin(verifier))
	mux.Handle("/v1/node/", s.nodeAdmin(verifier))
	if s.cfg.HTTP.MetricsListen == "" {
		mux.Handle("GET /metrics", s.metrics.Handler())
	}
	// The browser library (/sdk/), the demo page (/demo/) and, only with
	// --dev-token-endpoint, the development token endpoint (/dev/).
	webOpts := web.Options{Logger: s.log}
	if s.cfg.DevTokenEndpoint {
		webOpts.DevTokens = s.Service
	}
	webHandler := web.New(webOpts)
	for _, p := range web.Paths {
		mux.Handle(p, webHandler)
	}
	// Everything else is the AWS API: its 36 RPC paths, /tags/{arn} and the
	// AWS-shaped answer to anything unknown.
	mux.Handle("/", apiHandler)
	return mux
}

// recordingsShutdown bounds how long a stopping server waits for its open
// recordings to be finished and written.
const recordingsShutdown = 60 * time.Second

// Addr is the bound listener address.
func (s *Server) Addr() net.Addr { return s.listener.Addr() }

// Done reports the serve loop's end.
func (s *Server) Done() <-chan error { return s.done }

// Shutdown stops accepting requests, drains those in flight and closes the
// store.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { s.stopErr = s.shutdown(ctx) })
	return s.stopErr
}

func (s *Server) shutdown(ctx context.Context) error {
	s.ready.Store(false)
	// Compositions end first (STOPPED, their outputs finished), while the
	// stages they follow are still there; they get their own time, as
	// recordings do.
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), recordingsShutdown)
	if err := s.Compositions.Close(cctx); err != nil {
		s.log.Warn("finishing compositions", "err", err)
	}
	ccancel()
	// Participants are told the server is going before the listener stops.
	s.Stages.Close()
	// RTMP streams, cut by the above, finish: their ingest configurations
	// go INACTIVE while the store is open, and no new one is taken.
	s.Ingest.Close()
	// Their stages may go to other nodes at once: they reconnect now.
	s.cluster.releaseLeases(ctx)
	// Open recordings are finished now, whatever their reconnect windows:
	// playlists made VOD, recording-ended.json written, their events in
	// the outbox before the bus closes.
	// They get their own time (ffmpeg ends a run a couple of seconds after
	// its last packet, then the last uploads): the caller's deadline is
	// for draining requests, and a recording cut short is left for the
	// next start to close as failed.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordingsShutdown)
	if err := s.Recordings.Close(rctx); err != nil {
		s.log.Warn("finishing recordings", "err", err)
	}
	cancel()
	err := s.housekeeping.signOff(ctx)
	// The compositions' last state changes are written and their events
	// in the outbox before the bus closes.
	if ferr := s.Service.FlushCompositionReports(ctx); ferr != nil {
		s.log.Warn("writing the compositions' last states", "err", ferr)
	}
	// Then the event bus: what the media plane recorded while closing is
	// in the outbox; live streams end so that the listener can drain.
	s.Events.Close()
	err = errors.Join(err, s.cluster.close(ctx), s.http.Shutdown(ctx), s.stopMetricsListener(ctx))
	if cerr := s.engine.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if cerr := s.store.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	s.unlock()
	return err
}

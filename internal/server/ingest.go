package server

import (
	"context"
	"errors"
	"log/slog"
	"net/url"

	"github.com/rostrum-dev/rostrum/internal/config"
	"github.com/rostrum-dev/rostrum/internal/ingest"
	"github.com/rostrum-dev/rostrum/internal/ivs"
	"github.com/rostrum-dev/rostrum/internal/stage"
)

// listenIngest binds the RTMP and RTMPS listeners (before the service,
// whose GetStage advertises them); the self-signed RTMPS pair, when no
// certificate is given, is made for the public host.
func listenIngest(cfg *config.Config, base string, log *slog.Logger, cn *clusterNode) (*ingest.Server, error) {
	icfg := ingest.Config{RTMPAddr: cfg.RTMPListenAddr(), RTMPSAddr: cfg.RTMPSListenAddr(), Logger: log}
	if cn != nil {
		icfg.Claim = cn.c.Claim
	}
	if icfg.RTMPSAddr != "" {
		certFile, keyFile, generated := cfg.RTMPSKeyPair()
		cert, err := ingest.LoadKeyPair(certFile, keyFile, generated, []string{publicHost(base)})
		if err != nil {
			return nil, err
		}
		icfg.Certificate = cert
	}
	srv, err := ingest.Listen(icfg)
	var le *ingest.ListenError
	if errors.As(err, &le) {
		return nil, listenError(le.Err, "RTMP ingest", le.Flag, le.Addr)
	}
	return srv, err
}

// ingestEndpoints adds the RTMP(S) URLs to GetStage's endpoints.
func ingestEndpoints(e ivs.Endpoints, base string, s *ingest.Server) ivs.Endpoints {
	host := publicHost(base)
	e.RTMP = ingest.Endpoint("rtmp", host, s.RTMPAddr())
	e.RTMPS = ingest.Endpoint("rtmps", host, s.RTMPSAddr())
	return e
}

// startIngest makes the configurations a previous run left ACTIVE
// INACTIVE (their streams died with it) and starts taking streams.
func startIngest(ctx context.Context, s *ingest.Server, svc *ivs.Service, stages *stage.Manager, log *slog.Logger) {
	if n, err := svc.ResetIngestStates(ctx); err != nil {
		log.Warn("resetting the ingest configurations the previous run left ACTIVE", "err", err)
	} else if n > 0 {
		log.Warn("ingest configurations the previous run left ACTIVE are INACTIVE again", "configurations", n)
	}
	s.Serve(svc, stages)
}

// publicHost is the host clients reach the server at.
func publicHost(base string) string {
	u, err := url.Parse(base)
	if err != nil || u.Hostname() == "" {
		return "127.0.0.1"
	}
	return u.Hostname()
}

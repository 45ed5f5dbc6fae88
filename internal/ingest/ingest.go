// Package ingest is Rostrum's RTMP(S) ingest: encoders (OBS, ffmpeg,
// hardware) push H.264 and AAC to rtmp(s)://host:port/app/{streamKey}, and
// the IngestConfiguration that owns the stream key makes them a publishing
// participant of its stage. Video is passed through (repacketized from
// FLV to RTP, never re-encoded); audio is transcoded to Opus by ffmpeg.
//
// The RTMP protocol itself (handshake, chunking, AMF commands, FLV tags)
// is github.com/bluenviron/gortmplib's: a maintained library (MediaMTX's
// RTMP stack, split out) that servers in production use with OBS, ffmpeg
// and hardware encoders, including RTMPS and Enhanced RTMP framing.
// Rostrum uses its server handshake and its message reader, and does its
// own demultiplexing on top of them so that it can refuse a stream for the
// reasons IVS gives before any media is forwarded.
package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rostrum-dev/rostrum/internal/ivs"
	"github.com/rostrum-dev/rostrum/internal/sfu"
	"github.com/rostrum-dev/rostrum/internal/stage"
)

// Service is what ingest asks of the IVS service (*ivs.Service).
type Service interface {
	IngestByStreamKey(ctx context.Context, key string) (*ivs.IngestTarget, error)
	StageInfo(ctx context.Context, stageARN string) (*ivs.StageInfo, error)
	SetIngestState(ctx context.Context, arn string, active bool) error
}

// Stages is what ingest asks of the media plane (*stage.Manager).
type Stages interface {
	PublishLocal(id *stage.Identity, client stage.ClientInfo, tracks []sfu.LocalTrack, opts stage.LocalPublishOptions) (*stage.LocalPublication, error)
	RefuseLocal(id *stage.Identity, client stage.ClientInfo, code string) error
}

// Config configures the listeners.
type Config struct {
	// RTMPAddr and RTMPSAddr are the listeners' addresses ("" = off).
	RTMPAddr, RTMPSAddr string
	// Certificate is the RTMPS listener's (LoadKeyPair).
	Certificate tls.Certificate
	// Claim, on a node of a cluster, makes this node the one that runs a
	// stage, unless another node does (then it names it): an RTMP push
	// cannot be forwarded, so one that reaches another stage's node is
	// refused rather than start a second session of the stage here. Nil:
	// one node, every stage is here.
	Claim func(ctx context.Context, stageARN string) (here bool, node string, err error)
	// FFmpeg is the binary that transcodes AAC to Opus ("" = "ffmpeg" on
	// PATH).
	FFmpeg string
	Logger *slog.Logger
}

// Server is the RTMP and RTMPS listeners and the streams they carry.
type Server struct {
	cfg    Config
	log    *slog.Logger
	rtmp   net.Listener // nil when off
	rtmps  net.Listener
	svc    Service
	stages Stages
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	live   map[string]*stream // by participant id: one stream per stream key
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Listen binds the listeners (so that their addresses are known before
// the service that advertises them starts); Serve starts taking streams.
func Listen(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.FFmpeg == "" {
		cfg.FFmpeg = "ffmpeg"
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "ingest"), ctx: ctx, cancel: cancel,
		live: map[string]*stream{}, conns: map[net.Conn]struct{}{}}
	var err error
	if cfg.RTMPAddr != "" {
		if s.rtmp, err = net.Listen("tcp", cfg.RTMPAddr); err != nil {
			cancel()
			return nil, &ListenError{Flag: "--rtmp-listen", Addr: cfg.RTMPAddr, Err: err}
		}
	}
	if cfg.RTMPSAddr != "" {
		ln, err := net.Listen("tcp", cfg.RTMPSAddr)
		if err != nil {
			if s.rtmp != nil {
				s.rtmp.Close()
			}
			cancel()
			return nil, &ListenError{Flag: "--rtmps-listen", Addr: cfg.RTMPSAddr, Err: err}
		}
		s.rtmps = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cfg.Certificate}, MinVersion: tls.VersionTLS12})
	}
	return s, nil
}

// ListenError is a listener that could not be bound.
type ListenError struct {
	Flag, Addr string
	Err        error
}

func (e *ListenError) Error() string {
	return fmt.Sprintf("ingest: listen on %s (%s): %v", e.Addr, e.Flag, e.Err)
}

func (e *ListenError) Unwrap() error { return e.Err }

// RTMPAddr and RTMPSAddr are the bound addresses (nil when off).
func (s *Server) RTMPAddr() net.Addr  { return addrOf(s.rtmp) }
func (s *Server) RTMPSAddr() net.Addr { return addrOf(s.rtmps) }

func addrOf(ln net.Listener) net.Addr {
	if ln == nil {
		return nil
	}
	return ln.Addr()
}

// Endpoint is the URL GetStage gives for a listener: scheme://host:port/app/
// (the encoder appends the stream key, as with IVS), "" when off.
func Endpoint(scheme, host string, addr net.Addr) string {
	if addr == nil {
		return ""
	}
	_, port, _ := net.SplitHostPort(addr.String())
	return scheme + "://" + net.JoinHostPort(host, port) + "/app/"
}

// Serve starts accepting streams.
func (s *Server) Serve(svc Service, stages Stages) {
	s.svc, s.stages = svc, stages
	for _, l := range []struct {
		ln     net.Listener
		secure bool
	}{{s.rtmp, false}, {s.rtmps, true}} {
		if l.ln == nil {
			continue
		}
		s.log.Info("RTMP ingest listening", "addr", l.ln.Addr().String(), "tls", l.secure)
		s.wg.Add(1)
		go s.accept(l.ln, l.secure)
	}
}

func (s *Server) accept(ln net.Listener, secure bool) {
	defer s.wg.Done()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.log.Warn("RTMP accept", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if !s.track(conn) {
			conn.Close()
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(conn)
			defer conn.Close()
			s.handle(conn, secure)
		}()
	}
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops the listeners, ends every stream (their participants leave,
// their configurations go INACTIVE) and waits for them.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return
	}
	s.closed = true
	conns := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, ln := range []net.Listener{s.rtmp, s.rtmps} {
		if ln != nil {
			ln.Close()
		}
	}
	for _, c := range conns {
		c.Close()
	}
	s.wg.Wait()
	s.cancel()
}

// reserve makes st the stream of its stream key, unless one is live.
func (s *Server) reserve(st *stream) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live[st.target.ParticipantID] != nil {
		return false
	}
	s.live[st.target.ParticipantID] = st
	return true
}

// release forgets st and reports whether it was the last live stream of
// its configuration (a redundant path may still stream).
func (s *Server) release(st *stream) (last bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live[st.target.ParticipantID] == st {
		delete(s.live, st.target.ParticipantID)
	}
	for _, o := range s.live {
		if o.target.ARN == st.target.ARN {
			return false
		}
	}
	return true
}

// Live is the number of streams being forwarded (for tests and metrics).
func (s *Server) Live() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}

// TranscoderPIDs are the process ids of the live streams' ffmpegs (for
// measuring their cost).
func (s *Server) TranscoderPIDs() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var pids []int
	for _, st := range s.live {
		if p := st.transcoderPID(); p > 0 {
			pids = append(pids, p)
		}
	}
	return pids
}

// streamKeyOf takes the stream key out of a publish URL: IVS's form is
// /app/{streamKey}; a query string (some encoders add one) is ignored.
func streamKeyOf(u *url.URL) (string, bool) {
	if u == nil {
		return "", false
	}
	app, key, ok := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if !ok || app != "app" || key == "" || strings.Contains(key, "/") {
		return "", false
	}
	return key, true
}

// protocol names the listener as the API's Participant.protocol does.
func protocol(secure bool) string {
	if secure {
		return "RTMPS"
	}
	return "RTMP"
}

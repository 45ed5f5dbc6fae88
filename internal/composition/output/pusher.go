// Package output sends a composition's encodes to its destinations: a
// Pusher publishes one encode over RTMP(S) to a channel destination's
// server, an HLS writer records one or more encodes as HLS in object
// storage for an S3 destination. Each reads its encode from an flv.Stream
// through its own flv.Reader, so a slow or broken destination never holds
// up the encoder or the other destinations, and reports its state (the
// API's destination states) through a StateFunc.
//
// Both run ffmpeg with -c copy: nothing is decoded or encoded again here
// (but the thumbnails, which decode keyframes only). docs/composition.md,
// "Outputs", says why ffmpeg rather than an RTMP client in Go.
package output

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rostrum-dev/rostrum/internal/composition/flv"
)

// PusherConfig configures a Pusher.
type PusherConfig struct {
	// URL is the rtmp:// or rtmps:// URL, stream key included.
	URL    string
	Source *flv.Stream
	// OnState is told each state change (see StateFunc).
	OnState StateFunc
	// FFmpeg is the binary; "" finds ffmpeg on PATH.
	FFmpeg string
	Logger *slog.Logger
	// RetryWindow is how long a broken connection is tried again before
	// the destination fails: IVS keeps trying for about a minute. Default
	// 60 s.
	RetryWindow time.Duration
	// Backoff is the first wait between attempts, doubling up to
	// MaxBackoff (defaults 500 ms and 5 s).
	Backoff, MaxBackoff time.Duration
	// IOTimeout ends a connection on which nothing can be sent for this
	// long (ffmpeg's rw_timeout; default 10 s): a server that stops
	// reading fails like one that closes.
	IOTimeout time.Duration
	// An rtmps:// server's certificate is verified (the stream key must
	// not go to whoever answers): against CAFile when set (PEM), else the
	// system's trusted authorities. InsecureSkipVerify turns that off, for
	// servers with self-signed certificates one trusts by other means.
	CAFile             string
	InsecureSkipVerify bool
}

// Pusher publishes one encode to an RTMP(S) server for as long as the
// composition runs: one connection, kept across everything the mixer does
// (layout changes go on in the same stream). A broken connection is
// opened again, from the encode's next keyframe, with backoff, until
// RetryWindow has passed without success.
type Pusher struct {
	cfg PusherConfig
	bin string
	log *slog.Logger

	stopCh chan struct{}
	done   chan struct{}

	status   status
	mu       sync.Mutex
	cur      *proc
	stopping bool
}

// ValidateURL accepts the URLs a Pusher can publish to: rtmp:// or
// rtmps://, a host, and a path of an application and a stream key.
func ValidateURL(u string) error {
	p, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("output: invalid RTMP URL: %v", err)
	}
	if p.Scheme != "rtmp" && p.Scheme != "rtmps" {
		return fmt.Errorf("output: RTMP URL %q: the scheme must be rtmp or rtmps", redact(u))
	}
	if p.Host == "" || len(p.Path) < 2 {
		return fmt.Errorf("output: RTMP URL %q needs a host, an application and a stream key", redact(u))
	}
	return nil
}

// redact hides a URL's stream key (its last path segment) for logs and
// reasons: the key is a secret of the channel.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	path := p.Path
	if i := lastSlash(path); i > 0 {
		path = path[:i] + "/****"
	}
	return p.Scheme + "://" + p.Host + path
}

func lastSlash(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return i
		}
	}
	return -1
}

// StartPusher starts publishing; it reports STARTING at once, then ACTIVE
// once the server has accepted the stream and data flows.
func StartPusher(cfg PusherConfig) (*Pusher, error) {
	if err := ValidateURL(cfg.URL); err != nil {
		return nil, err
	}
	if cfg.Source == nil {
		return nil, errors.New("output: a pusher needs a source stream")
	}
	bin, err := findFFmpeg(cfg.FFmpeg)
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OnState == nil {
		cfg.OnState = func(string, string) {}
	}
	if cfg.RetryWindow <= 0 {
		cfg.RetryWindow = time.Minute
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	if cfg.IOTimeout <= 0 {
		cfg.IOTimeout = 10 * time.Second
	}
	p := &Pusher{
		cfg: cfg, bin: bin, log: cfg.Logger.With("component", "composition-output", "rtmp", redact(cfg.URL)),
		stopCh: make(chan struct{}), done: make(chan struct{}),
	}
	p.status = status{what: "rtmp output", log: p.log, onState: cfg.OnState}
	p.set(StateStarting, "")
	go p.loop()
	return p, nil
}

// State returns the current state and, for RECONNECTING and FAILED, why.
func (p *Pusher) State() (state, reason string) { return p.status.get() }

func (p *Pusher) set(state, reason string) { p.status.set(state, reason) }

func (p *Pusher) isStopping() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopping
}

func (p *Pusher) loop() {
	defer close(p.done)
	backoff := p.cfg.Backoff
	var failingSince time.Time
	for {
		active, endOfStream, reason := p.attempt()
		srcErr := p.cfg.Source.Err()
		switch {
		case p.isStopping():
			p.set(StateStopped, "")
			return
		case endOfStream || srcErr == io.EOF:
			// The encode ended (the composition is over): the stream was
			// sent to its end, or as much of it as the server took.
			p.set(StateStopped, "")
			return
		case srcErr != nil:
			p.set(StateFailed, "the encode failed: "+srcErr.Error())
			return
		}
		now := time.Now()
		if active || failingSince.IsZero() {
			failingSince, backoff = now, p.cfg.Backoff
		}
		if now.Sub(failingSince) >= p.cfg.RetryWindow {
			p.set(StateFailed, fmt.Sprintf("could not publish to %s for %s: %s", redact(p.cfg.URL), p.cfg.RetryWindow, reason))
			return
		}
		p.set(StateReconnecting, reason)
		wait := min(backoff, max(0, p.cfg.RetryWindow-now.Sub(failingSince)))
		select {
		case <-p.stopCh:
			p.set(StateStopped, "")
			return
		case <-time.After(wait):
		}
		backoff = min(2*backoff, p.cfg.MaxBackoff)
	}
}

// attempt runs ffmpeg on a new reader until it ends. active reports that
// the server accepted the stream this time; endOfStream that ffmpeg sent
// the whole encode (the stream was closed) and finished cleanly.
func (p *Pusher) attempt() (active, endOfStream bool, reason string) {
	r := p.cfg.Source.NewReader()
	var once sync.Once
	onProgress := func(k, v string) {
		// total_size counts what ffmpeg has written to the server: the
		// connection and the publish succeeded (ffmpeg opens an RTMP output
		// only once the server answered NetStream.Publish.Start).
		if k == "total_size" {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
				once.Do(func() {
					active = true
					p.set(StateActive, "")
				})
			}
		}
	}
	// No -nostdin: standard input is the stream.
	args := []string{"-hide_banner", "-nostats", "-loglevel", "error",
		"-progress", "pipe:1", "-stats_period", "0.5",
	}
	args = append(args, inputArgs...)
	args = append(args,
		"-map", "0", "-c", "copy",
		"-rw_timeout", strconv.FormatInt(p.cfg.IOTimeout.Microseconds(), 10),
	)
	if strings.HasPrefix(p.cfg.URL, "rtmps:") {
		// ffmpeg does not verify TLS peers unless told to.
		if p.cfg.InsecureSkipVerify {
			args = append(args, "-tls_verify", "0")
		} else {
			args = append(args, "-tls_verify", "1")
			if p.cfg.CAFile != "" {
				args = append(args, "-ca_file", p.cfg.CAFile)
			}
		}
	}
	args = append(args,
		"-flvflags", "no_duration_filesize",
		"-f", "flv", p.cfg.URL,
	)
	pr, err := startProc(p.bin, args, "", r, onProgress)
	if err != nil {
		return false, false, err.Error()
	}
	p.mu.Lock()
	p.cur = pr
	stopping := p.stopping
	p.mu.Unlock()
	if stopping {
		_ = r.Close()
	}
	<-pr.done
	p.mu.Lock()
	p.cur = nil
	p.mu.Unlock()
	if pr.err == nil && pr.inErr == io.EOF {
		return active, true, ""
	}
	switch {
	case errors.Is(pr.inErr, flv.ErrSlowReader):
		reason = "the RTMP server does not take the stream as fast as it is made"
	case pr.err != nil:
		reason = pr.exitReason()
	default:
		reason = "the connection ended"
	}
	return active, false, scrub(reason, p.cfg.URL)
}

// scrub removes the URL (and its stream key) from ffmpeg's messages.
func scrub(msg, u string) string {
	return strings.ReplaceAll(msg, u, redact(u))
}

// Stop ends the publish gracefully: the state goes STOPPING, ffmpeg's
// input ends, it sends what it has and closes the stream (FCUnpublish,
// deleteStream), and the state is STOPPED. Past ctx, ffmpeg is killed. Stop returns when the pusher has
// ended.
func (p *Pusher) Stop(ctx context.Context) error {
	p.mu.Lock()
	first := !p.stopping
	p.stopping = true
	cur := p.cur
	state, _ := p.status.get()
	publishing := state == StateActive
	p.mu.Unlock()
	if first {
		p.set(StateStopping, "")
		close(p.stopCh)
		switch {
		case cur == nil:
		case publishing:
			_ = cur.closeInput() // ffmpeg sends what it has and closes the stream
		default:
			cur.kill() // still connecting: nothing to finish
		}
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		p.mu.Lock()
		cur = p.cur
		p.mu.Unlock()
		if cur != nil {
			cur.kill()
		}
		<-p.done
		return ctx.Err()
	}
}

// Done is closed when the pusher has ended (STOPPED or FAILED).
func (p *Pusher) Done() <-chan struct{} { return p.done }

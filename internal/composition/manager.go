package composition

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/rostrum-dev/rostrum/internal/composition/flv"
	"github.com/rostrum-dev/rostrum/internal/composition/output"
	"github.com/rostrum-dev/rostrum/internal/ffmpeg"
	"github.com/rostrum-dev/rostrum/internal/objstore"
)

// IVS's documented rules (IVS-BEHAVIOUR.md §6.1), the defaults of Config.
const (
	// DefaultIdleTimeout: a composition stops 60 s after the last
	// publisher left, or 60 s after its start if nobody published.
	DefaultIdleTimeout = time.Minute
	// DefaultMaxDuration: a composition lives at most 24 hours.
	DefaultMaxDuration = 24 * time.Hour
)

// Config configures a Manager.
type Config struct {
	// FFmpeg is the ffmpeg binary; "" finds it on PATH.
	FFmpeg string
	// Watcher follows stages (the stage layer).
	Watcher StageWatcher
	// Reporter is told every state change.
	Reporter Reporter
	// Storage holds the buckets of S3 destinations.
	Storage objstore.Storage
	// SpoolDir is where HLS is written before it is uploaded.
	SpoolDir string
	Logger   *slog.Logger
	// IdleTimeout, MaxDuration: IVS's rules (defaults above); tests
	// shorten them.
	IdleTimeout time.Duration
	MaxDuration time.Duration
	// RetryWindow is how long a broken RTMP destination is retried before
	// it fails (0: the pusher's default, about a minute).
	RetryWindow time.Duration
	// Preset is x264's preset ("" = veryfast).
	Preset string
}

// Manager runs compositions: each in its own goroutines, processes and
// streams, so that one failing never touches another.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	comps  map[string]*running
	closed bool
	wg     sync.WaitGroup
}

// NewManager returns a manager; nothing runs until Start.
func NewManager(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxDuration <= 0 {
		cfg.MaxDuration = DefaultMaxDuration
	}
	return &Manager{cfg: cfg, log: cfg.Logger, comps: map[string]*running{}}
}

// Start begins a composition; it returns at once, and the Reporter hears
// how it goes (STARTING, then ACTIVE or FAILED, …).
func (m *Manager) Start(spec Spec) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if m.comps[spec.ARN] != nil {
		return fmt.Errorf("composition %s is already running", spec.ARN)
	}
	c := &running{m: m, spec: spec, log: m.log.With("composition", spec.ARN, "stage", spec.StageARN),
		stopc: make(chan string, 1), views: make(chan StageView, 1), destStates: map[string]string{}}
	m.comps[spec.ARN] = c
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		c.run()
		m.mu.Lock()
		delete(m.comps, spec.ARN)
		m.mu.Unlock()
	}()
	return nil
}

// Stop ends a composition gracefully (STOPPING, then STOPPED once its
// outputs are finished); it returns at once.
func (m *Manager) Stop(arn string) error {
	m.mu.Lock()
	c := m.comps[arn]
	m.mu.Unlock()
	if c == nil {
		return ErrNotFound
	}
	c.stop("StopComposition")
	return nil
}

// Running says whether a composition runs here.
func (m *Manager) Running(arn string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.comps[arn] != nil
}

// Stages are the stages of the compositions running here.
func (m *Manager) Stages() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, c := range m.comps {
		out = append(out, c.spec.StageARN)
	}
	return out
}

// Close stops every composition and waits for them to finish (until ctx
// ends).
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	var all []*running
	for _, c := range m.comps {
		all = append(all, c)
	}
	m.mu.Unlock()
	for _, c := range all {
		c.stop("the server is shutting down")
	}
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// running is one composition.
type running struct {
	m    *Manager
	spec Spec
	log  *slog.Logger

	stopc chan string    // why it stops, once
	views chan StageView // the newest view of the stage
	once  sync.Once

	mu         sync.Mutex
	destStates map[string]string
	mx         *mixer
}

func (c *running) mixer() *mixer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mx
}

// destination is an output the composition sends to.
type destination interface {
	Stop(ctx context.Context) error
	Done() <-chan struct{}
}

func (c *running) stop(why string) {
	c.once.Do(func() { c.stopc <- why })
}

func (c *running) report(state, reason string) {
	c.m.cfg.Reporter.CompositionState(c.spec.ARN, state, time.Now(), reason)
}

func (c *running) reportDest(id, state, reason string) {
	c.mu.Lock()
	prev := c.destStates[id]
	if prev == StateStopped || prev == StateFailed || prev == state && state != StateReconnecting {
		c.mu.Unlock()
		return // ended, or no change
	}
	c.destStates[id] = state
	c.mu.Unlock()
	c.m.cfg.Reporter.DestinationState(c.spec.ARN, id, state, time.Now(), reason)
}

// allFailed says whether every destination has failed: the composition
// lives while at least one can still receive.
func (c *running) allFailed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range c.spec.Destinations {
		if c.destStates[d.ID] != StateFailed {
			return false
		}
	}
	return len(c.spec.Destinations) > 0
}

func (c *running) run() {
	c.report(StateStarting, "")
	for _, d := range c.spec.Destinations {
		c.reportDest(d.ID, StateStarting, "")
	}
	bin, err := ffmpeg.Find(c.m.cfg.FFmpeg)
	if err != nil {
		c.fail(err.Error())
		return
	}
	// One encode per encoder configuration, shared by the destinations
	// that name it.
	streams := map[string]*flv.Stream{}
	var outs []encodeOut
	encodeOf := func(e Encoder) *flv.Stream {
		if s := streams[e.ARN]; s != nil {
			return s
		}
		s := flv.NewStream(flv.Options{})
		streams[e.ARN] = s
		outs = append(outs, encodeOut{Encoder: e, W: s})
		return s
	}
	for _, d := range c.spec.Destinations {
		switch {
		case d.Channel != nil:
			encodeOf(d.Channel.Encoder)
		case d.S3 != nil:
			for _, e := range d.S3.Encoders {
				encodeOf(e)
			}
		}
	}
	mx, err := startMixer(mixerConfig{FFmpeg: bin, Layout: c.spec.Layout, Outs: outs, Log: c.log, Preset: c.m.cfg.Preset})
	if err != nil {
		c.fail("the encoder did not start: " + err.Error())
		return
	}
	c.mu.Lock()
	c.mx = mx
	c.mu.Unlock()
	cancelWatch, err := c.m.cfg.Watcher.WatchStage(c.spec.StageARN, func(v StageView) {
		select { // keep only the newest view
		case <-c.views:
		default:
		}
		c.views <- v
	})
	if err != nil {
		mx.close(5 * time.Second)
		c.fail("the stage cannot be followed: " + err.Error())
		return
	}
	var dests []destination
	for _, d := range c.spec.Destinations {
		dst, err := c.startDestination(bin, d, streams)
		if err != nil {
			c.reportDest(d.ID, StateFailed, err.Error())
			continue
		}
		dests = append(dests, dst)
	}
	c.report(StateActive, "")
	c.log.Info("composition started", "destinations", len(c.spec.Destinations), "encodes", len(outs))

	why, failed := c.follow(mx)
	cancelWatch()
	if failed {
		c.log.Warn("composition failing", "reason", why)
	} else {
		c.log.Info("composition stopping", "reason", why)
		c.report(StateStopping, "")
		for _, d := range c.spec.Destinations {
			c.reportDest(d.ID, StateStopping, "")
		}
	}
	// The encoder finishes its streams; the outputs send them to their
	// end and close.
	if err := mx.close(10 * time.Second); err != nil && !failed {
		c.log.Warn("composition encoder", "err", err)
	}
	for _, s := range streams {
		s.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, d := range dests {
		_ = d.Stop(ctx)
	}
	if failed {
		for _, d := range c.spec.Destinations {
			c.reportDest(d.ID, StateFailed, why)
		}
		c.report(StateFailed, why)
		return
	}
	for _, d := range c.spec.Destinations {
		c.reportDest(d.ID, StateStopped, "")
	}
	c.report(StateStopped, "")
	c.log.Info("composition stopped")
}

// follow feeds the stage to the mixer and applies IVS's rules until the
// composition ends; it says why, and whether that is a failure.
func (c *running) follow(mx *mixer) (why string, failed bool) {
	idle := c.m.cfg.IdleTimeout
	idleTimer := time.NewTimer(idle) // nobody in the stage at start: 60 s
	defer idleTimer.Stop()
	maxTimer := time.NewTimer(c.m.cfg.MaxDuration)
	defer maxTimer.Stop()
	check := time.NewTicker(time.Second)
	defer check.Stop()
	publishers := false
	for {
		select {
		case why := <-c.stopc:
			return why, false
		case v := <-c.views:
			if v.Deleted {
				return "the stage was deleted", false
			}
			mx.setView(v)
			now := false
			for _, p := range v.Participants {
				if p.Publishing {
					now = true
				}
			}
			if now && !publishers {
				idleTimer.Stop()
			} else if !now && publishers {
				idleTimer.Reset(idle) // the last publisher left
			}
			publishers = now
		case <-idleTimer.C:
			if !publishers {
				return fmt.Sprintf("no participant published for %s", idle), false
			}
		case <-maxTimer.C:
			return "the composition reached its maximum duration", false
		case <-mx.encoderDone():
			return "the encoder ended: " + errString(mx.enc.wait()), true
		case <-check.C:
			if c.allFailed() {
				return "every destination failed", true
			}
		}
	}
}

func (c *running) startDestination(bin string, d Destination, streams map[string]*flv.Stream) (destination, error) {
	onState := func(state, reason string) { c.reportDest(d.ID, state, reason) }
	switch {
	case d.Channel != nil:
		return output.StartPusher(output.PusherConfig{
			URL: d.Channel.URL, Source: streams[d.Channel.Encoder.ARN], OnState: onState, FFmpeg: bin,
			Logger: c.log, RetryWindow: c.m.cfg.RetryWindow,
		})
	case d.S3 != nil:
		return c.startS3(bin, d, streams, onState)
	}
	return nil, errors.New("a destination needs a channel or an s3 configuration")
}

func (c *running) fail(reason string) {
	c.log.Warn("composition failed", "reason", reason)
	for _, d := range c.spec.Destinations {
		c.reportDest(d.ID, StateFailed, reason)
	}
	c.report(StateFailed, reason)
}

func errString(err error) string {
	if err == nil {
		return "it exited"
	}
	return err.Error()
}

package composition

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/rostrum-dev/rostrum/internal/composition/layout"
)

// mixer turns a stage's publishers into one picture and one sound, at the
// composition's pace, and feeds them to the encoder. The stage tells it
// who publishes (setView); it taps each publisher (input), lays the frame
// out again whenever something changes (a join, a leave, a video that
// stops or changes size, a token's new attributes), and draws the newest
// picture of every participant into its tile once per frame.
type mixer struct {
	bin    string
	lc     layout.Config
	canvas layout.Size
	fps    float64
	log    *slog.Logger

	mu      sync.Mutex
	view    StageView
	source  Source
	inputs  map[string]*input
	frame   layout.Frame
	shown   map[string]bool // the layout's Video flag per participant, to notice changes
	closed  bool
	onMedia func() // the first decoded picture or sound, once

	kickc chan struct{}
	enc   *encoder
	quit  chan struct{}
	wg    sync.WaitGroup
}

type mixerConfig struct {
	FFmpeg  string
	Layout  layout.Config
	Outs    []encodeOut
	Log     *slog.Logger
	Preset  string
	OnMedia func()
}

var errNoEncodes = errors.New("composition: no encode")

// startMixer starts the encoder and the pacing loops; the picture is black
// and the sound silent until setView brings publishers.
func startMixer(cfg mixerConfig) (*mixer, error) {
	if len(cfg.Outs) == 0 {
		return nil, errNoEncodes
	}
	// The canvas is the largest encode; smaller ones are scaled by the
	// encoder. The pace is the highest frame rate.
	canvas, fps := layout.Size{}, 0.0
	for _, o := range cfg.Outs {
		if o.Encoder.Width*o.Encoder.Height > canvas.Width*canvas.Height {
			canvas = layout.Size{Width: o.Encoder.Width, Height: o.Encoder.Height}
		}
		fps = max(fps, o.Encoder.Framerate)
	}
	if cfg.Preset == "" {
		cfg.Preset = x264Preset
	}
	enc, err := startEncoder(cfg.FFmpeg, canvas, fps, cfg.Outs, cfg.Preset)
	if err != nil {
		return nil, err
	}
	mx := &mixer{bin: cfg.FFmpeg, lc: cfg.Layout, canvas: canvas, fps: fps, log: cfg.Log, enc: enc,
		inputs: map[string]*input{}, shown: map[string]bool{}, kickc: make(chan struct{}, 1),
		quit: make(chan struct{}), onMedia: cfg.OnMedia}
	start := time.Now()
	mx.wg.Add(3)
	go mx.videoLoop(start)
	go mx.audioLoop(start)
	go mx.layoutLoop()
	return mx, nil
}

// setView follows the stage: inputs for who publishes, none for who
// stopped, all anew when the session changed.
func (mx *mixer) setView(v StageView) {
	mx.mu.Lock()
	defer mx.mu.Unlock()
	if mx.closed {
		return
	}
	mx.view = v
	if v.Source != mx.source {
		for id, in := range mx.inputs {
			go in.close()
			delete(mx.inputs, id)
		}
		mx.source = v.Source
	}
	publishing := map[string]bool{}
	for _, p := range v.Participants {
		if p.Publishing {
			publishing[p.ID] = true
		}
	}
	for id, in := range mx.inputs {
		if !publishing[id] {
			go in.close()
			delete(mx.inputs, id)
		}
	}
	if mx.source != nil {
		for id := range publishing {
			if mx.inputs[id] != nil {
				continue
			}
			in, err := newInput(id, mx.source, mx.bin, mx.log, mx.kick)
			if err != nil {
				mx.log.Debug("composition: tapping a publisher", "participant", id, "err", err)
				continue // the next view (the publisher's return or its end) settles it
			}
			mx.inputs[id] = in
		}
	}
	mx.relayoutLocked()
}

func (mx *mixer) kick() {
	select {
	case mx.kickc <- struct{}{}:
	default:
	}
}

// layoutLoop lays out again when an input asks (a tap closed, a video
// size or flow changed), and twice a second to notice videos that stopped.
func (mx *mixer) layoutLoop() {
	defer mx.wg.Done()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-mx.quit:
			return
		case <-mx.kickc:
		case <-t.C:
		}
		mx.mu.Lock()
		for id, in := range mx.inputs {
			if _, _, gone := in.state(time.Now()); gone {
				go in.close()
				delete(mx.inputs, id)
			}
		}
		mx.relayoutLocked()
		mx.mu.Unlock()
	}
}

// relayoutLocked computes the frame from the view and the inputs, and
// tells each input the geometry to decode to. Called with mx.mu held.
func (mx *mixer) relayoutLocked() {
	now := time.Now()
	var ps []layout.Participant
	shown := map[string]bool{}
	srcs := map[string]layout.Size{}
	for _, p := range mx.view.Participants {
		if !p.Publishing {
			continue
		}
		lp := layout.Participant{ID: p.ID, Attributes: p.Attributes, Arrival: p.Joined.UnixNano()}
		if in := mx.inputs[p.ID]; in != nil {
			src, video, _ := in.state(now)
			lp.VideoSize, lp.Video = src, video && !p.VideoStopped
			srcs[p.ID] = src
		}
		shown[p.ID] = lp.Video
		ps = append(ps, lp)
	}
	fr, err := layout.Compute(mx.canvas, mx.lc, ps)
	if err != nil {
		mx.log.Warn("composition: layout", "err", err)
		return
	}
	mx.frame, mx.shown = fr, shown
	for id, in := range mx.inputs {
		t, ok := fr.Tile(id)
		if !ok || !t.Video {
			in.setWant(geometry{})
			continue
		}
		in.setWant(geometryOf(t, srcs[id]))
	}
}

// videoLoop draws and sends a picture every 1/fps, on a clock that counts
// frames from the start: the encoder stamps frames by their count, so the
// count must follow the wall clock for sound and picture to stay together.
func (mx *mixer) videoLoop(start time.Time) {
	defer mx.wg.Done()
	canvas := newFrame(mx.canvas.Width, mx.canvas.Height)
	interval := time.Duration(float64(time.Second) / mx.fps)
	timer := time.NewTimer(0)
	defer timer.Stop()
	media := false
	var warned time.Time
	for n := int64(0); ; n++ {
		due := start.Add(time.Duration(n) * interval)
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-mx.quit:
				return
			case <-timer.C:
			}
		} else if d < -time.Second && time.Since(warned) > time.Minute {
			// The encoder (or this machine) does not keep up: the stream
			// runs behind real time, in sync, and viewers wait longer.
			warned = time.Now()
			mx.log.Warn("composition: the encoder is behind real time", "behind", -d.Round(time.Millisecond))
		}
		select {
		case <-mx.quit:
			return
		default:
		}
		if mx.compose(canvas) && !media {
			media = true
			mx.mediaArrived()
		}
		if _, err := mx.enc.video.Write(canvas.buf); err != nil {
			return // the encoder ended; the Manager learns it from the encoder
		}
	}
}

// compose draws the current frame; it reports whether any participant's
// picture was drawn.
func (mx *mixer) compose(canvas *frame) bool {
	mx.mu.Lock()
	defer mx.mu.Unlock()
	canvas.clear()
	drawn := false
	for _, t := range mx.frame.Tiles {
		if t.Rect.Empty() {
			continue
		}
		in := mx.inputs[t.ParticipantID]
		if in == nil || !t.Video {
			canvas.fill(t.Rect)
			continue
		}
		if t.Z > 0 {
			canvas.fill(t.Rect) // a PiP window covers what is under it
		}
		if in.drawInto(canvas, t.Dest) {
			drawn = true
		}
	}
	return drawn
}

func (mx *mixer) mediaArrived() {
	mx.mu.Lock()
	f := mx.onMedia
	mx.onMedia = nil
	mx.mu.Unlock()
	if f != nil {
		f()
	}
}

// audioLoop mixes and sends 20 ms of sound at a time, on its own clock
// counted from the same start as the pictures.
func (mx *mixer) audioLoop(start time.Time) {
	defer mx.wg.Done()
	mix := make([]int32, chunkSamples)
	out := make([]byte, 2*chunkSamples)
	timer := time.NewTimer(0)
	defer timer.Stop()
	const interval = 20 * time.Millisecond
	for n := int64(0); ; n++ {
		if d := time.Until(start.Add(time.Duration(n) * interval)); d > 0 {
			timer.Reset(d)
			select {
			case <-mx.quit:
				return
			case <-timer.C:
			}
		}
		select {
		case <-mx.quit:
			return
		default:
		}
		clear(mix)
		mx.mu.Lock()
		for _, in := range mx.inputs {
			in.audioBuf.addTo(mix)
		}
		mx.mu.Unlock()
		clampPCM(mix, out)
		if _, err := mx.enc.audio.Write(out); err != nil {
			return
		}
	}
}

// close stops the inputs and the loops, and lets the encoder finish its
// streams (bounded by timeout).
func (mx *mixer) close(timeout time.Duration) error {
	mx.mu.Lock()
	if mx.closed {
		mx.mu.Unlock()
		return nil
	}
	mx.closed = true
	inputs := mx.inputs
	mx.inputs = map[string]*input{}
	mx.mu.Unlock()
	close(mx.quit)
	var wg sync.WaitGroup
	for _, in := range inputs {
		wg.Add(1)
		go func() { defer wg.Done(); in.close() }()
	}
	wg.Wait()
	// End the encoder's inputs before waiting for the loops: a loop may be
	// blocked writing to an encoder that waits for the other input, which
	// the other loop has stopped feeding. The closes end those writes, and
	// tell ffmpeg to finish its streams.
	done := make(chan error, 1)
	go func() { done <- mx.enc.finish() }()
	mx.wg.Wait()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		mx.enc.kill()
		return <-done
	}
}

// encoderDone is closed when the encoder exits, for whatever reason.
func (mx *mixer) encoderDone() <-chan struct{} { return mx.enc.done }

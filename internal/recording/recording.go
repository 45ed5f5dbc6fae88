package recording

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/rostrum-dev/rostrum/internal/ffmpeg"
	"github.com/rostrum-dev/rostrum/internal/goroutines"
	"github.com/rostrum-dev/rostrum/internal/sfu"
)

// Storage is what a recording writes to: object storage, by bucket and
// key (objstore.Storage).
type Storage interface {
	// CheckBucket verifies that the bucket exists (the local folder makes
	// it) and accepts writes.
	CheckBucket(ctx context.Context, bucket string) error
	Put(ctx context.Context, bucket, key string, body io.Reader, contentType string) error
}

// Source taps a publisher of a stage session (sfu.Router).
type Source interface {
	Tap(publisherID string, opts sfu.TapOptions) (*sfu.Tap, error)
}

// Participant names whom a recording is of.
type Participant struct {
	StageARN      string `json:"stageArn"`
	StageID       string `json:"stageId"`
	SessionID     string `json:"sessionId"`
	ParticipantID string `json:"participantId"`
}

// Settings are a stage's autoParticipantRecordingConfiguration, resolved.
type Settings struct {
	StorageConfigurationARN string     `json:"storageConfigurationArn"`
	Bucket                  string     `json:"bucket"`
	MediaTypes              MediaTypes `json:"mediaTypes"`
	// ThumbnailIntervalSeconds is 0 when thumbnails are DISABLED.
	ThumbnailIntervalSeconds int  `json:"thumbnailIntervalSeconds"`
	ThumbnailSequential      bool `json:"thumbnailSequential"`
	ThumbnailLatest          bool `json:"thumbnailLatest"`
	SegmentSeconds           int  `json:"segmentSeconds"`
	// ReconnectWindow: a publisher back within it continues the recording.
	ReconnectWindow time.Duration `json:"reconnectWindow"`
}

func (s Settings) thumbnails() bool {
	return s.ThumbnailIntervalSeconds > 0 && (s.ThumbnailSequential || s.ThumbnailLatest) && s.MediaTypes != AudioOnly
}

// State is a participant's recordingState.
type State string

const (
	Starting State = "STARTING"
	Active   State = "ACTIVE"
	Stopping State = "STOPPING"
	Stopped  State = "STOPPED"
	Failed   State = "FAILED"
)

// Outcome says which IVS event a change is ("IVS Participant Recording
// State Change"), if any.
type Outcome int

const (
	NoEvent Outcome = iota
	Started
	Ended
	StartFailed
	EndFailed
)

// Change is a recording's new state, reported through Config.OnChange in
// the order it happens for each participant.
type Change struct {
	Participant
	State     State
	Outcome   Outcome
	Bucket    string
	KeyPrefix string        // the recording's folder, timestamp included
	Duration  time.Duration // of the media, on Ended (and EndFailed)
	Reason    string        // on failures
	At        time.Time
}

// Config configures a Manager.
type Config struct {
	Storage  Storage
	SpoolDir string // ffmpeg's output before upload; kept across restarts
	FFmpeg   string // the ffmpeg binary; "" looks up "ffmpeg" on PATH
	Logger   *slog.Logger
	// OnChange is told every change of a recording's state. It is called
	// from the recording's goroutine and should not block for long.
	OnChange func(Change)
	// SyncInterval is how often finished segments are uploaded (default 1 s).
	SyncInterval time.Duration
}

// Manager runs the recordings of a server.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu   sync.Mutex
	recs map[string]*Recording // by session and participant
	// lastStart is the start of each participant's latest recording (to
	// the second); entries are few per session and small.
	lastStart map[string]time.Time
	closed    bool
	wg        goroutines.Group // recordings' work: taps close while Close waits
}

// NewManager returns a Manager. Nothing is checked here: a missing ffmpeg
// or storage fault fails the recordings that need them, with the reason.
func NewManager(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = time.Second
	}
	return &Manager{cfg: cfg, log: cfg.Logger.With("component", "recording"), recs: map[string]*Recording{}, lastStart: map[string]time.Time{}}
}

func recKey(p Participant) string { return p.SessionID + "/" + p.ParticipantID }

// Publishing starts recording p, who has just started publishing in src,
// or continues p's recording when p comes back within its reconnect window
// with the same storage configuration.
func (m *Manager) Publishing(p Participant, s Settings, src Source) {
	if s.SegmentSeconds <= 0 {
		s.SegmentSeconds = 6
	}
	if s.MediaTypes == "" {
		s.MediaTypes = AudioVideo
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	r := m.recs[recKey(p)]
	if r != nil && !r.resumable(s) {
		r = nil // a different configuration: a new recording (the old one ends in its window)
	}
	if r == nil {
		r = m.newRecording(p, s)
		m.recs[recKey(p)] = r
	}
	m.mu.Unlock()
	m.wg.Go(func() { r.connect(src) })
}

// Close finishes every recording now, whatever its reconnect window: the
// server is stopping. It returns when they are all written or ctx ends.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	recs := make([]*Recording, 0, len(m.recs))
	for _, r := range m.recs {
		recs = append(recs, r)
	}
	m.mu.Unlock()
	for _, r := range recs {
		r.finishNow()
	}
	done := make(chan struct{})
	go func() {
		m.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *Manager) forget(r *Recording) {
	m.mu.Lock()
	if m.recs[recKey(r.p)] == r {
		delete(m.recs, recKey(r.p))
	}
	m.mu.Unlock()
}

func (m *Manager) ffmpeg() (string, error) {
	if m.cfg.FFmpeg != "" {
		return m.cfg.FFmpeg, nil
	}
	p, err := exec.LookPath("ffmpeg")
	if err != nil {
		return "", fmt.Errorf("%w: ffmpeg is not installed (apt-get install ffmpeg)", ErrToolkit)
	}
	return p, nil
}

// Recording is one participant recording: one key prefix, one or more
// publisher connections (runs).
type Recording struct {
	m   *Manager
	p   Participant
	s   Settings
	log *slog.Logger
	dir string // spool folder

	// opMu serialises connect, disconnect and finish; syncMu uploads (the
	// ticker and the end of a run may both sync).
	opMu   sync.Mutex
	syncMu sync.Mutex

	cur atomic.Pointer[run] // read per packet by the tap's writer

	mu       sync.Mutex // the fields below
	state    State
	started  time.Time
	prefix   string
	tap      *sfu.Tap
	restarts int // ffmpeg runs started again on the current tap
	// recovering: closed at a start after a crash, from whatever ffmpeg
	// left (its playlist may not list its last segments).
	recovering bool
	window     *time.Timer
	finished   bool
	progress   progress
	syncStop   chan struct{}
	syncDone   chan struct{}
}

// progress is what has been uploaded; it is also the spool's state file.
type progress struct {
	Participant Participant `json:"participant"`
	Settings    Settings    `json:"settings"`
	Started     time.Time   `json:"started"`
	Prefix      string      `json:"prefix"`
	Runs        int         `json:"runs"`
	Segments    []segment   `json:"segments"`
	NextSegment int         `json:"nextSegment"`
	Thumbnails  int         `json:"thumbnails"` // the last uploaded
	Inits       []bool      `json:"inits"`      // per run: init segment uploaded
	Info        streamInfo  `json:"info"`
	Multi       bool        `json:"multivariant"`
	// PIDs are the ffmpeg processes of the runs, by run: after a crash,
	// recovery waits for those still finishing their files.
	PIDs map[int]int `json:"ffmpegPids,omitempty"`
}

func (m *Manager) newRecording(p Participant, s Settings) *Recording {
	// The recording's folder is named after its start to the second, as
	// IVS names it; a participant who publishes again within the same
	// second (a quick republish with no reconnect window) must not land in
	// the folder of the recording still finishing, so its start moves on
	// to the next free second. Called with m.mu held.
	started := time.Now().Truncate(time.Second)
	for k, t := range m.lastStart {
		if started.Sub(t) > time.Minute {
			delete(m.lastStart, k)
		}
	}
	if last, ok := m.lastStart[recKey(p)]; ok && !started.After(last) {
		started = last.Add(time.Second)
	}
	m.lastStart[recKey(p)] = started
	prefix := keyPrefix(p.StageID, p.SessionID, p.ParticipantID, started)
	dir := filepath.Join(m.cfg.SpoolDir, p.StageID, p.SessionID, p.ParticipantID, started.UTC().Format("2006-01-02T15-04-05Z"))
	r := &Recording{
		m: m, p: p, s: s, dir: dir, started: started, prefix: prefix,
		log: m.log.With("stage", p.StageARN, "session", p.SessionID, "participant", p.ParticipantID),
	}
	r.progress = progress{Participant: p, Settings: s, Started: started, Prefix: prefix, NextSegment: 1}
	return r
}

func (r *Recording) resumable(s Settings) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.finished && r.state != Failed && r.s.StorageConfigurationARN == s.StorageConfigurationARN && r.s.Bucket == s.Bucket
}

func (r *Recording) change(st State, out Outcome, reason string) {
	r.mu.Lock()
	r.state = st
	c := Change{
		Participant: r.p, State: st, Outcome: out, Bucket: r.s.Bucket, KeyPrefix: r.prefix,
		Reason: reason, At: time.Now(),
	}
	if out == Ended || out == EndFailed {
		c.Duration = r.progress.duration()
	}
	r.mu.Unlock()
	if cb := r.m.cfg.OnChange; cb != nil {
		cb(c)
	}
}

func (p *progress) duration() time.Duration {
	var d float64
	for _, s := range p.Segments {
		d += s.Duration
	}
	return time.Duration(d * float64(time.Second))
}

// connect starts a run for a publisher connection: the first starts the
// recording, later ones continue it.
func (r *Recording) connect(src Source) {
	r.opMu.Lock()
	defer r.opMu.Unlock()
	r.mu.Lock()
	if r.finished {
		r.mu.Unlock()
		return
	}
	first := r.progress.Runs == 0
	if r.window != nil {
		r.window.Stop()
		r.window = nil
	}
	if r.tap != nil { // a connection replacing one not yet closed
		t := r.tap
		r.tap = nil
		r.mu.Unlock()
		t.Close()
		r.endRun()
		r.mu.Lock()
	}
	r.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if first {
		r.change(Starting, NoEvent, "")
		doc := eventDoc(r.p, r.s, statusStarted, "", r.started, time.Time{}, nil)
		err := r.m.cfg.Storage.CheckBucket(ctx, r.s.Bucket)
		if err == nil {
			err = r.put(ctx, keyStarted, doc, "application/json")
		}
		if err != nil {
			r.fail(StartFailed, fmt.Sprintf("writing %s to bucket %s: %v", keyStarted, r.s.Bucket, err), false)
			return
		}
	}
	if err := r.startRun(ctx, src); err != nil {
		if first {
			r.fail(StartFailed, err.Error(), true)
		} else {
			// The recording goes on in its window: the publisher may come
			// back once more; if not, the recording ends with what it has.
			r.log.Warn("continuing a recording", "err", err)
			r.disconnected()
		}
		return
	}
	if first {
		r.startSync()
		r.change(Active, Started, "")
	}
}

func (r *Recording) startRun(ctx context.Context, src Source) error {
	if _, err := r.m.ffmpeg(); err != nil {
		return err
	}
	var tap *sfu.Tap
	ready := make(chan struct{}) // tap is set
	defer close(ready)
	tap, err := src.Tap(r.p.ParticipantID, sfu.TapOptions{
		OnPacket: func(track int, h *rtp.Header, payload []byte) {
			if rn := r.cur.Load(); rn != nil {
				rn.writeRTP(track, h, payload)
			}
		},
		OnClosed: func(error) {
			<-ready
			r.tapClosed(tap)
		},
	})
	if err != nil {
		return fmt.Errorf("reading the publisher: %w", err)
	}
	if err := r.runOn(ctx, tap); err != nil {
		tap.Close()
		return err
	}
	r.mu.Lock()
	r.tap, r.restarts = tap, 0
	r.mu.Unlock()
	return nil
}

// runOn starts an ffmpeg run on a tap: the next run of the recording, its
// numbering going on from the last. Called with opMu held.
func (r *Recording) runOn(ctx context.Context, tap *sfu.Tap) error {
	bin, err := r.m.ffmpeg()
	if err != nil {
		return err
	}
	r.mu.Lock()
	runIndex := r.progress.Runs // publisher connections so far
	r.progress.Runs++
	r.progress.Inits = append(r.progress.Inits, false)
	cfg := runConfig{
		dir:            r.runDir(runIndex),
		tracks:         tap.Tracks(),
		media:          r.s.MediaTypes,
		segmentSeconds: r.s.SegmentSeconds,
		firstSegment:   max(r.progress.NextSegment, lastOnDisk(r.dir, "hls", ".mp4")+1),
		firstThumbnail: max(r.progress.Thumbnails, lastOnDisk(r.dir, "thumbnails", ".jpg")) + 1,
		initName:       initName(runIndex),
		ffmpeg:         bin,
		log:            r.log,
		report:         tap.SenderReport,
	}
	if r.s.thumbnails() {
		cfg.thumbnailSeconds = r.s.ThumbnailIntervalSeconds
	}
	r.mu.Unlock()
	rn, err := startRun(ctx, cfg)
	if err != nil {
		return err
	}
	r.cur.Store(rn)
	r.mu.Lock()
	if r.progress.PIDs == nil {
		r.progress.PIDs = map[int]int{}
	}
	r.progress.PIDs[runIndex] = rn.cmd.Process.Pid
	r.mu.Unlock()
	// The tap's first keyframe may have gone by before ffmpeg listened.
	tap.RequestKeyframe()
	r.saveState()
	r.m.wg.Go(func() { r.watch(rn, tap) })
	return nil
}

// maxRestarts bounds how often a recording starts ffmpeg again on one
// publisher connection before it gives up on the connection.
const maxRestarts = 5

// watch starts the run again when ffmpeg ends while the publisher is still
// there: its input timed out (the publisher sent nothing, not even a
// sender report's worth, for a while) or it failed. The next run goes on
// with the numbering, as after a reconnect. After maxRestarts the
// connection is given up (its tap closed): the recording then waits for
// the publisher to come back within its window, or ends.
func (r *Recording) watch(rn *run, tap *sfu.Tap) {
	<-rn.done
	r.opMu.Lock()
	defer r.opMu.Unlock()
	if !r.cur.CompareAndSwap(rn, nil) {
		return // stopped on purpose
	}
	r.log.Warn("ffmpeg ended while recording; starting it again", "err", rn.err, "ffmpeg", rn.logTail())
	_ = rn.stop(time.Second)
	r.sync(context.Background())
	r.mu.Lock()
	live := r.tap == tap && !r.finished
	r.restarts++
	give := r.restarts > maxRestarts
	r.mu.Unlock()
	if !live {
		return
	}
	if !give {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := r.runOn(ctx, tap)
		cancel()
		if err == nil {
			return
		}
		r.log.Warn("starting ffmpeg again", "err", err)
	}
	tap.Close() // OnClosed: the recording waits for a reconnect, or ends
}

// lastOnDisk is the highest number N of a file N<ext> in the sub folder of
// any run under dir: the next run numbers on from there, even past files
// whose upload failed, so that nothing already written is overwritten.
func lastOnDisk(dir, sub, ext string) int {
	last := 0
	runs, _ := os.ReadDir(dir)
	for _, rd := range runs {
		files, _ := os.ReadDir(filepath.Join(dir, rd.Name(), sub))
		for _, f := range files {
			if n, err := strconv.Atoi(strings.TrimSuffix(f.Name(), ext)); err == nil && strings.HasSuffix(f.Name(), ext) {
				last = max(last, n)
			}
		}
	}
	return last
}

func initName(run int) string { return "init-" + strconv.Itoa(run) + ".mp4" }

func (r *Recording) runDir(i int) string { return filepath.Join(r.dir, "run-"+strconv.Itoa(i)) }

// tapClosed: the publisher connection is gone (or the tap replaced).
func (r *Recording) tapClosed(t *sfu.Tap) {
	r.m.wg.Go(func() {
		r.opMu.Lock()
		defer r.opMu.Unlock()
		r.mu.Lock()
		if r.tap != t || t == nil {
			r.mu.Unlock()
			return // already replaced or finished
		}
		r.tap = nil
		r.mu.Unlock()
		r.endRun()
		r.disconnected()
	})
}

// endRun stops the current ffmpeg run and uploads everything it made.
// Called with opMu held.
func (r *Recording) endRun() {
	rn := r.cur.Swap(nil)
	if rn == nil {
		return
	}
	if err := rn.stop(15 * time.Second); err != nil {
		r.log.Warn("ending a recording run", "err", err)
	}
	r.sync(context.Background())
}

// disconnected waits for the publisher to come back within the window,
// or finishes. Called with opMu held.
func (r *Recording) disconnected() {
	r.mu.Lock()
	w := r.s.ReconnectWindow
	if r.finished || w <= 0 {
		r.mu.Unlock()
		r.finish(false)
		return
	}
	r.window = time.AfterFunc(w, func() {
		r.opMu.Lock()
		defer r.opMu.Unlock()
		r.mu.Lock()
		waiting := r.tap == nil && !r.finished
		r.mu.Unlock()
		if waiting {
			r.finish(false)
		}
	})
	r.mu.Unlock()
}

// finishNow ends the recording without waiting for a reconnect (shutdown).
func (r *Recording) finishNow() {
	r.m.wg.Go(func() {
		r.opMu.Lock()
		defer r.opMu.Unlock()
		r.mu.Lock()
		if r.window != nil {
			r.window.Stop()
			r.window = nil
		}
		t := r.tap
		r.tap = nil
		r.mu.Unlock()
		if t != nil {
			t.Close()
		}
		r.endRun()
		r.finish(false)
	})
}

// finish writes the VOD playlist and recording-ended.json (or, when
// recovered after a crash, recording-failed.json). Called with opMu held.
func (r *Recording) finish(recovered bool) {
	r.mu.Lock()
	if r.finished {
		r.mu.Unlock()
		return
	}
	r.finished = true
	if r.window != nil {
		r.window.Stop()
		r.window = nil
	}
	failed := r.state == Failed
	r.mu.Unlock()
	defer r.m.forget(r)
	if failed {
		return
	}
	r.stopSync()
	r.change(Stopping, NoEvent, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	unsynced := r.sync(ctx)
	if recovered {
		r.mu.Lock()
		n := len(r.progress.Segments)
		r.mu.Unlock()
		left, _ := filepath.Glob(filepath.Join(r.dir, "run-*", "hls", "*.mp4"))
		r.log.Info("recovered a recording", "segments", n, "files_left", len(left), "unsynced", unsynced)
	}
	ended := time.Now()
	r.mu.Lock()
	pr := r.progress
	pr.Segments = append([]segment(nil), pr.Segments...)
	r.mu.Unlock()
	var errs []error
	if r.s.MediaTypes != NoMedia {
		errs = append(errs, r.put(ctx, keyPlaylist, mediaPlaylist(pr.Segments, initName, r.s.SegmentSeconds, true), "application/vnd.apple.mpegurl"))
		errs = append(errs, r.put(ctx, keyMultivariant, multivariantPlaylist(pr.Info, peakBandwidth(pr.Segments)), "application/vnd.apple.mpegurl"))
	}
	ms := pr.duration().Milliseconds()
	if err := errors.Join(errs...); err != nil || recovered || unsynced > 0 {
		msg := "the recording could not be completed"
		switch {
		case recovered:
			msg = "the server stopped unexpectedly; the recording was closed with what had been written at its next start"
		case err != nil:
			msg = err.Error()
		case unsynced > 0:
			msg = fmt.Sprintf("%d of the recording's files could not be written to the bucket", unsynced)
		}
		doc := eventDoc(r.p, r.s, statusEndedWithFail, msg, r.started, ended, &ms)
		_ = r.put(ctx, keyFailed, doc, "application/json")
		r.change(Failed, EndFailed, msg)
	} else {
		doc := eventDoc(r.p, r.s, statusEnded, "", r.started, ended, &ms)
		if err := r.put(ctx, keyEnded, doc, "application/json"); err != nil {
			r.change(Failed, EndFailed, err.Error())
		} else {
			r.change(Stopped, Ended, "")
		}
	}
	_ = os.RemoveAll(r.dir)
}

// fail ends a recording that could not start. Called with opMu held.
func (r *Recording) fail(out Outcome, reason string, writeFile bool) {
	r.log.Warn("recording failed", "reason", reason)
	if writeFile {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		doc := eventDoc(r.p, r.s, statusStartFailed, reason, time.Time{}, time.Time{}, nil)
		_ = r.put(ctx, keyFailed, doc, "application/json")
		cancel()
	}
	r.mu.Lock()
	r.finished = true
	r.mu.Unlock()
	r.change(Failed, out, reason)
	r.m.forget(r)
	_ = os.RemoveAll(r.dir)
}

func (r *Recording) put(ctx context.Context, key string, body []byte, contentType string) error {
	return r.m.cfg.Storage.Put(ctx, r.s.Bucket, path.Join(r.prefix, key), bytes.NewReader(body), contentType)
}

func (r *Recording) startSync() {
	r.mu.Lock()
	r.syncStop, r.syncDone = make(chan struct{}), make(chan struct{})
	stop, done := r.syncStop, r.syncDone
	r.mu.Unlock()
	go func() {
		defer close(done)
		t := time.NewTicker(r.m.cfg.SyncInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				r.sync(ctx)
				cancel()
			}
		}
	}()
}

func (r *Recording) stopSync() {
	r.mu.Lock()
	stop, done := r.syncStop, r.syncDone
	r.syncStop = nil
	r.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

// sync uploads what ffmpeg has finished in every run folder: init
// segments, media segments and thumbnails, then the playlists.
// It returns how many uploads failed (they are tried again next time).
func (r *Recording) sync(ctx context.Context) (failures int) {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	r.mu.Lock()
	pr := r.progress
	pr.Segments = append([]segment(nil), pr.Segments...)
	pr.Inits = append([]bool(nil), pr.Inits...)
	r.mu.Unlock()

	changed := false
	fail := func(what string, err error) {
		failures++
		r.log.Warn("uploading a recording", "what", what, "err", err)
	}
	have := map[string]bool{}
	for _, s := range pr.Segments {
		have[s.URI] = true
	}
	thumbs := map[int]string{} // number → file
	// uploaded are the spool files now in storage: removed once the state
	// file says so, so that a long recording does not fill the disk twice
	// and a crash in between never loses track of one.
	var uploaded []string
	for run := range pr.Runs {
		dir := r.runDir(run)
		b, err := os.ReadFile(filepath.Join(dir, "hls", "playlist.m3u8"))
		if r.recovering && r.s.MediaTypes != NoMedia {
			err = nil // the files themselves are the truth: see unlisted
		}
		if err == nil && r.s.MediaTypes != NoMedia {
			segs, _ := readFFmpegPlaylist(b)
			if r.recovering {
				segs = append(segs, unlisted(filepath.Join(dir, "hls"), initName(run), segs, r.log)...)
			}
			if len(segs) > 0 && !pr.Inits[run] {
				init, err := os.ReadFile(filepath.Join(dir, "hls", initName(run)))
				if err == nil {
					err = r.put(ctx, path.Join(dirRendition, initName(run)), init, "video/mp4")
				}
				if err != nil {
					fail("init", err)
					continue
				}
				pr.Inits[run] = true
				if run == 0 || pr.Info.Width == 0 {
					pr.Info = probeInit(init)
				}
				changed = true
			}
			for _, s := range segs {
				if have[s.URI] {
					continue
				}
				data, err := os.ReadFile(filepath.Join(dir, "hls", s.URI))
				if err == nil {
					err = r.put(ctx, path.Join(dirRendition, s.URI), data, "video/mp4")
				}
				if err != nil {
					fail(s.URI, err)
					break
				}
				s.Run, s.Bytes = run, int64(len(data))
				pr.Segments = append(pr.Segments, s)
				uploaded = append(uploaded, filepath.Join(dir, "hls", s.URI))
				have[s.URI] = true
				if n, err := strconv.Atoi(strings.TrimSuffix(s.URI, ".mp4")); err == nil && n >= pr.NextSegment {
					pr.NextSegment = n + 1
				}
				changed = true
			}
		}
		if r.s.thumbnails() {
			entries, _ := os.ReadDir(filepath.Join(dir, "thumbnails"))
			for _, e := range entries {
				n, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".jpg"))
				if err == nil && strings.HasSuffix(e.Name(), ".jpg") && n > pr.Thumbnails {
					thumbs[n] = filepath.Join(dir, "thumbnails", e.Name())
				}
			}
		}
	}
	nums := make([]int, 0, len(thumbs))
	for n := range thumbs {
		nums = append(nums, n)
	}
	sort.Ints(nums)
	for i, n := range nums {
		data, err := os.ReadFile(thumbs[n])
		if err == nil && r.s.ThumbnailSequential {
			err = r.put(ctx, path.Join(dirThumbnails, strconv.Itoa(n)+".jpg"), data, "image/jpeg")
		}
		if err == nil && r.s.ThumbnailLatest && i == len(nums)-1 {
			err = r.put(ctx, keyLatestThumb, data, "image/jpeg")
		}
		if err != nil {
			fail("thumbnail", err)
			break
		}
		pr.Thumbnails = n
		uploaded = append(uploaded, thumbs[n])
		changed = true
	}
	sort.SliceStable(pr.Segments, func(i, j int) bool { return segNum(pr.Segments[i].URI) < segNum(pr.Segments[j].URI) })
	if changed && r.s.MediaTypes != NoMedia && len(pr.Segments) > 0 {
		if err := r.put(ctx, keyPlaylist, mediaPlaylist(pr.Segments, initName, r.s.SegmentSeconds, false), "application/vnd.apple.mpegurl"); err != nil {
			fail("playlist", err)
		} else if !pr.Multi {
			if err := r.put(ctx, keyMultivariant, multivariantPlaylist(pr.Info, peakBandwidth(pr.Segments)), "application/vnd.apple.mpegurl"); err != nil {
				fail("multivariant playlist", err)
			} else {
				pr.Multi = true
			}
		}
	}
	r.mu.Lock()
	// Runs may have been added while uploading: keep the newer counters.
	pr.Runs, pr.Inits = r.progress.Runs, append(pr.Inits, r.progress.Inits[len(pr.Inits):]...)
	pr.NextSegment = max(pr.NextSegment, r.progress.NextSegment)
	pr.PIDs = r.progress.PIDs
	r.progress = pr
	r.mu.Unlock()
	if changed && r.saveState() {
		for _, f := range uploaded {
			_ = os.Remove(f)
		}
	}
	return failures
}

func segNum(uri string) int {
	n, _ := strconv.Atoi(strings.TrimSuffix(uri, ".mp4"))
	return n
}

// stateFile is the spool's record of a recording, for recovery.
const stateFile = "state.json"

// saveState writes the state file, atomically; it reports whether it did.
func (r *Recording) saveState() bool {
	r.mu.Lock()
	b, err := json.Marshal(r.progress)
	r.mu.Unlock()
	if err != nil {
		return false
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		r.log.Warn("saving a recording's state", "err", err)
		return false
	}
	tmp := filepath.Join(r.dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		r.log.Warn("saving a recording's state", "err", err)
		return false
	}
	return os.Rename(tmp, filepath.Join(r.dir, stateFile)) == nil
}

// Recover finishes the recordings a previous run of the server left in
// the spool folder (it was killed): what ffmpeg finished is uploaded, the
// playlist is closed as VOD, recording-failed.json says what happened, and
// OnChange reports each as FAILED with a Recording End Failure. It returns
// how many it closed.
func (m *Manager) Recover(ctx context.Context) (int, error) {
	var states []string
	err := filepath.WalkDir(m.cfg.SpoolDir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return filepath.SkipAll
			}
			return err
		}
		if !d.IsDir() && d.Name() == stateFile {
			states = append(states, p)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, sp := range states {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		if m.isLive(filepath.Dir(sp)) {
			continue // a recording this server started since it came up
		}
		b, err := os.ReadFile(sp)
		var pr progress
		if err == nil {
			err = json.Unmarshal(b, &pr)
		}
		if err != nil || pr.Participant.ParticipantID == "" {
			m.log.Warn("dropping an unreadable recording state", "path", sp, "err", err)
			_ = os.RemoveAll(filepath.Dir(sp))
			continue
		}
		r := &Recording{
			m: m, p: pr.Participant, s: pr.Settings, dir: filepath.Dir(sp), started: pr.Started, prefix: pr.Prefix,
			progress: pr, state: Active, recovering: true,
			log: m.log.With("stage", pr.Participant.StageARN, "session", pr.Participant.SessionID, "participant", pr.Participant.ParticipantID),
		}
		for len(r.progress.Inits) < r.progress.Runs {
			r.progress.Inits = append(r.progress.Inits, false)
		}
		r.log.Info("closing a recording the previous run left open", "prefix", pr.Prefix, "runs", pr.Runs, "uploaded_segments", len(pr.Segments))
		// The dead server's ffmpeg got SIGTERM with it and finishes its
		// files within a few seconds: read them only once it is done.
		for run, pid := range pr.PIDs {
			ffmpeg.AwaitOrphan(ctx, pid, r.runDir(run), r.log)
		}
		r.opMu.Lock()
		r.finish(true)
		r.opMu.Unlock()
		n++
	}
	return n, nil
}

// isLive says whether dir is the folder of a recording this manager runs:
// Recover runs while the server already serves, and must not take the
// state of a recording started since for a leftover.
func (m *Manager) isLive(dir string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.recs {
		if r.dir == dir {
			return true
		}
	}
	return false
}

// unlisted returns the complete segments N.mp4 of a run's folder that its
// playlist does not list (ffmpeg died between writing a segment and its
// playlist), in order, with their durations as ffprobe reads them from the
// initialization segment and the segment together. Unreadable ones are
// left out.
func unlisted(dir, init string, listed []segment, log *slog.Logger) []segment {
	have := map[string]bool{}
	for _, s := range listed {
		have[s.URI] = true
	}
	entries, _ := os.ReadDir(dir)
	var nums []int
	for _, e := range entries {
		n, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".mp4"))
		if err == nil && strings.HasSuffix(e.Name(), ".mp4") && !have[e.Name()] {
			nums = append(nums, n)
		}
	}
	sort.Ints(nums)
	head, err := os.ReadFile(filepath.Join(dir, init))
	if err != nil {
		return nil
	}
	var out []segment
	for _, n := range nums {
		name := strconv.Itoa(n) + ".mp4"
		body, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		d, err := fmp4Duration(append(append([]byte(nil), head...), body...))
		if err != nil || d <= 0 {
			log.Warn("leaving out a segment ffmpeg did not finish", "segment", name, "err", err)
			continue
		}
		out = append(out, segment{URI: name, Duration: d})
	}
	return out
}

// fmp4Duration asks ffprobe how long an fMP4 file (init + segment) plays.
func fmp4Duration(b []byte) (float64, error) {
	f, err := os.CreateTemp("", "rostrum-segment-*.mp4")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return 0, err
	}
	f.Close()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", f.Name()).Output()
	if err != nil {
		return 0, err
	}
	return strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
}

package output

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rostrum-dev/rostrum/internal/composition/flv"
)

// Storage is what the HLS writer writes to (objstore.Storage).
type Storage interface {
	// CheckBucket verifies that the bucket exists and accepts writes.
	CheckBucket(ctx context.Context, bucket string) error
	Put(ctx context.Context, bucket, key string, body io.Reader, contentType string) error
}

// Rendition is one encode of an S3 destination: one HLS rendition.
type Rendition struct {
	// Name is the rendition's folder, "720p30-<encoder configuration id>"
	// (composition.Encoder.Name).
	Name          string
	Width, Height int
	Framerate     float64
	Bitrate       int // bits per second, the encoder configuration's
	Source        *flv.Stream
}

// Thumbnail is one thumbnailConfiguration of the destination.
type Thumbnail struct {
	IntervalSeconds int
	Sequential      bool // media/thumbnails/<WxH>/<n>.jpg
	Latest          bool // media/latest_thumbnail/<WxH>/thumb.jpg
}

// HLSConfig configures an HLS writer.
type HLSConfig struct {
	Storage Storage
	Bucket  string
	// Prefix is the destination's recordingPrefix
	// (<stage id>/<composition id>/<destination id>/composite).
	Prefix     string
	StageARN   string
	StartedAt  time.Time // recording_started_at; zero means now
	Renditions []Rendition
	// SegmentSeconds is the target segment duration (default 2).
	SegmentSeconds int
	Thumbnails     []Thumbnail
	// SpoolDir is the writer's own folder for ffmpeg's files before they
	// are uploaded (<data dir>/composition-spool/<composition>/<destination>);
	// it is removed at the end, and its parent too if that leaves it empty.
	SpoolDir string
	FFmpeg   string
	Logger   *slog.Logger
	OnState  StateFunc
	// SyncInterval is how often finished files are uploaded (default 1 s).
	SyncInterval time.Duration
	// RetryWindow is how long uploads may keep failing (RECONNECTING)
	// before the destination fails (default 60 s).
	RetryWindow time.Duration

	// decodeAllFrames makes thumbnails from every decoded frame, not from
	// keyframes only: for measuring what -skip_frame saves.
	decodeAllFrames bool
}

// HLSWriter records a composition's encodes as HLS in object storage, in
// IVS's composite layout (IVS-BEHAVIOUR.md §6.3).
type HLSWriter struct {
	cfg    HLSConfig
	bin    string
	log    *slog.Logger
	rends  []*rendition
	thumbs []thumbOut

	stopCh   chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	ended    chan struct{} // a rendition's run loop ended
	wg       sync.WaitGroup

	syncMu sync.Mutex // one sync at a time
	status status

	mu          sync.Mutex
	stopping    bool
	stopCtx     context.Context
	failing     time.Time // uploads fail since
	failReason  string    // a rendition's ffmpeg gave up
	multiDone   bool
	uploadFails int // failed uploads of the last sync
	// recovering is set on a writer RecoverHLS rebuilt: sync then also
	// takes the segments a killed ffmpeg left out of its playlist
	// (spooledSegments).
	recovering bool
}

// thumbOut is one thumbnail output of ffmpeg: every interval seconds,
// kept as a sequence, as the latest, or both.
type thumbOut struct {
	interval           int
	sequential, latest bool
}

type rendition struct {
	Rendition
	dir    string
	thumbs bool // this rendition makes its resolution's thumbnails

	// Guarded by HLSWriter.mu.
	cur      *proc
	runs     int
	segs     []segment // uploaded, in order
	have     map[string]bool
	nextSeg  int
	thumbN   []int // per thumbOut: the last number uploaded
	finished bool  // its run loop ended
	dirty    bool  // segments uploaded since its playlist was
	pid      int   // the current run's ffmpeg
	codecV   string
	codecA   string
}

// codecs are the rendition's video and audio codecs, from its stream's
// sequence headers; remembered for a recovery, which has no stream.
func (r *rendition) codecs() (video, audio string) {
	if r.Source != nil {
		if v, a := r.Source.Codecs(); v != "" || a != "" {
			r.codecV, r.codecA = v, a
		}
	}
	return r.codecV, r.codecA
}

type segment struct {
	uri   string
	dur   float64
	bytes int64
	disc  bool // the first of a new ffmpeg run
}

// StartHLS starts recording: it reports STARTING, checks the bucket and
// writes recording-started.json, then ACTIVE once ffmpeg runs; a bucket
// that is missing or refuses writes makes it FAILED, with the reason.
func StartHLS(cfg HLSConfig) (*HLSWriter, error) {
	if cfg.Storage == nil || cfg.Bucket == "" {
		return nil, errors.New("output: an HLS writer needs a storage and a bucket")
	}
	if len(cfg.Renditions) == 0 {
		return nil, errors.New("output: an HLS writer needs at least one rendition")
	}
	if cfg.SpoolDir == "" {
		return nil, errors.New("output: an HLS writer needs a spool folder")
	}
	names := map[string]bool{}
	for _, r := range cfg.Renditions {
		if r.Source == nil || r.Name == "" || strings.ContainsAny(r.Name, "/\\") || r.Width <= 0 || r.Height <= 0 {
			return nil, fmt.Errorf("output: rendition %q needs a name, a picture size and a source", r.Name)
		}
		if names[r.Name] {
			return nil, fmt.Errorf("output: two renditions named %q", r.Name)
		}
		names[r.Name] = true
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
	if cfg.SegmentSeconds <= 0 {
		cfg.SegmentSeconds = 2
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = time.Second
	}
	if cfg.RetryWindow <= 0 {
		cfg.RetryWindow = time.Minute
	}
	if cfg.StartedAt.IsZero() {
		cfg.StartedAt = time.Now()
	}
	w := &HLSWriter{
		cfg: cfg, bin: bin,
		log:    cfg.Logger.With("component", "composition-output", "bucket", cfg.Bucket, "prefix", cfg.Prefix),
		stopCh: make(chan struct{}), done: make(chan struct{}), ended: make(chan struct{}, len(cfg.Renditions)),
	}
	w.status = status{what: "hls output", log: w.log, onState: cfg.OnState}
	w.thumbs = thumbOuts(cfg.Thumbnails)
	sizes := map[string]bool{}
	for i, r := range cfg.Renditions {
		rd := &rendition{Rendition: r, dir: filepath.Join(cfg.SpoolDir, "r"+strconv.Itoa(i)), have: map[string]bool{}, nextSeg: 1}
		// Thumbnails are per resolution: the first rendition of each size
		// makes them.
		if sz := resolutionPath(r.Width, r.Height); len(w.thumbs) > 0 && !sizes[sz] {
			sizes[sz] = true
			rd.thumbs = true
		}
		rd.thumbN = make([]int, len(w.thumbs))
		w.rends = append(w.rends, rd)
	}
	w.set(StateStarting, "")
	go w.run()
	return w, nil
}

// thumbOuts merges the thumbnail configurations into ffmpeg outputs: the
// first SEQUENTIAL configuration fills media/thumbnails, the first LATEST
// one media/latest_thumbnail (one output when they share an interval).
func thumbOuts(cfgs []Thumbnail) []thumbOut {
	var seq, lat *Thumbnail
	for i := range cfgs {
		c := &cfgs[i]
		if c.IntervalSeconds <= 0 {
			continue
		}
		if c.Sequential && seq == nil {
			seq = c
		}
		if c.Latest && lat == nil {
			lat = c
		}
	}
	var out []thumbOut
	switch {
	case seq != nil && lat != nil && seq.IntervalSeconds == lat.IntervalSeconds:
		out = append(out, thumbOut{interval: seq.IntervalSeconds, sequential: true, latest: true})
	default:
		if seq != nil {
			out = append(out, thumbOut{interval: seq.IntervalSeconds, sequential: true})
		}
		if lat != nil {
			out = append(out, thumbOut{interval: lat.IntervalSeconds, latest: true})
		}
	}
	return out
}

func (w *HLSWriter) sequential() bool {
	for _, t := range w.thumbs {
		if t.sequential {
			return true
		}
	}
	return false
}

func (w *HLSWriter) latest() bool {
	for _, t := range w.thumbs {
		if t.latest {
			return true
		}
	}
	return false
}

// State returns the current state and, for RECONNECTING and FAILED, why.
func (w *HLSWriter) State() (state, reason string) { return w.status.get() }

// Done is closed when the writer has ended (STOPPED or FAILED).
func (w *HLSWriter) Done() <-chan struct{} { return w.done }

func (w *HLSWriter) set(state, reason string) { w.status.set(state, reason) }

func (w *HLSWriter) put(ctx context.Context, key string, body []byte, contentType string) error {
	return w.cfg.Storage.Put(ctx, w.cfg.Bucket, path.Join(w.cfg.Prefix, key), bytes.NewReader(body), contentType)
}

// run is the writer's life: start, upload as ffmpeg makes files, finish.
func (w *HLSWriter) run() {
	defer close(w.done)
	// The spool folder goes, and its parent (the composition's) if that
	// leaves it empty.
	defer removeSpool(w.cfg.SpoolDir, filepath.Dir(filepath.Dir(w.cfg.SpoolDir)))
	// The start is abandoned if Stop comes first.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	go func() {
		select {
		case <-w.stopCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := w.cfg.Storage.CheckBucket(ctx, w.cfg.Bucket)
	if err == nil {
		err = w.put(ctx, keyStarted, w.eventDoc(statusStarted, "", w.cfg.StartedAt, time.Time{}, nil), "application/json")
		if err != nil {
			err = fmt.Errorf("writing %s: %w", keyStarted, err)
		}
	}
	cancel()
	select {
	case <-w.stopCh:
		if err != nil {
			w.set(StateStopped, "") // stopped before it started: nothing written
			return
		}
	default:
	}
	if err != nil {
		reason := err.Error()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = w.put(ctx, keyFailed, w.eventDoc(statusStartFailed, reason, time.Time{}, time.Time{}, nil), "application/json")
		cancel()
		w.set(StateFailed, reason)
		return
	}
	if err := os.MkdirAll(w.cfg.SpoolDir, 0o755); err != nil {
		w.set(StateFailed, "spool folder: "+err.Error())
		return
	}
	for _, r := range w.rends {
		w.wg.Add(1)
		go w.renditionLoop(r)
	}
	w.set(StateActive, "")

	t := time.NewTicker(w.cfg.SyncInterval)
	defer t.Stop()
	live := len(w.rends)
	failed := ""
loop:
	for {
		select {
		case <-w.stopCh:
			break loop
		case <-w.ended:
			live--
			w.mu.Lock()
			failed = w.failReason
			w.mu.Unlock()
			if live == 0 || failed != "" {
				break loop // every encode ended, or one could not be recorded
			}
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			w.syncAndTrack(ctx)
			cancel()
			if f := w.failedFor(); f != "" {
				failed = f
				break loop
			}
		}
	}
	w.finish(failed)
}

// syncAndTrack uploads and turns upload failures into RECONNECTING, and
// success after them into ACTIVE.
func (w *HLSWriter) syncAndTrack(ctx context.Context) {
	fails, reason := w.sync(ctx, false)
	w.mu.Lock()
	stopping := w.stopping
	if fails == 0 {
		was := !w.failing.IsZero()
		w.failing = time.Time{}
		w.mu.Unlock()
		if was && !stopping {
			w.set(StateActive, "")
		}
		return
	}
	if w.failing.IsZero() {
		w.failing = time.Now()
	}
	w.mu.Unlock()
	if !stopping {
		w.set(StateReconnecting, "writing to the bucket: "+reason)
	}
}

// failedFor says why the writer must give up: uploads failing for longer
// than the retry window.
func (w *HLSWriter) failedFor() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.failing.IsZero() && time.Since(w.failing) >= w.cfg.RetryWindow {
		_, reason := w.status.get()
		return fmt.Sprintf("could not write to bucket %s for %s: %s", w.cfg.Bucket, w.cfg.RetryWindow, reason)
	}
	return ""
}

// maxRunFailures bounds how often a rendition's ffmpeg may fail in a row
// (ending without making a segment) before the recording fails.
const maxRunFailures = 5

// renditionLoop runs ffmpeg on the rendition's stream until the stream
// ends or the writer stops; an ffmpeg that fails (or a reader cut off for
// falling behind) is started again on a new reader, from the next
// keyframe, the numbering going on (a discontinuity in the playlist).
func (w *HLSWriter) renditionLoop(r *rendition) {
	defer w.wg.Done()
	defer func() {
		w.mu.Lock()
		r.finished = true
		w.mu.Unlock()
		w.ended <- struct{}{}
	}()
	failures := 0
	for {
		w.mu.Lock()
		if w.stopping {
			w.mu.Unlock()
			return
		}
		run := r.runs
		r.runs++
		// Numbering goes on past every file of the earlier runs, uploaded
		// or not (an upload may still be failing): no name is used twice.
		first := max(r.nextSeg, lastOnDisk(r.dir, "hls", ".ts")+1)
		thumbStart := append([]int(nil), r.thumbN...)
		for i := range thumbStart {
			thumbStart[i] = max(thumbStart[i], lastOnDisk(r.dir, "thumbs-"+strconv.Itoa(i), ".jpg"))
		}
		w.mu.Unlock()
		dir := filepath.Join(r.dir, "run-"+strconv.Itoa(run))
		segsBefore := w.segmentCount(r)
		pr, err := w.startRun(r, dir, first, thumbStart)
		if err != nil {
			w.giveUp(r, err.Error())
			return
		}
		<-pr.done
		w.mu.Lock()
		r.cur = nil
		stopping := w.stopping
		w.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		w.syncAndTrack(ctx)
		cancel()
		srcErr := r.Source.Err()
		if stopping || srcErr == io.EOF || (pr.err == nil && pr.inErr == io.EOF) {
			return // the end: the stream's or the writer's
		}
		if srcErr != nil {
			w.giveUp(r, fmt.Sprintf("the encode of rendition %s failed: %v", r.Name, srcErr))
			return
		}
		reason := pr.exitReason()
		if errors.Is(pr.inErr, flv.ErrSlowReader) {
			reason = "the recording does not keep up with the encode"
		}
		if w.segmentCount(r) > segsBefore {
			failures = 0
		}
		failures++
		w.log.Warn("hls output: ffmpeg ended; starting it again", "rendition", r.Name, "reason", reason)
		if failures > maxRunFailures {
			w.giveUp(r, fmt.Sprintf("recording rendition %s: %s", r.Name, reason))
			return
		}
		select {
		case <-w.stopCh:
			return
		case <-time.After(time.Second):
		}
	}
}

// lastOnDisk is the highest number N of a file N<ext> in the sub folder
// of any run under dir (0 if none).
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

func (w *HLSWriter) giveUp(r *rendition, reason string) {
	w.mu.Lock()
	if w.failReason == "" {
		w.failReason = reason
	}
	w.mu.Unlock()
}

func (w *HLSWriter) segmentCount(r *rendition) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(r.segs)
}

// startRun starts one ffmpeg on a new reader of the rendition's stream:
// HLS of MPEG-TS segments copied from the encode, and the thumbnails,
// which decode the keyframes only.
func (w *HLSWriter) startRun(r *rendition, dir string, firstSeg int, thumbStart []int) (*proc, error) {
	if err := os.MkdirAll(filepath.Join(dir, "hls"), 0o755); err != nil {
		return nil, err
	}
	args := []string{"-hide_banner", "-nostats", "-loglevel", "error"}
	if r.thumbs && !w.cfg.decodeAllFrames {
		// Only the thumbnails decode, and keyframes are enough for them:
		// the HLS output copies the packets whatever the decoder skips.
		args = append(args, "-skip_frame", "nokey")
	}
	args = append(args, inputArgs...)
	args = append(args,
		"-map", "0", "-c", "copy",
		"-f", "hls",
		"-hls_time", strconv.Itoa(w.cfg.SegmentSeconds),
		"-hls_segment_type", "mpegts",
		"-hls_segment_filename", filepath.Join("hls", "%d.ts"),
		"-start_number", strconv.Itoa(firstSeg),
		"-hls_list_size", "0",
		"-hls_playlist_type", "event",
		"-hls_flags", "temp_file+independent_segments",
		filepath.Join("hls", "playlist.m3u8"),
	)
	if r.thumbs {
		for i, t := range w.thumbs {
			td := "thumbs-" + strconv.Itoa(i)
			if err := os.MkdirAll(filepath.Join(dir, td), 0o755); err != nil {
				return nil, err
			}
			args = append(args,
				"-map", "0:v:0",
				"-vf", fmt.Sprintf("fps=1/%d", t.interval),
				"-q:v", "3",
				"-f", "image2",
				"-start_number", strconv.Itoa(thumbStart[i]+1),
				"-atomic_writing", "1",
				filepath.Join(td, "%d.jpg"),
			)
		}
	}
	src := r.Source.NewReader()
	pr, err := startProc(w.bin, args, dir, src, nil)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	r.cur = pr
	r.pid = pr.cmd.Process.Pid
	stopping := w.stopping
	w.mu.Unlock()
	if stopping {
		_ = pr.closeInput()
	}
	w.saveState()
	return pr, nil
}

// sync uploads what the ffmpeg runs have finished: segments, then the
// media playlists that list them (only uploaded segments are listed),
// the multivariant playlist once every rendition has a segment, and the
// thumbnails. It returns how many uploads failed, and the last reason.
func (w *HLSWriter) sync(ctx context.Context, final bool) (fails int, reason string) {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	var uploaded []string // spool files now in the bucket
	w.mu.Lock()
	quiet := !w.failing.IsZero() // an outage is logged once, not every second
	w.mu.Unlock()
	fail := func(what string, err error) {
		fails++
		reason = err.Error()
		if !quiet {
			w.log.Warn("hls output: uploading", "what", what, "err", err)
		}
	}
	for _, r := range w.rends {
		w.mu.Lock()
		runs := r.runs
		w.mu.Unlock()
		for run := range runs {
			dir := filepath.Join(r.dir, "run-"+strconv.Itoa(run))
			b, err := os.ReadFile(filepath.Join(dir, "hls", "playlist.m3u8"))
			if err != nil && !w.recovering {
				continue
			}
			segs, _ := readPlaylist(b)
			if w.recovering {
				segs = spooledSegments(filepath.Join(dir, "hls"), segs, w.cfg.SegmentSeconds)
			}
			firstOfRun := true
			for _, s := range segs {
				w.mu.Lock()
				done := r.have[s.uri]
				w.mu.Unlock()
				if done {
					firstOfRun = false
					continue
				}
				file := filepath.Join(dir, "hls", s.uri)
				data, err := os.ReadFile(file)
				if err == nil {
					err = w.put(ctx, path.Join(dirHLS, r.Name, s.uri), data, "video/mp2t")
				}
				if err != nil {
					fail(r.Name+"/"+s.uri, err)
					break
				}
				uploaded = append(uploaded, file)
				s.bytes = int64(len(data))
				s.disc = firstOfRun && run > 0
				firstOfRun = false
				w.mu.Lock()
				r.have[s.uri] = true
				r.segs = append(r.segs, s)
				if n, err := strconv.Atoi(strings.TrimSuffix(s.uri, ".ts")); err == nil && n >= r.nextSeg {
					r.nextSeg = n + 1
				}
				r.dirty = true
				w.mu.Unlock()
			}
		}
		uploaded = append(uploaded, w.syncThumbnails(ctx, r, fail)...)
	}
	// The media playlists, then the multivariant playlist.
	all := true
	for _, r := range w.rends {
		w.mu.Lock()
		segs := append([]segment(nil), r.segs...)
		dirty := r.dirty
		w.mu.Unlock()
		if len(segs) == 0 {
			all = false
		}
		if !dirty || final {
			continue // the final playlists are written by finish
		}
		if err := w.put(ctx, path.Join(dirHLS, r.Name, playlistName), mediaPlaylist(segs, w.cfg.SegmentSeconds, false), "application/vnd.apple.mpegurl"); err != nil {
			fail(r.Name+" playlist", err)
			continue
		}
		w.mu.Lock()
		r.dirty = false
		w.mu.Unlock()
	}
	// Spool files are removed once the state file says they are in the
	// bucket: a crash in between never loses track of one.
	if w.saveState() {
		for _, f := range uploaded {
			_ = os.Remove(f)
		}
	}
	w.mu.Lock()
	needMulti := all && !w.multiDone && !final
	w.mu.Unlock()
	if needMulti {
		if err := w.put(ctx, keyMultivariant, w.multivariant(), "application/vnd.apple.mpegurl"); err != nil {
			fail("multivariant playlist", err)
		} else {
			w.mu.Lock()
			w.multiDone = true
			w.mu.Unlock()
		}
	}
	return fails, reason
}

// syncThumbnails uploads the rendition's new thumbnails: each as the next
// of the sequence, the newest as the latest. It returns the files uploaded.
func (w *HLSWriter) syncThumbnails(ctx context.Context, r *rendition, fail func(string, error)) (uploaded []string) {
	if !r.thumbs {
		return nil
	}
	size := resolutionPath(r.Width, r.Height)
	w.mu.Lock()
	runs := r.runs
	w.mu.Unlock()
	for i, t := range w.thumbs {
		w.mu.Lock()
		last := r.thumbN[i]
		w.mu.Unlock()
		files := map[int]string{}
		for run := range runs {
			d := filepath.Join(r.dir, "run-"+strconv.Itoa(run), "thumbs-"+strconv.Itoa(i))
			entries, _ := os.ReadDir(d)
			for _, e := range entries {
				n, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".jpg"))
				if err == nil && strings.HasSuffix(e.Name(), ".jpg") && n > last {
					files[n] = filepath.Join(d, e.Name())
				}
			}
		}
		nums := make([]int, 0, len(files))
		for n := range files {
			nums = append(nums, n)
		}
		sort.Ints(nums)
		for j, n := range nums {
			data, err := os.ReadFile(files[n])
			if err == nil && t.sequential {
				err = w.put(ctx, path.Join(dirThumbnails, size, strconv.Itoa(n)+".jpg"), data, "image/jpeg")
			}
			if err == nil && t.latest && j == len(nums)-1 {
				err = w.put(ctx, path.Join(dirLatestThumb, size, latestThumbName), data, "image/jpeg")
			}
			if err != nil {
				fail("thumbnail", err)
				break
			}
			uploaded = append(uploaded, files[n])
			w.mu.Lock()
			r.thumbN[i] = n
			w.mu.Unlock()
		}
	}
	return uploaded
}

// multivariant renders media/hls/multivariant.m3u8: every rendition that
// has a segment, its peak bit rate (or its configured one, if higher), size, frame rate and
// codecs.
func (w *HLSWriter) multivariant() []byte {
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	for _, r := range w.rends {
		w.mu.Lock()
		bw := max(peakBandwidth(r.segs), int64(r.Bitrate))
		v, a := r.codecs()
		none := len(r.segs) == 0
		w.mu.Unlock()
		if none {
			continue // never recorded: no playlist to point to
		}
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,RESOLUTION=%dx%d", max(bw, 1), r.Width, r.Height)
		if r.Framerate > 0 {
			fmt.Fprintf(&b, ",FRAME-RATE=%.3f", r.Framerate)
		}
		var codecs []string
		for _, c := range []string{v, a} {
			if c != "" {
				codecs = append(codecs, c)
			}
		}
		if len(codecs) > 0 {
			fmt.Fprintf(&b, ",CODECS=%q", strings.Join(codecs, ","))
		}
		b.WriteString("\n" + r.Name + "/" + playlistName + "\n")
	}
	return []byte(b.String())
}

// Stop ends the recording: ffmpeg finishes its last segments, everything
// is uploaded, the playlists become VOD and recording-ended.json is
// written (recording-failed.json if something could not be); the state
// goes STOPPING, then STOPPED (or FAILED). ctx bounds the uploads; past
// it ffmpeg is killed. Stop returns when the writer has ended.
func (w *HLSWriter) Stop(ctx context.Context) error {
	w.mu.Lock()
	first := !w.stopping
	if first {
		w.stopping = true
		w.stopCtx = ctx
	}
	var curs []*proc
	for _, r := range w.rends {
		if r.cur != nil {
			curs = append(curs, r.cur)
		}
	}
	w.mu.Unlock()
	state, _ := w.status.get()
	if first {
		if state != StateFailed && state != StateStopped {
			w.set(StateStopping, "")
		}
		for _, c := range curs {
			_ = c.closeInput()
		}
		w.stopOnce.Do(func() { close(w.stopCh) })
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		w.killAll()
		<-w.done
		return ctx.Err()
	}
}

func (w *HLSWriter) killAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.rends {
		if r.cur != nil {
			r.cur.kill()
		}
	}
}

// finish ends the runs, uploads what is left and writes the final files.
// failed, if set, is why the recording could not go on.
func (w *HLSWriter) finish(failed string) {
	w.mu.Lock()
	w.stopping = true
	ctx := w.stopCtx
	var curs []*proc
	for _, r := range w.rends {
		if r.cur != nil {
			curs = append(curs, r.cur)
		}
	}
	w.mu.Unlock()
	w.stopOnce.Do(func() { close(w.stopCh) })
	if ctx == nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
	}
	if failed == "" {
		w.set(StateStopping, "")
	}
	for _, c := range curs {
		_ = c.closeInput()
	}
	// ffmpeg finishes its last segment when its input ends.
	waited := make(chan struct{})
	go func() {
		w.wg.Wait()
		close(waited)
	}()
	select {
	case <-waited:
	case <-ctx.Done():
		w.killAll()
		<-waited
	}
	w.mu.Lock()
	if failed == "" {
		failed = w.failReason
	}
	w.mu.Unlock()
	w.finalize(ctx, failed)
}

// finalize uploads what is left, writes the VOD playlists and the events
// file, and says STOPPED or FAILED. failed, if set, is why the recording
// could not go on.
func (w *HLSWriter) finalize(ctx context.Context, failed string) {
	fails, reason := w.sync(ctx, true)
	ended := time.Now()
	var errs []error
	for _, r := range w.rends {
		w.mu.Lock()
		segs := append([]segment(nil), r.segs...)
		w.mu.Unlock()
		if len(segs) == 0 {
			continue
		}
		errs = append(errs, w.put(ctx, path.Join(dirHLS, r.Name, playlistName), mediaPlaylist(segs, w.cfg.SegmentSeconds, true), "application/vnd.apple.mpegurl"))
	}
	if w.anySegments() {
		errs = append(errs, w.put(ctx, keyMultivariant, w.multivariant(), "application/vnd.apple.mpegurl"))
	}
	ms := w.duration().Milliseconds()
	if err := errors.Join(errs...); err != nil && failed == "" {
		failed = "writing the playlists: " + err.Error()
	}
	if fails > 0 && failed == "" {
		failed = fmt.Sprintf("%d of the recording's files could not be written to the bucket: %s", fails, reason)
	}
	if failed != "" {
		_ = w.put(ctx, keyFailed, w.eventDoc(statusEndedWithFail, failed, w.cfg.StartedAt, ended, &ms), "application/json")
		w.set(StateFailed, failed)
		return
	}
	if err := w.put(ctx, keyEnded, w.eventDoc(statusEnded, "", w.cfg.StartedAt, ended, &ms), "application/json"); err != nil {
		w.set(StateFailed, "writing "+keyEnded+": "+err.Error())
		return
	}
	w.set(StateStopped, "")
}

func (w *HLSWriter) anySegments() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.rends {
		if len(r.segs) > 0 {
			return true
		}
	}
	return false
}

// duration is how long the recording plays: its first rendition's
// segments.
func (w *HLSWriter) duration() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var d float64
	for _, s := range w.rends[0].segs {
		d += s.dur
	}
	return time.Duration(d * float64(time.Second))
}

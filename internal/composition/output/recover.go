package output

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rostrum-dev/rostrum/internal/ffmpeg"
)

// stateFile is an HLS writer's record of its recording in its spool
// folder: enough to close the recording after a crash (RecoverHLS).
const stateFile = "state.json"

// processID tells this process's writers' state files from those a
// previous run left: RecoverHLS runs while new compositions may already be
// recording, and must not touch theirs. (A process id would not do: in a
// container the server is process 1 every time.)
var processID = func() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}()

type spoolState struct {
	Process        string           `json:"process"`
	Bucket         string           `json:"bucket"`
	Prefix         string           `json:"prefix"`
	StageARN       string           `json:"stageArn"`
	StartedAt      time.Time        `json:"startedAt"`
	SegmentSeconds int              `json:"segmentSeconds"`
	Thumbs         []spoolThumb     `json:"thumbnails,omitempty"`
	Renditions     []spoolRendition `json:"renditions"`
}

type spoolThumb struct {
	Interval   int  `json:"interval"`
	Sequential bool `json:"sequential"`
	Latest     bool `json:"latest"`
}

type spoolRendition struct {
	Name      string         `json:"name"`
	Width     int            `json:"width"`
	Height    int            `json:"height"`
	Framerate float64        `json:"framerate"`
	Bitrate   int            `json:"bitrate"`
	Thumbs    bool           `json:"thumbnails"`
	Runs      int            `json:"runs"`
	PID       int            `json:"pid"`
	Segments  []spoolSegment `json:"segments"`
	NextSeg   int            `json:"nextSegment"`
	ThumbN    []int          `json:"thumbnailNumbers"`
	CodecV    string         `json:"videoCodec"`
	CodecA    string         `json:"audioCodec"`
}

type spoolSegment struct {
	URI   string  `json:"uri"`
	Dur   float64 `json:"duration"`
	Bytes int64   `json:"bytes"`
	Disc  bool    `json:"discontinuity,omitempty"`
}

// saveState writes the state file, atomically; it reports whether it did.
func (w *HLSWriter) saveState() bool {
	w.mu.Lock()
	st := spoolState{Process: processID, Bucket: w.cfg.Bucket, Prefix: w.cfg.Prefix, StageARN: w.cfg.StageARN, StartedAt: w.cfg.StartedAt, SegmentSeconds: w.cfg.SegmentSeconds}
	for _, t := range w.thumbs {
		st.Thumbs = append(st.Thumbs, spoolThumb{Interval: t.interval, Sequential: t.sequential, Latest: t.latest})
	}
	for _, r := range w.rends {
		v, a := r.codecs()
		sr := spoolRendition{Name: r.Name, Width: r.Width, Height: r.Height, Framerate: r.Framerate, Bitrate: r.Bitrate,
			Thumbs: r.thumbs, Runs: r.runs, PID: r.pid, NextSeg: r.nextSeg, ThumbN: append([]int(nil), r.thumbN...), CodecV: v, CodecA: a}
		for _, sg := range r.segs {
			sr.Segments = append(sr.Segments, spoolSegment{URI: sg.uri, Dur: sg.dur, Bytes: sg.bytes, Disc: sg.disc})
		}
		st.Renditions = append(st.Renditions, sr)
	}
	w.mu.Unlock()
	b, err := json.Marshal(st)
	if err != nil {
		return false
	}
	tmp := filepath.Join(w.cfg.SpoolDir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		w.log.Warn("hls output: saving the state", "err", err)
		return false
	}
	return os.Rename(tmp, filepath.Join(w.cfg.SpoolDir, stateFile)) == nil
}

// RecoverHLS closes the composite recordings that a previous run of the
// server left in spoolRoot (it was killed while they were recording; the
// writers of this process are left alone):
// what ffmpeg had finished is uploaded, the playlists become VOD, and
// recording-failed.json (RECORDING_ENDED_WITH_FAILURE) says what happened.
// It returns how many it closed. Unreadable leftovers are removed.
func RecoverHLS(ctx context.Context, storage Storage, spoolRoot string, log *slog.Logger) (int, error) {
	if log == nil {
		log = slog.Default()
	}
	var states []string
	err := filepath.WalkDir(spoolRoot, func(p string, d os.DirEntry, err error) error {
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
		dir := filepath.Dir(sp)
		b, err := os.ReadFile(sp)
		var st spoolState
		if err == nil {
			err = json.Unmarshal(b, &st)
		}
		if err == nil && st.Process == processID {
			continue // a writer of this process, recording now
		}
		if err != nil || st.Bucket == "" || len(st.Renditions) == 0 {
			log.Warn("dropping an unreadable composite recording state", "path", sp, "err", err)
			removeSpool(dir, spoolRoot)
			continue
		}
		w := &HLSWriter{
			cfg: HLSConfig{Storage: storage, Bucket: st.Bucket, Prefix: st.Prefix, StageARN: st.StageARN, StartedAt: st.StartedAt,
				SegmentSeconds: st.SegmentSeconds, SpoolDir: dir, Logger: log, OnState: func(string, string) {}},
			log:  log.With("component", "composition-output", "bucket", st.Bucket, "prefix", st.Prefix),
			done: make(chan struct{}), stopCh: make(chan struct{}),
		}
		w.status = status{what: "hls output", log: w.log, onState: w.cfg.OnState}
		for _, t := range st.Thumbs {
			w.thumbs = append(w.thumbs, thumbOut{interval: t.Interval, sequential: t.Sequential, latest: t.Latest})
		}
		for i, sr := range st.Renditions {
			r := &rendition{
				Rendition: Rendition{Name: sr.Name, Width: sr.Width, Height: sr.Height, Framerate: sr.Framerate, Bitrate: sr.Bitrate},
				dir:       filepath.Join(dir, fmt.Sprintf("r%d", i)), thumbs: sr.Thumbs, runs: sr.Runs, have: map[string]bool{},
				nextSeg: sr.NextSeg, thumbN: sr.ThumbN, codecV: sr.CodecV, codecA: sr.CodecA,
			}
			for len(r.thumbN) < len(w.thumbs) {
				r.thumbN = append(r.thumbN, 0)
			}
			for _, sg := range sr.Segments {
				r.segs = append(r.segs, segment{uri: sg.URI, dur: sg.Dur, bytes: sg.Bytes, disc: sg.Disc})
				r.have[sg.URI] = true
			}
			// The dead server's ffmpeg got SIGTERM with it and finishes its
			// last segment within moments: read its files once it is done.
			ffmpeg.AwaitOrphan(ctx, sr.PID, filepath.Join(r.dir, fmt.Sprintf("run-%d", sr.Runs-1)), log)
			w.rends = append(w.rends, r)
		}
		w.status.state = StateActive
		w.recovering = true
		log.Info("closing a composite recording the previous run left open", "bucket", st.Bucket, "prefix", st.Prefix)
		w.finalize(ctx, "the server stopped unexpectedly; the recording was closed with what had been written at its next start")
		removeSpool(dir, spoolRoot)
		n++
	}
	return n, nil
}

// removeSpool removes a writer's spool folder and the folders above it up
// to root that it leaves empty (the composition's).
func removeSpool(dir, root string) {
	_ = os.RemoveAll(dir)
	root = filepath.Clean(root)
	for d := filepath.Dir(dir); d != root && len(d) > len(root) && strings.HasPrefix(d, root+string(filepath.Separator)); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			return // not empty: another destination's
		}
	}
}

// spooledSegments adds to the segments a run's playlist lists those its
// spool folder holds past them. An ffmpeg killed with its server can leave
// its playlist empty or behind its segments (it was rewriting it), while
// the dead writer had already uploaded a segment it read there before
// saving its state: that segment is still in the spool (files go only
// once the state lists them) and must be in the recovered playlist. A
// segment the playlist does not list is taken at the nominal segment
// length; empty files (a segment just opened) are left out.
func spooledSegments(dir string, listed []segment, nominal int) []segment {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return listed
	}
	last := -1
	for _, s := range listed {
		if n, err := strconv.Atoi(strings.TrimSuffix(s.uri, ".ts")); err == nil {
			last = max(last, n)
		}
	}
	var extra []int
	for _, e := range entries {
		n, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".ts"))
		if err != nil || !strings.HasSuffix(e.Name(), ".ts") || n <= last {
			continue
		}
		if info, err := e.Info(); err != nil || info.Size() == 0 {
			continue
		}
		extra = append(extra, n)
	}
	slices.Sort(extra)
	for _, n := range extra {
		listed = append(listed, segment{uri: strconv.Itoa(n) + ".ts", dur: float64(nominal)})
	}
	return listed
}

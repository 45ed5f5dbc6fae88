package output

import (
	"context"
	"encoding/json"
	"errors"
	"image/jpeg"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/objstore"
	"github.com/rostrum-dev/rostrum/internal/objstore/folder"
	"github.com/rostrum-dev/rostrum/internal/objstore/objstoretest"
	"github.com/rostrum-dev/rostrum/internal/objstore/s3store"
	"github.com/rostrum-dev/rostrum/internal/testutil"
)

const (
	testStage  = "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGhIjKl"
	testPrefix = "AbCdEfGhIjKl/CoMpOsItIoN1/DeStInAtIoN/composite"
)

// objectCount is how many objects storage holds under prefix/sub.
func objectCount(t testing.TB, st objstore.Storage, bucket, sub, suffix string) int {
	t.Helper()
	objs, err := objstore.ListAll(context.Background(), st, bucket, testPrefix+"/"+sub)
	if err != nil {
		return 0
	}
	n := 0
	for _, o := range objs {
		if strings.HasSuffix(o.Key, suffix) {
			n++
		}
	}
	return n
}

func getObject(t testing.TB, st objstore.Storage, bucket, key string) []byte {
	t.Helper()
	b, _, err := objstore.GetBytes(context.Background(), st, bucket, testPrefix+"/"+key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return b
}

// readEvent reads an events JSON file as a generic document.
func readEvent(t testing.TB, st objstore.Storage, bucket, key string) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(getObject(t, st, bucket, key), &doc); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return doc
}

func stopWriter(t testing.TB, w *HLSWriter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*testutil.Patience)
	defer cancel()
	if err := w.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

// playlistDuration sums a playlist's EXTINF.
func playlistDuration(t testing.TB, b []byte) float64 {
	segs, _ := readPlaylist(b)
	var d float64
	for _, s := range segs {
		d += s.dur
	}
	return d
}

// TestHLSToFolder records two encodes (two renditions) with thumbnails
// into the local folder storage and checks every file of IVS's composite
// layout, then plays the multivariant playlist with ffprobe.
func TestHLSToFolder(t *testing.T) {
	st, err := folder.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	hi := startEncode(t, 640, 360, 30)
	lo := startEncode(t, 320, 240, 15)
	started := time.Now().Add(-time.Second).Truncate(time.Second)
	spool := filepath.Join(t.TempDir(), "composition-spool", "c1", "d1")
	var states states
	w, err := StartHLS(HLSConfig{
		Storage: st, Bucket: "bucket", Prefix: testPrefix, StageARN: testStage, StartedAt: started,
		Renditions: []Rendition{
			{Name: "360p30-hi", Width: 640, Height: 360, Framerate: 30, Bitrate: 1_500_000, Source: hi.Stream},
			{Name: "240p15-lo", Width: 320, Height: 240, Framerate: 15, Bitrate: 1_000_000, Source: lo.Stream},
		},
		SegmentSeconds: 2,
		Thumbnails:     []Thumbnail{{IntervalSeconds: 2, Sequential: true, Latest: true}},
		SpoolDir:       spool, OnState: states.on,
	})
	if err != nil {
		t.Fatal(err)
	}
	states.wait(t, StateActive, 1)
	startedDoc := readEvent(t, st, "bucket", keyStarted)
	if startedDoc["recording_status"] != "RECORDING_STARTED" || startedDoc["recording_started_at"] != iso(started) ||
		startedDoc["stage_arn"] != testStage || startedDoc["version"] != "v1" || startedDoc["recording_ended_at"] != nil {
		t.Fatalf("recording-started.json: %v", startedDoc)
	}
	// Three segments of each rendition in storage, listed by an EVENT
	// playlist, and the multivariant playlist.
	for _, r := range []string{"360p30-hi", "240p15-lo"} {
		testutil.Eventually(t, "3 segments of "+r, func() bool { return objectCount(t, st, "bucket", "media/hls/"+r+"/", ".ts") >= 3 })
	}
	testutil.Eventually(t, "the playlists", func() bool {
		return objectCount(t, st, "bucket", "media/hls/multivariant.m3u8", "") == 1 &&
			objectCount(t, st, "bucket", "media/hls/240p15-lo/playlist.m3u8", "") == 1
	})
	live := string(getObject(t, st, "bucket", "media/hls/360p30-hi/playlist.m3u8"))
	if !strings.Contains(live, "#EXT-X-PLAYLIST-TYPE:EVENT") || strings.Contains(live, "#EXT-X-ENDLIST") {
		t.Fatalf("the playlist while recording:\n%s", live)
	}
	testutil.Eventually(t, "thumbnails", func() bool {
		return objectCount(t, st, "bucket", "media/thumbnails/640x360/", ".jpg") >= 2 &&
			objectCount(t, st, "bucket", "media/thumbnails/320x240/", ".jpg") >= 2 &&
			objectCount(t, st, "bucket", "media/latest_thumbnail/640x360/thumb.jpg", "") == 1
	})
	stopWriter(t, w)
	if got := strings.Join(states.list(), ","); got != "STARTING,ACTIVE,STOPPING,STOPPED" {
		t.Fatalf("states %s", got)
	}

	// The playlists are VOD now, list only uploaded segments, and carry no
	// PROGRAM-DATE-TIME.
	durs := map[string]float64{}
	for _, r := range []string{"360p30-hi", "240p15-lo"} {
		pl := getObject(t, st, "bucket", "media/hls/"+r+"/playlist.m3u8")
		s := string(pl)
		if !strings.Contains(s, "#EXT-X-PLAYLIST-TYPE:VOD") || !strings.HasSuffix(s, "#EXT-X-ENDLIST\n") || strings.Contains(s, "PROGRAM-DATE-TIME") {
			t.Fatalf("%s playlist at the end:\n%s", r, s)
		}
		segs, _ := readPlaylist(pl)
		for _, sg := range segs {
			getObject(t, st, "bucket", "media/hls/"+r+"/"+sg.uri)
		}
		durs[r] = playlistDuration(t, pl)
	}
	multi := string(getObject(t, st, "bucket", "media/hls/multivariant.m3u8"))
	for _, want := range []string{"RESOLUTION=640x360", "RESOLUTION=320x240", "360p30-hi/playlist.m3u8", "240p15-lo/playlist.m3u8", `CODECS="avc1.`, "mp4a.40.2", "FRAME-RATE=30.000"} {
		if !strings.Contains(multi, want) {
			t.Fatalf("multivariant playlist without %s:\n%s", want, multi)
		}
	}
	// ffprobe plays the multivariant playlist: both renditions.
	mp := probe(t, st.Path("bucket", testPrefix+"/media/hls/multivariant.m3u8"))
	var sizes []string
	for _, s := range mp.Streams {
		if s.CodecType == "video" {
			if s.CodecName != "h264" {
				t.Fatalf("video codec %s", s.CodecName)
			}
			sizes = append(sizes, strconv.Itoa(s.Width)+"x"+strconv.Itoa(s.Height))
		}
	}
	if strings.Join(sizes, ",") != "640x360,320x240" {
		t.Fatalf("renditions played: %v", sizes)
	}
	probe(t, st.Path("bucket", testPrefix+"/media/hls/360p30-hi/playlist.m3u8")).check(t, 640, 360, 30)
	probe(t, st.Path("bucket", testPrefix+"/media/hls/240p15-lo/playlist.m3u8")).check(t, 320, 240, 15)

	// recording-ended.json as IVS writes it.
	if objectCount(t, st, "bucket", keyFailed, "") != 0 {
		t.Fatalf("recording-failed.json: %s", getObject(t, st, "bucket", keyFailed))
	}
	var ended compositeEvent
	if err := json.Unmarshal(getObject(t, st, "bucket", keyEnded), &ended); err != nil {
		t.Fatal(err)
	}
	if ended.Version != "v1" || ended.StageARN != testStage || ended.RecordingStatus != "RECORDING_ENDED" ||
		ended.RecordingStartedAt != iso(started) || ended.RecordingEndedAt == "" || ended.StatusMessage != "" {
		t.Fatalf("recording-ended.json: %+v", ended)
	}
	h := ended.Media.HLS
	if h.DurationMs == nil || math.Abs(float64(*h.DurationMs)-durs["360p30-hi"]*1000) > 1 || h.Path != "media/hls" || h.Playlist != "multivariant.m3u8" {
		t.Fatalf("media.hls %+v (playlist plays %.3f s)", h, durs["360p30-hi"])
	}
	if len(h.Renditions) != 2 || h.Renditions[0] != (compositeRendition{Path: "360p30-hi", Playlist: "playlist.m3u8", Width: 640, Height: 360}) ||
		h.Renditions[1] != (compositeRendition{Path: "240p15-lo", Playlist: "playlist.m3u8", Width: 320, Height: 240}) {
		t.Fatalf("renditions %+v", h.Renditions)
	}
	for _, th := range []*compositeThumbs{ended.Media.Thumbnails, ended.Media.LatestThumbnail} {
		if th == nil || len(th.Resolutions) != 2 || th.Resolutions[0] != (compositeResolution{Path: "640x360", Width: 640, Height: 360}) {
			t.Fatalf("thumbnails %+v", th)
		}
	}
	if ended.Media.Thumbnails.Path != "media/thumbnails" || ended.Media.LatestThumbnail.Path != "media/latest_thumbnail" {
		t.Fatal("thumbnail paths")
	}
	// The JSON's own key names (what the struct tags say is checked above;
	// here that nothing else is in the file).
	raw := readEvent(t, st, "bucket", keyEnded)
	for k := range raw {
		switch k {
		case "version", "stage_arn", "recording_started_at", "recording_ended_at", "recording_status", "media":
		default:
			t.Fatalf("recording-ended.json has %q", k)
		}
	}

	// Thumbnails: numbered from 1, JPEGs of the rendition's size.
	for _, sz := range []struct {
		dir  string
		w, h int
	}{{"640x360", 640, 360}, {"320x240", 320, 240}} {
		for _, key := range []string{"media/thumbnails/" + sz.dir + "/1.jpg", "media/latest_thumbnail/" + sz.dir + "/thumb.jpg"} {
			cfg, err := jpeg.DecodeConfig(strings.NewReader(string(getObject(t, st, "bucket", key))))
			if err != nil || cfg.Width != sz.w || cfg.Height != sz.h {
				t.Fatalf("%s: %v %dx%d", key, err, cfg.Width, cfg.Height)
			}
		}
	}
	if _, err := os.Stat(spool); !os.IsNotExist(err) {
		t.Fatalf("the spool folder is left: %v", err)
	}
}

// s3 is a versitygw with a bucket "bucket".
func s3(t *testing.T, create bool) (objstore.Storage, *objstoretest.VersityGW) {
	t.Helper()
	g := objstoretest.StartVersityGW(t)
	st, err := s3store.New(s3store.Config{Endpoint: g.Endpoint, Region: g.Region, AccessKeyID: g.AccessKeyID, SecretAccessKey: g.SecretAccessKey, ForcePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if create {
		if err := st.CreateBucket(context.Background(), "bucket"); err != nil {
			t.Fatal(err)
		}
	}
	return st, g
}

func TestHLSToS3(t *testing.T) {
	testutil.CheckLeaks(t)
	st, g := s3(t, true)
	enc := startEncode(t, 320, 240, 30)
	var states states
	w, err := StartHLS(HLSConfig{
		Storage: st, Bucket: "bucket", Prefix: testPrefix, StageARN: testStage,
		Renditions: []Rendition{{Name: "240p30-x", Width: 320, Height: 240, Framerate: 30, Bitrate: 1_000_000, Source: enc.Stream}},
		SpoolDir:   filepath.Join(t.TempDir(), "spool"), OnState: states.on,
	})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "2 segments", func() bool { return objectCount(t, st, "bucket", "media/hls/240p30-x/", ".ts") >= 2 })
	stopWriter(t, w)
	if states.last() != StateStopped {
		t.Fatalf("states %q", states.list())
	}
	// versitygw's posix backend keeps bucket/key as a file: ffprobe it.
	pl := filepath.Join(g.Dir, "bucket", testPrefix, "media/hls/multivariant.m3u8")
	m := probe(t, pl)
	m.check(t, 320, 240, 30)
	ended := readEvent(t, st, "bucket", keyEnded)
	media := ended["media"].(map[string]any)
	if ended["recording_status"] != "RECORDING_ENDED" || media["thumbnails"] != nil || media["latest_thumbnail"] != nil {
		t.Fatalf("recording-ended.json: %v", ended)
	}
	if d := media["hls"].(map[string]any)["duration_ms"].(float64); d < 2000 {
		t.Fatalf("duration_ms %v of at least 2 segments", d)
	}
}

func TestHLSMissingBucketFails(t *testing.T) {
	st, _ := s3(t, false)
	enc := startEncode(t, 320, 240, 30)
	var states states
	w, err := StartHLS(HLSConfig{
		Storage: st, Bucket: "no-such-bucket", Prefix: testPrefix, StageARN: testStage,
		Renditions: []Rendition{{Name: "240p30-x", Width: 320, Height: 240, Source: enc.Stream}},
		SpoolDir:   filepath.Join(t.TempDir(), "spool"), OnState: states.on,
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.Done():
	case <-time.After(testutil.Patience):
		t.Fatal("the writer did not end")
	}
	l := states.list()
	if len(l) != 2 || l[0] != StateStarting || !strings.HasPrefix(l[1], StateFailed+": ") || !strings.Contains(l[1], "no such bucket") {
		t.Fatalf("states %q", l)
	}
	stopWriter(t, w) // no effect, no error
}

func TestHLSDeniedBucketFails(t *testing.T) {
	_, g := s3(t, true)
	// The right endpoint and key id, the wrong secret: every request is
	// refused.
	st, err := s3store.New(s3store.Config{Endpoint: g.Endpoint, Region: g.Region, AccessKeyID: g.AccessKeyID, SecretAccessKey: "not-the-secret-key-at-all-0000000000000", ForcePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	enc := startEncode(t, 320, 240, 30)
	var states states
	w, err := StartHLS(HLSConfig{
		Storage: st, Bucket: "bucket", Prefix: testPrefix, StageARN: testStage,
		Renditions: []Rendition{{Name: "240p30-x", Width: 320, Height: 240, Source: enc.Stream}},
		SpoolDir:   filepath.Join(t.TempDir(), "spool"), OnState: states.on,
	})
	if err != nil {
		t.Fatal(err)
	}
	<-w.Done()
	if l := states.last(); !strings.HasPrefix(l, StateFailed+": ") || !strings.Contains(l, "access denied") {
		t.Fatalf("states %q", states.list())
	}
}

// flaky is a storage whose puts fail while broken: a storage outage.
type flaky struct {
	objstore.Storage
	mu     sync.Mutex
	broken bool
}

func (f *flaky) set(b bool) {
	f.mu.Lock()
	f.broken = b
	f.mu.Unlock()
}

func (f *flaky) Put(ctx context.Context, bucket, key string, body io.Reader, ct string) error {
	f.mu.Lock()
	b := f.broken
	f.mu.Unlock()
	if b {
		return &objstore.Error{Op: "put", Bucket: bucket, Key: key, Kind: objstore.ErrUnavailable, Err: errors.New("connection refused")}
	}
	return f.Storage.Put(ctx, bucket, key, body, ct)
}

func TestHLSStorageOutage(t *testing.T) {
	for _, heal := range []bool{true, false} {
		t.Run("heal="+strconv.FormatBool(heal), func(t *testing.T) {
			testutil.CheckLeaks(t)
			dir, err := folder.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			st := &flaky{Storage: dir}
			enc := startEncode(t, 320, 240, 30)
			var states states
			w, err := StartHLS(HLSConfig{
				Storage: st, Bucket: "bucket", Prefix: testPrefix, StageARN: testStage,
				Renditions: []Rendition{{Name: "240p30-x", Width: 320, Height: 240, Source: enc.Stream}},
				SpoolDir:   filepath.Join(t.TempDir(), "spool"), OnState: states.on, RetryWindow: 3 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, "a segment", func() bool { return objectCount(t, st, "bucket", "media/hls/240p30-x/", ".ts") >= 1 })
			st.set(true)
			states.wait(t, StateReconnecting, 1)
			if !heal {
				states.wait(t, StateFailed, 1)
				<-w.Done()
				if !strings.Contains(states.last(), "could not write to bucket") {
					t.Fatalf("FAILED reason: %q", states.last())
				}
				return
			}
			st.set(false)
			states.wait(t, StateActive, 2)
			stopWriter(t, w)
			if states.last() != StateStopped {
				t.Fatalf("states %q", states.list())
			}
			// Nothing was lost: the segments made during the outage were
			// uploaded after it, and the playlist plays through.
			pl := getObject(t, st, "bucket", "media/hls/240p30-x/playlist.m3u8")
			segs, _ := readPlaylist(pl)
			for i, s := range segs {
				if s.uri != strconv.Itoa(i+1)+".ts" {
					t.Fatalf("segment %d is %s: a gap", i, s.uri)
				}
			}
			probe(t, dir.Path("bucket", testPrefix+"/media/hls/multivariant.m3u8")).check(t, 320, 240, 30)
		})
	}
}

func TestHLSEndsWithItsStream(t *testing.T) {
	st, err := folder.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	enc := startEncode(t, 320, 240, 30)
	var states states
	w, err := StartHLS(HLSConfig{
		Storage: st, Bucket: "bucket", Prefix: testPrefix, StageARN: testStage,
		Renditions: []Rendition{{Name: "240p30-x", Width: 320, Height: 240, Source: enc.Stream}},
		SpoolDir:   filepath.Join(t.TempDir(), "spool"), OnState: states.on,
	})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "a segment", func() bool { return objectCount(t, st, "bucket", "media/hls/240p30-x/", ".ts") >= 1 })
	enc.Stop()
	select {
	case <-w.Done():
	case <-time.After(testutil.Patience):
		t.Fatal("the writer did not end with its stream")
	}
	if states.last() != StateStopped {
		t.Fatalf("states %q", states.list())
	}
	if !strings.Contains(string(getObject(t, st, "bucket", "media/hls/240p30-x/playlist.m3u8")), "#EXT-X-ENDLIST") {
		t.Fatal("no VOD playlist")
	}
	readEvent(t, st, "bucket", keyEnded)
}

func TestHLSStopBeforeStart(t *testing.T) {
	testutil.CheckLeaks(t)
	st, err := folder.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	enc := startEncode(t, 320, 240, 30)
	var states states
	w, err := StartHLS(HLSConfig{
		Storage: st, Bucket: "bucket", Prefix: testPrefix, StageARN: testStage,
		Renditions: []Rendition{{Name: "240p30-x", Width: 320, Height: 240, Source: enc.Stream}},
		SpoolDir:   filepath.Join(t.TempDir(), "spool"), OnState: states.on,
	})
	if err != nil {
		t.Fatal(err)
	}
	stopWriter(t, w)
	if l := strings.Join(states.list(), ","); l != "STARTING,STOPPING,STOPPED" && l != "STARTING,ACTIVE,STOPPING,STOPPED" {
		t.Fatalf("states %s", l)
	}
	// Stopped before recording-started.json was written: nothing is; else
	// the recording is closed as any other.
	started := objectCount(t, st, "bucket", keyStarted, "")
	ended := objectCount(t, st, "bucket", keyEnded, "")
	if started != ended || objectCount(t, st, "bucket", keyFailed, "") != 0 {
		t.Fatalf("started.json %d, ended.json %d, failed.json %d", started, ended, objectCount(t, st, "bucket", keyFailed, ""))
	}
}

// hanging is a storage that does not answer (a bucket behind a dead
// network) until its context ends.
type hanging struct{ objstore.Storage }

func (hanging) CheckBucket(ctx context.Context, bucket string) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestHLSStopWhileCheckingBucket(t *testing.T) {
	testutil.CheckLeaks(t)
	enc := startEncode(t, 320, 240, 30)
	var states states
	w, err := StartHLS(HLSConfig{
		Storage: hanging{}, Bucket: "bucket", Prefix: testPrefix, StageARN: testStage,
		Renditions: []Rendition{{Name: "240p30-x", Width: 320, Height: 240, Source: enc.Stream}},
		SpoolDir:   filepath.Join(t.TempDir(), "spool"), OnState: states.on,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Stop returns with its context's patience, not the check's 30 s.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if l := strings.Join(states.list(), ","); l != "STARTING,STOPPING,STOPPED" {
		t.Fatalf("states %s", l)
	}
}

// TestHLSFFmpegDiesMidRecording kills the rendition's ffmpeg while the
// storage is down: a new ffmpeg goes on from the next keyframe, numbering
// past the files not yet uploaded, and the playlist marks the
// discontinuity; nothing is overwritten or lost.
func TestHLSFFmpegDiesMidRecording(t *testing.T) {
	testutil.CheckLeaks(t)
	dir, err := folder.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st := &flaky{Storage: dir}
	enc := startEncode(t, 320, 240, 30)
	var states states
	w, err := StartHLS(HLSConfig{
		Storage: st, Bucket: "bucket", Prefix: testPrefix, StageARN: testStage,
		Renditions: []Rendition{{Name: "240p30-x", Width: 320, Height: 240, Framerate: 30, Source: enc.Stream}},
		SpoolDir:   filepath.Join(t.TempDir(), "spool"), OnState: states.on,
	})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "a segment", func() bool { return objectCount(t, st, "bucket", "media/hls/240p30-x/", ".ts") >= 1 })
	st.set(true)
	w.mu.Lock()
	first := w.rends[0].cur
	w.mu.Unlock()
	// A segment made, not uploaded, before ffmpeg dies.
	testutil.Eventually(t, "a segment waiting for upload", func() bool { return lastOnDisk(w.rends[0].dir, "hls", ".ts") >= 2 })
	first.kill()
	testutil.Eventually(t, "a second ffmpeg with a segment", func() bool {
		w.mu.Lock()
		runs := w.rends[0].runs
		w.mu.Unlock()
		b, _ := os.ReadFile(filepath.Join(w.rends[0].dir, "run-1", "hls", "playlist.m3u8"))
		segs, _ := readPlaylist(b)
		return runs >= 2 && len(segs) >= 1
	})
	st.set(false)
	stopWriter(t, w)
	if states.last() != StateStopped {
		t.Fatalf("states %q", states.list())
	}
	pl := string(getObject(t, st, "bucket", "media/hls/240p30-x/playlist.m3u8"))
	if !strings.Contains(pl, "#EXT-X-DISCONTINUITY\n") {
		t.Fatalf("no discontinuity where ffmpeg was started again:\n%s", pl)
	}
	segs, _ := readPlaylist([]byte(pl))
	seen := map[string]bool{}
	for _, s := range segs {
		if seen[s.uri] {
			t.Fatalf("segment %s listed twice:\n%s", s.uri, pl)
		}
		seen[s.uri] = true
	}
	if objectCount(t, st, "bucket", "media/hls/240p30-x/", ".ts") != len(segs) {
		t.Fatalf("%d segments in the bucket, %d listed", objectCount(t, st, "bucket", "media/hls/240p30-x/", ".ts"), len(segs))
	}
	probe(t, dir.Path("bucket", testPrefix+"/media/hls/240p30-x/playlist.m3u8")).check(t, 320, 240, 30)
}

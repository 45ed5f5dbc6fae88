package recording

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
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
	"github.com/rostrum-dev/rostrum/internal/rtclient"
	"github.com/rostrum-dev/rostrum/internal/sfu"
	"github.com/rostrum-dev/rostrum/internal/sfu/sfutest"
	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// These tests record real pion publishers (H.264 or VP8 and Opus made by
// ffmpeg) through the real forwarding engine and ffmpeg, into a folder
// storage, and check the result with ffprobe.

// s3Storage is a real S3-compatible service (Versity's gateway) serving a
// folder, with a bucket "bucket".
func s3Storage(t *testing.T) (objstore.Storage, string) {
	t.Helper()
	g := objstoretest.StartVersityGW(t)
	st, err := s3store.New(s3store.Config{Endpoint: g.Endpoint, Region: g.Region, AccessKeyID: g.AccessKeyID, SecretAccessKey: g.SecretAccessKey, ForcePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateBucket(context.Background(), "bucket"); err != nil {
		t.Fatal(err)
	}
	return st, g.Dir
}

var fixtures struct {
	once sync.Once
	f    rtclient.Fixtures
	err  error
}

func needMedia(t *testing.T) rtclient.Fixtures {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
	fixtures.once.Do(func() {
		dir := filepath.Join(os.TempDir(), "rostrum-recording-fixtures")
		fixtures.f, fixtures.err = rtclient.GenerateFixtures(context.Background(), dir)
	})
	if fixtures.err != nil {
		t.Fatal(fixtures.err)
	}
	return fixtures.f
}

// publish is sfutest.Publish: a pion peer publishing file sources to a router.
func publish(t *testing.T, r *sfu.Router, id string, sources ...rtclient.MediaSource) *sfutest.Publisher {
	return sfutest.Publish(t, r, id, sources...)
}

// changes records OnChange.
type changes struct {
	mu  sync.Mutex
	all []Change
	ch  chan Change
}

func newChanges() *changes { return &changes{ch: make(chan Change, 100)} }

func (c *changes) add(ch Change) {
	c.mu.Lock()
	c.all = append(c.all, ch)
	c.mu.Unlock()
	c.ch <- ch
}

// await returns the next change in state st, failing on a timeout.
func (c *changes) await(t *testing.T, st State) Change {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case ch := <-c.ch:
			if ch.State == st {
				return ch
			}
			if ch.State == Failed && st != Failed {
				t.Fatalf("recording failed: %s", ch.Reason)
			}
		case <-timeout:
			t.Fatalf("no %s change within a minute", st)
		}
	}
}

type env struct {
	t       *testing.T
	engine  *sfu.Engine
	router  *sfu.Router
	store   objstore.Storage
	dir     string // where the storage keeps bucket B's key K: dir/B/K
	mgr     *Manager
	changes *changes
	spool   string
}

// newEnv records into the local folder storage, or with s3 into a real
// S3-compatible service.
func newEnv(t *testing.T, s3 bool) *env {
	t.Helper()
	e, err := sfu.NewEngine(sfu.Config{ListenIP: "127.0.0.1", TCPPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	ev := &env{t: t, engine: e, router: e.NewRouter("st-1"), changes: newChanges(), spool: filepath.Join(root, "spool")}
	if s3 {
		ev.store, ev.dir = s3Storage(t)
	} else {
		ev.dir = filepath.Join(root, "storage")
		if ev.store, err = folder.New(ev.dir); err != nil {
			t.Fatal(err)
		}
	}
	ev.mgr = NewManager(Config{Storage: ev.store, SpoolDir: ev.spool, OnChange: ev.changes.add, SyncInterval: 300 * time.Millisecond})
	t.Cleanup(func() {
		_ = ev.mgr.Close(context.Background())
		_ = ev.router.Close()
		_ = e.Close()
	})
	return ev
}

var alice = Participant{StageARN: "arn:aws:ivs:us-east-1:123456789012:stage/abcdABCDef12", StageID: "abcdABCDef12", SessionID: "st-1", ParticipantID: "alice"}

func settings() Settings {
	return Settings{
		StorageConfigurationARN: "arn:aws:ivs:us-east-1:123456789012:storage-configuration/s1", Bucket: "bucket",
		MediaTypes: AudioVideo, SegmentSeconds: 2,
		ThumbnailIntervalSeconds: 1, ThumbnailSequential: true, ThumbnailLatest: true,
	}
}

func sources(t *testing.T, f rtclient.Fixtures, video string) []rtclient.MediaSource {
	t.Helper()
	a, err := rtclient.NewFileSource(f.Opus)
	if err != nil {
		t.Fatal(err)
	}
	v, err := rtclient.NewFileSource(video)
	if err != nil {
		t.Fatal(err)
	}
	return []rtclient.MediaSource{a, v}
}

func TestRecordsH264AndOpusAsIVSLaysItOut(t *testing.T) {
	for _, s3 := range []bool{false, true} {
		t.Run(map[bool]string{false: "folder", true: "s3"}[s3], func(t *testing.T) { testRecordsH264AndOpus(t, s3) })
	}
}

func testRecordsH264AndOpus(t *testing.T, s3 bool) {
	f := needMedia(t)
	ev := newEnv(t, s3)
	pub := publish(t, ev.router, "alice", sources(t, f, f.H264)...)
	ev.mgr.Publishing(alice, settings(), ev.router)
	started := ev.changes.await(t, Active)
	if started.Outcome != Started || started.Bucket != "bucket" || !strings.HasPrefix(started.KeyPrefix, "abcdABCDef12/st-1/alice/") {
		t.Fatalf("start change %+v", started)
	}
	begin := time.Now()
	prefix := filepath.Join(ev.dir, "bucket", started.KeyPrefix)
	// While recording, the playlist is an EVENT playlist of finished segments.
	waitFile(t, filepath.Join(prefix, keyPlaylist), "#EXT-X-PLAYLIST-TYPE:EVENT")
	// What is in storage leaves the spool: a long recording does not fill
	// the disk twice.
	waitFile(t, filepath.Join(prefix, dirRendition, "1.mp4"), "")
	testutil.Eventually(t, "1.mp4 gone from the spool", func() bool {
		left, _ := filepath.Glob(filepath.Join(ev.spool, "*", "*", "*", "*", "run-0", "hls", "1.mp4"))
		return len(left) == 0
	})
	time.Sleep(6*time.Second - time.Since(begin)) // publish for a while
	wall := time.Since(begin).Seconds()
	pub.Close()
	t.Logf("publisher closed after %.1f s", time.Since(begin).Seconds())
	ended := ev.changes.await(t, Stopped)
	t.Logf("recording stopped after %.1f s", time.Since(begin).Seconds())
	if ended.Outcome != Ended || ended.Duration <= 0 {
		t.Fatalf("end change %+v", ended)
	}

	pl := readFile(t, filepath.Join(prefix, keyPlaylist))
	if !strings.Contains(pl, "#EXT-X-PLAYLIST-TYPE:VOD") || !strings.Contains(pl, "#EXT-X-ENDLIST") || !strings.Contains(pl, `#EXT-X-MAP:URI="init-0.mp4"`) {
		t.Fatalf("final playlist:\n%s", pl)
	}
	mv := readFile(t, filepath.Join(prefix, keyMultivariant))
	if !strings.Contains(mv, "high/playlist.m3u8") || !strings.Contains(mv, "RESOLUTION=640x360") || !strings.Contains(mv, `CODECS="avc1.42`) || !strings.Contains(mv, `,mp4a.40.2"`) {
		t.Fatalf("multivariant playlist:\n%s", mv)
	}
	p := testutil.FFprobe(t, filepath.Join(prefix, keyMultivariant))
	if c, w, h := p.Stream("video"); c != "h264" || w != 640 || h != 360 {
		t.Fatalf("video stream %s %dx%d", c, w, h)
	}
	if c, _, _ := p.Stream("audio"); c != "aac" {
		t.Fatalf("audio stream %q", c)
	}
	t.Logf("streams %+v, duration %.3f s, published %.3f s", p.Streams, p.Duration(), wall)
	// The media lasts as long as the publisher published, less the wait for
	// ffmpeg to start and the first keyframe (a second at most).
	if d := p.Duration(); d < wall-2.5 || d > wall+1 {
		t.Fatalf("recording lasts %.2f s for %.2f s of publishing", d, wall)
	}
	if got := ended.Duration.Seconds(); got < p.Duration()-1 || got > p.Duration()+1 {
		t.Fatalf("reported duration %.2f s, media %.2f s", got, p.Duration())
	}

	// Thumbnails: one a second, JPEGs of the picture's size, and the latest.
	thumbs, _ := filepath.Glob(filepath.Join(prefix, dirThumbnails, "*.jpg"))
	if len(thumbs) < 3 {
		t.Fatalf("%d thumbnails for %.1f s at one a second", len(thumbs), wall)
	}
	for _, th := range []string{filepath.Join(prefix, dirThumbnails, "1.jpg"), filepath.Join(prefix, keyLatestThumb)} {
		if c, w, h := testutil.FFprobe(t, th).Stream("video"); c != "mjpeg" || w != 640 || h != 360 {
			t.Fatalf("thumbnail %s: %s %dx%d", th, c, w, h)
		}
	}

	// The event files, as IVS writes them.
	var doc eventFile
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(prefix, keyEnded))), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != "v1" || doc.StageARN != alice.StageARN || doc.SessionID != "st-1" || doc.ParticipantID != "alice" ||
		doc.RecordingStatus != statusEnded || doc.RecordingStartedAt == "" || doc.RecordingEndedAt == "" ||
		doc.Media.HLS == nil || doc.Media.HLS.DurationMs == nil || *doc.Media.HLS.DurationMs != ended.Duration.Milliseconds() ||
		doc.Media.HLS.Renditions[0].Path != "high" || doc.Media.Thumbnails == nil || doc.Media.LatestThumbnail == nil {
		t.Fatalf("recording-ended.json: %+v", doc)
	}
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(prefix, keyStarted))), &doc); err != nil || doc.RecordingStatus != statusStarted {
		t.Fatalf("recording-started.json: %v %+v", err, doc)
	}
	if _, err := os.Stat(ev.spool); err == nil {
		left, _ := filepath.Glob(filepath.Join(ev.spool, "*", "*", "*", "*"))
		if len(left) > 0 {
			t.Fatalf("spool not cleaned: %v", left)
		}
	}
}

func TestRecordingAMissingBucketFails(t *testing.T) {
	f := needMedia(t)
	ev := newEnv(t, true)
	pub := publish(t, ev.router, "alice", sources(t, f, f.H264)...)
	defer pub.Close()
	s := settings()
	s.Bucket = "no-such-bucket"
	ev.mgr.Publishing(alice, s, ev.router)
	c := ev.changes.await(t, Failed)
	if c.Outcome != StartFailed || !strings.Contains(c.Reason, "no-such-bucket") {
		t.Fatalf("failure %+v", c)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func waitFile(t *testing.T, p, contains string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), contains) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never contained %q", p, contains)
}

func TestRecordsVP8AsH264(t *testing.T) {
	f := needMedia(t)
	ev := newEnv(t, false)
	pub := publish(t, ev.router, "alice", sources(t, f, f.VP8)...)
	s := settings()
	s.ThumbnailIntervalSeconds = 0 // DISABLED
	ev.mgr.Publishing(alice, s, ev.router)
	started := ev.changes.await(t, Active)
	prefix := filepath.Join(ev.dir, "bucket", started.KeyPrefix)
	waitFile(t, filepath.Join(prefix, keyPlaylist), "2.mp4")
	pub.Close()
	ev.changes.await(t, Stopped)
	p := testutil.FFprobe(t, filepath.Join(prefix, keyMultivariant))
	if c, w, h := p.Stream("video"); c != "h264" || w != 640 || h != 360 {
		t.Fatalf("video stream %s %dx%d, want VP8 converted to H.264", c, w, h)
	}
	if thumbs, _ := filepath.Glob(filepath.Join(prefix, "media", "*thumbnail*", "*", "*.jpg")); len(thumbs) != 0 {
		t.Fatalf("thumbnails written while DISABLED: %v", thumbs)
	}
	var doc eventFile
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(prefix, keyEnded))), &doc); err != nil || doc.Media.Thumbnails != nil {
		t.Fatalf("recording-ended.json lists thumbnails while DISABLED: %v %+v", err, doc.Media)
	}
}

func TestReconnectWithinTheWindowContinuesTheRecording(t *testing.T) {
	f := needMedia(t)
	ev := newEnv(t, false)
	s := settings()
	s.ReconnectWindow = 30 * time.Second
	pub := publish(t, ev.router, "alice", sources(t, f, f.H264)...)
	ev.mgr.Publishing(alice, s, ev.router)
	started := ev.changes.await(t, Active)
	prefix := filepath.Join(ev.dir, "bucket", started.KeyPrefix)
	waitFile(t, filepath.Join(prefix, keyPlaylist), "2.mp4")
	thumbsBefore := countFiles(t, filepath.Join(prefix, dirThumbnails))
	pub.Close()

	// Back within the window, under the same participant ID.
	pub = publish(t, ev.router, "alice", sources(t, f, f.H264)...)
	ev.mgr.Publishing(alice, s, ev.router)
	waitFile(t, filepath.Join(prefix, keyPlaylist), `#EXT-X-MAP:URI="init-1.mp4"`)
	waitFile(t, filepath.Join(prefix, keyPlaylist), "#EXT-X-DISCONTINUITY")
	time.Sleep(3 * time.Second) // publish a little more
	pub.Close()
	// The recording ends only when the window has passed; end it now, as a
	// stopping server does.
	if err := ev.mgr.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	ended := ev.changes.await(t, Stopped)
	if ended.KeyPrefix != started.KeyPrefix {
		t.Fatalf("the reconnect started a new recording: %s after %s", ended.KeyPrefix, started.KeyPrefix)
	}
	pl := readFile(t, filepath.Join(prefix, keyPlaylist))
	segs, _ := readFFmpegPlaylist([]byte(pl))
	for i, sg := range segs {
		if sg.URI != strconv.Itoa(i+1)+".mp4" {
			t.Fatalf("segment %d is %s: numbering does not go on across the reconnect\n%s", i, sg.URI, pl)
		}
	}
	if n := countFiles(t, filepath.Join(prefix, dirThumbnails)); n <= thumbsBefore {
		t.Fatalf("thumbnails did not go on after the reconnect (%d then %d)", thumbsBefore, n)
	}
	if c, _, _ := testutil.FFprobe(t, filepath.Join(prefix, keyMultivariant)).Stream("video"); c != "h264" {
		t.Fatal("the continued recording does not play")
	}
	for _, c := range ev.changes.all {
		if c.Outcome == Started && c.KeyPrefix != started.KeyPrefix {
			t.Fatal("a second Recording Start for a reconnect within the window")
		}
	}
}

func TestRecoverFinishesWhatACrashLeft(t *testing.T) {
	f := needMedia(t)
	ev := newEnv(t, false)
	pub := publish(t, ev.router, "alice", sources(t, f, f.H264)...)
	defer pub.Close()
	ev.mgr.Publishing(alice, settings(), ev.router)
	started := ev.changes.await(t, Active)
	prefix := filepath.Join(ev.dir, "bucket", started.KeyPrefix)
	waitFile(t, filepath.Join(prefix, keyPlaylist), "2.mp4")
	// What a server killed now leaves: its spool as it is (copied, as the
	// running recording will go on changing this one).
	crashed := filepath.Join(t.TempDir(), "spool")
	if err := exec.Command("cp", "-a", ev.spool, crashed).Run(); err != nil {
		t.Fatal(err)
	}

	ch := newChanges()
	next := NewManager(Config{Storage: ev.store, SpoolDir: crashed, OnChange: ch.add})
	n, err := next.Recover(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("Recover: %d, %v", n, err)
	}
	c := ch.await(t, Failed)
	if c.Outcome != EndFailed || c.KeyPrefix != started.KeyPrefix || c.Duration <= 0 {
		t.Fatalf("recovery change %+v", c)
	}
	var doc eventFile
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(prefix, keyFailed))), &doc); err != nil || doc.RecordingStatus != statusEndedWithFail || doc.StatusMessage == "" {
		t.Fatalf("recording-failed.json: %v %+v", err, doc)
	}
	if pl := readFile(t, filepath.Join(prefix, keyPlaylist)); !strings.Contains(pl, "#EXT-X-ENDLIST") || !strings.Contains(pl, "2.mp4") {
		t.Fatalf("the recovered playlist is left open or empty:\n%s", pl)
	}
	if c, _, _ := testutil.FFprobe(t, filepath.Join(prefix, keyMultivariant)).Stream("video"); c != "h264" {
		t.Fatal("the recovered recording does not play")
	}
	if left, _ := filepath.Glob(filepath.Join(crashed, "*", "*", "*", "*", stateFile)); len(left) != 0 {
		t.Fatalf("recovered state left in the spool: %v", left)
	}
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	e, _ := os.ReadDir(dir)
	return len(e)
}

func TestAnFFmpegThatDiesIsStartedAgain(t *testing.T) {
	f := needMedia(t)
	ev := newEnv(t, false)
	pub := publish(t, ev.router, "alice", sources(t, f, f.H264)...)
	ev.mgr.Publishing(alice, settings(), ev.router)
	started := ev.changes.await(t, Active)
	prefix := filepath.Join(ev.dir, "bucket", started.KeyPrefix)
	waitFile(t, filepath.Join(prefix, keyPlaylist), "2.mp4")
	ev.mgr.mu.Lock()
	r := ev.mgr.recs[recKey(alice)]
	ev.mgr.mu.Unlock()
	if err := r.cur.Load().cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// The recording goes on in a new run, numbering on.
	waitFile(t, filepath.Join(prefix, keyPlaylist), `#EXT-X-MAP:URI="init-1.mp4"`)
	pub.Close()
	ended := ev.changes.await(t, Stopped)
	if ended.KeyPrefix != started.KeyPrefix {
		t.Fatalf("a new recording after ffmpeg died: %s", ended.KeyPrefix)
	}
	pl := readFile(t, filepath.Join(prefix, keyPlaylist))
	if !strings.Contains(pl, "#EXT-X-DISCONTINUITY") || !strings.Contains(pl, "#EXT-X-ENDLIST") {
		t.Fatalf("playlist after a restart:\n%s", pl)
	}
	if c, _, _ := testutil.FFprobe(t, filepath.Join(prefix, keyMultivariant)).Stream("video"); c != "h264" {
		t.Fatal("the recording does not play after a restart")
	}
}

// Two recordings of one participant started within the same second (a
// quick republish) get folders of their own.
func TestRecordingsStartedInOneSecondDoNotShareAFolder(t *testing.T) {
	m := NewManager(Config{SpoolDir: t.TempDir()})
	m.mu.Lock()
	a, b := m.newRecording(alice, settings()), m.newRecording(alice, settings())
	m.mu.Unlock()
	if a.prefix == b.prefix || a.dir == b.dir {
		t.Fatalf("both recordings in %s", a.prefix)
	}
	if !b.started.After(a.started) {
		t.Fatalf("the second starts at %v, not after %v", b.started, a.started)
	}
}

func TestReconnectAfterTheWindowStartsANewRecording(t *testing.T) {
	f := needMedia(t)
	ev := newEnv(t, false)
	s := settings()
	s.ReconnectWindow = time.Second
	pub := publish(t, ev.router, "alice", sources(t, f, f.H264)...)
	ev.mgr.Publishing(alice, s, ev.router)
	first := ev.changes.await(t, Active)
	waitFile(t, filepath.Join(ev.dir, "bucket", first.KeyPrefix, keyPlaylist), "1.mp4")
	pub.Close()
	// The window passes: the recording ends.
	if ended := ev.changes.await(t, Stopped); ended.KeyPrefix != first.KeyPrefix {
		t.Fatalf("ended %s, want %s", ended.KeyPrefix, first.KeyPrefix)
	}
	pub = publish(t, ev.router, "alice", sources(t, f, f.H264)...)
	defer pub.Close()
	ev.mgr.Publishing(alice, s, ev.router)
	second := ev.changes.await(t, Active)
	if second.Outcome != Started || second.KeyPrefix == first.KeyPrefix {
		t.Fatalf("a publisher back after the window continued %s (%+v)", first.KeyPrefix, second)
	}
}

// mediaTypes AUDIO_ONLY records the audio alone (no thumbnails: there is
// no picture); NONE records thumbnails only, no HLS.
func TestMediaTypes(t *testing.T) {
	f := needMedia(t)
	for _, mt := range []MediaTypes{AudioOnly, NoMedia} {
		t.Run(string(mt), func(t *testing.T) {
			ev := newEnv(t, false)
			pub := publish(t, ev.router, "alice", sources(t, f, f.H264)...)
			s := settings()
			s.MediaTypes = mt
			ev.mgr.Publishing(alice, s, ev.router)
			started := ev.changes.await(t, Active)
			prefix := filepath.Join(ev.dir, "bucket", started.KeyPrefix)
			if mt == AudioOnly {
				waitFile(t, filepath.Join(prefix, keyPlaylist), "2.mp4")
			} else {
				waitFile(t, filepath.Join(prefix, dirThumbnails, "2.jpg"), "")
			}
			pub.Close()
			ev.changes.await(t, Stopped)
			var doc eventFile
			if err := json.Unmarshal([]byte(readFile(t, filepath.Join(prefix, keyEnded))), &doc); err != nil {
				t.Fatal(err)
			}
			thumbs, _ := filepath.Glob(filepath.Join(prefix, dirThumbnails, "*.jpg"))
			_, plErr := os.Stat(filepath.Join(prefix, keyPlaylist))
			switch mt {
			case AudioOnly:
				p := testutil.FFprobe(t, filepath.Join(prefix, keyMultivariant))
				if v, _, _ := p.Stream("video"); v != "" {
					t.Fatalf("AUDIO_ONLY recorded video %q", v)
				}
				if a, _, _ := p.Stream("audio"); a != "aac" || len(thumbs) != 0 || doc.Media.HLS == nil || doc.Media.Thumbnails != nil {
					t.Fatalf("AUDIO_ONLY: audio %q, %d thumbnails, event media %+v", a, len(thumbs), doc.Media)
				}
			case NoMedia:
				if plErr == nil || len(thumbs) < 2 || doc.Media.HLS != nil || doc.Media.Thumbnails == nil {
					t.Fatalf("NONE: playlist %v, %d thumbnails, event media %+v", plErr, len(thumbs), doc.Media)
				}
			}
		})
	}
}

// A server killed before its first upload pass was recorded in the state
// file leaves segments that only ffmpeg's playlist lists: the next start
// uploads them.
func TestRecoverUploadsWhatNoStateRecorded(t *testing.T) {
	f := needMedia(t)
	ev := newEnv(t, false)
	ev.mgr.cfg.SyncInterval = time.Hour // nothing uploaded while recording
	pub := publish(t, ev.router, "alice", sources(t, f, f.H264)...)
	defer pub.Close()
	ev.mgr.Publishing(alice, settings(), ev.router)
	started := ev.changes.await(t, Active)
	testutil.Eventually(t, "two segments in the spool", func() bool {
		segs, _ := filepath.Glob(filepath.Join(ev.spool, "*", "*", "*", "*", "run-0", "hls", "2.mp4"))
		return len(segs) == 1
	})
	crashed := filepath.Join(t.TempDir(), "spool")
	if err := exec.Command("cp", "-a", ev.spool, crashed).Run(); err != nil {
		t.Fatal(err)
	}
	// And ffmpeg died before its playlist listed them: the files are the truth.
	pls, _ := filepath.Glob(filepath.Join(crashed, "*", "*", "*", "*", "run-0", "hls", "playlist.m3u8"))
	for _, p := range pls {
		_ = os.Remove(p)
	}
	ch := newChanges()
	next := NewManager(Config{Storage: ev.store, SpoolDir: crashed, OnChange: ch.add})
	if n, err := next.Recover(context.Background()); err != nil || n != 1 {
		t.Fatalf("Recover: %d, %v", n, err)
	}
	if c := ch.await(t, Failed); c.Duration < 3*time.Second {
		t.Fatalf("recovered %v of media, want the two segments' four seconds", c.Duration)
	}
	prefix := filepath.Join(ev.dir, "bucket", started.KeyPrefix)
	if pl := readFile(t, filepath.Join(prefix, keyPlaylist)); !strings.Contains(pl, "2.mp4") {
		t.Fatalf("the recovered playlist lacks what ffmpeg had written:\n%s", pl)
	}
	if c, _, _ := testutil.FFprobe(t, filepath.Join(prefix, keyMultivariant)).Stream("video"); c != "h264" {
		t.Fatal("the recovered recording does not play")
	}
}

// Recover runs while the server already serves: a recording started since
// is not a leftover, and goes on.
func TestRecoverLeavesLiveRecordingsAlone(t *testing.T) {
	f := needMedia(t)
	ev := newEnv(t, false)
	pub := publish(t, ev.router, "alice", sources(t, f, f.H264)...)
	defer pub.Close()
	ev.mgr.Publishing(alice, settings(), ev.router)
	started := ev.changes.await(t, Active)
	waitFile(t, filepath.Join(ev.dir, "bucket", started.KeyPrefix, keyPlaylist), "1.mp4")
	n, err := ev.mgr.Recover(context.Background())
	if err != nil || n != 0 {
		t.Fatalf("Recover: %d, %v; want nothing recovered", n, err)
	}
	waitFile(t, filepath.Join(ev.dir, "bucket", started.KeyPrefix, keyPlaylist), "3.mp4")
	ev.changes.mu.Lock()
	defer ev.changes.mu.Unlock()
	for _, c := range ev.changes.all {
		if c.State != Starting && c.State != Active {
			t.Fatalf("the live recording changed: %+v", c)
		}
	}
}

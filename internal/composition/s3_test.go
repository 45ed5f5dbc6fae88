package composition

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/composition/compotest"
	"github.com/rostrum-dev/rostrum/internal/composition/layout"
	"github.com/rostrum-dev/rostrum/internal/objstore"
	"github.com/rostrum-dev/rostrum/internal/objstore/folder"
	"github.com/rostrum-dev/rostrum/internal/sfu/sfutest"
	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// TestCompositionToS3 records a stage's composition, in two encodes, into
// the local folder storage in IVS's composite layout, and plays it back.
func TestCompositionToS3(t *testing.T) {
	bin := needFFmpeg(t)
	r := testRouter(t)
	alice := sfutest.Publish(t, r, "alice", compotest.Video(t, compotest.Red, "H264", 640, 360), opus(t))
	defer alice.Close()
	st, err := folder.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	feed := &stageFeed{view: view(r, "alice")}
	rep := &reports{}
	spool := t.TempDir()
	m := NewManager(Config{FFmpeg: bin, Watcher: feed, Reporter: rep, Logger: testLog(t), Storage: st, SpoolDir: spool})
	prefix := "stage1234567/abcdABCDef12/dest12345678/composite"
	spec := Spec{ARN: compARN, ID: "abcdABCDef12", StageARN: "arn:aws:ivs:us-east-1:123456789012:stage/stage1234567", StageID: "stage1234567",
		Layout: layout.DefaultGrid(), StartedAt: time.Now(),
		Destinations: []Destination{{ID: "dest12345678", S3: &S3Target{
			StorageConfigurationARN: "arn:aws:ivs:us-east-1:123456789012:storage-configuration/sc", Bucket: "bucket", Prefix: prefix,
			Encoders: []Encoder{
				{ARN: "arn:aws:ivs:us-east-1:123456789012:encoder-configuration/hd", Width: 1280, Height: 720, Framerate: 30, Bitrate: 2_500_000},
				{ARN: "arn:aws:ivs:us-east-1:123456789012:encoder-configuration/sd", Width: 640, Height: 360, Framerate: 15, Bitrate: 800_000},
			},
			SegmentSeconds: 2,
			Thumbnails:     []Thumbnail{{IntervalSeconds: 2, Sequential: true, Latest: true}},
		}}}}
	if err := m.Start(spec); err != nil {
		t.Fatal(err)
	}
	rep.await(t, "dest dest12345678 ACTIVE")
	segments := func(rendition string) int {
		objs, _ := objstore.ListAll(context.Background(), st, "bucket", prefix+"/media/hls/"+rendition+"/")
		n := 0
		for _, o := range objs {
			if strings.HasSuffix(o.Key, ".ts") {
				n++
			}
		}
		return n
	}
	testutil.Eventually(t, "2 segments of each rendition", func() bool { return segments("720p30-hd") >= 2 && segments("360p15-sd") >= 2 })
	if err := m.Stop(spec.ARN); err != nil {
		t.Fatal(err)
	}
	rep.await(t, "composition STOPPED")
	if !rep.has("dest dest12345678 STOPPED") {
		t.Fatalf("states %v", rep.list())
	}
	b, _, err := objstore.GetBytes(context.Background(), st, "bucket", prefix+"/events/recording-ended.json")
	if err != nil {
		t.Fatal(err)
	}
	var ended struct {
		Status string `json:"recording_status"`
		Media  struct {
			HLS struct {
				Renditions []struct {
					Path   string `json:"path"`
					Width  int    `json:"resolution_width"`
					Height int    `json:"resolution_height"`
				} `json:"renditions"`
			} `json:"hls"`
		} `json:"media"`
	}
	if err := json.Unmarshal(b, &ended); err != nil {
		t.Fatal(err)
	}
	if ended.Status != "RECORDING_ENDED" || len(ended.Media.HLS.Renditions) != 2 || ended.Media.HLS.Renditions[0].Path != "720p30-hd" ||
		ended.Media.HLS.Renditions[1].Width != 640 {
		t.Fatalf("recording-ended.json: %s", b)
	}
	for _, key := range []string{"media/thumbnails/1280x720/1.jpg", "media/latest_thumbnail/640x360/thumb.jpg"} {
		if _, err := st.Stat(context.Background(), "bucket", prefix+"/"+key); err != nil {
			t.Fatal(err)
		}
	}
	pr := testutil.FFprobe(t, st.Path("bucket", prefix+"/media/hls/720p30-hd/playlist.m3u8"))
	if v, w, h := pr.Stream("video"); v != "h264" || w != 1280 || h != 720 {
		t.Fatalf("video %s %dx%d", v, w, h)
	}
	if a, _, _ := pr.Stream("audio"); a != "aac" {
		t.Fatalf("audio %q", a)
	}
	// The composite is alice alone: compotest.Red in the middle.
	pic := compotest.PictureAt(t, st.Path("bucket", prefix+"/media/hls/720p30-hd/playlist.m3u8"), pr.Duration()/2, 1280, 720)
	if got := compotest.At(pic, 1280, 640, 360); !compotest.Near(got, compotest.Red) {
		t.Errorf("the picture's centre is %v, want red", got)
	}
	m.Close(t.Context())
}

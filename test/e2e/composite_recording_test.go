package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// TestCompositeRecordingPlays: StartComposition with an S3 destination
// records a publisher's stage into the local folder storage in IVS's
// composite layout (IVS-BEHAVIOUR.md §6.3); after StopComposition the
// playlists are VOD, the events files and thumbnails are there, ffprobe
// reads the multivariant playlist and Chromium plays it with hls.js.
func TestCompositeRecordingPlays(t *testing.T) {
	needTool(t, "ffmpeg")
	hook := newHookReceiver(t)
	data := t.TempDir()
	ts := startServer(t, data, withWebhook(hook.srv.URL, ""))
	c := ts.client()
	stage, enc, storage := compositionSetup(t, c)
	publishInto(t, c, stage, "alice")
	out, err := c.StartComposition(bg, &ivsrealtime.StartCompositionInput{
		StageArn: aws.String(stage),
		Destinations: []types.DestinationConfiguration{{S3: &types.S3DestinationConfiguration{
			StorageConfigurationArn: aws.String(storage), EncoderConfigurationArns: []string{enc},
			RecordingConfiguration: &types.RecordingConfiguration{HlsConfiguration: &types.CompositionRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)}},
			ThumbnailConfigurations: []types.CompositionThumbnailConfiguration{{
				TargetIntervalSeconds: aws.Int32(2),
				Storage:               []types.ThumbnailStorageType{types.ThumbnailStorageTypeSequential, types.ThumbnailStorageTypeLatest},
			}},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.Composition.Arn)
	dest := out.Composition.Destinations[0]
	id, prefix := aws.ToString(dest.Id), aws.ToString(dest.Detail.S3.RecordingPrefix)
	awaitDestination(t, c, arn, id, types.DestinationStateActive)
	dir := filepath.Join(data, "storage", "composites", filepath.FromSlash(prefix))
	encID := enc[strings.LastIndexByte(enc, '/')+1:]
	rendition := "360p15-" + encID // compositionSetup's 640×360 at 15 fps
	testutil.Eventually(t, "3 segments in the bucket", func() bool {
		segs, _ := filepath.Glob(filepath.Join(dir, "media/hls", rendition, "*.ts"))
		return len(segs) >= 3
	})
	live, err := os.ReadFile(filepath.Join(dir, "media/hls", rendition, "playlist.m3u8"))
	if err != nil || !strings.Contains(string(live), "#EXT-X-PLAYLIST-TYPE:EVENT") {
		t.Fatalf("the playlist while recording (%v):\n%s", err, live)
	}
	if _, err := c.StopComposition(bg, &ivsrealtime.StopCompositionInput{Arn: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	got := awaitComposition(t, c, arn, types.CompositionStateStopped)
	if d := got.Destinations[0]; d.State != types.DestinationStateStopped || d.EndTime == nil {
		t.Fatalf("destination %s, end %v", d.State, d.EndTime)
	}

	pl, err := os.ReadFile(filepath.Join(dir, "media/hls", rendition, "playlist.m3u8"))
	if err != nil || !strings.Contains(string(pl), "#EXT-X-PLAYLIST-TYPE:VOD") || !strings.Contains(string(pl), "#EXT-X-ENDLIST") ||
		strings.Contains(string(pl), "PROGRAM-DATE-TIME") {
		t.Fatalf("the playlist at the end (%v):\n%s", err, pl)
	}
	pr := testutil.FFprobe(t, filepath.Join(dir, "media/hls/multivariant.m3u8"))
	if v, w, h := pr.Stream("video"); v != "h264" || w != 640 || h != 360 {
		t.Fatalf("video %s %dx%d", v, w, h)
	}
	if a, _, _ := pr.Stream("audio"); a != "aac" {
		t.Fatalf("audio %q", a)
	}
	for _, f := range []string{"media/thumbnails/640x360/1.jpg", "media/latest_thumbnail/640x360/thumb.jpg"} {
		if v, w, h := testutil.FFprobe(t, filepath.Join(dir, f)).Stream("video"); v != "mjpeg" || w != 640 || h != 360 {
			t.Fatalf("thumbnail %s: %s %dx%d", f, v, w, h)
		}
	}
	var started, ended map[string]any
	for f, doc := range map[string]*map[string]any{"events/recording-started.json": &started, "events/recording-ended.json": &ended} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err == nil {
			err = json.Unmarshal(b, doc)
		}
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	if started["recording_status"] != "RECORDING_STARTED" || ended["recording_status"] != "RECORDING_ENDED" || ended["stage_arn"] != stage ||
		ended["recording_started_at"] != started["recording_started_at"] {
		t.Fatalf("events files: %v, %v", started, ended)
	}
	hls := ended["media"].(map[string]any)["hls"].(map[string]any)
	r := hls["renditions"].([]any)[0].(map[string]any)
	if r["path"] != rendition || r["resolution_width"] != 640.0 || r["resolution_height"] != 360.0 || hls["duration_ms"].(float64) < 4000 {
		t.Fatalf("recording-ended.json media.hls: %v", hls)
	}
	// The destination's events: Destination Start, then Destination End
	// before Session End.
	var evs []string
	testutil.Eventually(t, "Session End at the webhook", func() bool {
		evs = compositionEvents(t, hook.got(), arn)
		return slices.Contains(evs, "Session End")
	})
	if s, e := slices.Index(evs, "Destination Start/"+id), slices.Index(evs, "Destination End/"+id); s < 0 || e < s || e > slices.Index(evs, "Session End") {
		t.Fatalf("events %q", evs)
	}

	// Chromium plays it with hls.js, as a viewer's page would from the bucket.
	runNodeTestsEnv(t, ts, []string{
		"ROSTRUM_RECORDING_DIR=" + dir, "ROSTRUM_RECORDING_WIDTH=640", "ROSTRUM_RECORDING_HEIGHT=360",
	}, "recording.test.mjs")
}

package e2e

// Compositions end to end, media included: pion publishers of distinct
// solid colours join a stage over WHIP; StartComposition (aws-sdk-go-v2)
// mixes them to a real RTMP server (nginx-rtmp) and to storage (the local
// folder, and a real S3 service); ffprobe checks codec, size, frame rate and
// duration; decoded pictures show each participant's colour where the
// layout package puts its tile, phase after phase as publishers come and
// go, on one RTMP connection; Chromium plays the composite HLS with hls.js;
// IVS's rules (a destination that breaks, one that never comes back, a
// stage without publishers) end as IVS says, with their events.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/rostrum-dev/rostrum/internal/composition/compotest"
	"github.com/rostrum-dev/rostrum/internal/composition/layout"
	"github.com/rostrum-dev/rostrum/internal/config"
	"github.com/rostrum-dev/rostrum/internal/events"
	"github.com/rostrum-dev/rostrum/internal/objstore/objstoretest"
	"github.com/rostrum-dev/rostrum/internal/rtclient"
	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// colourPublisher is a participant publishing one colour (and a tone).
type colourPublisher struct {
	id     string
	colour compotest.RGB
	pub    *rtclient.Publisher
}

// publishColour joins the stage with a new token and publishes colour in
// codec, and waits until the stage counts the participant as publishing.
func publishColour(t *testing.T, c *ivsrealtime.Client, stage, user string, colour compotest.RGB, codec string) *colourPublisher {
	t.Helper()
	f := fixtures(t)
	tok, pid := newToken(t, c, stage, user, types.ParticipantTokenCapabilityPublish)
	p := publish(t, testContext(t), tok, rtclient.PublishOptions{Audio: source(t, f.Opus), Video: compotest.Video(t, colour, codec, 640, 360)})
	// The stage writes its session and participants to the store a moment
	// after the media flows: at first the stage may have no session
	// listed yet, or not this participant in it.
	testutil.Eventually(t, user+" publishing", func() bool {
		rec, _ := participantState(c, stage, pid)
		return rec != nil && rec.Published
	})
	return &colourPublisher{id: pid, colour: colour, pub: p}
}

// grid is the default grid layout of these publishers (in join order) at
// 640×360, and what each tile must show.
func grid(ps ...*colourPublisher) (layout.Frame, map[string]compotest.RGB) {
	var lps []layout.Participant
	colours := map[string]compotest.RGB{}
	for i, p := range ps {
		lps = append(lps, layout.Participant{ID: p.id, Video: true, VideoSize: layout.Size{Width: 640, Height: 360}, Arrival: int64(i)})
		colours[p.id] = p.colour
	}
	fr, err := layout.Compute(layout.Size{Width: 640, Height: 360}, layout.DefaultGrid(), lps)
	if err != nil {
		panic(err)
	}
	return fr, colours
}

func showing(ps ...*colourPublisher) func([]byte) bool {
	return compotest.TilesShow(grid(ps...))
}

// mediaComposition starts a composition of the stage with a channel
// destination and an S3 destination, both with one 640×360 30 fps encoder
// configuration, 2 s segments and a thumbnail a second.
func mediaComposition(t *testing.T, c *ivsrealtime.Client, stage, bucket string) (arn, channelDest, s3Dest, prefix string) {
	t.Helper()
	ec, err := c.CreateEncoderConfiguration(bg, &ivsrealtime.CreateEncoderConfigurationInput{Video: &types.Video{
		Width: aws.Int32(640), Height: aws.Int32(360), Framerate: aws.Float32(30), Bitrate: aws.Int32(1_000_000),
	}})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := c.CreateStorageConfiguration(bg, &ivsrealtime.CreateStorageConfigurationInput{S3: &types.S3StorageConfiguration{BucketName: aws.String(bucket)}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.StartComposition(bg, &ivsrealtime.StartCompositionInput{
		StageArn: aws.String(stage),
		Destinations: []types.DestinationConfiguration{
			{Channel: &types.ChannelDestinationConfiguration{ChannelArn: aws.String(e2eChannel), EncoderConfigurationArn: ec.EncoderConfiguration.Arn}},
			{S3: &types.S3DestinationConfiguration{
				StorageConfigurationArn: sc.StorageConfiguration.Arn, EncoderConfigurationArns: []string{*ec.EncoderConfiguration.Arn},
				RecordingConfiguration: &types.RecordingConfiguration{HlsConfiguration: &types.CompositionRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)}},
				ThumbnailConfigurations: []types.CompositionThumbnailConfiguration{{TargetIntervalSeconds: aws.Int32(1),
					Storage: []types.ThumbnailStorageType{types.ThumbnailStorageTypeSequential, types.ThumbnailStorageTypeLatest}}},
			}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	d := out.Composition.Destinations
	return aws.ToString(out.Composition.Arn), aws.ToString(d[0].Id), aws.ToString(d[1].Id), aws.ToString(d[1].Detail.S3.RecordingPrefix)
}

// checkVideo checks a composite stream with ffprobe.
func checkVideo(t *testing.T, what, path string, minSeconds float64) {
	t.Helper()
	pr := testutil.FFprobe(t, path)
	if v, w, h := pr.Stream("video"); v != "h264" || w != 640 || h != 360 {
		t.Fatalf("%s: video %s %dx%d, want h264 640x360", what, v, w, h)
	}
	if fps := pr.FrameRate("video"); fps < 29 || fps > 31 {
		t.Errorf("%s: %.2f frames per second, want 30", what, fps)
	}
	if a, _, _ := pr.Stream("audio"); a != "aac" {
		t.Errorf("%s: audio %q, want aac", what, a)
	}
	if d := pr.Duration(); d < minSeconds {
		t.Errorf("%s: %.1f s long, want at least %.0f", what, d, minSeconds)
	}
}

func TestCompositionMixesAStageToRTMPAndStorage(t *testing.T) {
	needTool(t, "ffmpeg")
	rtmp, url := rtmpChannel(t, "show")
	hook := newHookReceiver(t)
	data := t.TempDir()
	ts := startServer(t, data, withWebhook(hook.srv.URL, ""), withChannel(e2eChannel, url))
	c := ts.client()
	stage := newStage(t, c)
	red := publishColour(t, c, stage, "red", compotest.Red, "H264")
	green := publishColour(t, c, stage, "green", compotest.Green, "VP8")

	arn, chDest, s3Dest, prefix := mediaComposition(t, c, stage, "composites")
	awaitDestination(t, c, arn, chDest, types.DestinationStateActive)
	awaitDestination(t, c, arn, s3Dest, types.DestinationStateActive)
	time.Sleep(4 * time.Second)
	// Two more join: a grid of four.
	blue := publishColour(t, c, stage, "blue", compotest.Blue, "H264")
	white := publishColour(t, c, stage, "white", compotest.White, "VP8")
	time.Sleep(4 * time.Second)
	// One leaves: three.
	if err := green.pub.Close(testContext(t)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second)
	if _, err := c.StopComposition(bg, &ivsrealtime.StopCompositionInput{Arn: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	done := awaitComposition(t, c, arn, types.CompositionStateStopped)
	for _, d := range done.Destinations {
		if d.State != types.DestinationStateStopped || d.EndTime == nil {
			t.Errorf("destination %s: %s, end %v", aws.ToString(d.Id), d.State, d.EndTime)
		}
	}

	// The RTMP server saw one connection for the whole show.
	if n := len(rtmp.Publishes("live", "show")); n != 1 {
		t.Fatalf("%d RTMP connections, want 1", n)
	}
	recs := rtmp.Recordings("live", "show")
	if len(recs) != 1 {
		t.Fatalf("RTMP recordings %v", recs)
	}
	checkVideo(t, "RTMP", recs[0], 10)
	phases := []func([]byte) bool{showing(red, green), showing(red, green, blue, white), showing(red, blue, white)}
	if phase, ok := compotest.InOrder(compotest.Pictures(t, recs[0], 4, 640, 360), phases...); !ok {
		t.Fatalf("RTMP: phase %d (0: two publishers, 1: four, 2: three) never shows", phase)
	}

	// The S3 destination: IVS's composite layout in the bucket.
	dir := filepath.Join(data, "storage", "composites", prefix)
	for _, f := range []string{"events/recording-started.json", "events/recording-ended.json", "media/hls/multivariant.m3u8", "media/latest_thumbnail/640x360/thumb.jpg"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("storage: %v", err)
		}
	}
	thumbs, _ := filepath.Glob(filepath.Join(dir, "media/thumbnails/640x360/*.jpg"))
	if len(thumbs) < 5 {
		t.Errorf("%d sequential thumbnails, want one a second", len(thumbs))
	}
	var ended struct {
		Status string `json:"recording_status"`
		Stage  string `json:"stage_arn"`
		Media  struct {
			HLS struct {
				DurationMs int64 `json:"duration_ms"`
				Renditions []struct {
					Path string `json:"path"`
				} `json:"renditions"`
			} `json:"hls"`
		} `json:"media"`
	}
	b, _ := os.ReadFile(filepath.Join(dir, "events/recording-ended.json"))
	if err := json.Unmarshal(b, &ended); err != nil || ended.Status != "RECORDING_ENDED" || ended.Stage != stage || ended.Media.HLS.DurationMs < 10_000 || len(ended.Media.HLS.Renditions) != 1 {
		t.Fatalf("recording-ended.json %s (%v)", b, err)
	}
	playlist := filepath.Join(dir, "media/hls", ended.Media.HLS.Renditions[0].Path, "playlist.m3u8")
	pl, _ := os.ReadFile(playlist)
	if !strings.Contains(string(pl), "#EXT-X-PLAYLIST-TYPE:VOD") || !strings.Contains(string(pl), "#EXT-X-ENDLIST") {
		t.Errorf("the rendition playlist is not finished:\n%s", pl)
	}
	checkVideo(t, "HLS", filepath.Join(dir, "media/hls/multivariant.m3u8"), 10)
	if phase, ok := compotest.InOrder(compotest.Pictures(t, playlist, 4, 640, 360), phases...); !ok {
		t.Fatalf("HLS: phase %d (0: two publishers, 1: four, 2: three) never shows", phase)
	}

	// The events, each once and in order.
	var names []string
	testutil.Eventually(t, "Session End", func() bool {
		names = compositionEvents(t, hook.got(), arn)
		return slices.Contains(names, events.CompositionSessionEnd)
	})
	want := []string{"Session Start", "Destination Start/" + chDest, "Destination Start/" + s3Dest,
		"Destination End/" + chDest, "Destination End/" + s3Dest, "Session End"}
	if !sameEvents(names, want) {
		t.Errorf("events %v, want %v", names, want)
	}

	// A viewer plays the composite from the bucket.
	runNodeTestsEnv(t, ts, []string{"ROSTRUM_RECORDING_DIR=" + dir, "ROSTRUM_RECORDING_WIDTH=640", "ROSTRUM_RECORDING_HEIGHT=360"}, "recording.test.mjs")
}

// sameEvents: the same events, Session Start first and Session End last,
// destinations' in any order between.
func sameEvents(got, want []string) bool {
	if len(got) != len(want) || got[0] != want[0] || got[len(got)-1] != want[len(want)-1] {
		return false
	}
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}

func TestCompositionToAnS3Service(t *testing.T) {
	needTool(t, "ffmpeg")
	g := objstoretest.StartVersityGW(t)
	rtmp, url := rtmpChannel(t, "s3")
	ts := startServer(t, "", withChannel(e2eChannel, url), func(c *config.Config) {
		c.Storage.S3Endpoint, c.Storage.S3Region = g.Endpoint, g.Region
		c.Storage.S3AccessKeyID, c.Storage.S3SecretAccessKey, c.Storage.S3ForcePathStyle = g.AccessKeyID, g.SecretAccessKey, true
	})
	if err := ts.Storage.CreateBucket(bg, "composites"); err != nil {
		t.Fatal(err)
	}
	c := ts.client()
	stage := newStage(t, c)
	red := publishColour(t, c, stage, "red", compotest.Red, "H264")
	arn, chDest, s3Dest, prefix := mediaComposition(t, c, stage, "composites")
	awaitDestination(t, c, arn, chDest, types.DestinationStateActive)
	awaitDestination(t, c, arn, s3Dest, types.DestinationStateActive)
	time.Sleep(5 * time.Second)
	if _, err := c.StopComposition(bg, &ivsrealtime.StopCompositionInput{Arn: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	awaitComposition(t, c, arn, types.CompositionStateStopped)
	dir := filepath.Join(g.Dir, "composites", prefix)
	checkVideo(t, "HLS on S3", filepath.Join(dir, "media/hls/multivariant.m3u8"), 4)
	if phase, ok := compotest.InOrder(compotest.Pictures(t, filepath.Join(dir, "media/hls/multivariant.m3u8"), 2, 640, 360), showing(red)); !ok {
		t.Fatalf("phase %d never shows", phase)
	}
	if _, err := os.Stat(filepath.Join(dir, "events/recording-ended.json")); err != nil {
		t.Error(err)
	}
	if n := len(rtmp.Publishes("live", "s3")); n != 1 {
		t.Errorf("%d RTMP connections beside the S3 destination, want 1", n)
	}
}

// IVS's rules through the server: a destination whose RTMP server goes
// away reconnects when it comes back; a stage without publishers stops its
// composition by itself; a destination that never comes back fails, and
// with it the composition.
func TestCompositionRulesEndToEnd(t *testing.T) {
	needTool(t, "ffmpeg")
	rtmp, url := rtmpChannel(t, "rules")
	hook := newHookReceiver(t)
	ts := startServer(t, "", withWebhook(hook.srv.URL, ""), withChannel(e2eChannel, url), func(c *config.Config) {
		c.Compositions.IdleTimeout = 3 * time.Second
		c.Compositions.ReconnectWindow = 4 * time.Second
	})
	c := ts.client()
	stage := newStage(t, c)
	red := publishColour(t, c, stage, "red", compotest.Red, "H264")
	ec, err := c.CreateEncoderConfiguration(bg, &ivsrealtime.CreateEncoderConfigurationInput{Video: &types.Video{
		Width: aws.Int32(640), Height: aws.Int32(360), Framerate: aws.Float32(15), Bitrate: aws.Int32(500_000)}})
	if err != nil {
		t.Fatal(err)
	}
	start := func() (string, string) {
		out, err := c.StartComposition(bg, &ivsrealtime.StartCompositionInput{StageArn: aws.String(stage), Destinations: []types.DestinationConfiguration{
			{Channel: &types.ChannelDestinationConfiguration{ChannelArn: aws.String(e2eChannel), EncoderConfigurationArn: ec.EncoderConfiguration.Arn}}}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Composition.Arn), aws.ToString(out.Composition.Destinations[0].Id)
	}

	// Broken, then back.
	arn, dest := start()
	awaitDestination(t, c, arn, dest, types.DestinationStateActive)
	rtmp.Kill()
	awaitDestination(t, c, arn, dest, types.DestinationStateReconnecting)
	rtmp.Restart()
	awaitDestination(t, c, arn, dest, types.DestinationStateActive)
	if n := len(rtmp.Publishes("live", "rules")); n != 2 {
		t.Errorf("%d publishes at the RTMP server, want 2 (before and after it restarted)", n)
	}
	// The last publisher leaves: the composition stops by itself after
	// the idle timeout.
	if err := red.pub.Close(testContext(t)); err != nil {
		t.Fatal(err)
	}
	awaitComposition(t, c, arn, types.CompositionStateStopped)
	testutil.Eventually(t, "the first composition's events", func() bool {
		return slices.Contains(compositionEvents(t, hook.got(), arn), "Session End")
	})
	// Back from RECONNECTING is no new Destination Start (GetComposition
	// shows ACTIVE again).
	want := []string{"Session Start", "Destination Start/" + dest, "Destination Reconnecting/" + dest, "Destination End/" + dest, "Session End"}
	if got := compositionEvents(t, hook.got(), arn); !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}

	// Broken for good: the destination fails, and the composition with
	// it (its only destination).
	publishColour(t, c, stage, "red again", compotest.Red, "H264")
	arn2, dest2 := start()
	awaitDestination(t, c, arn2, dest2, types.DestinationStateActive)
	rtmp.Kill()
	failed := awaitComposition(t, c, arn2, types.CompositionStateFailed)
	if failed.Destinations[0].State != types.DestinationStateFailed {
		t.Errorf("destination %s", failed.Destinations[0].State)
	}
	testutil.Eventually(t, "Session Failure", func() bool {
		return slices.Contains(compositionEvents(t, hook.got(), arn2), "Session Failure")
	})
	got := compositionEvents(t, hook.got(), arn2)
	if !slices.Contains(got, "Destination Failure/"+dest2) {
		t.Errorf("events %v without Destination Failure", got)
	}
}

package e2e

// The composition operations through aws-sdk-go-v2, raw JSON, boto3 and the
// JS SDK, against the real server with its composition Manager: channel
// destinations publish to a real RTMP server (nginx-rtmp, started by the
// test) and a pion publisher is in the stage where the picture matters.
// The picture itself (tiles, colours, layouts) is the composition package's
// to test; these tests check what the API says about it and the events.
// S3 destinations are part of the requests (their configuration and
// recordingPrefix are the API's), but their media is not checked here: an
// S3 destination ends STOPPED or FAILED.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/rostrum-dev/rostrum/internal/config"
	"github.com/rostrum-dev/rostrum/internal/events"
	"github.com/rostrum-dev/rostrum/internal/rtclient"
	"github.com/rostrum-dev/rostrum/internal/testutil"
	"github.com/rostrum-dev/rostrum/internal/testutil/rtmpserver"
)

const (
	e2eChannel = "arn:aws:ivs:us-east-1:123456789012:channel/e2eChannel01"
	// e2eChannelURL is where a channel destination of the tests that
	// create no composition with one would publish: nothing listens.
	e2eChannelURL = "rtmp://127.0.0.1:9/live/e2e-key"
)

// rtmpChannel starts a real RTMP server and returns it with the URL of
// stream live/key on it.
func rtmpChannel(t *testing.T, key string) (*rtmpserver.Server, string) {
	t.Helper()
	rtmp := rtmpserver.Start(t)
	return rtmp, rtmp.URL("live", key)
}

// publishInto puts a pion publisher (H.264 and Opus) in a stage for the
// rest of the test.
func publishInto(t *testing.T, c *ivsrealtime.Client, stage, user string) {
	t.Helper()
	f := fixtures(t)
	tok, _ := newToken(t, c, stage, user)
	publish(t, testContext(t), tok, rtclient.PublishOptions{Audio: source(t, f.Opus), Video: source(t, f.H264)})
}

// awaitDestination waits for a destination of a composition to reach a
// state and returns the composition.
func awaitDestination(t *testing.T, c *ivsrealtime.Client, arn, id string, want ...types.DestinationState) *types.Composition {
	t.Helper()
	var got *types.Composition
	testutil.Eventually(t, fmt.Sprintf("destination %s %v", id, want), func() bool {
		out, err := c.GetComposition(bg, &ivsrealtime.GetCompositionInput{Arn: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		got = out.Composition
		for _, d := range got.Destinations {
			if aws.ToString(d.Id) == id && slices.Contains(want, d.State) {
				return true
			}
		}
		return false
	})
	return got
}

func withChannel(arn, url string) func(*config.Config) {
	return func(c *config.Config) {
		if c.Compositions.Channels == nil {
			c.Compositions.Channels = map[string]string{}
		}
		c.Compositions.Channels[arn] = url
	}
}

// compositionSetup creates what a composition refers to: a stage, an
// encoder configuration and a storage configuration.
func compositionSetup(t *testing.T, c *ivsrealtime.Client) (stage, enc, storage string) {
	t.Helper()
	st, err := c.CreateStage(bg, &ivsrealtime.CreateStageInput{})
	if err != nil {
		t.Fatal(err)
	}
	// Small and slow: the machine running the tests is shared.
	ec, err := c.CreateEncoderConfiguration(bg, &ivsrealtime.CreateEncoderConfigurationInput{Video: &types.Video{
		Width: aws.Int32(640), Height: aws.Int32(360), Framerate: aws.Float32(15), Bitrate: aws.Int32(600000),
	}})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := c.CreateStorageConfiguration(bg, &ivsrealtime.CreateStorageConfigurationInput{S3: &types.S3StorageConfiguration{BucketName: aws.String("composites")}})
	if err != nil {
		t.Fatal(err)
	}
	return *st.Stage.Arn, *ec.EncoderConfiguration.Arn, *sc.StorageConfiguration.Arn
}

func awaitComposition(t *testing.T, c *ivsrealtime.Client, arn string, want types.CompositionState) *types.Composition {
	t.Helper()
	var got *types.Composition
	testutil.Eventually(t, "composition "+string(want), func() bool {
		out, err := c.GetComposition(bg, &ivsrealtime.GetCompositionInput{Arn: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		got = out.Composition
		return got.State == want
	})
	return got
}

// compositionEvents are the "IVS Composition State Change" events of one
// composition, as "event name" or "event name/destination id".
func compositionEvents(t *testing.T, evs []*events.Event, arn string) []string {
	var out []string
	for _, ev := range evs {
		if ev.DetailType != events.DetailTypeCompositionChange || len(ev.Resources) != 1 || ev.Resources[0] != arn {
			continue
		}
		var d events.CompositionStateChange
		if err := json.Unmarshal(ev.Detail, &d); err != nil {
			t.Fatal(err)
		}
		s := d.EventName
		if d.DestinationID != "" {
			s += "/" + d.DestinationID
		}
		out = append(out, s)
	}
	return out
}

// exceptionMessage is a modeled error's exceptionMessage: the Go SDK's
// Error() leaves it out (API-NOTES.md).
func exceptionMessage(err error) string {
	var nf *types.ResourceNotFoundException
	var ve *types.ValidationException
	var ce *types.ConflictException
	switch {
	case errors.As(err, &nf):
		return aws.ToString(nf.ExceptionMessage)
	case errors.As(err, &ve):
		return aws.ToString(ve.ExceptionMessage)
	case errors.As(err, &ce):
		return aws.ToString(ce.ExceptionMessage)
	}
	return ""
}

func TestCompositionLifecycleThroughTheGoSDK(t *testing.T) {
	rtmp, url := rtmpChannel(t, "lifecycle")
	hook := newHookReceiver(t)
	ts := startServer(t, "", withWebhook(hook.srv.URL, ""), withChannel(e2eChannel, url))
	c := ts.client()
	stage, enc, storage := compositionSetup(t, c)
	publishInto(t, c, stage, "alice")
	in := &ivsrealtime.StartCompositionInput{
		StageArn:         aws.String(stage),
		IdempotencyToken: aws.String("e2e-token-1"),
		Layout:           &types.LayoutConfiguration{Pip: &types.PipConfiguration{PipParticipantAttribute: aws.String("pip"), PipPosition: types.PipPositionTopLeft}},
		Destinations: []types.DestinationConfiguration{
			{Channel: &types.ChannelDestinationConfiguration{ChannelArn: aws.String(e2eChannel), EncoderConfigurationArn: aws.String(enc)}},
			{Name: aws.String("archive"), S3: &types.S3DestinationConfiguration{
				StorageConfigurationArn: aws.String(storage), EncoderConfigurationArns: []string{enc},
				RecordingConfiguration:  &types.RecordingConfiguration{HlsConfiguration: &types.CompositionRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(4)}},
				ThumbnailConfigurations: []types.CompositionThumbnailConfiguration{{Storage: []types.ThumbnailStorageType{types.ThumbnailStorageTypeLatest}}},
			}},
		},
		Tags: map[string]string{"show": "e2e"},
	}
	out, err := c.StartComposition(bg, in)
	if err != nil {
		t.Fatal(err)
	}
	comp := out.Composition
	arn := aws.ToString(comp.Arn)
	compID := arn[strings.LastIndexByte(arn, '/')+1:]
	stageID := stage[strings.LastIndexByte(stage, '/')+1:]
	if !strings.HasPrefix(arn, "arn:aws:ivs:us-east-1:123456789012:composition/") || aws.ToString(comp.StageArn) != stage || comp.StartTime == nil || comp.Tags["show"] != "e2e" {
		t.Fatalf("composition %+v", comp)
	}
	if comp.State != types.CompositionStateStarting && comp.State != types.CompositionStateActive {
		t.Errorf("state %s", comp.State)
	}
	p := comp.Layout.Pip
	if p == nil || comp.Layout.Grid != nil || aws.ToString(p.PipParticipantAttribute) != "pip" || p.PipPosition != types.PipPositionTopLeft || p.PipBehavior != types.PipBehaviorStatic || p.VideoFillMode != types.VideoFillModeCover {
		t.Errorf("layout %+v", comp.Layout)
	}
	if len(comp.Destinations) != 2 {
		t.Fatalf("destinations %+v", comp.Destinations)
	}
	ch, s3 := comp.Destinations[0], comp.Destinations[1]
	if aws.ToString(ch.Configuration.Channel.ChannelArn) != e2eChannel || ch.Detail != nil || len(aws.ToString(ch.Id)) != 12 {
		t.Errorf("channel destination %+v", ch)
	}
	wantPrefix := stageID + "/" + compID + "/" + aws.ToString(s3.Id) + "/composite"
	if s3.Detail == nil || aws.ToString(s3.Detail.S3.RecordingPrefix) != wantPrefix {
		t.Errorf("recordingPrefix %+v, want %s", s3.Detail, wantPrefix)
	}
	sc := s3.Configuration.S3
	if aws.ToString(s3.Configuration.Name) != "archive" || sc.RecordingConfiguration.Format != types.RecordingConfigurationFormatHls ||
		aws.ToInt32(sc.RecordingConfiguration.HlsConfiguration.TargetSegmentDurationSeconds) != 4 ||
		aws.ToInt32(sc.ThumbnailConfigurations[0].TargetIntervalSeconds) != 60 {
		t.Errorf("s3 configuration %+v", sc)
	}

	// It goes ACTIVE and its channel destination publishes to the RTMP
	// server.
	awaitComposition(t, c, arn, types.CompositionStateActive)
	live := awaitDestination(t, c, arn, aws.ToString(ch.Id), types.DestinationStateActive)
	if live.Destinations[0].StartTime == nil {
		t.Errorf("an ACTIVE destination without startTime: %+v", live.Destinations[0])
	}
	testutil.Eventually(t, "the composition publishing to the RTMP server", func() bool { return rtmp.Publishing("live", "lifecycle") })

	// Get and List show it; its tags are the tag operations' too.
	got, err := c.GetComposition(bg, &ivsrealtime.GetCompositionInput{Arn: comp.Arn})
	if err != nil || aws.ToString(got.Composition.Destinations[1].Detail.S3.RecordingPrefix) != wantPrefix {
		t.Fatalf("GetComposition %+v, %v", got, err)
	}
	list, err := c.ListCompositions(bg, &ivsrealtime.ListCompositionsInput{})
	if err != nil || len(list.Compositions) != 1 || aws.ToString(list.Compositions[0].Arn) != arn || len(list.Compositions[0].Destinations) != 2 || list.Compositions[0].Tags["show"] != "e2e" {
		t.Fatalf("ListCompositions %+v, %v", list, err)
	}
	if _, err := c.TagResource(bg, &ivsrealtime.TagResourceInput{ResourceArn: comp.Arn, Tags: map[string]string{"more": "x"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := c.ListTagsForResource(bg, &ivsrealtime.ListTagsForResourceInput{ResourceArn: comp.Arn})
	if err != nil || len(tags.Tags) != 2 {
		t.Fatalf("tags %v, %v", tags, err)
	}

	// The same token and request: the same composition; another request
	// with the token: ConflictException.
	again, err := c.StartComposition(bg, in)
	if err != nil || aws.ToString(again.Composition.Arn) != arn {
		t.Fatalf("retry: %v, %v", again, err)
	}
	changed := *in
	changed.Tags = map[string]string{"show": "other"}
	_, err = c.StartComposition(bg, &changed)
	var ce *types.ConflictException
	if !errors.As(err, &ce) || !strings.Contains(aws.ToString(ce.ExceptionMessage), "e2e-token-1") {
		t.Fatalf("token reused for another request: %v", err)
	}
	// The channel is busy while the composition lives.
	_, err = c.StartComposition(bg, &ivsrealtime.StartCompositionInput{StageArn: aws.String(stage), Destinations: in.Destinations[:1]})
	if !errors.As(err, &ce) {
		t.Fatalf("a second composition to the channel: %v", err)
	}
	// The encoder and storage configurations stay while it uses them.
	if _, err := c.DeleteEncoderConfiguration(bg, &ivsrealtime.DeleteEncoderConfigurationInput{Arn: aws.String(enc)}); !errors.As(err, &ce) {
		t.Fatalf("deleting an encoder configuration in use: %v", err)
	}

	if _, err := c.StopComposition(bg, &ivsrealtime.StopCompositionInput{Arn: comp.Arn}); err != nil {
		t.Fatal(err)
	}
	stopped := awaitComposition(t, c, arn, types.CompositionStateStopped)
	if stopped.EndTime == nil {
		t.Error("no endTime")
	}
	for _, d := range stopped.Destinations {
		if (d.State != types.DestinationStateStopped && d.State != types.DestinationStateFailed) || d.EndTime == nil {
			t.Errorf("destination %s: %s, end %v", aws.ToString(d.Id), d.State, d.EndTime)
		}
	}
	if d := stopped.Destinations[0]; d.State != types.DestinationStateStopped {
		t.Errorf("channel destination %s after StopComposition", d.State)
	}
	testutil.Eventually(t, "the RTMP publish ended", func() bool { return !rtmp.Publishing("live", "lifecycle") })
	if n := len(rtmp.Publishes("live", "lifecycle")); n != 1 {
		t.Errorf("%d RTMP publishes, want 1", n)
	}
	// Stopping a stopped composition is no error.
	if _, err := c.StopComposition(bg, &ivsrealtime.StopCompositionInput{Arn: comp.Arn}); err != nil {
		t.Fatal(err)
	}
	// Events: Session Start, the channel's Destination Start, and at the
	// end each destination's end (the S3 one's End or Failure), then
	// Session End, last.
	chID, s3ID := aws.ToString(ch.Id), aws.ToString(s3.Id)
	var evs []string
	testutil.Eventually(t, "Session End at the webhook", func() bool {
		evs = compositionEvents(t, hook.got(), arn)
		return slices.Contains(evs, "Session End")
	})
	end := slices.Index(evs, "Session End")
	chEnd := slices.Index(evs, "Destination End/"+chID)
	s3End := max(slices.Index(evs, "Destination End/"+s3ID), slices.Index(evs, "Destination Failure/"+s3ID))
	start, chStart := slices.Index(evs, "Session Start"), slices.Index(evs, "Destination Start/"+chID)
	if end != len(evs)-1 || start < 0 || chStart < start ||
		chEnd < 0 || chEnd > end || s3End < 0 || s3End > end {
		t.Errorf("events %q", evs)
	}
	if _, err := c.DeleteEncoderConfiguration(bg, &ivsrealtime.DeleteEncoderConfigurationInput{Arn: aws.String(enc)}); err != nil {
		t.Fatalf("deleting the encoder configuration once the composition stopped: %v", err)
	}
}

func TestCompositionErrorsAsIVSAnswersThem(t *testing.T) {
	ts := startServer(t, "", withChannel(e2eChannel, e2eChannelURL))
	c := ts.client()
	stage, enc, storage := compositionSetup(t, c)
	missing := func(kind string) string { return "arn:aws:ivs:us-east-1:123456789012:" + kind + "/missingAAAAA" }
	chanDest := func(arn string) types.DestinationConfiguration {
		return types.DestinationConfiguration{Channel: &types.ChannelDestinationConfiguration{ChannelArn: aws.String(arn)}}
	}
	s3Dest := func(storage, enc string) types.DestinationConfiguration {
		return types.DestinationConfiguration{S3: &types.S3DestinationConfiguration{StorageConfigurationArn: aws.String(storage), EncoderConfigurationArns: []string{enc}}}
	}
	for _, tc := range []struct {
		name, code, contains string
		stage                string
		dests                []types.DestinationConfiguration
	}{
		{"absent stage", "ResourceNotFoundException", "stageArn", missing("stage"), []types.DestinationConfiguration{chanDest(e2eChannel)}},
		{"absent encoder configuration", "ResourceNotFoundException", "encoderConfigurationArns", stage, []types.DestinationConfiguration{s3Dest(storage, missing("encoder-configuration"))}},
		{"absent storage configuration", "ResourceNotFoundException", "storageConfigurationArn", stage, []types.DestinationConfiguration{s3Dest(missing("storage-configuration"), enc)}},
		{"unmapped channel", "ValidationException", "--channel", stage, []types.DestinationConfiguration{chanDest(missing("channel"))}},
		{"two s3 destinations", "ValidationException", "at most one s3", stage, []types.DestinationConfiguration{s3Dest(storage, enc), s3Dest(storage, enc)}},
	} {
		_, err := c.StartComposition(bg, &ivsrealtime.StartCompositionInput{StageArn: aws.String(tc.stage), Destinations: tc.dests})
		if code := apiErrorCode(t, err); code != tc.code || !strings.Contains(exceptionMessage(err), tc.contains) {
			t.Errorf("%s: %v, want %s naming %q", tc.name, err, tc.code, tc.contains)
		}
	}
	for _, call := range []func() error{
		func() error {
			_, err := c.GetComposition(bg, &ivsrealtime.GetCompositionInput{Arn: aws.String(missing("composition"))})
			return err
		},
		func() error {
			_, err := c.StopComposition(bg, &ivsrealtime.StopCompositionInput{Arn: aws.String(missing("composition"))})
			return err
		},
	} {
		var nf *types.ResourceNotFoundException
		if err := call(); !errors.As(err, &nf) {
			t.Errorf("absent composition: %v", err)
		}
	}

	// The model's constraints, sent as raw JSON (the SDK would refuse
	// some): each a ValidationException naming the member.
	dest := `[{"s3":{"storageConfigurationArn":"` + storage + `","encoderConfigurationArns":["` + enc + `"]}}]`
	for _, tc := range []struct{ body, member string }{
		{`{"stageArn":"` + stage + `","destinations":[]}`, "destinations"},
		{`{"stageArn":"` + stage + `"}`, "destinations"},
		{`{"stageArn":"` + stage + `","destinations":` + dest + `,"idempotencyToken":"has spaces"}`, "idempotencyToken"},
		{`{"stageArn":"` + stage + `","destinations":[{"s3":{"storageConfigurationArn":"` + storage + `","encoderConfigurationArns":["` + enc + `","` + enc + `"]}}]}`, "encoderConfigurationArns"},
		{`{"stageArn":"` + stage + `","destinations":[{"s3":{"storageConfigurationArn":"` + storage + `","encoderConfigurationArns":["` + enc + `"],"recordingConfiguration":{"hlsConfiguration":{"targetSegmentDurationSeconds":11}}}}]}`, "targetSegmentDurationSeconds"},
		{`{"stageArn":"` + stage + `","destinations":[{"s3":{"storageConfigurationArn":"` + storage + `","encoderConfigurationArns":["` + enc + `"],"thumbnailConfigurations":[{"targetIntervalSeconds":0}]}}]}`, "targetIntervalSeconds"},
		{`{"stageArn":"` + stage + `","destinations":` + dest + `,"layout":{"grid":{"gridGap":-1}}}`, "gridGap"},
		{`{"stageArn":"` + stage + `","destinations":` + dest + `,"layout":{"pip":{"pipPosition":"MIDDLE"}}}`, "pipPosition"},
		{`{"stageArn":"` + stage + `","destinations":` + dest + `,"layout":{"grid":{"videoAspectRatio":"WIDE"}}}`, "videoAspectRatio"},
		{`{"stageArn":"` + stage + `","destinations":[{"channel":{"channelArn":"arn:aws:ivs:us-east-1:123456789012:stage/notAChannel"}}]}`, "channelArn"},
		{`{"stageArn":"not-an-arn","destinations":` + dest + `}`, "stageArn"},
	} {
		status, h, body := ts.call(t, "POST", "/StartComposition", []byte(tc.body))
		if status != http.StatusBadRequest || !strings.HasPrefix(h.Get("x-amzn-ErrorType"), "ValidationException") || !strings.Contains(string(body), tc.member) {
			t.Errorf("%s: %d %s %s", tc.body, status, h.Get("x-amzn-ErrorType"), body)
		}
	}
	for _, tc := range []struct{ path, body, member string }{
		{"/ListCompositions", `{"maxResults":0}`, "maxResults"},
		{"/ListCompositions", `{"maxResults":101}`, "maxResults"},
		{"/ListCompositions", `{"filterByStageArn":"nope"}`, "filterByStageArn"},
		{"/GetComposition", `{"arn":"arn:aws:ivs:us-east-1:123456789012:stage/abc"}`, "arn"},
		{"/StopComposition", `{}`, "arn"},
	} {
		status, _, body := ts.call(t, "POST", tc.path, []byte(tc.body))
		if status != http.StatusBadRequest || !strings.Contains(string(body), tc.member) {
			t.Errorf("%s %s: %d %s", tc.path, tc.body, status, body)
		}
	}
	// Nothing was created by the refusals.
	list, err := c.ListCompositions(bg, &ivsrealtime.ListCompositionsInput{})
	if err != nil || len(list.Compositions) != 0 {
		t.Fatalf("after refusals: %+v, %v", list, err)
	}
}

func TestListCompositionsPagesAndFilters(t *testing.T) {
	// Four compositions, each to its own channel (a channel takes one
	// composition), all streams of one RTMP server.
	rtmp := rtmpserver.Start(t)
	channels := make([]string, 4)
	var mutate []func(*config.Config)
	for i := range channels {
		channels[i] = fmt.Sprintf("arn:aws:ivs:us-east-1:123456789012:channel/listChannel%d", i)
		mutate = append(mutate, withChannel(channels[i], rtmp.URL("live", fmt.Sprintf("list-%d", i))))
	}
	ts := startServer(t, "", mutate...)
	c := ts.client()
	stageA, encA, _ := compositionSetup(t, c)
	stageB, err := c.CreateStage(bg, &ivsrealtime.CreateStageInput{})
	if err != nil {
		t.Fatal(err)
	}
	encB, err := c.CreateEncoderConfiguration(bg, &ivsrealtime.CreateEncoderConfigurationInput{Video: &types.Video{
		Width: aws.Int32(320), Height: aws.Int32(180), Framerate: aws.Float32(10), Bitrate: aws.Int32(300000),
	}})
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for i, p := range []struct{ stage, enc string }{
		{stageA, encA}, {*stageB.Stage.Arn, encA}, {stageA, *encB.EncoderConfiguration.Arn}, {*stageB.Stage.Arn, *encB.EncoderConfiguration.Arn},
	} {
		out, err := c.StartComposition(bg, &ivsrealtime.StartCompositionInput{StageArn: aws.String(p.stage), Destinations: []types.DestinationConfiguration{
			{Channel: &types.ChannelDestinationConfiguration{ChannelArn: aws.String(channels[i]), EncoderConfigurationArn: aws.String(p.enc)}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, *out.Composition.Arn)
	}
	list := func(in ivsrealtime.ListCompositionsInput, pageSize int32) []string {
		t.Helper()
		var got []string
		pg := ivsrealtime.NewListCompositionsPaginator(c, &in, func(o *ivsrealtime.ListCompositionsPaginatorOptions) { o.Limit = pageSize })
		for pg.HasMorePages() {
			page, err := pg.NextPage(bg)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Compositions) > int(pageSize) {
				t.Fatalf("a page of %d, asked %d", len(page.Compositions), pageSize)
			}
			for _, s := range page.Compositions {
				got = append(got, *s.Arn)
				if len(s.Destinations) != 1 || s.StartTime == nil || s.Tags == nil {
					t.Errorf("summary %+v", s)
				}
			}
		}
		return got
	}
	pick := func(i ...int) (out []string) {
		for _, j := range i {
			out = append(out, all[j])
		}
		return out
	}
	for _, tc := range []struct {
		name string
		in   ivsrealtime.ListCompositionsInput
		size int32
		want []string
	}{
		{"every one, 3 a page", ivsrealtime.ListCompositionsInput{}, 3, all},
		{"by stage", ivsrealtime.ListCompositionsInput{FilterByStageArn: aws.String(stageA)}, 1, pick(0, 2)},
		{"by encoder configuration", ivsrealtime.ListCompositionsInput{FilterByEncoderConfigurationArn: aws.String(encA)}, 1, pick(0, 1)},
		{"by both", ivsrealtime.ListCompositionsInput{FilterByStageArn: aws.String(stageA), FilterByEncoderConfigurationArn: aws.String(encA)}, 1, pick(0)},
	} {
		if got := list(tc.in, tc.size); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	// Each stops when told, once it publishes.
	for _, arn := range all {
		got, err := c.GetComposition(bg, &ivsrealtime.GetCompositionInput{Arn: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		awaitDestination(t, c, arn, *got.Composition.Destinations[0].Id, types.DestinationStateActive)
		if _, err := c.StopComposition(bg, &ivsrealtime.StopCompositionInput{Arn: aws.String(arn)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, arn := range all {
		awaitComposition(t, c, arn, types.CompositionStateStopped)
	}
}

// DeleteStage ends the stage's compositions (STOPPED), with their events.
func TestDeleteStageEndsItsCompositions(t *testing.T) {
	rtmp, url := rtmpChannel(t, "deleted")
	hook := newHookReceiver(t)
	ts := startServer(t, "", withWebhook(hook.srv.URL, ""), withChannel(e2eChannel, url))
	c := ts.client()
	stage, enc, _ := compositionSetup(t, c)
	out, err := c.StartComposition(bg, &ivsrealtime.StartCompositionInput{StageArn: aws.String(stage), Destinations: []types.DestinationConfiguration{
		{Channel: &types.ChannelDestinationConfiguration{ChannelArn: aws.String(e2eChannel), EncoderConfigurationArn: aws.String(enc)}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	arn := *out.Composition.Arn
	awaitDestination(t, c, arn, *out.Composition.Destinations[0].Id, types.DestinationStateActive)
	if _, err := c.DeleteStage(bg, &ivsrealtime.DeleteStageInput{Arn: aws.String(stage)}); err != nil {
		t.Fatalf("DeleteStage with a composition: %v", err)
	}
	stopped := awaitComposition(t, c, arn, types.CompositionStateStopped)
	if stopped.Destinations[0].State != types.DestinationStateStopped {
		t.Errorf("destination %s", stopped.Destinations[0].State)
	}
	testutil.Eventually(t, "the RTMP publish ended", func() bool { return !rtmp.Publishing("live", "deleted") })
	testutil.Eventually(t, "Session End", func() bool { return slices.Contains(compositionEvents(t, hook.got(), arn), "Session End") })
}

// A composition left running by a server that was killed fails at the
// next start, with a Session Failure event: its media died with the
// process.
func TestCompositionsOfAKilledServerFail(t *testing.T) {
	rtmp, url := rtmpChannel(t, "killed")
	hook := newHookReceiver(t)
	dir := t.TempDir()
	bin := buildRostrum(t, dir)
	data := filepath.Join(dir, "data")
	args := []string{"--data-dir", data, "--event-webhook", hook.srv.URL + "/hook", "--event-webhook-secret", hookSecret,
		"--event-retry-initial", "10ms", "--event-retry-max", "40ms", "--channel", e2eChannel + "=" + url}
	args = append(args, serveDatabaseArgs(t, data)...) // postgres_test.go
	p := runServe(t, bin, args...)
	c := p.client()
	stage, enc, _ := compositionSetup(t, c)
	out, err := c.StartComposition(bg, &ivsrealtime.StartCompositionInput{StageArn: aws.String(stage), Destinations: []types.DestinationConfiguration{
		{Channel: &types.ChannelDestinationConfiguration{ChannelArn: aws.String(e2eChannel), EncoderConfigurationArn: aws.String(enc)}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	arn := *out.Composition.Arn
	awaitDestination(t, c, arn, *out.Composition.Destinations[0].Id, types.DestinationStateActive)
	p.signal(t, syscall.SIGKILL)
	// Its encoder and pusher die with it.
	testutil.Eventually(t, "the RTMP publish ended with the server", func() bool { return !rtmp.Publishing("live", "killed") })
	p = runServe(t, bin, args...)
	failed := awaitComposition(t, p.client(), arn, types.CompositionStateFailed)
	if failed.EndTime == nil || failed.Destinations[0].State != types.DestinationStateFailed {
		t.Errorf("after the restart: %+v", failed)
	}
	var reason string
	testutil.Eventually(t, "Session Failure", func() bool {
		for _, ev := range hook.got() {
			var d events.CompositionStateChange
			if ev.DetailType == events.DetailTypeCompositionChange && ev.Resources[0] == arn && json.Unmarshal(ev.Detail, &d) == nil && d.EventName == events.CompositionSessionFailure {
				reason = d.Reason
				return true
			}
		}
		return false
	})
	if !strings.Contains(reason, "stopped before the composition ended") {
		t.Errorf("Session Failure reason %q", reason)
	}
	// The stage takes a new composition to the channel.
	if _, err := p.client().StartComposition(bg, &ivsrealtime.StartCompositionInput{StageArn: aws.String(stage), Destinations: []types.DestinationConfiguration{
		{Channel: &types.ChannelDestinationConfiguration{ChannelArn: aws.String(e2eChannel), EncoderConfigurationArn: aws.String(enc)}},
	}}); err != nil {
		t.Fatalf("a new composition to the channel after the restart: %v", err)
	}
}

// boto3 drives the four operations against the binary, as a Python
// application would, including the model's validation errors.
func TestCompositionsThroughBoto3(t *testing.T) {
	python := needTool(t, "python3")
	if err := exec.Command(python, "-c", "import boto3").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("boto3 is needed for this test: %v", err)
		}
		t.Skip("boto3 not installed")
	}
	_, channelURL := rtmpChannel(t, "boto3")
	url := startBinary(t, "--channel", e2eChannel+"="+channelURL)
	script := `
import sys, boto3, botocore.config
c = boto3.client("ivs-realtime", endpoint_url=sys.argv[1])
channel = sys.argv[2]
st = c.create_stage(name="boto-comp")["stage"]
enc = c.create_encoder_configuration(video={"width": 1280, "height": 720})["encoderConfiguration"]
sc = c.create_storage_configuration(s3={"bucketName": "boto-bucket"})["storageConfiguration"]
dests = [{"channel": {"channelArn": channel, "encoderConfigurationArn": enc["arn"]}},
         {"s3": {"storageConfigurationArn": sc["arn"], "encoderConfigurationArns": [enc["arn"]]}}]
comp = c.start_composition(stageArn=st["arn"], destinations=dests, idempotencyToken="boto-1",
                           layout={"grid": {"featuredParticipantAttribute": "featured"}}, tags={"k": "v"})["composition"]
assert comp["state"] in ("STARTING", "ACTIVE"), comp
assert hasattr(comp["startTime"], "year"), "startTime is not parsed as a timestamp"
assert comp["layout"]["grid"]["featuredParticipantAttribute"] == "featured", comp["layout"]
assert comp["destinations"][1]["detail"]["s3"]["recordingPrefix"].endswith("/composite"), comp["destinations"]
again = c.start_composition(stageArn=st["arn"], destinations=dests, idempotencyToken="boto-1",
                            layout={"grid": {"featuredParticipantAttribute": "featured"}}, tags={"k": "v"})["composition"]
assert again["arn"] == comp["arn"], (again["arn"], comp["arn"])
got = c.get_composition(arn=comp["arn"])["composition"]
assert got["arn"] == comp["arn"] and got["tags"] == {"k": "v"}, got
# botocore has no paginator for list_compositions: nextToken by hand.
other = c.start_composition(stageArn=st["arn"], destinations=dests[1:])["composition"]
arns, kw = [], {"filterByStageArn": st["arn"], "maxResults": 1}
while True:
    page = c.list_compositions(**kw)
    assert len(page["compositions"]) <= 1, page
    arns += [s["arn"] for s in page["compositions"]]
    if not page.get("nextToken"):
        break
    kw["nextToken"] = page["nextToken"]
assert arns == [comp["arn"], other["arn"]], arns
c.stop_composition(arn=other["arn"])
for bad in ({"stageArn": st["arn"], "destinations": []},
            {"stageArn": st["arn"], "destinations": dests, "idempotencyToken": "no spaces"},
            {"stageArn": st["arn"], "destinations": [{"s3": {"storageConfigurationArn": sc["arn"], "encoderConfigurationArns": [enc["arn"]],
                "recordingConfiguration": {"hlsConfiguration": {"targetSegmentDurationSeconds": 30}}}}]}):
    # botocore checks the model itself; the server must too.
    c2 = boto3.client("ivs-realtime", endpoint_url=sys.argv[1], config=botocore.config.Config(parameter_validation=False))
    try:
        c2.start_composition(**bad)
        raise SystemExit("expected ValidationException for %r" % (bad,))
    except c2.exceptions.ValidationException:
        pass
try:
    c.get_composition(arn=comp["arn"][:-4] + "nope")
    raise SystemExit("expected ResourceNotFoundException")
except c.exceptions.ResourceNotFoundException:
    pass
import time
deadline = time.time() + 60
# Live first: its channel destination publishes to the RTMP server.
while c.get_composition(arn=comp["arn"])["composition"]["destinations"][0]["state"] != "ACTIVE":
    assert time.time() < deadline, "the channel destination did not go ACTIVE"
    time.sleep(0.1)
c.stop_composition(arn=comp["arn"])
while c.get_composition(arn=comp["arn"])["composition"]["state"] != "STOPPED":
    assert time.time() < deadline, "the composition did not stop"
    time.sleep(0.1)
print("boto3 compositions ok")
`
	cmd := exec.Command(python, "-c", script, url, e2eChannel)
	cmd.Env = devEnv()
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "boto3 compositions ok") {
		t.Fatalf("boto3 script: %v\n%s", err, out)
	}
}

// On the wire a composition has its empty members, as IVS's answers in the
// aws CLI's examples show them: "tags":{}, a destination's "name":"", the
// layout's members with their defaults.
func TestCompositionOnTheWireAsIVSAnswers(t *testing.T) {
	ts := startServer(t, "")
	c := ts.client()
	stage, enc, storage := compositionSetup(t, c)
	out, err := c.StartComposition(bg, &ivsrealtime.StartCompositionInput{StageArn: aws.String(stage), Destinations: []types.DestinationConfiguration{
		{S3: &types.S3DestinationConfiguration{StorageConfigurationArn: aws.String(storage), EncoderConfigurationArns: []string{enc}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, _, body := ts.call(t, "POST", "/GetComposition", []byte(`{"arn":"`+*out.Composition.Arn+`"}`))
	for _, member := range []string{
		`"tags":{}`, `"name":""`, `"startTime":"`,
		`"grid":{"featuredParticipantAttribute":"","gridGap":2,"omitStoppedVideo":false,"participantOrderAttribute":"","videoAspectRatio":"VIDEO","videoFillMode":""}`,
		`"recordingConfiguration":{"format":"HLS","hlsConfiguration":{"targetSegmentDurationSeconds":2}}`,
		`"detail":{"s3":{"recordingPrefix":"`,
	} {
		if !strings.Contains(string(body), member) {
			t.Errorf("GetComposition has no %s: %s", member, body)
		}
	}
	if strings.Contains(string(body), "rostrum") || strings.Contains(string(body), "thumbnailConfigurations") {
		t.Errorf("GetComposition shows what it should not: %s", body)
	}
}

// The AWS SDK for JavaScript v3 drives the four operations, including the
// model's validation errors (test/browser/compositions.test.mjs).
func TestCompositionsThroughTheJSSDK(t *testing.T) {
	rtmp := rtmpserver.Start(t)
	arns := []string{e2eChannel, e2eChannel + "b", e2eChannel + "c"}
	var mutate []func(*config.Config)
	for i, arn := range arns {
		mutate = append(mutate, withChannel(arn, rtmp.URL("live", fmt.Sprintf("js-%d", i))))
	}
	ts := startServer(t, "", mutate...)
	runNodeTestsEnv(t, ts, []string{"ROSTRUM_CHANNEL_ARNS=" + strings.Join(arns, ",")}, "compositions.test.mjs")
}

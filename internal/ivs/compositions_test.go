package ivs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/composition"
	"github.com/rostrum-dev/rostrum/internal/composition/layout"
	"github.com/rostrum-dev/rostrum/internal/events"
	"github.com/rostrum-dev/rostrum/internal/store/sqlite"
)

const (
	testChannel    = "arn:aws:ivs:us-east-1:123456789012:channel/chanAAAAAAAA"
	testChannelURL = "rtmp://127.0.0.1:1935/live/key-a"
	testChannel2   = "arn:aws:ivs:us-east-1:123456789012:channel/chanBBBBBBBB"
)

// fakeCompositor stands in for the composition Manager: it records what it
// is asked and, on Stop, reports what the Manager reports.
type fakeCompositor struct {
	mu       sync.Mutex
	rep      composition.Reporter
	started  []composition.Spec
	stopped  []string
	running  map[string]composition.Spec
	startErr error
}

func (f *fakeCompositor) Start(spec composition.Spec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.startErr != nil {
		return f.startErr
	}
	f.started = append(f.started, spec)
	if f.running == nil {
		f.running = map[string]composition.Spec{}
	}
	f.running[spec.ARN] = spec
	return nil
}

func (f *fakeCompositor) Stop(arn string) error {
	f.mu.Lock()
	spec, ok := f.running[arn]
	delete(f.running, arn)
	if ok {
		f.stopped = append(f.stopped, arn)
	}
	f.mu.Unlock()
	if !ok {
		return composition.ErrNotFound
	}
	now := time.Now()
	f.rep.CompositionState(arn, composition.StateStopping, now, "")
	for _, d := range spec.Destinations {
		f.rep.DestinationState(arn, d.ID, composition.StateStopped, now, "")
	}
	f.rep.CompositionState(arn, composition.StateStopped, now, "")
	return nil
}

func (f *fakeCompositor) specs() []composition.Spec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.started)
}

type compFixture struct {
	svc     *Service
	sink    *recordingSink
	comp    *fakeCompositor
	stage   string
	stageID string
	enc     string
	storage string
	now     *time.Time
	nowMu   *sync.Mutex
}

// newCompFixture is a service on SQLite with an event bus, a fake
// compositor, a stage, an encoder configuration (1920x1080, 60 fps, 6
// Mbit/s) and a storage configuration (bucket "bucket-a").
func newCompFixture(t *testing.T, mutate ...func(*Config)) *compFixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "rostrum.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sink := &recordingSink{}
	every, err := events.SinkPattern(`{"detail-type":[{"prefix":""}]}`)
	if err != nil {
		t.Fatal(err)
	}
	bus, err := events.NewBus(events.Config{Store: st, Sinks: []events.SinkConfig{{Sink: sink, Pattern: every}}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	f := &compFixture{sink: sink, nowMu: &sync.Mutex{}}
	now := time.Now().UTC()
	f.now = &now
	cfg := Config{
		Region: "us-east-1", AccountID: "123456789012", Store: st, Events: bus, Logger: log, NodeID: "node-a",
		Quotas:   DefaultQuotas,
		Channels: map[string]string{testChannel: testChannelURL, testChannel2: "rtmps://example.net/app/key-b"},
		Now: func() time.Time {
			f.nowMu.Lock()
			defer f.nowMu.Unlock()
			return *f.now
		},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	if f.svc, err = New(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.svc.FlushCompositionReports(context.Background()); err != nil {
			t.Error(err)
		}
	})
	f.comp = &fakeCompositor{rep: f.svc}
	f.svc.SetCompositor(f.comp)
	f.stage = f.newStage(t)
	f.stageID = mustParseARN(f.stage).ID
	enc, err := f.svc.CreateEncoderConfiguration(ctx, &api.CreateEncoderConfigurationRequest{Video: &api.Video{
		Width: api.Ptr(int32(1920)), Height: api.Ptr(int32(1080)), Framerate: api.Ptr(float32(60)), Bitrate: api.Ptr(int32(6000000)),
	}})
	if err != nil {
		t.Fatal(err)
	}
	f.enc = enc.EncoderConfiguration.Arn
	sc, err := f.svc.CreateStorageConfiguration(ctx, &api.CreateStorageConfigurationRequest{S3: &api.S3StorageConfiguration{BucketName: "bucket-a"}})
	if err != nil {
		t.Fatal(err)
	}
	f.storage = sc.StorageConfiguration.Arn
	return f
}

func (f *compFixture) newStage(t *testing.T) string {
	t.Helper()
	out, err := f.svc.CreateStage(context.Background(), &api.CreateStageRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return out.Stage.Arn
}

func (f *compFixture) advance(d time.Duration) {
	f.nowMu.Lock()
	*f.now = f.now.Add(d)
	f.nowMu.Unlock()
}

func (f *compFixture) channelDest() api.DestinationConfiguration {
	return api.DestinationConfiguration{Channel: &api.ChannelDestinationConfiguration{ChannelArn: testChannel}}
}

func (f *compFixture) s3Dest() api.DestinationConfiguration {
	return api.DestinationConfiguration{S3: &api.S3DestinationConfiguration{StorageConfigurationArn: f.storage, EncoderConfigurationArns: []string{f.enc}}}
}

func (f *compFixture) start(t *testing.T, in *api.StartCompositionRequest) *api.Composition {
	t.Helper()
	if in.StageArn == "" {
		in.StageArn = f.stage
	}
	out, err := f.svc.StartComposition(context.Background(), in)
	if err != nil {
		t.Fatalf("StartComposition: %v", err)
	}
	return out.Composition
}

func (f *compFixture) get(t *testing.T, arn string) *api.Composition {
	t.Helper()
	if err := f.svc.FlushCompositionReports(context.Background()); err != nil {
		t.Fatal(err)
	}
	out, err := f.svc.GetComposition(context.Background(), &api.GetCompositionRequest{Arn: arn})
	if err != nil {
		t.Fatalf("GetComposition: %v", err)
	}
	return out.Composition
}

func apiCode(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return fmt.Sprintf("not an API error: %v", err)
}

func TestStartCompositionResolvesTheSpec(t *testing.T) {
	f := newCompFixture(t)
	s3 := f.s3Dest()
	s3.S3.ThumbnailConfigurations = []api.CompositionThumbnailConfiguration{{Storage: []string{"LATEST"}}}
	c := f.start(t, &api.StartCompositionRequest{Destinations: []api.DestinationConfiguration{f.channelDest(), s3}, Tags: map[string]string{"k": "v"}})

	compID := mustParseARN(c.Arn).ID
	if !strings.HasPrefix(c.Arn, "arn:aws:ivs:us-east-1:123456789012:composition/") || len(compID) != 12 {
		t.Errorf("arn %s", c.Arn)
	}
	if c.State != "STARTING" || c.StageArn != f.stage || c.StartTime == nil || c.EndTime != nil || c.Tags["k"] != "v" {
		t.Errorf("composition %+v", c)
	}
	g := c.Layout.Grid
	if c.Layout.Pip != nil || g == nil || *g.GridGap != 2 || *g.VideoAspectRatio != "VIDEO" || *g.FeaturedParticipantAttribute != "" || *g.OmitStoppedVideo || *g.VideoFillMode != "" {
		t.Errorf("default layout %s", mustJSON(c.Layout))
	}
	if len(c.Destinations) != 2 {
		t.Fatalf("destinations %s", mustJSON(c.Destinations))
	}
	ch, st := c.Destinations[0], c.Destinations[1]
	for _, d := range c.Destinations {
		if len(d.Id) != 12 || d.State != "STARTING" || d.StartTime != nil || api.Val(d.Configuration.Name) != "" {
			t.Errorf("destination %s", mustJSON(d))
		}
	}
	if ch.Detail != nil || ch.Configuration.Channel.ChannelArn != testChannel || ch.Configuration.Channel.EncoderConfigurationArn != nil {
		t.Errorf("channel destination %s", mustJSON(ch))
	}
	wantPrefix := f.stageID + "/" + compID + "/" + st.Id + "/composite"
	if st.Detail == nil || st.Detail.S3 == nil || st.Detail.S3.RecordingPrefix != wantPrefix {
		t.Errorf("s3 detail %s, want recordingPrefix %s", mustJSON(st.Detail), wantPrefix)
	}
	sc := st.Configuration.S3
	if sc.StorageConfigurationArn != f.storage || !slices.Equal(sc.EncoderConfigurationArns, []string{f.enc}) ||
		api.Val(sc.RecordingConfiguration.Format) != "HLS" || *sc.RecordingConfiguration.HlsConfiguration.TargetSegmentDurationSeconds != 2 ||
		len(sc.ThumbnailConfigurations) != 1 || *sc.ThumbnailConfigurations[0].TargetIntervalSeconds != 60 || !slices.Equal(sc.ThumbnailConfigurations[0].Storage, []string{"LATEST"}) {
		t.Errorf("s3 configuration %s", mustJSON(sc))
	}

	specs := f.comp.specs()
	if len(specs) != 1 {
		t.Fatalf("%d starts", len(specs))
	}
	sp := specs[0]
	if sp.ARN != c.Arn || sp.ID != compID || sp.StageARN != f.stage || sp.StageID != f.stageID || !sp.StartedAt.Equal(*c.StartTime) {
		t.Errorf("spec %+v", sp)
	}
	if sp.Layout != layout.DefaultGrid() {
		t.Errorf("spec layout %+v", sp.Layout)
	}
	if len(sp.Destinations) != 2 || sp.Destinations[0].ID != ch.Id || sp.Destinations[1].ID != st.Id {
		t.Fatalf("spec destinations %+v", sp.Destinations)
	}
	want := composition.ChannelTarget{ChannelARN: testChannel, URL: testChannelURL, Encoder: composition.Encoder{Width: 1280, Height: 720, Framerate: 30, Bitrate: 2500000}}
	if got := sp.Destinations[0].Channel; got == nil || *got != want || sp.Destinations[0].S3 != nil {
		t.Errorf("channel target %+v, want %+v", got, want)
	}
	s3t := sp.Destinations[1].S3
	wantEnc := composition.Encoder{ARN: f.enc, Width: 1920, Height: 1080, Framerate: 60, Bitrate: 6000000}
	if s3t == nil || s3t.Bucket != "bucket-a" || s3t.StorageConfigurationARN != f.storage || s3t.Prefix != wantPrefix ||
		s3t.SegmentSeconds != 2 || !slices.Equal(s3t.Encoders, []composition.Encoder{wantEnc}) ||
		!slices.Equal(s3t.Thumbnails, []composition.Thumbnail{{IntervalSeconds: 60, Latest: true}}) {
		t.Errorf("s3 target %+v", s3t)
	}
	// What Get answers is what Start answered.
	if got := f.get(t, c.Arn); string(mustJSON(got)) != string(mustJSON(c)) {
		t.Errorf("GetComposition %s\nStartComposition %s", mustJSON(got), mustJSON(c))
	}
}

func TestStartCompositionLayoutsAndSettings(t *testing.T) {
	f := newCompFixture(t)
	s3 := f.s3Dest()
	s3.S3.RecordingConfiguration = &api.RecordingConfiguration{HlsConfiguration: &api.CompositionRecordingHlsConfiguration{TargetSegmentDurationSeconds: api.Ptr(int32(6))}}
	s3.S3.ThumbnailConfigurations = []api.CompositionThumbnailConfiguration{{TargetIntervalSeconds: api.Ptr(int32(10)), Storage: []string{"SEQUENTIAL", "LATEST"}}}
	enc := f.enc
	c := f.start(t, &api.StartCompositionRequest{
		Layout:       &api.LayoutConfiguration{Pip: &api.PipConfiguration{PipParticipantAttribute: api.Ptr("pip"), PipPosition: api.Ptr("TOP_LEFT"), PipWidth: api.Ptr(int32(320)), PipBehavior: api.Ptr("DYNAMIC")}},
		Destinations: []api.DestinationConfiguration{s3, {Name: api.Ptr("out"), Channel: &api.ChannelDestinationConfiguration{ChannelArn: testChannel, EncoderConfigurationArn: &enc}}},
	})
	p := c.Layout.Pip
	if c.Layout.Grid != nil || p == nil || *p.PipParticipantAttribute != "pip" || *p.PipPosition != "TOP_LEFT" || *p.PipWidth != 320 || p.PipHeight != nil ||
		*p.PipBehavior != "DYNAMIC" || *p.GridGap != 0 || *p.VideoFillMode != "COVER" || *p.PipOffset != 0 {
		t.Errorf("pip layout %s", mustJSON(c.Layout))
	}
	if api.Val(c.Destinations[1].Configuration.Name) != "out" {
		t.Errorf("name %s", mustJSON(c.Destinations[1]))
	}
	sp := f.comp.specs()[0]
	if sp.Layout.Kind != layout.KindPip || sp.Layout.PipWidth != 320 || sp.Layout.PipPosition != "TOP_LEFT" {
		t.Errorf("spec layout %+v", sp.Layout)
	}
	s3t := sp.Destinations[0].S3
	if s3t.SegmentSeconds != 6 || !slices.Equal(s3t.Thumbnails, []composition.Thumbnail{{IntervalSeconds: 10, Sequential: true, Latest: true}}) {
		t.Errorf("s3 target %+v", s3t)
	}
	if e := sp.Destinations[1].Channel.Encoder; e.Width != 1920 || e.ARN != f.enc || e.Name() != "1080p60-"+mustParseARN(f.enc).ID {
		t.Errorf("channel encoder %+v (%s)", e, e.Name())
	}
}

func TestStartCompositionErrors(t *testing.T) {
	f := newCompFixture(t)
	missingStage := "arn:aws:ivs:us-east-1:123456789012:stage/nopeNOPEnope"
	otherRegion := "arn:aws:ivs:eu-west-1:123456789012:stage/" + f.stageID
	otherAccount := "arn:aws:ivs:us-east-1:999999999999:stage/" + f.stageID
	missingEnc := "arn:aws:ivs:us-east-1:123456789012:encoder-configuration/nopeNOPEnope"
	missingStorage := "arn:aws:ivs:us-east-1:123456789012:storage-configuration/nopeNOPEnope"
	unmapped := "arn:aws:ivs:us-east-1:123456789012:channel/unmappedAAAA"
	foreignChannel := "arn:aws:ivs:us-east-1:999999999999:channel/chanAAAAAAAA"
	dests := func(d ...api.DestinationConfiguration) []api.DestinationConfiguration { return d }
	chanTo := func(arn string, enc *string) api.DestinationConfiguration {
		return api.DestinationConfiguration{Channel: &api.ChannelDestinationConfiguration{ChannelArn: arn, EncoderConfigurationArn: enc}}
	}
	s3With := func(storage, enc string, storageTypes ...string) api.DestinationConfiguration {
		d := api.DestinationConfiguration{S3: &api.S3DestinationConfiguration{StorageConfigurationArn: storage, EncoderConfigurationArns: []string{enc}}}
		if storageTypes != nil {
			d.S3.ThumbnailConfigurations = []api.CompositionThumbnailConfiguration{{Storage: storageTypes}}
		}
		return d
	}
	for _, tc := range []struct {
		name, code, contains string
		in                   api.StartCompositionRequest
	}{
		{"absent stage", api.ResourceNotFoundException, "stageArn", api.StartCompositionRequest{StageArn: missingStage, Destinations: dests(f.channelDest())}},
		{"stage of another region", api.ResourceNotFoundException, "stageArn", api.StartCompositionRequest{StageArn: otherRegion, Destinations: dests(f.channelDest())}},
		{"stage of another account", api.AccessDeniedException, "", api.StartCompositionRequest{StageArn: otherAccount, Destinations: dests(f.channelDest())}},
		{"absent channel encoder", api.ResourceNotFoundException, "destinations.1.member.channel.encoderConfigurationArn", api.StartCompositionRequest{Destinations: dests(chanTo(testChannel, &missingEnc))}},
		{"absent s3 encoder", api.ResourceNotFoundException, "destinations.1.member.s3.encoderConfigurationArns.1.member", api.StartCompositionRequest{Destinations: dests(s3With(f.storage, missingEnc))}},
		{"absent storage", api.ResourceNotFoundException, "destinations.2.member.s3.storageConfigurationArn", api.StartCompositionRequest{Destinations: dests(f.channelDest(), s3With(missingStorage, f.enc))}},
		{"unmapped channel", api.ValidationException, "destinations.1.member.channel.channelArn: channel " + unmapped + " is not mapped", api.StartCompositionRequest{Destinations: dests(chanTo(unmapped, nil))}},
		{"channel of another account", api.ValidationException, "destinations.1.member.channel.channelArn", api.StartCompositionRequest{Destinations: dests(chanTo(foreignChannel, nil))}},
		{"two channels", api.ValidationException, "at most one channel", api.StartCompositionRequest{Destinations: dests(f.channelDest(), chanTo(testChannel2, nil))}},
		{"two s3", api.ValidationException, "at most one s3", api.StartCompositionRequest{Destinations: dests(f.s3Dest(), f.s3Dest())}},
		{"neither channel nor s3", api.ValidationException, "exactly one of channel and s3", api.StartCompositionRequest{Destinations: dests(api.DestinationConfiguration{Name: api.Ptr("x")})}},
		{"both channel and s3", api.ValidationException, "exactly one of channel and s3", api.StartCompositionRequest{Destinations: dests(api.DestinationConfiguration{Channel: f.channelDest().Channel, S3: f.s3Dest().S3})}},
		{"grid and pip", api.ValidationException, "layout", api.StartCompositionRequest{Layout: &api.LayoutConfiguration{Grid: &api.GridConfiguration{}, Pip: &api.PipConfiguration{}}, Destinations: dests(f.channelDest())}},
		{"repeated thumbnail storage", api.ValidationException, "thumbnailConfigurations.1.member.storage", api.StartCompositionRequest{Destinations: dests(s3With(f.storage, f.enc, "LATEST", "LATEST"))}},
		{"reserved tag", api.ValidationException, "aws:", api.StartCompositionRequest{Tags: map[string]string{"aws:x": "y"}, Destinations: dests(f.channelDest())}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if in.StageArn == "" {
				in.StageArn = f.stage
			}
			_, err := f.svc.StartComposition(context.Background(), &in)
			if apiCode(err) != tc.code || !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("error %v, want %s containing %q", err, tc.code, tc.contains)
			}
		})
	}
	// Nothing was stored, nothing started.
	out, err := f.svc.ListCompositions(context.Background(), &api.ListCompositionsRequest{})
	if err != nil || len(out.Compositions) != 0 || len(f.comp.specs()) != 0 {
		t.Fatalf("after refusals: %d compositions, %d starts, %v", len(out.Compositions), len(f.comp.specs()), err)
	}
}

func TestStartCompositionIdempotencyToken(t *testing.T) {
	f := newCompFixture(t)
	ctx := context.Background()
	in := func() *api.StartCompositionRequest {
		return &api.StartCompositionRequest{StageArn: f.stage, IdempotencyToken: api.Ptr("tok-1"), Destinations: []api.DestinationConfiguration{f.s3Dest()}, Tags: map[string]string{"a": "b"}}
	}
	first := f.start(t, in())
	again := f.start(t, in())
	if again.Arn != first.Arn || again.Destinations[0].Id != first.Destinations[0].Id {
		t.Fatalf("a retry made another composition: %s, then %s", first.Arn, again.Arn)
	}
	if n := len(f.comp.specs()); n != 1 {
		t.Fatalf("%d starts for one token", n)
	}
	other := in()
	other.Tags = map[string]string{"a": "c"}
	if _, err := f.svc.StartComposition(ctx, other); apiCode(err) != api.ConflictException || !strings.Contains(err.Error(), "tok-1") {
		t.Fatalf("another request with the token: %v", err)
	}
	// Another token, or none, is another composition.
	second := in()
	second.IdempotencyToken = api.Ptr("tok-2")
	if c := f.start(t, second); c.Arn == first.Arn {
		t.Fatal("another token gave the same composition")
	}
	// Concurrent retries agree on one composition.
	var wg sync.WaitGroup
	arns := make([]string, 6)
	for i := range arns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := in()
			r.IdempotencyToken = api.Ptr("tok-3")
			out, err := f.svc.StartComposition(ctx, r)
			if err != nil {
				t.Error(err)
				return
			}
			arns[i] = out.Composition.Arn
		}()
	}
	wg.Wait()
	for _, a := range arns {
		if a != arns[0] {
			t.Fatalf("concurrent retries: %q", arns)
		}
	}
}

func TestCompositionQuotasAndBusyChannel(t *testing.T) {
	f := newCompFixture(t, func(c *Config) { c.Quotas.Compositions, c.Quotas.CompositionsPerStage = 3, 2 })
	ctx := context.Background()
	a := f.start(t, &api.StartCompositionRequest{Destinations: []api.DestinationConfiguration{f.channelDest()}})
	// The channel is busy while a composition broadcasts to it.
	if _, err := f.svc.StartComposition(ctx, &api.StartCompositionRequest{StageArn: f.stage, Destinations: []api.DestinationConfiguration{f.channelDest()}}); apiCode(err) != api.ConflictException {
		t.Fatalf("busy channel: %v", err)
	}
	f.start(t, &api.StartCompositionRequest{Destinations: []api.DestinationConfiguration{f.s3Dest()}})
	if _, err := f.svc.StartComposition(ctx, &api.StartCompositionRequest{StageArn: f.stage, Destinations: []api.DestinationConfiguration{f.s3Dest()}}); apiCode(err) != api.ServiceQuotaExceededException || !strings.Contains(err.Error(), "per stage") {
		t.Fatalf("third on one stage: %v", err)
	}
	other := f.newStage(t)
	f.start(t, &api.StartCompositionRequest{StageArn: other, Destinations: []api.DestinationConfiguration{f.s3Dest()}})
	if _, err := f.svc.StartComposition(ctx, &api.StartCompositionRequest{StageArn: f.newStage(t), Destinations: []api.DestinationConfiguration{f.s3Dest()}}); apiCode(err) != api.ServiceQuotaExceededException || !strings.Contains(err.Error(), "per account") {
		t.Fatalf("fourth in the account: %v", err)
	}
	// A stopped composition counts no more, and frees its channel.
	if _, err := f.svc.StopComposition(ctx, &api.StopCompositionRequest{Arn: a.Arn}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.FlushCompositionReports(ctx); err != nil {
		t.Fatal(err)
	}
	f.start(t, &api.StartCompositionRequest{Destinations: []api.DestinationConfiguration{f.channelDest()}})
}

type story []string // "event name/destination id"

func compositionStory(evs []*events.Event, t *testing.T, arn string) story {
	var out story
	for _, ev := range evs {
		if ev.DetailType != events.DetailTypeCompositionChange || len(ev.Resources) != 1 || ev.Resources[0] != arn {
			continue
		}
		d := detailOf(t, ev)
		s := d["event_name"].(string)
		if id, ok := d["id"].(string); ok {
			s += "/" + id
		}
		if r, ok := d["reason"].(string); ok {
			s += " (" + r + ")"
		}
		out = append(out, s)
	}
	return out
}

func waitStory(t *testing.T, f *compFixture, arn string, want story) {
	t.Helper()
	var got story
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if got = compositionStory(f.sink.got(), t, arn); len(got) >= len(want) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events of %s:\n got %q\nwant %q", arn, got, want)
	}
}

// The reports of a composition's life keep its record (states, times) and
// publish IVS's events in order: Session Start on ACTIVE, Destination Start
// per destination, Destination Reconnecting, and on StopComposition
// "Destination End" for each destination, then "Session End".
func TestCompositionReportsKeepTheRecordAndPublishEvents(t *testing.T) {
	f := newCompFixture(t)
	ctx := context.Background()
	c := f.start(t, &api.StartCompositionRequest{Destinations: []api.DestinationConfiguration{f.channelDest(), f.s3Dest()}})
	ch, s3 := c.Destinations[0].Id, c.Destinations[1].Id
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	f.svc.CompositionState(c.Arn, composition.StateActive, t0, "")
	f.svc.DestinationState(c.Arn, ch, composition.StateActive, t0.Add(time.Second), "")
	f.svc.DestinationState(c.Arn, s3, composition.StateActive, t0.Add(2*time.Second), "")
	// Repeated and unknown reports change nothing.
	f.svc.CompositionState(c.Arn, composition.StateActive, t0.Add(3*time.Second), "")
	f.svc.DestinationState(c.Arn, "nosuchdest", composition.StateFailed, t0, "x")
	g := f.get(t, c.Arn)
	if g.State != "ACTIVE" || g.Destinations[0].State != "ACTIVE" || !g.Destinations[0].StartTime.Equal(t0.Add(time.Second)) || !g.Destinations[1].StartTime.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("active: %s", mustJSON(g))
	}
	f.svc.DestinationState(c.Arn, ch, composition.StateReconnecting, t0.Add(4*time.Second), "connection refused")
	if g := f.get(t, c.Arn); g.Destinations[0].State != "RECONNECTING" {
		t.Fatalf("reconnecting: %s", mustJSON(g.Destinations[0]))
	}
	f.svc.DestinationState(c.Arn, ch, composition.StateActive, t0.Add(5*time.Second), "")
	g = f.get(t, c.Arn)
	if g.Destinations[0].State != "ACTIVE" || !g.Destinations[0].StartTime.Equal(t0.Add(time.Second)) {
		t.Fatalf("back from reconnecting: %s", mustJSON(g.Destinations[0]))
	}

	if _, err := f.svc.StopComposition(ctx, &api.StopCompositionRequest{Arn: c.Arn}); err != nil {
		t.Fatal(err)
	}
	g = f.get(t, c.Arn)
	if g.State != "STOPPED" || g.EndTime == nil {
		t.Fatalf("stopped: %s", mustJSON(g))
	}
	for _, d := range g.Destinations {
		if d.State != "STOPPED" || d.EndTime == nil {
			t.Fatalf("stopped destination: %s", mustJSON(d))
		}
	}
	// Stopping again is no error and no event; a late report changes
	// nothing.
	if _, err := f.svc.StopComposition(ctx, &api.StopCompositionRequest{Arn: c.Arn}); err != nil {
		t.Fatal(err)
	}
	f.svc.CompositionState(c.Arn, composition.StateFailed, time.Now(), "late")
	if g := f.get(t, c.Arn); g.State != "STOPPED" {
		t.Fatalf("after a late report: %s", g.State)
	}
	waitStory(t, f, c.Arn, story{
		"Session Start", "Destination Start/" + ch, "Destination Start/" + s3,
		"Destination Reconnecting/" + ch + " (connection refused)",
		"Destination End/" + ch, "Destination End/" + s3, "Session End",
	})
	// The events are the composition's, with its stage.
	for _, ev := range f.sink.got() {
		if ev.DetailType == events.DetailTypeCompositionChange && detailOf(t, ev)["stage_arn"] != f.stage {
			t.Errorf("event %s", ev.Detail)
		}
	}
	if slices.Index(f.comp.stopped, c.Arn) < 0 {
		t.Error("the compositor was not told to stop")
	}
}

// A destination that fails for good and then the composition: FAILED with
// Destination Failure and Session Failure, each with its reason; the
// destination that had not ended ends with the composition.
func TestCompositionFailureEvents(t *testing.T) {
	f := newCompFixture(t)
	c := f.start(t, &api.StartCompositionRequest{Destinations: []api.DestinationConfiguration{f.channelDest(), f.s3Dest()}})
	ch, s3 := c.Destinations[0].Id, c.Destinations[1].Id
	now := time.Now()
	f.svc.CompositionState(c.Arn, composition.StateActive, now, "")
	f.svc.DestinationState(c.Arn, ch, composition.StateFailed, now, "RTMP server unreachable")
	f.svc.CompositionState(c.Arn, composition.StateFailed, now, "every destination failed")
	g := f.get(t, c.Arn)
	if g.State != "FAILED" || g.Destinations[0].State != "FAILED" || g.Destinations[1].State != "FAILED" || g.EndTime == nil {
		t.Fatalf("failed: %s", mustJSON(g))
	}
	waitStory(t, f, c.Arn, story{
		"Session Start", "Destination Failure/" + ch + " (RTMP server unreachable)",
		"Destination Failure/" + s3 + " (every destination failed)", "Session Failure (every destination failed)",
	})
}

// A stopping composition or destination only ends: a late ACTIVE or
// RECONNECTING changes nothing and sends nothing.
func TestStoppingOnlyEnds(t *testing.T) {
	f := newCompFixture(t)
	c := f.start(t, &api.StartCompositionRequest{Destinations: []api.DestinationConfiguration{f.s3Dest()}})
	d := c.Destinations[0].Id
	now := time.Now()
	f.svc.CompositionState(c.Arn, composition.StateActive, now, "")
	f.svc.DestinationState(c.Arn, d, composition.StateActive, now, "")
	f.svc.CompositionState(c.Arn, composition.StateStopping, now, "")
	f.svc.DestinationState(c.Arn, d, composition.StateStopping, now, "")
	f.svc.CompositionState(c.Arn, composition.StateActive, now, "")
	f.svc.DestinationState(c.Arn, d, composition.StateReconnecting, now, "late")
	if g := f.get(t, c.Arn); g.State != "STOPPING" || g.Destinations[0].State != "STOPPING" {
		t.Fatalf("after late reports: %s", mustJSON(g))
	}
	f.svc.CompositionState(c.Arn, composition.StateStopped, now, "")
	waitStory(t, f, c.Arn, story{"Session Start", "Destination Start/" + d, "Destination End/" + d, "Session End"})
}

// The Manager may see a destination up before it calls the session
// ACTIVE: Session Start still comes first, then Destination Start.
func TestDestinationStartFollowsSessionStart(t *testing.T) {
	f := newCompFixture(t)
	c := f.start(t, &api.StartCompositionRequest{Destinations: []api.DestinationConfiguration{f.channelDest(), f.s3Dest()}})
	ch, s3 := c.Destinations[0].Id, c.Destinations[1].Id
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	f.svc.CompositionState(c.Arn, composition.StateStarting, t0, "")
	f.svc.DestinationState(c.Arn, ch, composition.StateStarting, t0, "")
	f.svc.DestinationState(c.Arn, ch, composition.StateActive, t0.Add(time.Second), "")
	f.svc.DestinationState(c.Arn, s3, composition.StateFailed, t0.Add(time.Second), "no bucket")
	f.svc.CompositionState(c.Arn, composition.StateActive, t0.Add(2*time.Second), "")
	g := f.get(t, c.Arn)
	if g.State != "ACTIVE" || g.Destinations[0].State != "ACTIVE" || !g.Destinations[0].StartTime.Equal(t0.Add(time.Second)) {
		t.Fatalf("composition %s", mustJSON(g))
	}
	f.svc.CompositionState(c.Arn, composition.StateStopped, t0.Add(3*time.Second), "")
	waitStory(t, f, c.Arn, story{"Destination Failure/" + s3 + " (no bucket)", "Session Start", "Destination Start/" + ch, "Destination End/" + ch, "Session End"})
}

// Without a compositor (the media side not connected), a composition stays
// STARTING and StopComposition ends its record with its events.
func TestStopCompositionWithoutCompositor(t *testing.T) {
	f := newCompFixture(t)
	f.svc.SetCompositor(nil)
	c := f.start(t, &api.StartCompositionRequest{Destinations: []api.DestinationConfiguration{f.s3Dest()}})
	if g := f.get(t, c.Arn); g.State != "STARTING" {
		t.Fatalf("state %s", g.State)
	}
	if _, err := f.svc.StopComposition(context.Background(), &api.StopCompositionRequest{Arn: c.Arn}); err != nil {
		t.Fatal(err)
	}
	if g := f.get(t, c.Arn); g.State != "STOPPED" || g.Destinations[0].State != "STOPPED" {
		t.Fatalf("after stop: %s", mustJSON(g))
	}
	waitStory(t, f, c.Arn, story{"Destination End/" + c.Destinations[0].Id, "Session End"})
}

func TestStartFailureMarksTheCompositionFailed(t *testing.T) {
	f := newCompFixture(t)
	f.comp.startErr = composition.ErrClosed
	_, err := f.svc.StartComposition(context.Background(), &api.StartCompositionRequest{StageArn: f.stage, Destinations: []api.DestinationConfiguration{f.s3Dest()}})
	if apiCode(err) != api.InternalServerException {
		t.Fatalf("error %v", err)
	}
	if err := f.svc.FlushCompositionReports(context.Background()); err != nil {
		t.Fatal(err)
	}
	out, _ := f.svc.ListCompositions(context.Background(), &api.ListCompositionsRequest{})
	if len(out.Compositions) != 1 || out.Compositions[0].State != "FAILED" {
		t.Fatalf("compositions %s", mustJSON(out))
	}
}

func TestDeleteStageStopsItsCompositions(t *testing.T) {
	f := newCompFixture(t)
	ctx := context.Background()
	running := f.start(t, &api.StartCompositionRequest{Destinations: []api.DestinationConfiguration{f.s3Dest()}})
	// One the compositor does not run (it lost it, or ended it an instant
	// ago) ends too.
	f.svc.SetCompositor(nil)
	orphan := f.start(t, &api.StartCompositionRequest{Destinations: []api.DestinationConfiguration{f.channelDest()}})
	f.svc.SetCompositor(f.comp)
	if _, err := f.svc.DeleteStage(ctx, &api.DeleteStageRequest{Arn: f.stage}); err != nil {
		t.Fatalf("DeleteStage with running compositions: %v", err)
	}
	for _, arn := range []string{running.Arn, orphan.Arn} {
		if g := f.get(t, arn); g.State != "STOPPED" || g.EndTime == nil {
			t.Errorf("%s after DeleteStage: %s", arn, mustJSON(g))
		}
	}
	if !slices.Contains(f.comp.stopped, running.Arn) {
		t.Error("the compositor was not told to stop")
	}
}

func TestFailNodeCompositions(t *testing.T) {
	f := newCompFixture(t)
	ctx := context.Background()
	mine := f.start(t, &api.StartCompositionRequest{Destinations: []api.DestinationConfiguration{f.s3Dest()}})
	f.svc.CompositionState(mine.Arn, composition.StateActive, time.Now(), "")
	ended := f.start(t, &api.StartCompositionRequest{Destinations: []api.DestinationConfiguration{f.s3Dest()}})
	if _, err := f.svc.StopComposition(ctx, &api.StopCompositionRequest{Arn: ended.Arn}); err != nil {
		t.Fatal(err)
	}
	// Another node's composition, in the same database.
	pcfg := f.svc.cfg
	pcfg.NodeID = "node-b"
	peer, err := New(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := peer.StartComposition(ctx, &api.StartCompositionRequest{StageArn: f.stage, Destinations: []api.DestinationConfiguration{f.channelDest()}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := f.svc.FailNodeCompositions(ctx, "node-a", "The server restarted.")
	if err != nil || n != 1 {
		t.Fatalf("FailNodeCompositions = %d, %v; want 1", n, err)
	}
	if g := f.get(t, mine.Arn); g.State != "FAILED" || g.Destinations[0].State != "FAILED" {
		t.Errorf("left over: %s", mustJSON(g))
	}
	if g := f.get(t, ended.Arn); g.State != "STOPPED" {
		t.Errorf("ended before: %s", g.State)
	}
	if g := f.get(t, theirs.Composition.Arn); g.State != "STARTING" {
		t.Errorf("another node's: %s", g.State)
	}
	// Stopping another node's composition here cannot stop its media.
	if _, err := f.svc.StopComposition(ctx, &api.StopCompositionRequest{Arn: theirs.Composition.Arn}); apiCode(err) != api.ConflictException {
		t.Errorf("stopping another node's composition: %v", err)
	}
	waitStory(t, f, mine.Arn, story{"Session Start", "Destination Failure/" + mine.Destinations[0].Id + " (The server restarted.)", "Session Failure (The server restarted.)"})
}

func TestSweepDeletesEndedCompositionsAfterFiveMinutes(t *testing.T) {
	f := newCompFixture(t)
	ctx := context.Background()
	live := f.start(t, &api.StartCompositionRequest{Destinations: []api.DestinationConfiguration{f.s3Dest()}})
	ended := f.start(t, &api.StartCompositionRequest{Destinations: []api.DestinationConfiguration{f.s3Dest()}})
	if _, err := f.svc.StopComposition(ctx, &api.StopCompositionRequest{Arn: ended.Arn}); err != nil {
		t.Fatal(err)
	}
	f.get(t, ended.Arn)
	f.advance(CompositionRetention - time.Second)
	if n, err := f.svc.SweepCompositions(ctx); err != nil || n != 0 {
		t.Fatalf("sweep before 5 minutes: %d, %v", n, err)
	}
	f.advance(2 * time.Second)
	f.advance(time.Hour) // a live composition is never swept, however old
	if n, err := f.svc.SweepCompositions(ctx); err != nil || n != 1 {
		t.Fatalf("sweep after 5 minutes: %d, %v", n, err)
	}
	if _, err := f.svc.GetComposition(ctx, &api.GetCompositionRequest{Arn: ended.Arn}); apiCode(err) != api.ResourceNotFoundException {
		t.Fatalf("swept composition: %v", err)
	}
	if f.get(t, live.Arn).State != "STARTING" {
		t.Fatal("the live composition changed")
	}
	// Its configurations are free again once it is gone; the live one
	// still holds them.
	if _, err := f.svc.DeleteStorageConfiguration(ctx, &api.DeleteStorageConfigurationRequest{Arn: f.storage}); apiCode(err) != api.ConflictException {
		t.Fatalf("deleting a storage configuration in use: %v", err)
	}
}

// An encoder configuration in use by a running composition cannot be
// deleted (ConflictException); once the composition ended it can.
func TestConfigurationsInUseByACompositionStay(t *testing.T) {
	f := newCompFixture(t)
	ctx := context.Background()
	c := f.start(t, &api.StartCompositionRequest{Destinations: []api.DestinationConfiguration{f.s3Dest()}})
	if _, err := f.svc.DeleteEncoderConfiguration(ctx, &api.DeleteEncoderConfigurationRequest{Arn: f.enc}); apiCode(err) != api.ConflictException {
		t.Fatalf("deleting an encoder configuration in use: %v", err)
	}
	if _, err := f.svc.StopComposition(ctx, &api.StopCompositionRequest{Arn: c.Arn}); err != nil {
		t.Fatal(err)
	}
	f.get(t, c.Arn)
	if _, err := f.svc.DeleteEncoderConfiguration(ctx, &api.DeleteEncoderConfigurationRequest{Arn: f.enc}); err != nil {
		t.Fatalf("deleting it after the composition stopped: %v", err)
	}
}

func TestListCompositionsFiltersAndPages(t *testing.T) {
	f := newCompFixture(t)
	ctx := context.Background()
	enc2, err := f.svc.CreateEncoderConfiguration(ctx, &api.CreateEncoderConfigurationRequest{})
	if err != nil {
		t.Fatal(err)
	}
	stage2 := f.newStage(t)
	s3 := func(enc string) []api.DestinationConfiguration {
		return []api.DestinationConfiguration{{S3: &api.S3DestinationConfiguration{StorageConfigurationArn: f.storage, EncoderConfigurationArns: []string{enc}}}}
	}
	var all []string
	for _, p := range []struct{ stage, enc string }{{f.stage, f.enc}, {stage2, f.enc}, {f.stage, enc2.EncoderConfiguration.Arn}, {stage2, enc2.EncoderConfiguration.Arn}, {f.stage, f.enc}} {
		all = append(all, f.start(t, &api.StartCompositionRequest{StageArn: p.stage, Destinations: s3(p.enc)}).Arn)
	}
	list := func(in api.ListCompositionsRequest) []string {
		t.Helper()
		var got []string
		for {
			out, err := f.svc.ListCompositions(ctx, &in)
			if err != nil {
				t.Fatal(err)
			}
			if in.MaxResults != nil && len(out.Compositions) > int(*in.MaxResults) {
				t.Fatalf("page of %d, max %d", len(out.Compositions), *in.MaxResults)
			}
			for _, c := range out.Compositions {
				got = append(got, c.Arn)
				if len(c.Destinations) != 1 || c.State != "STARTING" || c.StartTime == nil || c.Tags == nil {
					t.Errorf("summary %s", mustJSON(c))
				}
			}
			if out.NextToken == nil {
				return got
			}
			in.NextToken = out.NextToken
		}
	}
	pick := func(i ...int) []string {
		var out []string
		for _, j := range i {
			out = append(out, all[j])
		}
		return out
	}
	for _, tc := range []struct {
		name string
		in   api.ListCompositionsRequest
		want []string
	}{
		{"all", api.ListCompositionsRequest{}, all},
		{"pages of 2", api.ListCompositionsRequest{MaxResults: api.Ptr(int32(2))}, all},
		{"stage", api.ListCompositionsRequest{FilterByStageArn: &f.stage, MaxResults: api.Ptr(int32(1))}, pick(0, 2, 4)},
		{"encoder", api.ListCompositionsRequest{FilterByEncoderConfigurationArn: &f.enc}, pick(0, 1, 4)},
		{"both", api.ListCompositionsRequest{FilterByStageArn: &f.stage, FilterByEncoderConfigurationArn: &f.enc, MaxResults: api.Ptr(int32(1))}, pick(0, 4)},
		{"stage with none", api.ListCompositionsRequest{FilterByStageArn: api.Ptr(f.newStage(t))}, nil},
	} {
		if got := list(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	if _, err := f.svc.ListCompositions(ctx, &api.ListCompositionsRequest{NextToken: api.Ptr("bogus")}); apiCode(err) != api.ValidationException {
		t.Errorf("bad token: %v", err)
	}
}

func TestCompositionTagsAndOtherAccounts(t *testing.T) {
	f := newCompFixture(t)
	ctx := context.Background()
	c := f.start(t, &api.StartCompositionRequest{Destinations: []api.DestinationConfiguration{f.s3Dest()}, Tags: map[string]string{"a": "1"}})
	if _, err := f.svc.TagResource(ctx, &api.TagResourceRequest{ResourceArn: c.Arn, Tags: map[string]string{"b": "2"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := f.svc.ListTagsForResource(ctx, &api.ListTagsForResourceRequest{ResourceArn: c.Arn})
	if err != nil || len(tags.Tags) != 2 {
		t.Fatalf("tags %v, %v", tags, err)
	}
	// Reports keep the tags.
	f.svc.CompositionState(c.Arn, composition.StateActive, time.Now(), "")
	if g := f.get(t, c.Arn); g.Tags["b"] != "2" || g.State != "ACTIVE" {
		t.Fatalf("after a report: %s", mustJSON(g))
	}
	other := WithAccount(ctx, "999999999999")
	if _, err := f.svc.GetComposition(other, &api.GetCompositionRequest{Arn: c.Arn}); apiCode(err) != api.AccessDeniedException {
		t.Errorf("another account's Get: %v", err)
	}
	if _, err := f.svc.StopComposition(other, &api.StopCompositionRequest{Arn: c.Arn}); apiCode(err) != api.AccessDeniedException {
		t.Errorf("another account's Stop: %v", err)
	}
	if out, err := f.svc.ListCompositions(other, &api.ListCompositionsRequest{}); err != nil || len(out.Compositions) != 0 {
		t.Errorf("another account's List: %v, %v", out, err)
	}
	if _, err := f.svc.ListCompositions(other, &api.ListCompositionsRequest{FilterByStageArn: &f.stage}); apiCode(err) != api.AccessDeniedException {
		t.Errorf("another account's List filtered by this account's stage: %v", err)
	}
	if _, err := f.svc.ListCompositions(other, &api.ListCompositionsRequest{FilterByEncoderConfigurationArn: &f.enc}); apiCode(err) != api.AccessDeniedException {
		t.Errorf("another account's List filtered by this account's encoder configuration: %v", err)
	}
	if _, err := f.svc.GetComposition(ctx, &api.GetCompositionRequest{Arn: "arn:aws:ivs:us-east-1:123456789012:composition/nopeNOPEnope"}); apiCode(err) != api.ResourceNotFoundException {
		t.Errorf("absent composition: %v", err)
	}
	if _, err := f.svc.StopComposition(ctx, &api.StopCompositionRequest{Arn: "arn:aws:ivs:us-east-1:123456789012:composition/nopeNOPEnope"}); apiCode(err) != api.ResourceNotFoundException {
		t.Errorf("stopping an absent composition: %v", err)
	}
}

func TestCheckChannelURL(t *testing.T) {
	for _, ok := range []string{"rtmp://127.0.0.1:1935/live/key", "rtmps://a.example.net:443/app/sk_us-east-1_abc"} {
		if err := CheckChannelURL(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"http://x/app/key", "rtmp:///app/key", "rtmp://host/app", "rtmp://host/", "::"} {
		if err := CheckChannelURL(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

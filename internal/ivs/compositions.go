package ivs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/composition"
	"github.com/rostrum-dev/rostrum/internal/composition/layout"
	"github.com/rostrum-dev/rostrum/internal/store"
)

// Server-side composition, the control plane: StartComposition resolves a
// request into a composition.Spec and hands it to the Compositor (the
// composition Manager); what then happens comes back through the Reporter
// methods (composition_reports.go), which keep the record and publish the
// events. The record is the API's Composition document; it lives until
// ~5 minutes after it ends (SweepCompositions).

// Compositor runs compositions: the composition Manager implements it.
type Compositor interface {
	// Start starts a composition and returns at once; what happens is
	// reported through the service's Reporter methods.
	Start(spec composition.Spec) error
	// Stop stops a running composition (STOPPING, then STOPPED, reported);
	// composition.ErrNotFound when it does not run.
	Stop(arn string) error
}

// ClusterCompositor is the Compositor of a node in a cluster: a
// composition runs on the node that runs its stage, whichever node the API
// request reached.
type ClusterCompositor interface {
	Compositor
	// NodeFor is the node that runs the stage's compositions (the stage is
	// placed on one if no node runs it).
	NodeFor(ctx context.Context, stageARN string) (string, error)
	// StopOn stops a composition that runs on node.
	StopOn(ctx context.Context, node, arn string) error
}

// SetCompositor connects the media side of compositions. Until it is set,
// a composition stays STARTING until StopComposition, which ends its
// record.
func (s *Service) SetCompositor(c Compositor) {
	s.compMu.Lock()
	s.compositor = c
	s.compMu.Unlock()
}

func (s *Service) getCompositor() Compositor {
	s.compMu.Lock()
	defer s.compMu.Unlock()
	return s.compositor
}

// IVS's composition defaults (model and IVS-BEHAVIOUR.md §6.2).
const (
	defaultSegmentSeconds    = 2
	defaultThumbnailInterval = 60
	defaultEncoderWidth      = 1280
	defaultEncoderHeight     = 720
	defaultEncoderFramerate  = 30
	defaultEncoderBitrate    = 2500000
	// CompositionRetention is how long a STOPPED or FAILED composition
	// stays visible before it is deleted (IVS-BEHAVIOUR.md §6.1 item 6).
	CompositionRetention = 5 * time.Minute
)

// compositionDoc is what is stored of a composition: the API's document,
// and a digest of the request that created it, which tells a retry with
// the same idempotency token from a different request.
type compositionDoc struct {
	api.Composition
	Request string `json:"rostrumRequest,omitempty"`
}

func liveState(state string) bool {
	return state == composition.StateStarting || state == composition.StateActive || state == composition.StateStopping
}

func endedState(state string) bool {
	return state == composition.StateStopped || state == composition.StateFailed
}

var liveStates = []string{composition.StateStarting, composition.StateActive, composition.StateStopping}

// requestDigest identifies a StartComposition request, token aside: the
// same request (decoded into the same structure) gives the same digest.
func requestDigest(in *api.StartCompositionRequest) string {
	c := *in
	c.IdempotencyToken = nil
	sum := sha256.Sum256(mustJSON(&c))
	return hex.EncodeToString(sum[:])
}

func (s *Service) StartComposition(ctx context.Context, in *api.StartCompositionRequest) (*api.StartCompositionResponse, error) {
	if err := s.checkTags(in.Tags); err != nil {
		return nil, err
	}
	token := api.Val(in.IdempotencyToken)
	digest := requestDigest(in)
	if token != "" {
		if c, err := s.idempotentComposition(ctx, token, digest); c != nil || err != nil {
			return &api.StartCompositionResponse{Composition: c}, err
		}
	}
	stage, err := s.getRef(ctx, "stageArn", in.StageArn, kindStage, missingIsNotFound)
	if err != nil {
		return nil, err
	}
	stageID := mustParseARN(stage.ARN).ID
	cfg, err := layout.FromModel(in.Layout)
	if err != nil {
		return nil, api.Validationf("layout: %s.", strings.TrimPrefix(err.Error(), layout.ErrInvalidLayout.Error()+": "))
	}
	id := newID(12)
	now := s.nowMillis()
	doc := &compositionDoc{Request: digest, Composition: api.Composition{
		Arn:      s.arn(ctx, kindComposition, id),
		StageArn: stage.ARN,
		State:    composition.StateStarting,
		Layout:   layoutModel(cfg),
		Tags:     tagsOrEmpty(in.Tags),
		// IVS shows the start time from the first answer on.
		StartTime: &now,
	}}
	spec := composition.Spec{ARN: doc.Arn, ID: id, StageARN: stage.ARN, StageID: stageID, Layout: cfg, StartedAt: now}
	refs := []string{stage.ARN}
	var channels []string
	for i, dc := range in.Destinations {
		d, ref, err := s.resolveDestination(ctx, i, dc, stageID, id)
		if err != nil {
			return nil, err
		}
		doc.Destinations = append(doc.Destinations, d.api)
		spec.Destinations = append(spec.Destinations, d.spec)
		refs = append(refs, ref...)
		if d.spec.Channel != nil {
			channels = append(channels, d.spec.Channel.ChannelARN)
		}
	}
	var kinds []string
	for _, d := range spec.Destinations {
		k := "s3"
		if d.Channel != nil {
			k = "channel"
		}
		if slices.Contains(kinds, k) {
			return nil, api.Validationf("destinations: a composition has at most one %s destination (one channel and one s3).", k)
		}
		kinds = append(kinds, k)
	}

	node := s.cfg.NodeID
	if cc, ok := s.getCompositor().(ClusterCompositor); ok {
		if node, err = cc.NodeFor(ctx, stage.ARN); err != nil {
			return nil, s.internal(ctx, fmt.Errorf("placing composition %s: %w", doc.Arn, err))
		}
	}
	r := &store.Resource{
		ARN: doc.Arn, Kind: kindComposition, Owner: s.owner(ctx), State: doc.State, Refs: refs,
		Node: node, ClientToken: token, Doc: mustJSON(doc),
	}
	// The quota and channel checks and the create are one step on this
	// node: two requests cannot both take the last slot or one channel.
	s.compCreate.Lock()
	err = s.checkCompositionLimits(ctx, stage.ARN, channels)
	if err == nil {
		err = s.store.CreateResource(ctx, r, 0)
	}
	s.compCreate.Unlock()
	if errors.Is(err, store.ErrAlreadyExists) && token != "" {
		// The same token won a race with this request.
		if c, err := s.idempotentComposition(ctx, token, digest); c != nil || err != nil {
			return &api.StartCompositionResponse{Composition: c}, err
		}
	}
	if err != nil {
		return nil, s.storeErr(ctx, err, doc.Arn)
	}
	s.log.InfoContext(ctx, "composition starting", "composition", doc.Arn, "stage", stage.ARN, "destinations", len(spec.Destinations))
	if c := s.getCompositor(); c != nil {
		if err := c.Start(spec); err != nil {
			// It never ran: the record says so, with its events.
			s.failComposition(doc.Arn, fmt.Sprintf("The composition could not start: %v", err))
			s.log.ErrorContext(ctx, "starting a composition", "composition", doc.Arn, "err", err)
			return nil, api.Internalf("The composition could not be started.")
		}
	}
	return &api.StartCompositionResponse{Composition: s.compositionView(&doc.Composition)}, nil
}

// idempotentComposition answers a StartComposition whose token names an
// existing composition: the same request gets that composition, another
// request with the token is refused.
func (s *Service) idempotentComposition(ctx context.Context, token, digest string) (*api.Composition, error) {
	rows, err := s.store.ListResources(ctx, store.ResourceQuery{Kind: kindComposition, Owner: s.owner(ctx), ClientToken: token})
	if err != nil {
		return nil, s.internal(ctx, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	doc, err := decodeDoc[compositionDoc](rows[0])
	if err != nil {
		return nil, s.internal(ctx, err)
	}
	if doc.Request != digest {
		return nil, api.Conflictf("idempotencyToken %s was already used by composition %s with a different request; use a new token for a new composition.", token, doc.Arn)
	}
	return s.compositionView(&doc.Composition), nil
}

// checkCompositionLimits enforces IVS's quotas of compositions running at
// once (per account, per stage) and that a channel takes one broadcast: a
// channel must be offline to be a destination.
func (s *Service) checkCompositionLimits(ctx context.Context, stageARN string, channels []string) error {
	rows, err := s.store.ListResources(ctx, store.ResourceQuery{Kind: kindComposition, Owner: s.owner(ctx)})
	if err != nil {
		return err
	}
	account, stage := 0, 0
	for _, r := range rows {
		if !liveState(r.State) {
			continue
		}
		account++
		if slices.Contains(r.Refs, stageARN) {
			stage++
		}
		doc, err := decodeDoc[compositionDoc](r)
		if err != nil {
			return err
		}
		for _, d := range doc.Destinations {
			if d.Configuration != nil && d.Configuration.Channel != nil && slices.Contains(channels, d.Configuration.Channel.ChannelArn) && !endedState(d.State) {
				return api.Conflictf("Channel %s is already the destination of composition %s; a channel takes one broadcast at a time.", d.Configuration.Channel.ChannelArn, r.ARN)
			}
		}
	}
	q := s.cfg.Quotas
	if q.Compositions > 0 && account >= q.Compositions {
		return api.QuotaExceededf("Limit of %d compositions running at once per account in %s reached.", q.Compositions, s.region)
	}
	if q.CompositionsPerStage > 0 && stage >= q.CompositionsPerStage {
		return api.QuotaExceededf("Limit of %d compositions running at once per stage reached for stage %s.", q.CompositionsPerStage, stageARN)
	}
	return nil
}

// resolvedDestination is one destination as the API shows it and as the
// compositor runs it.
type resolvedDestination struct {
	api  api.Destination
	spec composition.Destination
}

// resolveDestination checks one DestinationConfiguration, fills in IVS's
// defaults and resolves its references; it returns the ARNs it refers to.
func (s *Service) resolveDestination(ctx context.Context, i int, dc api.DestinationConfiguration, stageID, compositionID string) (*resolvedDestination, []string, error) {
	field := fmt.Sprintf("destinations.%d.member", i+1)
	if (dc.Channel == nil) == (dc.S3 == nil) {
		return nil, nil, api.Validationf("%s: a destination sets exactly one of channel and s3.", field)
	}
	did := newID(12)
	conf := &api.DestinationConfiguration{Name: api.Ptr(api.Val(dc.Name))}
	out := &resolvedDestination{
		api:  api.Destination{Id: did, State: composition.StateStarting, Configuration: conf},
		spec: composition.Destination{ID: did},
	}
	var refs []string
	if ch := dc.Channel; ch != nil {
		target, err := s.channelTarget(ctx, field+".channel", ch)
		if err != nil {
			return nil, nil, err
		}
		c := *ch
		conf.Channel = &c
		out.spec.Channel = target
		if ch.EncoderConfigurationArn != nil {
			refs = append(refs, *ch.EncoderConfigurationArn)
		}
		return out, refs, nil
	}
	s3 := dc.S3
	sc, err := s.getRef(ctx, field+".s3.storageConfigurationArn", s3.StorageConfigurationArn, kindStorageConfiguration, missingIsNotFound)
	if err != nil {
		return nil, nil, err
	}
	scDoc, err := decodeDoc[api.StorageConfiguration](sc)
	if err != nil {
		return nil, nil, s.internal(ctx, err)
	}
	target := &composition.S3Target{
		StorageConfigurationARN: sc.ARN,
		Prefix:                  stageID + "/" + compositionID + "/" + did + "/composite",
		SegmentSeconds:          defaultSegmentSeconds,
	}
	if scDoc.S3 != nil {
		target.Bucket = scDoc.S3.BucketName
	}
	refs = append(refs, sc.ARN)
	for j, arn := range s3.EncoderConfigurationArns {
		enc, err := s.encoder(ctx, fmt.Sprintf("%s.s3.encoderConfigurationArns.%d.member", field, j+1), arn)
		if err != nil {
			return nil, nil, err
		}
		target.Encoders = append(target.Encoders, enc)
		refs = append(refs, arn)
	}
	rc := api.RecordingConfiguration{Format: api.Ptr(api.RecordingConfigurationFormatHls)}
	if s3.RecordingConfiguration != nil && s3.RecordingConfiguration.Format != nil {
		rc.Format = s3.RecordingConfiguration.Format
	}
	if h := s3.RecordingConfiguration; h != nil && h.HlsConfiguration != nil && h.HlsConfiguration.TargetSegmentDurationSeconds != nil {
		target.SegmentSeconds = int(*h.HlsConfiguration.TargetSegmentDurationSeconds)
	}
	rc.HlsConfiguration = &api.CompositionRecordingHlsConfiguration{TargetSegmentDurationSeconds: api.Ptr(int32(target.SegmentSeconds))}
	conf.S3 = &api.S3DestinationConfiguration{
		StorageConfigurationArn:  sc.ARN,
		EncoderConfigurationArns: slices.Clone(s3.EncoderConfigurationArns),
		RecordingConfiguration:   &rc,
	}
	for j, tc := range s3.ThumbnailConfigurations {
		th := composition.Thumbnail{IntervalSeconds: defaultThumbnailInterval}
		if tc.TargetIntervalSeconds != nil {
			th.IntervalSeconds = int(*tc.TargetIntervalSeconds)
		}
		storage := tc.Storage
		if len(storage) == 0 {
			storage = []string{api.ThumbnailStorageTypeSequential}
		}
		if hasDuplicates(storage) {
			return nil, nil, api.Validationf("%s.s3.thumbnailConfigurations.%d.member.storage: values must be unique.", field, j+1)
		}
		for _, st := range storage {
			th.Sequential = th.Sequential || st == api.ThumbnailStorageTypeSequential
			th.Latest = th.Latest || st == api.ThumbnailStorageTypeLatest
		}
		target.Thumbnails = append(target.Thumbnails, th)
		conf.S3.ThumbnailConfigurations = append(conf.S3.ThumbnailConfigurations, api.CompositionThumbnailConfiguration{
			TargetIntervalSeconds: api.Ptr(int32(th.IntervalSeconds)), Storage: slices.Clone(storage),
		})
	}
	out.api.Detail = &api.DestinationDetail{S3: &api.S3Detail{RecordingPrefix: target.Prefix}}
	out.spec.S3 = target
	return out, refs, nil
}

// channelTarget maps a channel destination to the RTMP(S) URL --channel
// gives its channel ARN: Rostrum has no IVS channels of its own.
func (s *Service) channelTarget(ctx context.Context, field string, ch *api.ChannelDestinationConfiguration) (*composition.ChannelTarget, error) {
	p, ok := parseARN(ch.ChannelArn)
	if !ok || p.Kind != "channel" {
		return nil, api.Validationf("%s.channelArn: %s is not a channel ARN.", field, ch.ChannelArn)
	}
	if p.Account != s.account(ctx) || p.Region != s.region {
		return nil, api.Validationf("%s.channelArn: channel %s must be in the stage's account and region (%s, %s).", field, ch.ChannelArn, s.account(ctx), s.region)
	}
	u, ok := s.cfg.Channels[ch.ChannelArn]
	if !ok {
		return nil, api.Validationf("%s.channelArn: channel %s is not mapped to an RTMP(S) URL on this server; start it with --channel %s=rtmps://host/app/streamkey.", field, ch.ChannelArn, ch.ChannelArn)
	}
	t := &composition.ChannelTarget{ChannelARN: ch.ChannelArn, URL: u}
	if ch.EncoderConfigurationArn == nil {
		t.Encoder = defaultEncoder()
		return t, nil
	}
	enc, err := s.encoder(ctx, field+".encoderConfigurationArn", *ch.EncoderConfigurationArn)
	if err != nil {
		return nil, err
	}
	t.Encoder = enc
	return t, nil
}

// CheckChannelURL checks a --channel URL: rtmp or rtmps, a host, and a
// path with the application and stream key.
func CheckChannelURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "rtmp" && u.Scheme != "rtmps" {
		return fmt.Errorf("the URL must be rtmp:// or rtmps://, not %q", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("the URL has no host")
	}
	if app, key, _ := strings.Cut(strings.Trim(u.Path, "/"), "/"); app == "" || key == "" {
		return errors.New("the URL must end in /<application>/<stream key>")
	}
	return nil
}

func defaultEncoder() composition.Encoder {
	return composition.Encoder{Width: defaultEncoderWidth, Height: defaultEncoderHeight, Framerate: defaultEncoderFramerate, Bitrate: defaultEncoderBitrate}
}

// encoder resolves an EncoderConfiguration with IVS's defaults.
func (s *Service) encoder(ctx context.Context, field, arn string) (composition.Encoder, error) {
	r, err := s.getRef(ctx, field, arn, kindEncoderConfiguration, missingIsNotFound)
	if err != nil {
		return composition.Encoder{}, err
	}
	doc, err := decodeDoc[api.EncoderConfiguration](r)
	if err != nil {
		return composition.Encoder{}, s.internal(ctx, err)
	}
	e := defaultEncoder()
	e.ARN = r.ARN
	if v := doc.Video; v != nil {
		if v.Width != nil {
			e.Width = int(*v.Width)
		}
		if v.Height != nil {
			e.Height = int(*v.Height)
		}
		if v.Framerate != nil {
			e.Framerate = float64(*v.Framerate)
		}
		if v.Bitrate != nil {
			e.Bitrate = int(*v.Bitrate)
		}
	}
	return e, nil
}

// layoutModel is the layout as IVS answers it: every member with its
// value, defaults included.
func layoutModel(c layout.Config) *api.LayoutConfiguration {
	if c.Kind == layout.KindPip {
		fill := c.VideoFillMode
		if fill == "" {
			fill = layout.FillModeCover // PiP's default for every tile
		}
		p := &api.PipConfiguration{
			FeaturedParticipantAttribute: api.Ptr(c.FeaturedParticipantAttribute),
			GridGap:                      api.Ptr(int32(c.GridGap)),
			OmitStoppedVideo:             api.Ptr(c.OmitStoppedVideo),
			ParticipantOrderAttribute:    api.Ptr(c.ParticipantOrderAttribute),
			PipBehavior:                  api.Ptr(c.PipBehavior),
			PipOffset:                    api.Ptr(int32(c.PipOffset)),
			PipParticipantAttribute:      api.Ptr(c.PipParticipantAttribute),
			PipPosition:                  api.Ptr(c.PipPosition),
			VideoFillMode:                api.Ptr(fill),
		}
		if c.PipWidth > 0 {
			p.PipWidth = api.Ptr(int32(c.PipWidth))
		}
		if c.PipHeight > 0 {
			p.PipHeight = api.Ptr(int32(c.PipHeight))
		}
		return &api.LayoutConfiguration{Pip: p}
	}
	// The grid's fill mode stays "" when not given, as IVS shows it: tiles
	// COVER, the featured participant CONTAIN.
	return &api.LayoutConfiguration{Grid: &api.GridConfiguration{
		FeaturedParticipantAttribute: api.Ptr(c.FeaturedParticipantAttribute),
		GridGap:                      api.Ptr(int32(c.GridGap)),
		OmitStoppedVideo:             api.Ptr(c.OmitStoppedVideo),
		ParticipantOrderAttribute:    api.Ptr(c.ParticipantOrderAttribute),
		VideoAspectRatio:             api.Ptr(c.VideoAspectRatio),
		VideoFillMode:                api.Ptr(c.VideoFillMode),
	}}
}

func mustParseARN(arn string) parsedARN {
	p, ok := parseARN(arn)
	if !ok {
		panic("ivs: stored ARN does not parse: " + arn)
	}
	return p
}

// compositionView is a stored composition as the API returns it.
func (s *Service) compositionView(c *api.Composition) *api.Composition {
	v := *c
	v.Tags = tagsOrEmpty(v.Tags)
	if v.Destinations == nil {
		v.Destinations = []api.Destination{}
	}
	return &v
}

func (s *Service) GetComposition(ctx context.Context, in *api.GetCompositionRequest) (*api.GetCompositionResponse, error) {
	r, err := s.get(ctx, in.Arn, kindComposition, foreignAccessDenied)
	if err != nil {
		return nil, err
	}
	doc, err := decodeDoc[compositionDoc](r)
	if err != nil {
		return nil, s.internal(ctx, err)
	}
	return &api.GetCompositionResponse{Composition: s.compositionView(&doc.Composition)}, nil
}

func (s *Service) ListCompositions(ctx context.Context, in *api.ListCompositionsRequest) (*api.ListCompositionsResponse, error) {
	after, err := parsePageToken("ListCompositions", in.NextToken)
	if err != nil {
		return nil, err
	}
	limit := pageSize(in.MaxResults, 100)
	stageARN, encARN := api.Val(in.FilterByStageArn), api.Val(in.FilterByEncoderConfigurationArn)
	// Filtering by another account's resource is refused, as every List
	// filter refuses it; one of one's own that does not exist (any more)
	// just matches nothing.
	for _, arn := range []string{stageARN, encARN} {
		if p, ok := parseARN(arn); ok && p.Account != s.account(ctx) {
			return nil, api.AccessDeniedf("User is not authorized to access resource %s.", arn)
		}
	}
	q := store.ResourceQuery{Kind: kindComposition, Owner: s.owner(ctx), Page: store.Page{After: after, Limit: limit}}
	// One filter is the store's; with both, the second is applied here, on
	// every row of the first (a stage has a handful of compositions), and
	// the page cut after it.
	switch {
	case stageARN != "" && encARN != "":
		q.Ref, q.Page.Limit = stageARN, 0
	case stageARN != "":
		q.Ref = stageARN
	case encARN != "":
		q.Ref = encARN
	}
	rows, err := s.store.ListResources(ctx, q)
	if err != nil {
		return nil, s.internal(ctx, err)
	}
	if stageARN != "" && encARN != "" {
		rows = slices.DeleteFunc(rows, func(r *store.Resource) bool { return !slices.Contains(r.Refs, encARN) })
	}
	rows, next := pageOf("ListCompositions", rows, limit, func(r *store.Resource) int64 { return r.Seq })
	out := &api.ListCompositionsResponse{Compositions: []api.CompositionSummary{}, NextToken: next}
	for _, r := range rows {
		doc, err := decodeDoc[compositionDoc](r)
		if err != nil {
			return nil, s.internal(ctx, err)
		}
		sum := api.CompositionSummary{
			Arn: doc.Arn, StageArn: doc.StageArn, State: doc.State, Tags: tagsOrEmpty(doc.Tags),
			StartTime: doc.StartTime, EndTime: doc.EndTime, Destinations: []api.DestinationSummary{},
		}
		for _, d := range doc.Destinations {
			sum.Destinations = append(sum.Destinations, api.DestinationSummary{Id: d.Id, State: d.State, StartTime: d.StartTime, EndTime: d.EndTime})
		}
		out.Compositions = append(out.Compositions, sum)
	}
	return out, nil
}

func (s *Service) StopComposition(ctx context.Context, in *api.StopCompositionRequest) (*api.StopCompositionResponse, error) {
	r, err := s.get(ctx, in.Arn, kindComposition, foreignAccessDenied)
	if err != nil {
		return nil, err
	}
	if !liveState(r.State) || r.State == composition.StateStopping {
		// Already ending or ended: nothing more to do.
		return &api.StopCompositionResponse{}, nil
	}
	if err := s.stopComposition(ctx, r); err != nil {
		return nil, err
	}
	return &api.StopCompositionResponse{}, nil
}

// stopComposition asks the compositor to stop a live composition; one it
// does not run (none is connected, or it ended on its own an instant ago)
// is ended here, through the same reports.
func (s *Service) stopComposition(ctx context.Context, r *store.Resource) error {
	c := s.getCompositor()
	if r.Node != s.cfg.NodeID {
		cc, ok := c.(ClusterCompositor)
		if !ok {
			return api.Conflictf("Composition %s runs on node %s, not on this one (%s); stop it there.", r.ARN, r.Node, s.cfg.NodeID)
		}
		// That node stops it and reports; a dead node's compositions are
		// failed when its heartbeat stops.
		if err := cc.StopOn(ctx, r.Node, r.ARN); err != nil {
			return s.internal(ctx, fmt.Errorf("stopping composition %s on node %s: %w", r.ARN, r.Node, err))
		}
		return nil
	}
	if c != nil {
		err := c.Stop(r.ARN)
		if err == nil {
			return nil
		}
		if !errors.Is(err, composition.ErrNotFound) {
			return s.internal(ctx, fmt.Errorf("stopping composition %s: %w", r.ARN, err))
		}
	}
	s.endComposition(r.ARN, composition.StateStopped, "")
	return nil
}

// stopStageCompositions ends the compositions of a deleted stage: the
// compositor stops those it runs (it may already be doing so, as it sees
// the stage go), the others end here. Each ends STOPPED.
func (s *Service) stopStageCompositions(ctx context.Context, stageARN string) {
	rows, err := s.store.ListResources(ctx, store.ResourceQuery{Kind: kindComposition, Owner: s.owner(ctx), Ref: stageARN})
	if err != nil {
		s.log.ErrorContext(ctx, "listing the compositions of a deleted stage", "stage", stageARN, "err", err)
		return
	}
	for _, r := range rows {
		if !liveState(r.State) {
			continue
		}
		if err := s.stopComposition(ctx, r); err != nil {
			s.log.WarnContext(ctx, "stopping a composition of a deleted stage", "composition", r.ARN, "err", err)
		}
	}
}

// FailNodeCompositions ends as FAILED the compositions a node left
// running: at start, this node's previous run's (its media died with it),
// or those of a peer that stopped beating. Each gets a Session Failure
// event. It returns how many it failed.
func (s *Service) FailNodeCompositions(ctx context.Context, nodeID, reason string) (int, error) {
	// What this node reported so far lands first.
	if err := s.FlushCompositionReports(ctx); err != nil {
		return 0, err
	}
	rows, err := s.store.ScanResources(ctx, store.ResourceScan{Kind: kindComposition, Node: nodeID, States: liveStates})
	if err != nil {
		return 0, err
	}
	for _, r := range rows {
		s.endComposition(r.ARN, composition.StateFailed, reason)
	}
	return len(rows), s.FlushCompositionReports(ctx)
}

// SweepCompositions deletes the compositions that ended more than
// CompositionRetention before now, as IVS does (~5 minutes); it returns
// how many it deleted.
func (s *Service) SweepCompositions(ctx context.Context) (int, error) {
	rows, err := s.store.ScanResources(ctx, store.ResourceScan{Kind: kindComposition, States: []string{composition.StateStopped, composition.StateFailed}})
	if err != nil {
		return 0, err
	}
	cut := s.now().Add(-CompositionRetention)
	n := 0
	for _, r := range rows {
		doc, err := decodeDoc[compositionDoc](r)
		if err != nil {
			s.log.ErrorContext(ctx, "sweeping compositions", "err", err)
			continue
		}
		if doc.EndTime != nil && doc.EndTime.After(cut) {
			continue
		}
		err = s.store.DeleteResource(ctx, r.ARN, func(cur *store.Resource, _ []*store.Resource) error {
			if !endedState(cur.State) {
				return errNotEnded
			}
			return nil
		})
		switch {
		case err == nil:
			n++
		case errors.Is(err, errNotEnded), errors.Is(err, store.ErrNotFound):
		default:
			return n, err
		}
	}
	return n, nil
}

var errNotEnded = errors.New("ivs: composition has not ended")

package loadtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"

	"github.com/rostrum-dev/rostrum/internal/rtclient"
)

// MediaOptions configure the media-plane load test: Stages stages, each with
// Publishers publishers and Subscribers subscribing participants, each of
// whom subscribes to every publisher of its stage (one peer connection per
// publisher, as IVS's clients do).
type MediaOptions struct {
	Stages      int // default 1
	Publishers  int // per stage, default 1
	Subscribers int // per stage, default 10

	// Video: Codec "vp8" (default) or "h264", VideoBitrate bits per second
	// (default 1,500,000), Width×Height (default 1280×720), FPS (default
	// 30), a keyframe every KeyframeInterval (default 2 s). NoVideo sends
	// none.
	Codec            string
	VideoBitrate     int
	Width, Height    int
	FPS              int
	KeyframeInterval time.Duration
	NoVideo          bool
	// Simulcast sends three layers: hi as above, mid at a third of the
	// bitrate and half the size, low at a tenth and a quarter. Subscribers
	// ask for the highest layer and the server's congestion control
	// decides.
	Simulcast bool
	// NoAudio sends no Opus (default: 64 kbit/s, 20 ms frames).
	NoAudio bool
	// VideoFile, if set, is a file of real encoded video (VP8 in IVF, or
	// H.264 Annex-B) that every publisher loops instead of synthetic
	// frames, packetized by pion into packets of at most 1,200 bytes and
	// paced at the file's frame rate, RTP timestamps running on across
	// loops. Codec, VideoBitrate, Width, Height and FPS are then the file's.
	// VideoFileAuto ("auto") encodes one first with ffmpeg (MakeVideoFile:
	// 10 s at Width×Height, FPS, VideoBitrate, a keyframe every
	// KeyframeInterval). The send → receive latency of its packets is
	// measured by payload (sentTimes). Not with Simulcast.
	VideoFile string
	// Pace, if above 0, paces every publisher's video as a browser does
	// (rtclient.Pacing): its packets leave at Pace times the video bitrate
	// (all layers' with Simulcast; the file's with VideoFile), up to
	// PaceBurst of that rate at once. libwebrtc's are 2.5 and 40 ms. 0
	// writes each frame's packets back to back.
	Pace      float64
	PaceBurst time.Duration

	// Duration is the measured time (default 30 s), after Warmup (default
	// 5 s) with every subscriber joined.
	Duration, Warmup time.Duration
	// JoinRate is how many subscriptions start per second (default 20);
	// JoinTimeout bounds each (default 20 s).
	JoinRate    float64
	JoinTimeout time.Duration
	// Events opens the stage events websocket for every participant too,
	// as IVS's clients do.
	Events bool
	// LoopbackOnly makes the clients gather loopback candidates only (set
	// for a server on this machine).
	LoopbackOnly bool
	// SeriesInterval is the length of one point of the report's time
	// series (default 5 s; 1 s for windows under a minute).
	SeriesInterval time.Duration

	// atMeasure, if set, runs (on its own goroutine) when the measured
	// window starts, with the joined subscribers in subscription order and
	// the publishers: a test's way to disturb a run through the real
	// server. The window lasts until it returns, Duration at least.
	atMeasure func(ctx context.Context, subs []*rtclient.Subscriber, pubs []*rtclient.Publisher)
}

func (o *MediaOptions) defaults() error {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Stages, 1)
	def(&o.Publishers, 1)
	def(&o.Subscribers, 10)
	def(&o.VideoBitrate, 1_500_000)
	def(&o.Width, 1280)
	def(&o.Height, 720)
	def(&o.FPS, 30)
	if o.Codec == "" {
		o.Codec = "vp8"
	}
	o.Codec = strings.ToLower(o.Codec)
	if o.Codec != "vp8" && o.Codec != "h264" {
		return fmt.Errorf("loadtest: codec %q: want vp8 or h264", o.Codec)
	}
	if o.KeyframeInterval <= 0 {
		o.KeyframeInterval = 2 * time.Second
	}
	if o.Duration <= 0 {
		o.Duration = 30 * time.Second
	}
	if o.Warmup < 0 {
		o.Warmup = 0
	} else if o.Warmup == 0 {
		o.Warmup = 5 * time.Second
	}
	if o.JoinRate <= 0 {
		o.JoinRate = 20
	}
	if o.JoinTimeout <= 0 {
		o.JoinTimeout = 20 * time.Second
	}
	if o.SeriesInterval <= 0 {
		o.SeriesInterval = 5 * time.Second
		if o.Duration < time.Minute {
			o.SeriesInterval = time.Second
		}
	}
	if o.NoVideo && o.NoAudio {
		return errors.New("loadtest: nothing to publish (no video and no audio)")
	}
	if o.VideoFile != "" && (o.Simulcast || o.NoVideo) {
		return errors.New("loadtest: a video file is sent as one layer: not with simulcast or without video")
	}
	if o.Pace < 0 || o.PaceBurst < 0 {
		return errors.New("loadtest: pacing: want a multiple of the video bitrate ≥ 0 and a burst ≥ 0")
	}
	if o.Publishers > 12 {
		return errors.New("loadtest: IVS allows at most 12 publishers per stage")
	}
	return nil
}

// videoBitrate is what one publisher's video sends, all layers together.
func (o *MediaOptions) videoBitrate() int {
	if o.Simulcast {
		return o.VideoBitrate + o.VideoBitrate/3 + o.VideoBitrate/10
	}
	return o.VideoBitrate
}

// pacing is every publisher's rtclient.Pacing (the zero value: unpaced).
func (m *mediaRun) pacing() rtclient.Pacing {
	o := m.o
	if o.Pace <= 0 || o.NoVideo {
		return rtclient.Pacing{}
	}
	b := o.videoBitrate()
	if m.video != nil {
		b = m.video.bitrate
	}
	return rtclient.Pacing{Rate: int(o.Pace * float64(b)), Burst: o.PaceBurst}
}

// videoSources makes one publisher's video: a source, or three simulcast
// layers (best first). Every frame carries its send time.
func (o *MediaOptions) videoSources() []rtclient.MediaSource {
	codec := rtclient.CodecVP8
	if o.Codec == "h264" {
		codec = rtclient.CodecH264
	}
	layer := func(bitrate, w, h int) rtclient.MediaSource {
		k := max(1, int(o.KeyframeInterval.Seconds()*float64(o.FPS)+0.5))
		// Keyframes are four times a delta frame; the average is the bitrate.
		avg := float64(bitrate) / 8 / float64(o.FPS)
		delta := max(64, int(avg*float64(k)/float64(k+3)))
		return rtclient.NewSyntheticSource(rtclient.SyntheticOptions{
			Codec: codec, FrameDuration: time.Second / time.Duration(o.FPS),
			FrameSize: delta, KeyframeSize: 4 * delta, KeyframeInterval: k,
			Width: w, Height: h, Timestamps: true,
		})
	}
	if !o.Simulcast {
		return []rtclient.MediaSource{layer(o.VideoBitrate, o.Width, o.Height)}
	}
	return []rtclient.MediaSource{
		layer(o.VideoBitrate, o.Width, o.Height),
		layer(o.VideoBitrate/3, o.Width/2, o.Height/2),
		layer(o.VideoBitrate/10, o.Width/4, o.Height/4),
	}
}

func audioSource() rtclient.MediaSource {
	return rtclient.NewSyntheticSource(rtclient.SyntheticOptions{Codec: rtclient.CodecOpus, FrameSize: 160, Timestamps: true})
}

// subscription is one subscriber's peer connection for one publisher.
type subscription struct {
	stage, participant, publisher int
	token                         string
	publisherID                   string

	sub       *rtclient.Subscriber
	started   time.Time // Subscribe called
	connected time.Time // Subscribe returned
	err       error

	jit   [2]jitter      // audio, video: written by the track goroutines only
	watch [2]streamWatch // audio, video: arrivals, for stalls

	before, after [2]rtclient.TrackStats // audio, video at the window's ends
}

// jitter is RFC 3550's interarrival jitter estimate, in RTP clock units.
type jitter struct {
	clock   float64
	started bool
	transit float64
	ts      rtclient.TimestampUnwrapper
	j       atomic.Uint64 // float64 bits of J
	val     float64
}

func (j *jitter) add(rtpTS uint32, at time.Time) {
	// Transit time in RTP units, modulo the unknown offset (which cancels).
	// The timestamp is unwrapped: across the 32-bit wrap the difference of
	// two transits stays right.
	arrival := float64(at.UnixNano()) * j.clock / 1e9
	transit := arrival - float64(j.ts.Unwrap(rtpTS))
	if j.started {
		d := transit - j.transit
		if d < 0 {
			d = -d
		}
		if d < j.clock*10 { // a timestamp jump (a server's layer switch gone wrong) is not jitter
			j.val += (d - j.val) / 16
			j.j.Store(math.Float64bits(j.val))
		}
	}
	j.started, j.transit = true, transit
}

func (j *jitter) ms() float64 {
	if j.clock == 0 {
		return 0
	}
	return math.Float64frombits(j.j.Load()) / j.clock * 1000
}

const (
	kAudio = 0
	kVideo = 1
)

func kindIndex(kind string) int {
	if kind == rtclient.KindAudio {
		return kAudio
	}
	return kVideo
}

// mediaRun is the state of one RunMedia.
type mediaRun struct {
	t     Target
	o     MediaOptions
	api   *ivsrealtime.Client
	log   func(string)
	stage []string // ARNs

	pubs   []*rtclient.Publisher
	events []*rtclient.Events
	// With a video file: the file, and each publisher's send times (in
	// m.pubs order) for the latency of real video.
	video *videoFile
	sent  []*sentTimes
	gates []*keyframeGate
	subs  []*subscription

	measuring atomic.Bool
	latency   histogram

	// certs is the one DTLS certificate of every client: real clients
	// each have theirs, made before they join; a generator making one per
	// connection would spend its CPU at join time on keys, not the server.
	certs []webrtc.Certificate
	// shared gives every client one view of the network interfaces
	// instead of each listing them (netlink) as it gathers candidates.
	shared func(*webrtc.SettingEngine)

	errMu  sync.Mutex
	errs   int
	kinds  []string
	evMu   sync.Mutex
	joinMu sync.Mutex
}

func (m *mediaRun) fail(what string, err error) {
	m.errMu.Lock()
	defer m.errMu.Unlock()
	m.errs++
	m.kinds = addKind(m.kinds, what+": "+errorKind(err))
}

// RunMedia runs the media-plane load test against t and returns its report.
// It stops by itself: joining is bounded by JoinTimeout per subscription,
// the measured run by Warmup + Duration, and everything it made (peer
// connections, stages) is closed or deleted before it returns.
func RunMedia(ctx context.Context, t Target, o MediaOptions, progress func(string)) (*MediaReport, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if progress == nil {
		progress = func(string) {}
	}
	total := o.Stages * o.Subscribers * o.Publishers
	limit := time.Duration(float64(total)/o.JoinRate*float64(time.Second)) + o.JoinTimeout + o.Warmup + o.Duration + 2*time.Minute
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	m := &mediaRun{t: t, o: o, log: progress, api: t.apiClient(16)}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	cert, err := webrtc.GenerateCertificate(key)
	if err != nil {
		return nil, err
	}
	m.certs = []webrtc.Certificate{*cert}
	ifaces, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	m.shared = func(se *webrtc.SettingEngine) { se.SetNet(ifaces) }
	if o.VideoFile != "" {
		v, err := openVideoFile(ctx, &m.o, progress)
		if err != nil {
			return nil, err
		}
		defer v.close()
		m.video = v
	}
	defer m.teardown(context.WithoutCancel(ctx))
	return m.run(ctx)
}

func (m *mediaRun) run(ctx context.Context) (*MediaReport, error) {
	o := m.o
	rep := newMediaReport(m.t, o)
	if v := m.video; v != nil {
		l := &rep.Load
		l.VideoFile, l.Codec, l.VideoBitrate, l.Width, l.Height, l.FPS = o.VideoFile, strings.TrimPrefix(strings.ToLower(v.src.Codec().MimeType), "video/"), v.bitrate, v.width, v.height, v.fps
		if o.VideoFile == VideoFileAuto {
			l.VideoFile = "auto (ffmpeg, libvpx)"
		}
	}

	if p := m.pacing(); p.Rate > 0 {
		rep.Load.Pacing = Pacing{Multiple: o.Pace, Rate: p.Rate, BurstMs: float64(o.PaceBurst) / 1e6}
	}

	// Stages and publishers.
	m.log(fmt.Sprintf("creating %d stage(s) with %d publisher(s) each", o.Stages, o.Publishers))
	for i := range o.Stages {
		out, err := m.api.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String(fmt.Sprintf("loadtest-%d", i))})
		if err != nil {
			return nil, fmt.Errorf("loadtest: CreateStage: %w", err)
		}
		m.stage = append(m.stage, *out.Stage.Arn)
	}
	pubIDs := make([][]string, o.Stages)
	for si := range o.Stages {
		for range o.Publishers {
			tok, err := m.token(ctx, si, types.ParticipantTokenCapabilityPublish, types.ParticipantTokenCapabilitySubscribe)
			if err != nil {
				return nil, err
			}
			if o.Events {
				m.connectEvents(ctx, tok)
			}
			popts := rtclient.PublishOptions{DisableFrameHashes: true, LoopbackOnly: o.LoopbackOnly, Certificates: m.certs, SettingEngine: m.shared, Pacing: m.pacing()}
			if !o.NoAudio {
				popts.Audio = audioSource()
			}
			switch {
			case m.video != nil:
				st := newSentTimes()
				m.sent = append(m.sent, st)
				g := &keyframeGate{MediaSource: m.video.src.Clone()}
				m.gates = append(m.gates, g)
				popts.Video = g
				popts.OnPacketSent = func(kind string, _ uint16, payload []byte, at time.Time) {
					if kind == rtclient.KindVideo {
						st.record(payload, at)
					}
				}
			case !o.NoVideo:
				if v := o.videoSources(); o.Simulcast {
					popts.Simulcast = v
				} else {
					popts.Video = v[0]
				}
			}
			pctx, pcancel := context.WithTimeout(ctx, o.JoinTimeout)
			p, err := rtclient.Publish(pctx, tok, popts)
			pcancel()
			if err != nil {
				return nil, fmt.Errorf("loadtest: publishing: %w", err)
			}
			m.pubs = append(m.pubs, p)
			pubIDs[si] = append(pubIDs[si], p.Token().ParticipantID)
		}
	}
	// Let the publishers' first frames reach the server before anyone asks
	// for them, and measure the server with publishers only.
	if err := sleep(ctx, time.Second); err != nil {
		return nil, err
	}
	base, baseErr := readProcIf(m.t.ServerPID)

	// Subscriber tokens, made before joining so that joins measure joins.
	m.log(fmt.Sprintf("making %d subscriber tokens", o.Stages*o.Subscribers))
	tokens := make([][]string, o.Stages)
	for si := range o.Stages {
		tokens[si] = make([]string, o.Subscribers)
	}
	if err := forEach(ctx, o.Stages*o.Subscribers, 8, func(i int) error {
		tok, err := m.token(ctx, i%o.Stages, types.ParticipantTokenCapabilitySubscribe)
		tokens[i%o.Stages][i/o.Stages] = tok
		return err
	}); err != nil {
		return nil, err
	}
	// Subscriber k of every stage joins before subscriber k+1 of any, and
	// subscribes to its stage's publishers one after the other.
	for k := range o.Subscribers {
		for si := range o.Stages {
			for pi := range o.Publishers {
				m.subs = append(m.subs, &subscription{stage: si, participant: k, publisher: pi, token: tokens[si][k], publisherID: pubIDs[si][pi]})
			}
		}
	}
	m.join(ctx)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// Warm up, then measure.
	m.log(fmt.Sprintf("warming up for %s", o.Warmup))
	if err := sleep(ctx, o.Warmup); err != nil {
		return nil, err
	}
	udp0, udpErr0 := readUDPCounters()
	metricsURL := strings.TrimRight(m.t.Endpoint, "/") + "/metrics"
	fwd0, fwdErr0 := scrapeForwardDelay(ctx, http.DefaultClient, metricsURL)
	var sock0 int64
	sockErr0 := errNoProc
	if m.t.ServerPID > 0 {
		sock0, sockErr0 = readSocketDrops(m.t.ServerPID)
	}
	var (
		start            time.Time
		rec              *recorder
		srv0, gen0       procSample
		srvErr0, genErr0 error
		machine          machineWatch
	)
	// The CPU figures are rates over the same window as the packets'.
	m.atWindowEdge(func() {
		srv0, srvErr0 = readProcIf(m.t.ServerPID)
		gen0, genErr0 = readProc(0)
		machine = startMachineWatch()
		m.snapshot(func(s *subscription) *[2]rtclient.TrackStats { return &s.before })
		start = time.Now()
		m.measuring.Store(true)
		rec = newRecorder(m, start, srv0, srvErr0 == nil)
	})
	m.log(fmt.Sprintf("measuring for %s", o.Duration))
	// A test's hook runs alongside; the window lasts until it returns too.
	var hookDone chan struct{}
	if o.atMeasure != nil {
		var live []*rtclient.Subscriber
		for _, s := range m.subs {
			if s.sub != nil {
				live = append(live, s.sub)
			}
		}
		hookDone = make(chan struct{})
		go func() {
			defer close(hookDone)
			o.atMeasure(ctx, live, m.pubs)
		}()
	}
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	end := time.NewTimer(o.Duration)
	endC := end.C
	nextPoint := start.Add(o.SeriesInterval)
	nextLog := start.Add(5 * time.Second)
wait:
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-endC:
			endC = nil
			if hookDone == nil {
				break wait
			}
		case <-hookDone:
			hookDone = nil
			if endC == nil {
				break wait
			}
		case now := <-tick.C:
			rec.sample(now)
			if !now.Before(nextPoint) {
				rec.closeBucket(now)
				nextPoint = nextPoint.Add(o.SeriesInterval)
			}
			if !now.Before(nextLog) {
				m.log(rec.progress(now))
				nextLog = nextLog.Add(5 * time.Second)
			}
		}
	}
	var (
		window           time.Duration
		srv1, gen1       procSample
		srvErr1, genErr1 error
	)
	m.atWindowEdge(func() {
		now := time.Now()
		rec.sample(now)
		rec.closeBucket(now)
		m.measuring.Store(false)
		window = now.Sub(start)
		m.snapshot(func(s *subscription) *[2]rtclient.TrackStats { return &s.after })
		srv1, srvErr1 = readProcIf(m.t.ServerPID)
		gen1, genErr1 = readProc(0)
		rep.MachineCores = machine.cores()
	})
	if udp1, udpErr1 := readUDPCounters(); udpErr0 == nil && udpErr1 == nil {
		rep.UDPDrops = UDPDrops{Measured: true, UDPCounters: UDPCounters{
			InErrors:     udp1.InErrors - udp0.InErrors,
			RcvbufErrors: udp1.RcvbufErrors - udp0.RcvbufErrors,
		}}
	}
	if fwdErr0 == nil {
		if fwd1, err := scrapeForwardDelay(context.WithoutCancel(ctx), http.DefaultClient, metricsURL); err == nil {
			n, ms := delayQuantiles(fwd0, fwd1, 0.5, 0.99, 0.999)
			rep.ForwardDelay = ForwardDelay{Measured: true, Packets: int64(n), P50Ms: ms[0], P99Ms: ms[1], P999Ms: ms[2]}
		}
	}
	if sockErr0 == nil {
		if sock1, err := readSocketDrops(m.t.ServerPID); err == nil {
			rep.UDPDrops.ServerMeasured, rep.UDPDrops.ServerSocketDrops = true, sock1-sock0
		}
	}

	m.fill(rep, window)
	rec.fill(rep)
	if m.t.ServerPID > 0 && srvErr0 == nil && srvErr1 == nil {
		sv := &rep.Server
		sv.Cores = cores(srv0, srv1)
		sv.RSSBytes, sv.PeakRSSBytes, sv.Threads = srv1.rss, srv1.hwm, srv1.threads
		if baseErr == nil {
			sv.RSSWithPublishersOnlyBytes = base.rss
			if rep.Joins.OK > 0 {
				sv.MemoryPerSubscriptionBytes = (srv1.rss - base.rss) / int64(rep.Joins.OK)
			}
		}
		if pkts := rep.Total.PacketsPerSecond * window.Seconds(); pkts > 0 {
			sv.CPUPerPacketMicros = float64(srv1.cpu-srv0.cpu) / 1e3 / pkts
			sv.PacketsPerSecondPerCore = rep.Total.PacketsPerSecond / max(sv.Cores, 1e-9)
		}
		sv.Measured = true
	}
	if genErr0 == nil && genErr1 == nil {
		rep.GeneratorCores = cores(gen0, gen1)
	}
	if rep.MachineCores > 0 {
		rep.OtherCores = max(0, rep.MachineCores-rep.GeneratorCores-rep.Server.Cores)
	}
	n, kinds := rep.Delivery.problems()
	m.errMu.Lock()
	m.errs += n
	for _, k := range kinds {
		m.kinds = addKind(m.kinds, k)
	}
	rep.Errors = ErrorStats{Count: m.errs, Kinds: append([]string(nil), m.kinds...)}
	m.errMu.Unlock()
	return rep, nil
}

func (m *mediaRun) token(ctx context.Context, stage int, caps ...types.ParticipantTokenCapability) (string, error) {
	out, err := m.api.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{
		StageArn: aws.String(m.stage[stage]), UserId: aws.String("loadtest"), Capabilities: caps,
	})
	if err != nil {
		return "", fmt.Errorf("loadtest: CreateParticipantToken: %w", err)
	}
	return *out.ParticipantToken.Token, nil
}

func (m *mediaRun) connectEvents(ctx context.Context, tok string) {
	ectx, cancel := context.WithTimeout(ctx, m.o.JoinTimeout)
	defer cancel()
	ev, err := rtclient.ConnectEvents(ectx, tok)
	if err != nil {
		m.fail("events", err)
		return
	}
	m.evMu.Lock()
	m.events = append(m.events, ev)
	m.evMu.Unlock()
}

// join starts every subscription at the join rate, at most 64 at once, and
// waits for all of them.
func (m *mediaRun) join(ctx context.Context) {
	o := m.o
	m.log(fmt.Sprintf("joining %d subscriptions at %g per second", len(m.subs), o.JoinRate))
	interval := time.Duration(float64(time.Second) / o.JoinRate)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	next := time.Now()
	joinedParticipant := map[[2]int]bool{}
	lastLog := time.Now()
	for i, s := range m.subs {
		if err := sleep(ctx, time.Until(next)); err != nil {
			break
		}
		next = next.Add(interval)
		if time.Since(lastLog) >= 5*time.Second {
			m.log(fmt.Sprintf("  %d of %d started", i, len(m.subs)))
			lastLog = time.Now()
		}
		events := o.Events && !joinedParticipant[[2]int{s.stage, s.participant}]
		joinedParticipant[[2]int{s.stage, s.participant}] = true
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if events {
				m.connectEvents(ctx, s.token)
			}
			m.subscribe(ctx, s)
		})
	}
	wg.Wait()
	ok := 0
	for _, s := range m.subs {
		if s.sub != nil {
			ok++
		}
	}
	m.log(fmt.Sprintf("joined %d of %d", ok, len(m.subs)))
}

func (m *mediaRun) subscribe(ctx context.Context, s *subscription) {
	o := m.o
	s.jit[kAudio].clock, s.jit[kVideo].clock = 48000, 90000
	var sent *sentTimes // the publisher's send times of real video
	if m.video != nil {
		sent = m.sent[m.pubIndex(s)]
	}
	opts := rtclient.SubscribeOptions{
		PublisherID: s.publisherID, NoFrames: true, LoopbackOnly: o.LoopbackOnly, Certificates: m.certs, SettingEngine: m.shared,
		OnPacket: func(kind string, pkt []byte, at time.Time) {
			if len(pkt) < 12 {
				return
			}
			k := kindIndex(kind)
			s.watch[k].packet(at.UnixNano())
			s.jit[k].add(binary.BigEndian.Uint32(pkt[4:8]), at)
			if !m.measuring.Load() {
				return
			}
			if k == kVideo && sent != nil {
				if payload, err := rtpPayload(pkt); err == nil {
					if t, ok := sent.lookup(payload); ok {
						m.latency.record(at.Sub(t))
					}
				}
				return
			}
			if _, sent, ok := rtclient.SyntheticPacketSent(pkt[12:]); ok {
				m.latency.record(time.Duration(at.UnixNano() - sent))
			}
		},
	}
	if o.Simulcast {
		opts.InitialLayer = "highest"
	}
	jctx, cancel := context.WithTimeout(ctx, o.JoinTimeout)
	defer cancel()
	s.started = time.Now()
	sub, err := rtclient.Subscribe(jctx, s.token, opts)
	var he *rtclient.HTTPError
	if errors.As(err, &he) && he.Code == 2004 {
		// The publisher's first packet has not reached the server yet.
		if sleep(jctx, 500*time.Millisecond) == nil {
			s.started = time.Now()
			sub, err = rtclient.Subscribe(jctx, s.token, opts)
		}
	}
	if err != nil {
		s.err = err
		m.fail("subscribe", err)
		return
	}
	s.connected = time.Now()
	m.joinMu.Lock()
	s.sub = sub
	m.joinMu.Unlock()
}

// atWindowEdge runs f, which counts what was sent and received at an end
// of the measured window. With a video file it runs on the first
// publisher's sending goroutine, just before its next keyframe goes out
// (up to two keyframe intervals later): a keyframe burst takes a good part
// of a second to reach hundreds of subscribers from a loaded server, and
// counted while one is on its way, its packets would be sent inside the
// window and received outside it, or the other way round, by a few percent.
// Before a keyframe, only the last small frame can be in flight.
func (m *mediaRun) atWindowEdge(f func()) {
	if m.video == nil || len(m.gates) == 0 || !m.gates[0].atNextKeyframe(f, 2*m.video.keyGap+time.Second) {
		f()
	}
}

// snapshot records every live subscription's counters.
func (m *mediaRun) snapshot(into func(*subscription) *[2]rtclient.TrackStats) {
	for _, s := range m.subs {
		if s.sub == nil {
			continue
		}
		st := into(s)
		st[kAudio] = s.sub.Stats(rtclient.KindAudio)
		st[kVideo] = s.sub.Stats(rtclient.KindVideo)
	}
}

// pubIndex is the index in m.pubs of the publisher s subscribes to.
func (m *mediaRun) pubIndex(s *subscription) int { return s.stage*m.o.Publishers + s.publisher }

// teardown closes every connection and deletes the stages, at most 32
// closes at a time.
func (m *mediaRun) teardown(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if len(m.subs) > 0 || len(m.pubs) > 0 {
		m.log("closing connections and deleting stages")
	}
	_ = forEach(ctx, len(m.subs), 32, func(i int) error {
		if s := m.subs[i]; s.sub != nil {
			c, cc := context.WithTimeout(ctx, 5*time.Second)
			_ = s.sub.Close(c)
			cc()
		}
		return nil
	})
	for _, p := range m.pubs {
		c, cc := context.WithTimeout(ctx, 5*time.Second)
		_ = p.Close(c)
		cc()
	}
	m.evMu.Lock()
	for _, e := range m.events {
		_ = e.Close()
	}
	m.evMu.Unlock()
	deleteStages(ctx, m.api, m.stage)
}

// forEach runs f(0..n-1) with at most conc at once; the first error stops
// new calls and is returned.
func forEach(ctx context.Context, n, conc int, f func(int) error) error {
	sem := make(chan struct{}, conc)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for i := range n {
		mu.Lock()
		stop := first != nil
		mu.Unlock()
		if stop || ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// isLoopback reports whether an endpoint URL names this machine.
func isLoopback(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	h := u.Hostname()
	return h == "localhost" || strings.HasPrefix(h, "127.") || h == "::1"
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"
	protoLogger "github.com/livekit/protocol/logger"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
)

// joinTimeout bounds one subscriber's join.
const joinTimeout = 20 * time.Second

// measure runs one measurement. A report comes back whenever the window was
// measured, with the error of anything that went wrong after.
func measure(ctx context.Context, o options, progress func(string)) (*report, error) {
	if !o.verbose {
		lksdk.SetLogger(protoLogger.GetDiscardLogger())
	}
	file, err := readIVF(o.videoFile)
	if err != nil {
		return nil, err
	}
	var logTo io.Writer = io.Discard
	if o.serverLog != "" {
		f, err := os.OpenFile(o.serverLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		logTo = f
	}
	progress("starting " + o.server)
	lk, err := startLiveKit(ctx, o.server, o.serverCPUs, logTo)
	if err != nil {
		return nil, err
	}
	defer lk.stop()
	pinned := "not pinned"
	if o.serverCPUs != "" {
		pinned = "pinned to CPU " + o.serverCPUs
	}
	pcs := "two peer connections per subscriber (the SDK's default)"
	if o.singlePC {
		pcs = "one peer connection per subscriber"
	}
	rep := &report{
		Mode:              "livekit",
		ServerDescription: fmt.Sprintf("livekit-server (%s), pid %d, %s", o.server, lk.pid(), pinned),
		Generator:         "livekit-bench, " + generatorDescription() + "; " + pcs,
		Load: load{
			Stages: 1, PublishersPerStage: 1, SubscribersPerStage: o.subscribers, Subscriptions: o.subscribers,
			VideoFile: o.videoFile, Codec: "vp8", VideoBitrate: int(file.bitrate()), Width: file.width, Height: file.height,
			FPS: int(file.fps() + 0.5), DurationSec: o.duration.Seconds(), WarmupSec: o.warmup.Seconds(), JoinRate: o.joinRate,
		},
	}
	room := "bench-" + randomHex(4)
	connect := func(identity string, cb *lksdk.RoomCallback, opts ...lksdk.ConnectOption) (*lksdk.Room, error) {
		return lksdk.ConnectToRoom(lk.url, lksdk.ConnectInfo{APIKey: lk.key, APISecret: lk.secret, RoomName: room, ParticipantIdentity: identity},
			cb, append([]lksdk.ConnectOption{lksdk.WithConnectTimeout(joinTimeout)}, opts...)...)
	}
	var (
		roomsMu sync.Mutex
		rooms   []*lksdk.Room
	)
	defer func() {
		// Leave before the server stops, at most 32 at a time.
		progress("disconnecting")
		roomsMu.Lock()
		defer roomsMu.Unlock()
		sem := make(chan struct{}, 32)
		var wg sync.WaitGroup
		for _, r := range rooms {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				r.Disconnect()
			})
		}
		wg.Wait()
	}()

	// The publisher.
	progress(fmt.Sprintf("publishing %s (%d×%d, %.0f fps, %.2f Mbit/s, %d frames)", o.videoFile, file.width, file.height, file.fps(), file.bitrate()/1e6, len(file.frames)))
	pubRoom, err := connect("publisher", lksdk.NewRoomCallback(), lksdk.WithAutoSubscribe(false))
	if err != nil {
		return nil, fmt.Errorf("publisher joining: %w", err)
	}
	roomsMu.Lock()
	rooms = append(rooms, pubRoom)
	roomsMu.Unlock()
	track, err := newVP8Track()
	if err != nil {
		return nil, err
	}
	if _, err := pubRoom.LocalParticipant.PublishTrack(track, &lksdk.TrackPublicationOptions{
		Name: "video", Source: livekit.TrackSource_CAMERA, VideoWidth: file.width, VideoHeight: file.height,
	}); err != nil {
		return nil, fmt.Errorf("publishing: %w", err)
	}
	snd := &sender{file: file, track: track}
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	go snd.run(sctx)
	if err := sleep(ctx, time.Second); err != nil {
		return nil, err
	}
	base, baseErr := readProc(lk.pid())

	// The subscribers.
	progress(fmt.Sprintf("joining %d subscribers at %g per second", o.subscribers, o.joinRate))
	subs := make([]*subStats, o.subscribers)
	var (
		joinWG   sync.WaitGroup
		failMu   sync.Mutex
		failures []string
	)
	sem := make(chan struct{}, 64)
	interval := time.Duration(float64(time.Second) / o.joinRate)
	next := time.Now()
	for i := range subs {
		if err := sleep(ctx, time.Until(next)); err != nil {
			break
		}
		next = next.Add(interval)
		st := &subStats{started: time.Now()}
		subs[i] = st
		sem <- struct{}{}
		joinWG.Go(func() {
			defer func() { <-sem }()
			cb := lksdk.NewRoomCallback()
			cb.OnTrackSubscribed = func(tr *webrtc.TrackRemote, _ *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) {
				if tr.Kind() == webrtc.RTPCodecTypeVideo {
					go st.read(tr)
				}
			}
			var opts []lksdk.ConnectOption
			if o.singlePC {
				opts = append(opts, lksdk.WithSinglePeerConnection())
			}
			r, err := connect(fmt.Sprintf("subscriber-%d", i), cb, opts...)
			if err != nil {
				failMu.Lock()
				failures = append(failures, err.Error())
				failMu.Unlock()
				return
			}
			st.mu.Lock()
			st.joined = time.Now()
			st.mu.Unlock()
			roomsMu.Lock()
			rooms = append(rooms, r)
			roomsMu.Unlock()
		})
	}
	joinWG.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rep.Joins.Attempted, rep.Joins.Failed = o.subscribers, len(failures)
	rep.Joins.OK = o.subscribers - len(failures)
	progress(fmt.Sprintf("joined %d of %d", rep.Joins.OK, o.subscribers))

	progress(fmt.Sprintf("warming up for %s", o.warmup))
	if err := sleep(ctx, o.warmup); err != nil {
		return nil, err
	}
	// The window.
	snap := func() []subSnapshot {
		out := make([]subSnapshot, len(subs))
		for i, s := range subs {
			if s != nil {
				out[i] = s.snapshot()
			}
		}
		return out
	}
	var (
		sent0, sent1  int64
		before, after []subSnapshot
		t0, t1        time.Time
	)
	count := func(sent *int64, subs *[]subSnapshot, at *time.Time) func() {
		return func() { *sent, *subs, *at = snd.packets.Load(), snap(), time.Now() }
	}
	keyGap := 2 * file.keyframeInterval()
	if !snd.atNextKeyframe(count(&sent0, &before, &t0), keyGap) {
		count(&sent0, &before, &t0)()
	}
	srv0, srvErr0 := readProc(lk.pid())
	self0, selfErr0 := readProc(os.Getpid())
	mach0, machErr0 := machineBusy()
	udp0, udpErr0 := readUDP()
	progress(fmt.Sprintf("measuring for %s (from keyframe to keyframe)", o.duration))
	if err := sleep(ctx, o.duration); err != nil {
		return nil, err
	}
	if !snd.atNextKeyframe(count(&sent1, &after, &t1), keyGap) {
		count(&sent1, &after, &t1)()
	}
	srv1, srvErr1 := readProc(lk.pid())
	self1, selfErr1 := readProc(os.Getpid())
	mach1, machErr1 := machineBusy()
	udp1, udpErr1 := readUDP()
	window := t1.Sub(t0)
	scancel()

	// The figures.
	sec := window.Seconds()
	rep.WindowSec = sec
	sent := sent1 - sent0
	var received, media, bytes, gaps, late, dups, padding int64
	var worst = -1.0
	var firsts []time.Duration
	for i, s := range subs {
		if s == nil {
			continue
		}
		a, b := before[i], after[i]
		s.mu.Lock()
		if !s.first.IsZero() {
			firsts = append(firsts, s.first.Sub(s.started))
		}
		s.mu.Unlock()
		if b.packets == 0 {
			rep.Joins.NoMedia++
		}
		m := b.packets - a.packets
		d := b.dups - a.dups
		media += m
		bytes += b.bytes - a.bytes
		received += m - d
		gaps += b.gaps - a.gaps
		late += b.late - a.late
		dups += d
		padding += b.padding - a.padding
		if sent > 0 {
			if sh := float64(m-d) / float64(sent); worst < 0 || sh < worst {
				worst = sh
			}
		}
	}
	rep.Joins.ToFirstPacket = percentilesOf(firsts)
	streams := int64(rep.Joins.OK)
	expected := sent * streams
	rep.Video = rates{PacketsPerSecond: float64(media) / sec / float64(max(streams, 1)), BitsPerSecond: float64(bytes) * 8 / sec / float64(max(streams, 1))}
	rep.Total = rates{PacketsPerSecond: float64(media) / sec, BitsPerSecond: float64(bytes) * 8 / sec}
	rep.Delivery = delivery{Expected: expected, Received: received, VideoShare: -1, WorstShare: worst,
		ExpectedBasis: "every packet the publisher sent in the window, times the subscribers"}
	if expected > 0 {
		rep.Delivery.VideoShare = float64(received) / float64(expected)
		rep.Loss = loss{Expected: expected, RawGaps: gaps, RawGapPercent: 100 * float64(gaps) / float64(expected),
			Repaired: late, Duplicates: dups, DuplicatePercent: 100 * float64(dups) / float64(expected), PaddingPackets: padding}
	}
	if udpErr0 == nil && udpErr1 == nil {
		rep.UDPDrops = udpDrops{Measured: true, InErrors: udp1.InErrors - udp0.InErrors, RcvbufErrors: udp1.RcvbufErrors - udp0.RcvbufErrors}
	}
	if srvErr0 == nil && srvErr1 == nil {
		sv := &rep.Server
		sv.Measured = true
		sv.Cores = (srv1.cpu - srv0.cpu).Seconds() / sec
		sv.RSSBytes, sv.PeakRSSBytes = srv1.rss, srv1.hwm
		if media > 0 {
			sv.CPUPerPacketMicros = float64((srv1.cpu - srv0.cpu).Microseconds()) / float64(media)
			sv.PacketsPerSecondPerCore = rep.Total.PacketsPerSecond / max(sv.Cores, 1e-9)
		}
		if baseErr == nil {
			sv.RSSWithPublishersOnlyBytes = base.rss
			if streams > 0 {
				sv.MemoryPerSubscriptionBytes = (srv1.rss - base.rss) / streams
			}
		}
	}
	if selfErr0 == nil && selfErr1 == nil {
		rep.GeneratorCores = (self1.cpu - self0.cpu).Seconds() / sec
	}
	if machErr0 == nil && machErr1 == nil {
		rep.MachineCores = (mach1 - mach0).Seconds() / sec
		rep.OtherCores = max(0, rep.MachineCores-rep.GeneratorCores-rep.Server.Cores)
	}
	if snd.errs.Load() > 0 {
		failures = append(failures, fmt.Sprintf("%d packets the publisher's track refused", snd.errs.Load()))
	}
	if rep.Joins.NoMedia > 0 {
		failures = append(failures, fmt.Sprintf("%d subscribers received no video", rep.Joins.NoMedia))
	}
	slices.Sort(failures)
	rep.Errors = errorStats{Count: len(failures), Kinds: slices.Compact(failures)}
	if len(rep.Errors.Kinds) > 5 {
		rep.Errors.Kinds = rep.Errors.Kinds[:5]
	}
	select {
	case <-lk.done:
		return rep, errors.New("livekit-server exited during the run")
	default:
	}
	return rep, nil
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

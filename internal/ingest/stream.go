package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtp"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/ivs"
	"github.com/rostrum-dev/rostrum/internal/sfu"
	"github.com/rostrum-dev/rostrum/internal/stage"
)

// Timings of a stream.
const (
	// handshakeTimeout bounds the RTMP handshake and commands up to
	// publish, and the wait for the stream's first media.
	handshakeTimeout = 10 * time.Second
	// readTimeout: an encoder that sends nothing for this long is gone.
	readTimeout = 10 * time.Second
	// probeWindow is how much of the stream (by its timestamps) may go by
	// before its tracks are settled, when one of the two sequence headers
	// never comes (an audio-only or video-only encoder).
	probeWindow = time.Second
	// maxDuration is IVS's longest RTMP stream (STREAM_DURATION_EXCEEDED).
	maxDuration = 24 * time.Hour
)

// maxPending bounds the media kept while the tracks are probed: at most
// probeWindow of it is wanted, so this many messages is a broken stream.
const (
	maxPending      = 300
	maxPendingBytes = 16 << 20
)

// maxVideoBitrate is IVS's ingest limit (8.5 Mbps), measured as the
// average over bitrateWindow of the stream's own time, so that keyframes
// and short peaks above it pass.
const (
	maxVideoBitrate = 8_500_000
	bitrateWindow   = 4 * time.Second
)

// refusal is a reason the stream is turned away, with the participant
// event's error code IVS reports it by.
type refusal struct {
	code string
	err  error
}

func (r *refusal) Error() string { return r.code + ": " + r.err.Error() }

func refuse(code string, format string, args ...any) *refusal {
	return &refusal{code: code, err: fmt.Errorf(format, args...)}
}

// stream is one encoder's push.
type stream struct {
	s      *Server
	conn   net.Conn
	sc     *gortmplib.ServerConn
	secure bool
	log    *slog.Logger
	target *ivs.IngestTarget
	id     *stage.Identity
	client stage.ClientInfo

	// Settled by probe.
	videoConf *message.Video // the AVC sequence header, nil: no video
	audioConf *mpeg4audio.AudioSpecificConfig
	pending   []message.Message // media read while probing
	video     int               // track index of video in the publication, -1: none
	audio     int

	pub   *stage.LocalPublication
	trans atomic.Pointer[transcoder]
	ended chan error // the publication ended (OnEnded), buffered 1

	// Video state, on the read loop only. Media time is the stream's own
	// (RTMP timestamps); RTP times are base + media time on both tracks'
	// clocks, which keeps audio and video lined up.
	params    h264Params
	vSeq      uint16
	vBase     uint32 // RTP time of media time 0
	started   bool
	wallStart time.Time
	winStart  time.Duration
	winBytes  int

	// Audio state, on the transcoder's reader goroutine.
	aSeq     uint16
	aBase    uint32
	aFirst   atomic.Int64 // media time (ns) of the first AAC frame, -1 until then
	aPackets uint32
	aShift   atomic.Uint32 // RTP ticks the encoder's audio gaps add (see audioClock)
	aClock   audioClock    // the read loop's

	keyframeAsks atomic.Int64
	endOnce      sync.Once
}

func (s *Server) handle(conn net.Conn, secure bool) {
	st := &stream{s: s, conn: conn, secure: secure, video: -1, audio: -1, ended: make(chan error, 1),
		log: s.log.With("remote", conn.RemoteAddr().String(), "protocol", protocol(secure))}
	st.aFirst.Store(-1)
	st.vSeq, st.aSeq = uint16(rand.Uint32()), uint16(rand.Uint32())
	st.vBase, st.aBase = rand.Uint32(), rand.Uint32()
	st.client = stage.ClientInfo{Protocol: protocol(secure)}
	defer func() {
		// A bug in the RTMP stack or here must not take the server down:
		// the stream's deferred cleanup (run's) has run by now.
		if v := recover(); v != nil {
			st.log.Error("RTMP connection failed on a bug", "panic", v, "stack", string(debug.Stack()))
		}
	}()
	err := st.run()
	var r *refusal
	switch {
	case errors.As(err, &r):
		st.log.Info("RTMP stream refused", "code", r.code, "reason", r.err.Error())
	case errors.Is(err, errBeforePublish):
		// Port scanners and health checks: not worth more than debug.
		st.log.Debug("RTMP connection ended before publishing", "err", err)
	case err != nil:
		st.log.Info("RTMP stream ended", "err", err)
	}
}

// errBeforePublish marks a connection that ended before it asked to
// publish.
var errBeforePublish = errors.New("before publish")

// run takes the stream from the handshake to its end.
func (st *stream) run() error {
	st.conn.SetDeadline(time.Now().Add(handshakeTimeout))
	st.sc = &gortmplib.ServerConn{RW: st.conn}
	if err := st.sc.Initialize(); err != nil {
		return fmt.Errorf("%w: RTMP handshake: %v", errBeforePublish, err)
	}
	if err := st.sc.AcceptConn(); err != nil {
		return fmt.Errorf("%w: RTMP connect: %v", errBeforePublish, err)
	}
	if !st.sc.Publish {
		st.sc.RejectAction()
		return fmt.Errorf("%w: RTMP play: this server only takes pushes", errBeforePublish)
	}
	if r := st.admit(); r != nil {
		st.refused(r)
		st.sc.RejectAction()
		return r
	}
	defer st.s.release(st)
	st.log = st.log.With("ingestConfiguration", st.target.ARN, "participant", st.target.ParticipantID)
	if err := st.sc.AcceptAction(); err != nil {
		return fmt.Errorf("RTMP publish: %w", err)
	}
	if r := st.probe(); r != nil {
		var ref *refusal
		if errors.As(r, &ref) {
			st.refused(ref)
		}
		return r
	}
	if err := st.publish(); err != nil {
		return err
	}
	defer st.finish()
	return st.forward()
}

// admit resolves the stream key and checks what can be checked before
// any media: the key, its stage, the protocol, a stream already live.
func (st *stream) admit() *refusal {
	ctx, cancel := context.WithTimeout(st.s.ctx, handshakeTimeout)
	defer cancel()
	key, ok := streamKeyOf(st.sc.URL)
	if !ok {
		return refuse(api.EventErrorCodeInvalidStreamKey, "the publish URL %q is not /app/{streamKey}", redactURL(st.sc.URL.Path))
	}
	t, err := st.s.svc.IngestByStreamKey(ctx, key)
	if t != nil {
		st.target = t
		st.client.IngestConfigurationARN, st.client.RedundantIngest = t.ARN, t.RedundantIngest
		st.lookupStage(ctx)
	}
	if errors.Is(err, ivs.ErrUnknownStreamKey) {
		return refuse(api.EventErrorCodeInvalidStreamKey, "no ingest configuration has this stream key")
	}
	if err != nil {
		return refuse(api.EventErrorCodeInternalServerException, "resolving the stream key: %v", err)
	}
	if st.id == nil {
		return refuse(api.EventErrorCodeInvalidStreamKey, "ingest configuration %s is attached to no stage", t.ARN)
	}
	if !st.secure && !t.InsecureIngest {
		return refuse(api.EventErrorCodeInvalidProtocol, "ingest configuration %s takes RTMPS only (insecureIngest is false)", t.ARN)
	}
	if claim := st.s.cfg.Claim; claim != nil {
		here, node, err := claim(ctx, t.StageARN)
		if err != nil {
			return refuse(api.EventErrorCodeInternalServerException, "placing stage %s: %v", t.StageARN, err)
		}
		if !here {
			// Not an event of the stage: recording one here would start
			// the stage on this node too.
			return refuse("", "stage %s runs on node %s: push to that node's RTMP endpoint (GetStage through it)", t.StageARN, node)
		}
	}
	if !st.s.reserve(st) {
		return refuse(api.EventErrorCodeReuseOfStreamKey, "ingest configuration %s is already streaming", t.ARN)
	}
	return nil
}

// lookupStage makes the identity the stream publishes as, if the
// configuration's stage exists.
func (st *stream) lookupStage(ctx context.Context) {
	if st.target.StageARN == "" {
		return
	}
	info, err := st.s.svc.StageInfo(ctx, st.target.StageARN)
	if err != nil || info == nil {
		if err != nil {
			st.log.Warn("reading an ingest configuration's stage", "stage", st.target.StageARN, "err", err)
		}
		return
	}
	st.id = stage.LocalIdentity(info, st.target.ParticipantID, st.target.UserID, st.target.Attributes)
}

// refused reports a refusal on the configuration's stage, when there is
// one (a key that names no configuration has no stage to report on).
func (st *stream) refused(r *refusal) {
	if st.id == nil || r.code == "" {
		return
	}
	if err := st.s.stages.RefuseLocal(st.id, st.client, r.code); err != nil {
		st.log.Debug("recording an ingest refusal", "code", r.code, "err", err)
	}
}

// probe reads until the stream's tracks are known: the AVC and AAC
// sequence headers an encoder sends first, or whatever came within
// probeWindow of stream time. Media read meanwhile is kept for forward.
func (st *stream) probe() error {
	st.conn.SetDeadline(time.Now().Add(handshakeTimeout))
	var first time.Duration
	seen := false
	pendingBytes := 0
	for {
		msg, err := st.sc.Read()
		if err != nil {
			return readErr(err)
		}
		var dts time.Duration
		media := false
		switch m := msg.(type) {
		case *message.Video:
			if m.Codec != message.CodecH264 {
				return refuse(api.EventErrorCodeInvalidVideoCodec, "the video codec is H.265 (H.264 is taken)")
			}
			if m.Type == message.VideoTypeConfig {
				if r := st.videoConfig(m); r != nil {
					return r
				}
			} else {
				media = true
				st.pending = append(st.pending, m)
				pendingBytes += len(m.AU)
			}
			dts = m.DTS
		case *message.Audio:
			if m.Codec != message.CodecMPEG4Audio {
				return refuse(api.EventErrorCodeInvalidAudioCodec, "the audio codec is FLV codec %d (AAC is taken)", m.Codec)
			}
			if m.AACType == message.AudioAACTypeConfig {
				if err := checkAAC(m.AACConfig); err != nil {
					return refuse(api.EventErrorCodeInvalidAudioCodec, "%v", err)
				}
				st.audioConf = m.AACConfig
			} else {
				media = true
				st.pending = append(st.pending, m)
				pendingBytes += len(m.AU)
			}
			dts = m.DTS
		case *message.VideoExSequenceStart, *message.VideoExCodedFrames, *message.VideoExFramesX, *message.VideoExMultitrack, *message.VideoExMetadata:
			return refuse(api.EventErrorCodeInvalidVideoCodec, "Enhanced RTMP video (%T) is not taken: send H.264 in plain FLV", msg)
		case *message.AudioExSequenceStart, *message.AudioExCodedFrames, *message.AudioExMultitrack, *message.AudioExMultichannelConfig:
			return refuse(api.EventErrorCodeInvalidAudioCodec, "Enhanced RTMP audio (%T) is not taken: send AAC in plain FLV", msg)
		default:
			continue
		}
		if media && !seen {
			seen, first = true, dts
		}
		if len(st.pending) > maxPending || pendingBytes > maxPendingBytes {
			return refuse(api.EventErrorCodeInvalidInput, "no sequence header in the stream's first %d media messages", len(st.pending))
		}
		if (st.videoConf != nil && st.audioConf != nil) || (seen && dts-first >= probeWindow) {
			break
		}
	}
	if st.videoConf == nil && st.audioConf == nil {
		return refuse(api.EventErrorCodeInvalidInput, "the stream has neither an AVC nor an AAC sequence header")
	}
	return nil
}

// videoConfig checks an AVC sequence header.
func (st *stream) videoConfig(m *message.Video) *refusal {
	c := m.AVCConfig
	if c == nil || len(c.SequenceParameterSets) == 0 || len(c.PictureParameterSets) == 0 {
		return refuse(api.EventErrorCodeInvalidVideoCodec, "the AVC sequence header has no SPS or PPS")
	}
	sps, pps := c.SequenceParameterSets[0].NALUnit, c.PictureParameterSets[0].NALUnit
	if r := checkVideo(sps); r != nil {
		return r
	}
	st.videoConf = m
	st.params.sps = append([]byte(nil), sps...)
	st.params.pps = append([]byte(nil), pps...)
	return nil
}

func checkVideo(sps []byte) *refusal {
	if _, err := checkSPS(sps); err != nil {
		if errors.Is(err, errResolution) {
			return refuse(api.EventErrorCodeResolutionExceeded, "%v", err)
		}
		return refuse(api.EventErrorCodeInvalidVideoCodec, "%v", err)
	}
	return nil
}

// publish makes the encoder a publishing participant of the stage.
func (st *stream) publish() error {
	var tracks []sfu.LocalTrack
	if st.audioConf != nil {
		st.audio = len(tracks)
		tracks = append(tracks, sfu.LocalTrack{Kind: sfu.Audio, Codec: "opus"})
	}
	if st.videoConf != nil {
		st.video = len(tracks)
		tracks = append(tracks, sfu.LocalTrack{Kind: sfu.Video, Codec: "H264"})
	}
	pub, err := st.s.stages.PublishLocal(st.id, st.client, tracks, stage.LocalPublishOptions{
		// An RTMP encoder cannot be asked for a keyframe: a subscriber
		// that joins mid-GOP waits for the encoder's next IDR (IVS asks
		// encoders for one every 1 or 2 s). The asks are only counted.
		OnKeyframeRequest: func(int) { st.keyframeAsks.Add(1) },
		OnEnded: func(err error) {
			select {
			case st.ended <- err:
			default:
			}
			// Unblocks the read loop, which then finishes the stream.
			st.conn.Close()
		},
	})
	if err != nil {
		// The stage recorded the refusal (QUOTA_EXCEEDED) itself.
		return fmt.Errorf("joining stage %s: %w", st.id.Stage.ARN, err)
	}
	st.pub = pub
	if st.audioConf != nil {
		t, err := startTranscoder(st.s.cfg.FFmpeg, st.audioConf, st.writeOpus, st.log)
		if err != nil {
			st.log.Error("AAC to Opus: the stream's audio is not forwarded", "err", err)
		} else {
			st.trans.Store(t)
		}
	}
	ctx, cancel := context.WithTimeout(st.s.ctx, handshakeTimeout)
	defer cancel()
	if err := st.s.svc.SetIngestState(ctx, st.target.ARN, true); err != nil {
		st.log.Warn("recording an ingest configuration ACTIVE", "err", err)
	}
	st.log.Info("RTMP stream publishing", "stage", st.id.Stage.ARN, "session", pub.SessionID(), "video", st.videoConf != nil, "audio", st.audioConf != nil)
	return nil
}

// finish ends what publish started, once.
func (st *stream) finish() {
	st.endOnce.Do(func() {
		st.pub.Close()
		ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
		defer cancel()
		if st.s.release(st) {
			if err := st.s.svc.SetIngestState(ctx, st.target.ARN, false); err != nil {
				st.log.Warn("recording an ingest configuration INACTIVE", "err", err)
			}
		}
		if t := st.trans.Load(); t != nil {
			if err := t.close(); err != nil {
				st.log.Debug("AAC to Opus transcoder", "err", err)
			}
		}
		st.log.Info("RTMP stream ended", "keyframeRequests", st.keyframeAsks.Load())
	})
}

func (st *stream) transcoderPID() int {
	if t := st.trans.Load(); t != nil {
		return t.pid()
	}
	return 0
}

// forward reads the stream until it ends, and forwards its media.
func (st *stream) forward() error {
	for _, m := range st.pending {
		if err := st.media(m); err != nil {
			return st.cut(err)
		}
	}
	st.pending = nil
	for {
		// Both ways: reading also writes (RTMP acknowledgements, pings).
		st.conn.SetDeadline(time.Now().Add(readTimeout))
		msg, err := st.sc.Read()
		if err != nil {
			select {
			case e := <-st.ended:
				return fmt.Errorf("the stage ended the stream: %w", orNil(e))
			default:
			}
			return readErr(err)
		}
		if err := st.media(msg); err != nil {
			return st.cut(err)
		}
	}
}

func orNil(err error) error {
	if err == nil {
		return errors.New("closed")
	}
	return err
}

// cut ends a live stream for a refusal: the stage records it before the
// participant's PUBLISH_STOPPED.
func (st *stream) cut(err error) error {
	var r *refusal
	if errors.As(err, &r) {
		st.refused(r)
	}
	return err
}

// media forwards one message of a live stream.
func (st *stream) media(msg message.Message) error {
	switch m := msg.(type) {
	case *message.Video:
		if m.Codec != message.CodecH264 {
			return refuse(api.EventErrorCodeInvalidVideoCodec, "the video codec changed to %d", m.Codec)
		}
		if st.video < 0 {
			return nil // video that came after the tracks were settled
		}
		switch m.Type {
		case message.VideoTypeConfig:
			if r := st.videoConfig(m); r != nil {
				return r
			}
		case message.VideoTypeAU:
			return st.writeVideo(m)
		}
	case *message.Audio:
		if st.audio < 0 || m.Codec != message.CodecMPEG4Audio {
			if m.Codec != message.CodecMPEG4Audio {
				return refuse(api.EventErrorCodeInvalidAudioCodec, "the audio codec changed to %d", m.Codec)
			}
			return nil
		}
		if m.AACType == message.AudioAACTypeAU {
			st.writeAAC(m)
		}
	case *message.VideoExSequenceStart, *message.VideoExCodedFrames, *message.VideoExFramesX, *message.VideoExMultitrack:
		return refuse(api.EventErrorCodeInvalidVideoCodec, "Enhanced RTMP video (%T) is not taken", msg)
	}
	if time.Since(st.wallStart) > maxDuration && st.started {
		return refuse(api.EventErrorCodeStreamDurationExceeded, "the stream is older than %v", maxDuration)
	}
	return nil
}

// writeVideo checks and forwards one H.264 access unit.
func (st *stream) writeVideo(m *message.Video) error {
	if m.PTSDelta != 0 {
		// A composition time offset is a frame shown later than it is
		// decoded: a B-frame stream, which WebRTC cannot carry.
		return refuse(api.EventErrorCodeBFramePresent, "a frame has a composition time offset of %v: the encoder sends B-frames (set bframes=0)", m.PTSDelta)
	}
	var au h264.AVCC
	if err := au.Unmarshal(m.AU); err != nil {
		if errors.Is(err, h264.ErrAVCCNoNALUs) {
			return nil
		}
		return refuse(api.EventErrorCodeInvalidInput, "an H.264 access unit cannot be read: %v", err)
	}
	for _, n := range au {
		if len(n) > 0 && h264.NALUType(n[0]&0x1f) == h264.NALUTypeSPS {
			if r := checkVideo(n); r != nil {
				return r
			}
		}
	}
	if !st.started {
		st.started, st.wallStart, st.winStart = true, time.Now(), m.DTS
	}
	st.winBytes += len(m.AU)
	if el := m.DTS - st.winStart; el >= bitrateWindow {
		if rate := int64(st.winBytes) * 8 * int64(time.Second) / int64(el); rate > maxVideoBitrate {
			return refuse(api.EventErrorCodeBitrateExceeded, "the video averages %d bit/s over %v (%d is the limit)", rate, el, maxVideoBitrate)
		}
		st.winStart, st.winBytes = m.DTS, 0
	}
	payloads, key := st.params.packetize(au)
	ts := st.vBase + rtpTime(m.DTS, 90000)
	if key {
		st.senderReports(m.DTS)
	}
	for i, p := range payloads {
		h := rtp.Header{SequenceNumber: st.vSeq, Timestamp: ts, Marker: i == len(payloads)-1}
		st.vSeq++
		if err := st.pub.WriteRTP(st.video, &h, p); err != nil {
			if errors.Is(err, sfu.ErrClosed) {
				return nil // the read loop learns it from the closed connection
			}
			return fmt.Errorf("forwarding video: %w", err)
		}
	}
	return nil
}

// senderReports maps media time dts to now on both tracks, so that
// subscribers line audio and video up as the encoder timestamped them.
func (st *stream) senderReports(dts time.Duration) {
	ntp := ntpTime(time.Now())
	st.pub.SetSenderReport(st.video, ntp, st.vBase+rtpTime(dts, 90000))
	if st.audio >= 0 {
		st.pub.SetSenderReport(st.audio, ntp, st.aBase+rtpTime(dts, 48000))
	}
}

// writeAAC hands one AAC frame to the transcoder.
func (st *stream) writeAAC(m *message.Audio) {
	t := st.trans.Load()
	if t == nil {
		return
	}
	if !st.started && st.video < 0 {
		st.started, st.wallStart = true, time.Now()
	}
	if st.aFirst.Load() < 0 {
		st.aFirst.Store(int64(m.DTS))
		st.aClock.frame = aacFrame(st.audioConf)
		if st.video < 0 {
			// An audio-only stream: nothing else to line up with.
			st.pub.SetSenderReport(st.audio, ntpTime(time.Now()), st.aBase+rtpTime(m.DTS, 48000))
		}
	}
	if g := st.aClock.gap(m.DTS); g > 0 {
		// The Opus still inside ffmpeg (a frame or two) moves too: the
		// gap lands up to ~40 ms early, rather than all later audio
		// landing late for good.
		st.aShift.Add(rtpTime(g, 48000))
	}
	t.push(m.AU)
}

// aacFrame is the duration of one AAC-LC frame: 1024 samples.
func aacFrame(c *mpeg4audio.AudioSpecificConfig) time.Duration {
	if c == nil || c.SampleRate <= 0 {
		return 0
	}
	return time.Duration(1024 * int64(time.Second) / int64(c.SampleRate))
}

// audioClock follows the AAC frames' timestamps. ffmpeg sees only the
// frames and decodes them as if they were contiguous; an encoder that
// drops audio (OBS does under load) leaves a hole in its timestamps that
// the Opus after it must keep, or every later packet plays early against
// the video.
type audioClock struct {
	frame   time.Duration // one AAC frame
	next    time.Duration // the next frame's timestamp, if contiguous
	started bool
}

// gap is how much later than contiguous the frame at dts comes (0 within
// half a frame: FLV timestamps are whole milliseconds).
func (c *audioClock) gap(dts time.Duration) time.Duration {
	if c.frame <= 0 {
		return 0
	}
	expected, started := c.next, c.started
	c.started, c.next = true, dts+c.frame
	if g := dts - expected; started && g > c.frame/2 {
		return g
	}
	return 0
}

// writeOpus forwards one Opus packet of the transcoder: packets are 20 ms
// each and contiguous, from the media time of the first AAC frame, moved
// by the encoder's audio gaps.
func (st *stream) writeOpus(pkt []byte) {
	first := time.Duration(st.aFirst.Load())
	ts := st.aBase + rtpTime(first, 48000) + st.aPackets*opusFrameSamples + st.aShift.Load()
	h := rtp.Header{SequenceNumber: st.aSeq, Timestamp: ts, Marker: st.aPackets == 0}
	st.aSeq++
	st.aPackets++
	if err := st.pub.WriteRTP(st.audio, &h, pkt); err != nil && !errors.Is(err, sfu.ErrClosed) {
		st.log.Debug("forwarding audio", "err", err)
	}
}

// rtpTime converts media time to ticks of an RTP clock.
func rtpTime(d time.Duration, clock int64) uint32 {
	return uint32(d.Microseconds() * clock / 1_000_000)
}

// ntpTime is t in NTP's 32.32 fixed-point format.
func ntpTime(t time.Time) uint64 {
	const ntpEpochOffset = 2_208_988_800 // 1900 to 1970, in seconds
	secs := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / 1_000_000_000
	return secs<<32 | frac
}

// readErr says why reading the stream failed: the FLV codecs gortmplib
// cannot even parse are refusals; anything else is the connection.
func readErr(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "unsupported video codec"):
		return refuse(api.EventErrorCodeInvalidVideoCodec, "%v", err)
	case strings.Contains(msg, "unsupported audio codec"):
		return refuse(api.EventErrorCodeInvalidAudioCodec, "%v", err)
	}
	return fmt.Errorf("reading the stream: %w", err)
}

// redactURL keeps a stream key out of the logs.
func redactURL(path string) string {
	if i := strings.LastIndex(path, "/"); i >= 0 && len(path)-i > 8 {
		return path[:i+1] + "…"
	}
	return path
}

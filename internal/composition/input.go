package composition

import (
	"log/slog"
	"sync"
	"time"

	"github.com/pion/rtp"

	"github.com/rostrum-dev/rostrum/internal/composition/layout"
	"github.com/rostrum-dev/rostrum/internal/sfu"
)

// input is one publishing participant in a composition: a tap on its
// publisher, the decoders of its tracks, its newest picture and its audio
// waiting to be mixed.
type input struct {
	id    string
	tap   *sfu.Tap
	bin   string
	log   *slog.Logger
	kick  func() // asks the mixer to lay out again
	video int    // index of the video track in the tap, -1: none
	audio int
	vinfo sfu.TapTrack
	ainfo sfu.TapTrack

	pkts chan *rtp.Packet
	quit chan struct{}
	done chan struct{}

	mu        sync.Mutex
	src       layout.Size // the video's size, read off its keyframes
	want      geometry    // what the layout wants decoded; zero: no video shown
	latest    *frame      // the newest decoded picture
	lastVideo time.Time   // the newest video packet
	gone      bool        // the tap closed: the publisher left

	audioBuf audioBuffer

	// Owned by run's goroutine.
	vdec        *videoDecoder
	gop         []*rtp.Packet // the packets since the last keyframe began
	gopBytes    int
	adec        *audioDecoder
	lastStart   time.Time
	adecStarted time.Time
}

// packetQueue bounds what waits between the engine's reader and an
// input's decoders: ~2 s of 720p video. Beyond it packets are dropped and a
// keyframe is asked for, so that a stalled decoder never blocks the
// publisher's forwarding.
const packetQueue = 1024

func newInput(id string, src Source, bin string, log *slog.Logger, kick func()) (*input, error) {
	in := &input{id: id, bin: bin, log: log.With("participant", id), kick: kick, video: -1, audio: -1,
		pkts: make(chan *rtp.Packet, packetQueue), quit: make(chan struct{}), done: make(chan struct{})}
	ready := make(chan struct{})
	tap, err := src.Tap(id, sfu.TapOptions{
		OnPacket: func(track int, h *rtp.Header, payload []byte) {
			<-ready
			if track != in.video && track != in.audio {
				return
			}
			p := &rtp.Packet{Header: *h, Payload: append([]byte(nil), payload...)}
			p.Header.Extensions, p.Header.Extension = nil, false
			p.Header.PayloadType = uint8(track) // which track, for run
			select {
			case in.pkts <- p:
			default:
				if track == in.video {
					in.tap.RequestKeyframe()
				}
			}
		},
		OnClosed: func(error) {
			<-ready
			in.mu.Lock()
			in.gone = true
			in.mu.Unlock()
			kick()
		},
	})
	if err != nil {
		close(ready)
		return nil, err
	}
	in.tap = tap
	for i, t := range tap.Tracks() {
		switch {
		case t.Kind == sfu.Video && in.video < 0 && (t.Codec == "VP8" || t.Codec == "H264"):
			in.video, in.vinfo = i, t
		case t.Kind == sfu.Audio && in.audio < 0 && t.Codec == "opus":
			in.audio, in.ainfo = i, t
		}
	}
	close(ready)
	go in.run()
	return in, nil
}

func (in *input) run() {
	defer close(in.done)
	defer func() {
		if in.vdec != nil {
			in.vdec.stop()
		}
		if in.adec != nil {
			in.adec.stop()
		}
	}()
	for {
		select {
		case <-in.quit:
			return
		case p := <-in.pkts:
			track := int(p.PayloadType)
			if track == in.video {
				p.PayloadType = in.vinfo.PT
				in.onVideo(p)
			} else {
				p.PayloadType = in.ainfo.PT
				in.onAudio(p)
			}
		}
	}
}

func (in *input) onVideo(p *rtp.Packet) {
	now := time.Now()
	relayout := false
	in.mu.Lock()
	key, w, h := sfu.KeyframeInfo(in.vinfo.Codec, p.Payload)
	if w > 0 && h > 0 && (w != in.src.Width || h != in.src.Height) {
		in.src = layout.Size{Width: w, Height: h}
		relayout = true
	}
	if now.Sub(in.lastVideo) > videoStoppedAfter {
		relayout = true // video is back
	}
	in.lastVideo = now
	want := in.want
	in.mu.Unlock()
	if relayout {
		in.kick()
	}
	in.keepGOP(p, key)
	if in.vdec != nil && (!in.vdec.g.near(want) || in.vdec.exited()) {
		in.vdec.stop()
		in.vdec = nil
	}
	if in.vdec == nil && want.valid() && now.Sub(in.lastStart) >= time.Second/2 {
		in.lastStart = now
		d, err := startVideoDecoder(in.bin, in.vinfo.Codec, want, in.gotFrame, in.log)
		if err != nil {
			in.log.Warn("composition: starting a video decoder", "err", err)
			return
		}
		in.vdec = d
		if len(in.gop) == 0 {
			in.tap.RequestKeyframe()
			return
		}
		// The new decoder starts from the last keyframe: a picture at
		// once, without waiting for the publisher's next keyframe.
		for _, q := range in.gop {
			if err := in.vdec.write(q); err != nil {
				break
			}
		}
		return
	}
	if in.vdec != nil {
		if err := in.vdec.write(p); err != nil {
			in.log.Debug("composition: video decoder input closed", "err", err, "ffmpeg", in.vdec.p.tail.String())
			in.vdec.stop()
			in.vdec = nil
		}
	}
}

func (in *input) onAudio(p *rtp.Packet) {
	if in.adec == nil {
		if time.Since(in.adecStarted) < time.Second {
			return
		}
		in.adecStarted = time.Now()
		d, err := startAudioDecoder(in.bin, in.ainfo.Clock, in.ainfo.Channels, &in.audioBuf)
		if err != nil {
			in.log.Warn("composition: starting an audio decoder", "err", err)
			return
		}
		in.adec = d
	}
	if err := in.adec.sink.WriteRTP(p); err != nil {
		in.log.Debug("composition: audio decoder input closed", "err", err, "ffmpeg", in.adec.p.tail.String())
		in.adec.stop()
		in.adec = nil
	}
}

// gopLimit bounds the packets kept since the last keyframe; a longer GOP
// is not kept, and a new decoder asks the publisher for a keyframe instead.
const gopLimit = 4 << 20

// keepGOP keeps the packets since the last keyframe began, for a decoder
// started later (a new tile size) to begin with.
func (in *input) keepGOP(p *rtp.Packet, key bool) {
	// A keyframe begins anew unless this packet is of the keyframe being
	// kept (an H.264 SPS, PPS and IDR share one timestamp).
	if key && (len(in.gop) == 0 || p.Timestamp != in.gop[0].Timestamp) {
		clear(in.gop)
		in.gop, in.gopBytes = in.gop[:0], 0
	} else if len(in.gop) == 0 {
		return // not since a keyframe
	}
	if in.gopBytes+len(p.Payload) > gopLimit {
		clear(in.gop)
		in.gop, in.gopBytes = in.gop[:0], 0
		return
	}
	in.gop = append(in.gop, p)
	in.gopBytes += len(p.Payload)
}

// gotFrame makes f the newest picture and returns the one it replaces, to
// be decoded into next.
func (in *input) gotFrame(f *frame) *frame {
	in.mu.Lock()
	defer in.mu.Unlock()
	old := in.latest
	in.latest = f
	return old
}

// videoStoppedAfter is how long a participant's video may be silent before
// the layout treats it as stopped (omitStoppedVideo, background tile).
const videoStoppedAfter = 2 * time.Second

// state is what the layout needs of the input.
func (in *input) state(now time.Time) (src layout.Size, video, gone bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.src, in.video >= 0 && now.Sub(in.lastVideo) < videoStoppedAfter, in.gone
}

func (in *input) setWant(g geometry) {
	in.mu.Lock()
	in.want = g
	in.mu.Unlock()
}

// drawInto draws the newest picture in dest; a picture decoded for another
// size (the decoder is being restarted for the tile's new size) is scaled.
func (in *input) drawInto(canvas *frame, dest layout.Rect) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.latest == nil {
		return false
	}
	canvas.draw(in.latest, dest)
	return true
}

func (in *input) close() {
	in.tap.Close()
	select {
	case <-in.quit:
	default:
		close(in.quit)
	}
	<-in.done
}

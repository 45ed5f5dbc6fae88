package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
)

// frame is one VP8 frame of the file and how long it plays.
type frame struct {
	data []byte
	dur  time.Duration
	key  bool
}

// ivfFile is a VP8 IVF file read into memory.
type ivfFile struct {
	frames        []frame
	width, height int
	length        time.Duration
	bytes         int64
}

// readIVF reads a VP8 IVF file. Each frame lasts until the next one's
// timestamp (the last as long as the one before), as rtclient.FileSource
// reads it on Rostrum's side.
func readIVF(path string) (*ivfFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, hdr, err := ivfreader.NewWith(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if hdr.FourCC != "VP80" {
		return nil, fmt.Errorf("%s: codec %q, want VP8 (VP80)", path, hdr.FourCC)
	}
	v := &ivfFile{width: int(hdr.Width), height: int(hdr.Height)}
	num, den := uint64(hdr.TimebaseNumerator), uint64(hdr.TimebaseDenominator)
	var stamps []uint64
	for {
		data, fh, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		v.frames = append(v.frames, frame{data: data, key: len(data) > 0 && data[0]&1 == 0})
		v.bytes += int64(len(data))
		stamps = append(stamps, fh.Timestamp)
	}
	if len(v.frames) == 0 || num == 0 || den == 0 {
		return nil, fmt.Errorf("%s: no frames", path)
	}
	// ivfreader's Timestamp is pts·den/num; the time base is num/den s.
	toDur := func(d uint64) time.Duration { return time.Duration((d * num / den) * num * uint64(time.Second) / den) }
	for i := range v.frames {
		d := time.Second / 30
		if i+1 < len(stamps) && stamps[i+1] > stamps[i] {
			d = toDur(stamps[i+1] - stamps[i])
		} else if i > 0 {
			d = v.frames[i-1].dur
		}
		if d <= 0 {
			d = time.Second / 30
		}
		v.frames[i].dur = d
		v.length += d
	}
	return v, nil
}

// keyframeInterval is the longest time from one keyframe to the next,
// around the loop (the file's length if it has only one).
func (v *ivfFile) keyframeInterval() time.Duration {
	var longest, since time.Duration
	first := -1
	for i, f := range v.frames {
		if f.key {
			if first < 0 {
				first = i
			} else {
				longest = max(longest, since)
			}
			since = 0
		}
		since += f.dur
	}
	if first < 0 {
		return v.length
	}
	for _, f := range v.frames[:first] {
		since += f.dur
	}
	return max(longest, since)
}

func (v *ivfFile) fps() float64     { return float64(len(v.frames)) / v.length.Seconds() }
func (v *ivfFile) bitrate() float64 { return float64(v.bytes) * 8 / v.length.Seconds() }

// outboundMTU is pion's: the packetizer's packets, RTP header included, are
// at most this long (before the interceptors' header extensions), as
// TrackLocalStaticSample makes them on Rostrum's side.
const outboundMTU = 1200

// sender plays an IVF file into a track in a loop, in real time, the way
// rostrum loadtest's publishers do (rtclient.Publisher with a FileSource):
// pion's VP8 payloader with picture IDs, packets of at most 1,200 bytes,
// the RTP timestamp advanced by each frame's duration in 90 kHz ticks
// (the fraction carried), sequence numbers and timestamps running on across
// loops, frames sent on a schedule that restarts if it falls a second
// behind.
type sender struct {
	file    *ivfFile
	track   *webrtc.TrackLocalStaticRTP
	packets atomic.Int64 // packets written
	errs    atomic.Int64 // packets the track refused
	// beforeKey, if set, is called once, just before the next keyframe is
	// written: the quietest moment to count (see atNextKeyframe).
	beforeKey atomic.Pointer[func()]
}

// atNextKeyframe runs f on the sending goroutine just before the next
// keyframe goes out, and returns when it has run (or after timeout). A
// window counted from there to a later keyframe leaves out the keyframe
// bursts, which on a loaded server take a good part of a second to reach
// hundreds of subscribers: counted at an arbitrary moment, packets of one
// in flight would be sent inside the window and received outside it, or
// the other way round.
func (s *sender) atNextKeyframe(f func(), timeout time.Duration) bool {
	done := make(chan struct{})
	g := func() { f(); close(done) }
	s.beforeKey.Store(&g)
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		if s.beforeKey.CompareAndSwap(&g, nil) {
			return false
		}
		<-done // it is running
		return true
	}
}

func newVP8Track() (*webrtc.TrackLocalStaticRTP, error) {
	return webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "bench")
}

func (s *sender) run(ctx context.Context) {
	// The track rewrites SSRC and payload type per connection.
	pk := rtp.NewPacketizer(outboundMTU, 96, 1, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), 90000)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	start := time.Now()
	var (
		due       time.Duration
		remainder float64
	)
	for i := 0; ; i = (i + 1) % len(s.file.frames) {
		f := s.file.frames[i]
		if f.key {
			if g := s.beforeKey.Swap(nil); g != nil {
				(*g)()
			}
		}
		ticksF := f.dur.Seconds()*90000 + remainder
		ticks := uint32(ticksF)
		remainder = ticksF - float64(ticks)
		for _, p := range pk.Packetize(f.data, ticks) {
			if err := s.track.WriteRTP(p); err != nil {
				s.errs.Add(1)
				continue
			}
			s.packets.Add(1)
		}
		due += f.dur
		wait := time.Until(start.Add(due))
		if wait < -time.Second {
			start, due, wait = time.Now(), 0, 0
		}
		if wait <= 0 {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

package rtclient

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// SyntheticOptions configure a SyntheticSource. Zero fields take the defaults
// given with each.
type SyntheticOptions struct {
	// Codec is the codec whose framing the frames imitate: CodecVP8
	// (default), CodecH264 or CodecOpus.
	Codec webrtc.RTPCodecCapability
	// FrameDuration is the time between frames: default 1/30 s for video,
	// 20 ms for audio.
	FrameDuration time.Duration
	// FrameSize is the size in bytes of a delta frame (default 1200 for
	// video, 120 for audio); KeyframeSize that of a keyframe (default
	// 4×FrameSize).
	FrameSize, KeyframeSize int
	// KeyframeInterval is the number of frames from one keyframe to the next
	// (default 60; video only). RequestKeyframe makes one sooner.
	KeyframeInterval int
	// Width and Height go into VP8 keyframe headers (default 640×360).
	Width, Height int
	// Frames, if positive, ends the source (io.EOF) after that many frames.
	Frames int
	// Timestamps writes the wall-clock time at which each frame is made
	// (that is, sent: the Publisher asks for a frame when it is due) into
	// the frame's numbered payload, "rtclient frame N @T " with T in Unix
	// nanoseconds. Every RTP packet of the frame that carries a whole copy
	// of that text (any packet of more than about 100 payload bytes) then
	// tells a receiver when it was sent: see SyntheticPacketSent. A load
	// generator measures forwarding latency with it.
	Timestamps bool
}

// SyntheticSource is a MediaSource that makes numbered frames without an
// encoder: cheap enough for load generation, and each frame unique so that a
// receiver can tell which one it got. The frames are not decodable pictures
// or sounds, but they are framed like the codec's: VP8 frames carry a valid
// frame tag (and keyframes the start code and dimensions of a key frame),
// H.264 access units are Annex-B with SPS, PPS and IDR NAL units on
// keyframes and a non-IDR slice otherwise, Opus packets start with a TOC byte
// for 20 ms of fullband CELT. That is all an SFU looks at.
//
// A frame's payload reads "rtclient frame N " repeated, so it holds no zero
// bytes and thus no H.264 start codes.
type SyntheticSource struct {
	opts    SyntheticOptions
	kind    string
	n       atomic.Int64
	buf     []byte
	wantKey atomic.Bool
}

// NewSyntheticSource returns a source of numbered frames.
func NewSyntheticSource(opts SyntheticOptions) *SyntheticSource {
	if opts.Codec.MimeType == "" {
		opts.Codec = CodecVP8
	}
	kind := kindOf(opts.Codec.MimeType)
	if opts.FrameDuration <= 0 {
		if kind == KindAudio {
			opts.FrameDuration = 20 * time.Millisecond
		} else {
			opts.FrameDuration = time.Second / 30
		}
	}
	if opts.FrameSize <= 0 {
		if kind == KindAudio {
			opts.FrameSize = 120
		} else {
			opts.FrameSize = 1200
		}
	}
	if opts.KeyframeSize <= 0 {
		opts.KeyframeSize = 4 * opts.FrameSize
	}
	if opts.KeyframeInterval <= 0 {
		opts.KeyframeInterval = 60
	}
	if opts.Width <= 0 || opts.Height <= 0 {
		opts.Width, opts.Height = 640, 360
	}
	return &SyntheticSource{opts: opts, kind: kind}
}

// Codec implements MediaSource.
func (s *SyntheticSource) Codec() webrtc.RTPCodecCapability { return s.opts.Codec }

// RequestKeyframe makes the next video frame a keyframe. It implements
// KeyframeRequester.
func (s *SyntheticSource) RequestKeyframe() { s.wantKey.Store(true) }

// FramesMade is how many frames NextFrame has returned. It may be called
// concurrently with NextFrame.
func (s *SyntheticSource) FramesMade() int { return int(s.n.Load()) }

// NextFrame implements MediaSource. The returned Data is reused by the next
// call.
func (s *SyntheticSource) NextFrame() (Frame, error) {
	n := int(s.n.Load())
	if s.opts.Frames > 0 && n >= s.opts.Frames {
		return Frame{}, io.EOF
	}
	s.n.Add(1)
	key := false
	if s.kind == KindVideo {
		key = n%s.opts.KeyframeInterval == 0 || s.wantKey.Swap(false)
	}
	size := s.opts.FrameSize
	if key {
		size = s.opts.KeyframeSize
	}
	b := s.buf[:0]
	switch mime := strings.ToLower(s.opts.Codec.MimeType); mime {
	case strings.ToLower(webrtc.MimeTypeVP8):
		b = s.vp8Header(b, key, size)
	case strings.ToLower(webrtc.MimeTypeH264):
		b = h264Header(b, key)
	case strings.ToLower(webrtc.MimeTypeOpus):
		b = append(b, 0xfc) // TOC: config 31 (CELT fullband 20 ms), stereo, one frame
	default:
		return Frame{}, fmt.Errorf("rtclient: synthetic %s frames are not supported", s.opts.Codec.MimeType)
	}
	var sent int64
	if s.opts.Timestamps {
		sent = time.Now().UnixNano()
	}
	b = fillNumbered(b, n, sent, size)
	s.buf = b
	return Frame{Data: b, Duration: s.opts.FrameDuration, Keyframe: key}, nil
}

// vp8Header writes the uncompressed data chunk of a VP8 frame (RFC 6386
// §9.1): a 3-byte frame tag, and for key frames the start code and the
// dimensions.
func (s *SyntheticSource) vp8Header(b []byte, key bool, size int) []byte {
	first := size - 10 // first_part_size: the rest of the frame, near enough
	if first < 0 {
		first = 0
	}
	if first > 1<<19-1 {
		first = 1<<19 - 1
	}
	tag := uint32(first)<<5 | 1<<4 // show_frame=1, version 0
	if !key {
		tag |= 1 // inter frame
	}
	b = append(b, byte(tag), byte(tag>>8), byte(tag>>16))
	if key {
		w, h := s.opts.Width&0x3fff, s.opts.Height&0x3fff
		b = append(b, 0x9d, 0x01, 0x2a, byte(w), byte(w>>8), byte(h), byte(h>>8))
	}
	return b
}

// h264Header writes the NAL units before the slice data: SPS and PPS before
// an IDR slice on keyframes, a non-IDR slice header byte otherwise. The byte
// after each slice's NAL header has its top bit set (first_mb_in_slice = 0),
// so each frame is one access unit.
func h264Header(b []byte, key bool) []byte {
	if key {
		b = append(b, startCode...)
		b = append(b, 0x67, 0x42, 0xe0, 0x1f, 0x8c, 0x8d, 0x40, 0x50) // SPS, constrained baseline 3.1
		b = append(b, startCode...)
		b = append(b, 0x68, 0xce, 0x3c, 0x80) // PPS
		b = append(b, startCode...)
		return append(b, 0x65, 0x88) // IDR slice
	}
	b = append(b, startCode...)
	return append(b, 0x41, 0x9a) // non-IDR slice
}

// fillNumbered pads b to size with "rtclient frame N " (or, with a send
// time, "rtclient frame N @T ") repeated, at least once, even past size.
func fillNumbered(b []byte, n int, sent int64, size int) []byte {
	var word [64]byte
	w := append(word[:0], syntheticMark...)
	w = strconv.AppendInt(w, int64(n), 10)
	w = append(w, ' ')
	if sent != 0 {
		w = append(w, '@')
		w = strconv.AppendInt(w, sent, 10)
		w = append(w, ' ')
	}
	b = append(b, w...)
	for len(b) < size {
		k := size - len(b)
		if k > len(w) {
			k = len(w)
		}
		b = append(b, w[:k]...)
	}
	return b
}

// syntheticMark starts the numbered payload of a SyntheticSource frame.
var syntheticMark = []byte("rtclient frame ")

// SyntheticFrameNumber reads the number of a frame a SyntheticSource made
// (N in "rtclient frame N"), e.g. from a frame a Subscriber rebuilt, so that
// a load generator can tell which frames arrived without keeping hashes. ok
// is false for other data.
func SyntheticFrameNumber(frame []byte) (n int, ok bool) {
	i := bytes.Index(frame, syntheticMark)
	if i < 0 {
		return 0, false
	}
	digits := frame[i+len(syntheticMark):]
	end := bytes.IndexByte(digits, ' ')
	if end <= 0 {
		return 0, false
	}
	v, err := strconv.Atoi(string(digits[:end]))
	if err != nil {
		return 0, false
	}
	return v, true
}

// SyntheticPacketSent finds, in b (an RTP packet or payload, or a rebuilt
// frame), the first whole "rtclient frame N @T " that a SyntheticSource with
// Timestamps wrote, and returns N and T (Unix nanoseconds). ok is false when
// b holds no whole copy: other data, a frame made without Timestamps, or a
// packet too short to carry one. It does not allocate.
//
// Hot path of a load generator: once per packet received.
func SyntheticPacketSent(b []byte) (n int, sentUnixNano int64, ok bool) {
	for {
		i := bytes.Index(b, syntheticMark)
		if i < 0 {
			return 0, 0, false
		}
		b = b[i+len(syntheticMark):]
		num, rest, ok1 := leadingInt(b)
		if ok1 && len(rest) > 2 && rest[0] == ' ' && rest[1] == '@' {
			if t, rest2, ok2 := leadingInt(rest[2:]); ok2 && len(rest2) > 0 && rest2[0] == ' ' {
				return int(num), t, true
			}
		}
		// A copy cut at the packet's edge, or no time: try the next one.
	}
}

// leadingInt parses the decimal digits at the start of b (at most 19).
func leadingInt(b []byte) (v int64, rest []byte, ok bool) {
	i := 0
	for ; i < len(b) && i < 19 && b[i] >= '0' && b[i] <= '9'; i++ {
		v = v*10 + int64(b[i]-'0')
	}
	return v, b[i:], i > 0
}

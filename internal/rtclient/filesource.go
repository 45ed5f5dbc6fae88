package rtclient

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// ErrUnsupportedMedia is returned by NewFileSource for a file it cannot read.
var ErrUnsupportedMedia = errors.New("rtclient: unsupported media file")

// FileSource is a MediaSource that plays a file of real encoded media: H.264
// Annex-B (read with pion's h264reader), VP8 in IVF (ivfreader) or Opus in
// Ogg (oggreader). The format is told by the file's content, not its name.
//
// The file is read and split into frames once, by NewFileSource; Clone gives
// more sources over the same frames at the cost of a cursor, which is how a
// load generator makes many publishers of one file. Playback loops unless
// WithoutLoop is given.
type FileSource struct {
	media *fileMedia
	pos   int
	loop  bool
}

// fileMedia is the parsed content of a file, shared by clones, never changed.
type fileMedia struct {
	path   string
	codec  webrtc.RTPCodecCapability
	frames []Frame
}

type fileConfig struct {
	fps  float64
	loop bool
}

// FileOption changes how NewFileSource reads a file.
type FileOption func(*fileConfig)

// WithFrameRate sets the frame rate of an H.264 Annex-B file, which carries
// no timing of its own (default 30). IVF and Ogg files have their own timing.
func WithFrameRate(fps float64) FileOption {
	return func(c *fileConfig) { c.fps = fps }
}

// WithoutLoop makes the source play the file once and then return io.EOF.
func WithoutLoop() FileOption {
	return func(c *fileConfig) { c.loop = false }
}

// NewFileSource reads path and splits it into frames.
func NewFileSource(path string, opts ...FileOption) (*FileSource, error) {
	cfg := fileConfig{fps: 30, loop: true}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.fps <= 0 {
		return nil, fmt.Errorf("rtclient: frame rate %v must be positive", cfg.fps)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m *fileMedia
	switch {
	case bytes.HasPrefix(data, []byte("DKIF")):
		m, err = readIVF(data)
	case bytes.HasPrefix(data, []byte("OggS")):
		m, err = readOgg(data)
	case bytes.HasPrefix(data, []byte{0, 0, 1}) || bytes.HasPrefix(data, []byte{0, 0, 0, 1}):
		m, err = readH264(data, cfg.fps)
	default:
		err = fmt.Errorf("%w: %s is not H.264 Annex-B, IVF or Ogg", ErrUnsupportedMedia, path)
	}
	if err != nil {
		return nil, fmt.Errorf("rtclient: reading %s: %w", path, err)
	}
	if len(m.frames) == 0 {
		return nil, fmt.Errorf("%w: %s has no frames", ErrUnsupportedMedia, path)
	}
	m.path = path
	return &FileSource{media: m, loop: cfg.loop}, nil
}

// Clone returns a new source over the same frames, starting at the first.
func (f *FileSource) Clone() *FileSource {
	return &FileSource{media: f.media, loop: f.loop}
}

// Codec implements MediaSource.
func (f *FileSource) Codec() webrtc.RTPCodecCapability { return f.media.codec }

// NextFrame implements MediaSource.
func (f *FileSource) NextFrame() (Frame, error) {
	if f.pos >= len(f.media.frames) {
		if !f.loop {
			return Frame{}, io.EOF
		}
		f.pos = 0
	}
	fr := f.media.frames[f.pos]
	f.pos++
	return fr, nil
}

// Path is the file the source plays.
func (f *FileSource) Path() string { return f.media.path }

// Len is the number of frames in the file.
func (f *FileSource) Len() int { return len(f.media.frames) }

// Duration is how long one pass over the file plays.
func (f *FileSource) Duration() time.Duration {
	var d time.Duration
	for _, fr := range f.media.frames {
		d += fr.Duration
	}
	return d
}

// Hashes returns FrameHash of each frame of the file, in file order: what a
// receiver of this file should see, in a loop.
func (f *FileSource) Hashes() [][32]byte {
	out := make([][32]byte, len(f.media.frames))
	for i, fr := range f.media.frames {
		out[i] = FrameHash(f.media.codec.MimeType, fr.Data)
	}
	return out
}

// readH264 groups the NAL units of an Annex-B stream into access units (H.264
// §7.4.1.2.3: a new one starts at an AUD, SPS, PPS or SEI after a slice, or
// at a slice whose first_mb_in_slice is 0 after a slice).
func readH264(data []byte, fps float64) (*fileMedia, error) {
	r, err := h264reader.NewReaderWithOptions(bytes.NewReader(data), h264reader.WithIncludeSEI(true))
	if err != nil {
		return nil, err
	}
	dur := time.Duration(float64(time.Second) / fps)
	m := &fileMedia{codec: CodecH264}
	var (
		au          []byte
		hasVCL, key bool
		profileSeen bool
	)
	flush := func() {
		if hasVCL {
			m.frames = append(m.frames, Frame{Data: au, Duration: dur, Keyframe: key})
		}
		au, hasVCL, key = nil, false, false
	}
	for {
		nal, err := r.NextNAL()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(nal.Data) == 0 {
			continue
		}
		t := nal.Data[0] & 0x1f
		switch {
		case t == nalAUD || t == nalSPS || t == nalPPS || t == nalSEI || (t >= 14 && t <= 18):
			if hasVCL {
				flush()
			}
		case t >= nalSlice && t <= nalIDR:
			// first_mb_in_slice is ue(v); it is 0 exactly when its first bit is 1.
			if hasVCL && len(nal.Data) > 1 && nal.Data[1]&0x80 != 0 {
				flush()
			}
		}
		switch t {
		case nalAUD, nalFiller:
			continue // payloaders drop them; so do we
		case nalSPS:
			if !profileSeen && len(nal.Data) > 1 {
				m.codec = h264Codec(nal.Data[1])
				profileSeen = true
			}
		case nalIDR:
			key = true
		}
		if t >= nalSlice && t <= nalIDR {
			hasVCL = true
		}
		au = append(au, startCode...)
		au = append(au, nal.Data...)
	}
	flush()
	return m, nil
}

// readIVF reads the frames of a VP8 IVF file.
func readIVF(data []byte) (*fileMedia, error) {
	r, hdr, err := ivfreader.NewWith(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	if hdr.FourCC != "VP80" {
		return nil, fmt.Errorf("%w: IVF codec %q (only VP80 is supported)", ErrUnsupportedMedia, hdr.FourCC)
	}
	num, den := uint64(hdr.TimebaseNumerator), uint64(hdr.TimebaseDenominator)
	// ivfreader gives Timestamp = pts·den/num; the time base is num/den s.
	toDuration := func(dts uint64) time.Duration {
		pts := dts * num / den
		return time.Duration(pts * num * uint64(time.Second) / den)
	}
	m := &fileMedia{codec: CodecVP8}
	var stamps []uint64
	for {
		frame, fh, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		m.frames = append(m.frames, Frame{Data: frame, Keyframe: len(frame) > 0 && frame[0]&1 == 0})
		stamps = append(stamps, fh.Timestamp)
	}
	fallback := time.Second / 30
	for i := range m.frames {
		d := fallback
		if i+1 < len(stamps) && stamps[i+1] > stamps[i] {
			d = toDuration(stamps[i+1] - stamps[i])
		} else if i > 0 {
			d = m.frames[i-1].Duration
		}
		if d <= 0 {
			d = fallback
		}
		m.frames[i].Duration = d
	}
	return m, nil
}

// readOgg reads the Opus packets of an Ogg file. pion's oggreader returns
// whole page payloads; a page may hold several packets, so the lacing values
// of each page (RFC 3533 §6) are read from the file to split them.
func readOgg(data []byte) (*fileMedia, error) {
	rd := bytes.NewReader(data)
	r, head, err := oggreader.NewWith(rd)
	if err != nil {
		return nil, err
	}
	m := &fileMedia{codec: CodecOpus}
	_ = head // Opus on RTP is always opus/48000/2 (RFC 7587), whatever the file's channel count
	var partial []byte
	for {
		pos := len(data) - rd.Len()
		payload, _, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if pos+27 > len(data) {
			return nil, fmt.Errorf("%w: truncated Ogg page", ErrUnsupportedMedia)
		}
		nseg := int(data[pos+26])
		lacing := data[pos+27 : pos+27+nseg]
		off := 0
		for _, l := range lacing {
			n := int(l)
			if off+n > len(payload) {
				return nil, fmt.Errorf("%w: Ogg lacing exceeds page", ErrUnsupportedMedia)
			}
			partial = append(partial, payload[off:off+n]...)
			off += n
			if l < 255 {
				pkt := partial
				partial = nil
				if len(pkt) == 0 || bytes.HasPrefix(pkt, []byte("OpusTags")) || bytes.HasPrefix(pkt, []byte("OpusHead")) {
					continue
				}
				d := opusDuration(pkt)
				if d <= 0 {
					d = 20 * time.Millisecond
				}
				m.frames = append(m.frames, Frame{Data: pkt, Duration: d})
			}
		}
	}
	return m, nil
}

// opusDuration is the play time of an Opus packet from its TOC byte
// (RFC 6716 §3.1), 0 when it cannot be told.
func opusDuration(pkt []byte) time.Duration {
	if len(pkt) == 0 {
		return 0
	}
	toc := pkt[0]
	config := toc >> 3
	var frame time.Duration
	switch {
	case config < 12: // SILK
		frame = [4]time.Duration{10, 20, 40, 60}[config%4] * time.Millisecond
	case config < 16: // hybrid
		frame = [2]time.Duration{10, 20}[config%2] * time.Millisecond
	default: // CELT
		frame = [4]time.Duration{2500, 5000, 10000, 20000}[config%4] * time.Microsecond
	}
	n := 1
	switch toc & 3 {
	case 1, 2:
		n = 2
	case 3:
		if len(pkt) < 2 {
			return 0
		}
		n = int(pkt[1] & 0x3f)
	}
	return frame * time.Duration(n)
}

package loadtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rostrum-dev/rostrum/internal/rtclient"
)

// VideoFileAuto, as MediaOptions.VideoFile, makes the file with ffmpeg.
const VideoFileAuto = "auto"

// VideoFileOptions describe a VP8 file MakeVideoFile encodes.
type VideoFileOptions struct {
	Width, Height    int           // default 1280×720
	FPS              int           // default 30
	Bitrate          int           // bits per second, default 1,400,000
	KeyframeInterval time.Duration // default 1 s
	Length           time.Duration // default 10 s
}

// FFmpegVP8Args are the arguments of the ffmpeg command MakeVideoFile runs
// (without the output path): ffmpeg's moving test pattern encoded by libvpx
// in real-time mode at a constant bitrate, a keyframe every interval. The
// LiveKit side of the comparison (bench/) publishes a file made by the same
// command.
func FFmpegVP8Args(o VideoFileOptions) []string {
	o.defaults()
	rate := strconv.Itoa(o.Bitrate)
	gop := strconv.Itoa(max(1, int(o.KeyframeInterval.Seconds()*float64(o.FPS)+0.5)))
	return []string{
		"-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", o.Width, o.Height, o.FPS),
		"-t", strconv.FormatFloat(o.Length.Seconds(), 'f', -1, 64),
		"-c:v", "libvpx", "-b:v", rate, "-minrate", rate, "-maxrate", rate,
		"-g", gop, "-keyint_min", gop, "-deadline", "realtime", "-cpu-used", "8",
		"-f", "ivf",
	}
}

func (o *VideoFileOptions) defaults() {
	if o.Width <= 0 || o.Height <= 0 {
		o.Width, o.Height = 1280, 720
	}
	if o.FPS <= 0 {
		o.FPS = 30
	}
	if o.Bitrate <= 0 {
		o.Bitrate = 1_400_000
	}
	if o.KeyframeInterval <= 0 {
		o.KeyframeInterval = time.Second
	}
	if o.Length <= 0 {
		o.Length = 10 * time.Second
	}
}

// MakeVideoFile encodes a VP8 IVF file at path with ffmpeg (FFmpegVP8Args).
// It returns rtclient.ErrNoFFmpeg when ffmpeg is not installed.
func MakeVideoFile(ctx context.Context, path string, o VideoFileOptions) error {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return rtclient.ErrNoFFmpeg
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, ffmpeg, append(FFmpegVP8Args(o), path)...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("loadtest: ffmpeg making %s: %w: %s", path, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// videoFile is the file every publisher of a run loops.
type videoFile struct {
	src           *rtclient.FileSource
	temp          string // a directory to remove at the end ("auto")
	width, height int    // from an IVF header; 0 when the file has none
	bitrate       int    // average over one pass
	fps           int
	keyGap        time.Duration // the longest time between keyframes, around the loop
}

// keyframeGate is a publisher's source of the video file that can run a
// function just before a keyframe is sent: the Publisher asks for each
// frame when it is due.
type keyframeGate struct {
	rtclient.MediaSource
	before atomic.Pointer[func()]
}

// NextFrame implements rtclient.MediaSource.
func (g *keyframeGate) NextFrame() (rtclient.Frame, error) {
	f, err := g.MediaSource.NextFrame()
	if err == nil && f.Keyframe {
		if h := g.before.Swap(nil); h != nil {
			(*h)()
		}
	}
	return f, err
}

// atNextKeyframe runs f just before the next keyframe is sent and reports
// whether it did: false if none came within timeout (f did not run then).
func (g *keyframeGate) atNextKeyframe(f func(), timeout time.Duration) bool {
	done := make(chan struct{})
	h := func() {
		f()
		close(done)
	}
	g.before.Store(&h)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		if g.before.CompareAndSwap(&h, nil) {
			return false
		}
		<-done // it is running now
		return true
	}
}

// openVideoFile reads o.VideoFile, making it first if it is "auto".
func openVideoFile(ctx context.Context, o *MediaOptions, progress func(string)) (*videoFile, error) {
	v := &videoFile{}
	path := o.VideoFile
	if path == VideoFileAuto {
		dir, err := os.MkdirTemp("", "rostrum-loadtest-")
		if err != nil {
			return nil, err
		}
		v.temp = dir
		path = dir + "/video.ivf"
		vo := VideoFileOptions{Width: o.Width, Height: o.Height, FPS: o.FPS, Bitrate: o.VideoBitrate, KeyframeInterval: o.KeyframeInterval}
		progress(fmt.Sprintf("making %s: ffmpeg %s", path, strings.Join(FFmpegVP8Args(vo), " ")))
		if err := MakeVideoFile(ctx, path, vo); err != nil {
			v.close()
			return nil, err
		}
	}
	src, err := rtclient.NewFileSource(path)
	if err != nil {
		v.close()
		return nil, fmt.Errorf("loadtest: --video-file: %w", err)
	}
	if kindOfMime(src.Codec().MimeType) != rtclient.KindVideo {
		v.close()
		return nil, fmt.Errorf("loadtest: --video-file %s holds %s, not video", path, src.Codec().MimeType)
	}
	v.src = src
	if d := src.Duration(); d > 0 {
		var (
			size       int64
			sinceKey   time.Duration
			firstKeyAt = time.Duration(-1)
			elapsed    time.Duration
		)
		for range src.Len() {
			f, _ := src.NextFrame()
			size += int64(len(f.Data))
			if f.Keyframe {
				if firstKeyAt < 0 {
					firstKeyAt = elapsed
				} else {
					v.keyGap = max(v.keyGap, sinceKey)
				}
				sinceKey = 0
			}
			sinceKey += f.Duration
			elapsed += f.Duration
		}
		if firstKeyAt < 0 {
			v.keyGap = d // no keyframe at all: the timeout is all there is
		} else {
			v.keyGap = max(v.keyGap, sinceKey+firstKeyAt) // around the loop
		}
		src = src.Clone() // back to the first frame
		v.src = src
		v.bitrate = int(float64(size) * 8 / d.Seconds())
		v.fps = int(float64(src.Len())/d.Seconds() + 0.5)
	}
	if hdr, err := readHead(path, 32); err == nil && bytes.HasPrefix(hdr, []byte("DKIF")) && len(hdr) >= 16 {
		v.width, v.height = int(binary.LittleEndian.Uint16(hdr[12:])), int(binary.LittleEndian.Uint16(hdr[14:]))
	}
	return v, nil
}

func (v *videoFile) close() {
	if v.temp != "" {
		_ = os.RemoveAll(v.temp)
	}
}

func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	k, err := f.Read(b)
	return b[:k], err
}

func kindOfMime(mime string) string {
	if strings.HasPrefix(strings.ToLower(mime), "audio/") {
		return rtclient.KindAudio
	}
	return rtclient.KindVideo
}

// sentTimes remembers when a publisher sent each recent RTP packet of real
// video, keyed by a hash of its payload, which the server forwards
// untouched: real encoded frames have no room for a send time, and the
// subscriber, in the same process and on the same clock, looks the time up.
//
// It is a table of 2^sentSlots slots, each one word written and read
// atomically: the slot is chosen by the low bits of the hash, and holds 24
// more bits of it beside the send time in microseconds since the table was
// made (40 bits: 12 days). A newer packet whose hash picks a taken slot
// overwrites it; a lookup that finds other hash bits there misses, so
// a collision costs a latency sample, never a wrong one. The
// packets in flight at any time are a few hundred against 32,768 slots.
type sentTimes struct {
	base  time.Time
	slots []atomic.Uint64
}

const (
	sentSlotBits = 15
	sentTagBits  = 24
	sentTimeBits = 64 - sentTagBits
)

// payloadSeed keys every hash of a run: recording and lookup are in one
// process.
var payloadSeed = maphash.MakeSeed()

func newSentTimes() *sentTimes {
	return &sentTimes{base: time.Now(), slots: make([]atomic.Uint64, 1<<sentSlotBits)}
}

func (s *sentTimes) slot(payload []byte) (*atomic.Uint64, uint64) {
	h := maphash.Bytes(payloadSeed, payload)
	return &s.slots[h&(1<<sentSlotBits-1)], (h >> sentSlotBits) & (1<<sentTagBits - 1)
}

// record notes that payload was sent at at.
//
// Hot path: once per video packet sent.
func (s *sentTimes) record(payload []byte, at time.Time) {
	us := uint64(at.Sub(s.base).Microseconds()) + 1 // 0 is an empty slot
	sl, tag := s.slot(payload)
	sl.Store(tag<<sentTimeBits | us&(1<<sentTimeBits-1))
}

// lookup returns when payload was sent, if it is remembered.
//
// Hot path: once per video packet received, by every subscriber.
func (s *sentTimes) lookup(payload []byte) (time.Time, bool) {
	sl, tag := s.slot(payload)
	v := sl.Load()
	if v == 0 || v>>sentTimeBits != tag {
		return time.Time{}, false
	}
	us := v&(1<<sentTimeBits-1) - 1
	return s.base.Add(time.Duration(us) * time.Microsecond), true
}

// errNotRTP is returned by rtpPayload for bytes that are not an RTP packet.
var errNotRTP = errors.New("loadtest: not an RTP packet")

// rtpPayload returns the payload of a marshalled RTP packet (RFC 3550 §5.1):
// after the fixed header, the CSRCs and any header extension, before any
// padding.
func rtpPayload(pkt []byte) ([]byte, error) {
	if len(pkt) < 12 || pkt[0]>>6 != 2 {
		return nil, errNotRTP
	}
	off := 12 + 4*int(pkt[0]&0x0f)
	if pkt[0]&0x10 != 0 {
		if len(pkt) < off+4 {
			return nil, errNotRTP
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(pkt[off+2:]))
	}
	end := len(pkt)
	if pkt[0]&0x20 != 0 && end > 0 {
		end -= int(pkt[end-1])
	}
	if off > end {
		return nil, errNotRTP
	}
	return pkt[off:end], nil
}

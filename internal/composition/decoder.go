package composition

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strconv"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4/pkg/media/h264writer"
	"github.com/pion/webrtc/v4/pkg/media/ivfwriter"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"

	"github.com/rostrum-dev/rostrum/internal/composition/layout"
	"github.com/rostrum-dev/rostrum/internal/ffmpeg"
)

// A participant's media is decoded by ffmpeg processes fed through pipes:
// the tap's RTP is turned back into a container ffmpeg reads from stdin
// (H.264 Annex B, VP8 in IVF, Opus in Ogg) by pion's writers, and ffmpeg
// writes raw pictures (I420, already cropped and scaled to the tile by its
// filters, which are SIMD and far cheaper than scaling in Go) or raw PCM to
// stdout. Pipes, not loopback UDP: nothing is lost between the two
// processes and no port is needed.

// rtpSink is what pion's media writers share.
type rtpSink interface {
	WriteRTP(*rtp.Packet) error
	Close() error
}

// proc is one decoding ffmpeg.
type proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   io.ReadCloser
	tail  ffmpeg.Tail
	done  chan struct{}
	err   error
}

func startProc(bin string, args []string) (*proc, error) {
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	ffmpeg.ChildOfServer(p.cmd)
	p.cmd.Stderr = &p.tail
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if p.out, err = p.cmd.StdoutPipe(); err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting ffmpeg: %w", err)
	}
	return p, nil
}

// wait reaps the process once its output has been read to the end.
func (p *proc) wait() {
	p.err = p.cmd.Wait()
	close(p.done)
}

// stop closes ffmpeg's input, so that it ends, and kills it if it has not
// within a second.
func (p *proc) stop() {
	p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// geometry is what a video decoder makes of its source: crop (fractions
// of the source's size, so that a change of resolution with the same
// aspect ratio needs no restart) scaled to w×h.
type geometry struct {
	w, h           int
	cx, cy, cw, ch float64
}

func (g geometry) valid() bool { return g.w >= 2 && g.h >= 2 && g.cw > 0 && g.ch > 0 }

// near says whether two geometries differ by less than a pixel's worth.
func (g geometry) near(o geometry) bool {
	const eps = 0.002
	d := func(a, b float64) bool { return a-b < eps && b-a < eps }
	return g.w == o.w && g.h == o.h && d(g.cx, o.cx) && d(g.cy, o.cy) && d(g.cw, o.cw) && d(g.ch, o.ch)
}

func geometryOf(t layout.Tile, src layout.Size) geometry {
	if t.Dest.Empty() || src.Width <= 0 || src.Height <= 0 || t.Crop.Empty() {
		return geometry{}
	}
	sw, sh := float64(src.Width), float64(src.Height)
	return geometry{w: t.Dest.Width, h: t.Dest.Height,
		cx: float64(t.Crop.X) / sw, cy: float64(t.Crop.Y) / sh, cw: float64(t.Crop.Width) / sw, ch: float64(t.Crop.Height) / sh}
}

// videoDecoder decodes one participant's video to pictures of geometry g.
type videoDecoder struct {
	p    *proc
	g    geometry
	sink rtpSink
	log  *slog.Logger
}

func startVideoDecoder(bin, codec string, g geometry, onFrame func(*frame) *frame, log *slog.Logger) (*videoDecoder, error) {
	demux := "h264"
	if codec == "VP8" {
		demux = "ivf"
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 5, 64) }
	filter := "crop=w=iw*" + f(g.cw) + ":h=ih*" + f(g.ch) + ":x=iw*" + f(g.cx) + ":y=ih*" + f(g.cy) +
		",scale=" + strconv.Itoa(g.w) + ":" + strconv.Itoa(g.h) + ":flags=bilinear,format=yuv420p"
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin",
		"-fflags", "nobuffer", "-flags", "low_delay", "-probesize", "32", "-analyzeduration", "0",
		"-threads", "1", "-f", demux, "-i", "pipe:0", // frame threads would add a frame of delay each, and memory
		"-an", "-filter_threads", "1", "-vf", filter, "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1"}
	p, err := startProc(bin, args)
	if err != nil {
		return nil, err
	}
	d := &videoDecoder{p: p, g: g, log: log}
	if codec == "VP8" {
		w, err := ivfwriter.NewWith(p.stdin, ivfwriter.WithCodec("video/VP8"))
		if err != nil {
			p.cmd.Process.Kill()
			go p.wait()
			return nil, err
		}
		d.sink = w
	} else {
		d.sink = h264writer.NewWith(p.stdin)
	}
	go d.read(onFrame)
	return d, nil
}

// read hands every decoded picture to onFrame, which returns a frame to
// read the next one into (the one it let go of).
func (d *videoDecoder) read(onFrame func(*frame) *frame) {
	defer d.p.wait()
	buf := newFrame(d.g.w, d.g.h)
	for {
		if _, err := io.ReadFull(d.p.out, buf.buf); err != nil {
			d.log.Debug("composition: video decoder ended", "err", err, "ffmpeg", d.p.tail.String())
			return
		}
		if next := onFrame(buf); next != nil && next.w == d.g.w && next.h == d.g.h {
			buf = next
		} else {
			buf = newFrame(d.g.w, d.g.h)
		}
	}
}

func (d *videoDecoder) write(pkt *rtp.Packet) error { return d.sink.WriteRTP(pkt) }

func (d *videoDecoder) stop() {
	go func() { d.p.stop() }()
}

func (d *videoDecoder) exited() bool {
	select {
	case <-d.p.done:
		return true
	default:
		return false
	}
}

// audioDecoder decodes one participant's Opus to the mix's PCM.
type audioDecoder struct {
	p    *proc
	sink rtpSink
}

func startAudioDecoder(bin string, clock uint32, chans uint16, buf *audioBuffer) (*audioDecoder, error) {
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin",
		"-fflags", "nobuffer", "-probesize", "32768", "-analyzeduration", "0",
		"-f", "ogg", "-i", "pipe:0",
		"-vn", "-f", "s16le", "-ar", strconv.Itoa(sampleRate), "-ac", strconv.Itoa(channels), "pipe:1"}
	p, err := startProc(bin, args)
	if err != nil {
		return nil, err
	}
	if chans == 0 {
		chans = 2
	}
	w, err := oggwriter.NewWith(p.stdin, clock, chans)
	if err != nil {
		p.cmd.Process.Kill()
		go p.wait()
		return nil, err
	}
	d := &audioDecoder{p: p, sink: w}
	go d.read(buf)
	return d, nil
}

func (d *audioDecoder) read(buf *audioBuffer) {
	defer d.p.wait()
	raw := make([]byte, chunkSamples*2)
	s := make([]int16, chunkSamples)
	have := 0
	for {
		n, err := d.p.out.Read(raw[have:])
		have += n
		whole := have &^ 3 // whole stereo frames; the rest waits for its other bytes
		for i := 0; i < whole/2; i++ {
			s[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
		}
		if whole > 0 {
			buf.write(s[:whole/2])
		}
		have = copy(raw, raw[whole:have])
		if err != nil {
			return
		}
	}
}

func (d *audioDecoder) stop() { go d.p.stop() }

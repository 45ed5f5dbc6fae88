package composition

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"

	"github.com/rostrum-dev/rostrum/internal/composition/layout"
	"github.com/rostrum-dev/rostrum/internal/ffmpeg"
)

// encoder is the one long-lived ffmpeg of a composition: it reads the
// mixed picture (raw I420 on stdin) and the mixed sound (s16le on fd 3) at
// the composition's pace, and writes one FLV stream (H.264 + AAC) per
// encoder configuration on fds 4, 5, …. Because it never restarts while the
// composition runs, the outputs see one continuous stream across every
// change of layout.
type encoder struct {
	cmd   *exec.Cmd
	video io.WriteCloser
	audio *os.File
	tail  ffmpeg.Tail
	done  chan struct{}
	err   error
	copy  sync.WaitGroup
}

// encodeOut is one encode and where its FLV goes.
type encodeOut struct {
	Encoder Encoder
	W       io.Writer
}

// x264Preset trades CPU for quality: veryfast keeps a 1080p30 grid of four
// at about 0.4 of a core for the encoder (docs/performance.md).
const x264Preset = "veryfast"

func encoderArgs(canvas layout.Size, fps float64, outs []encodeOut, preset string) []string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	args := []string{"-hide_banner", "-loglevel", "warning", "-nostdin",
		"-f", "rawvideo", "-pix_fmt", "yuv420p", "-video_size", strconv.Itoa(canvas.Width) + "x" + strconv.Itoa(canvas.Height),
		"-framerate", f(fps), "-thread_queue_size", "64", "-i", "pipe:0",
		"-f", "s16le", "-ar", strconv.Itoa(sampleRate), "-ac", strconv.Itoa(channels), "-thread_queue_size", "1024", "-i", "pipe:3",
	}
	for i, o := range outs {
		e := o.Encoder
		gop := int(2*e.Framerate + 0.5) // a keyframe every 2 s: HLS segments and RTMP joins
		args = append(args, "-map", "0:v", "-map", "1:a")
		if e.Width != canvas.Width || e.Height != canvas.Height {
			args = append(args, "-vf", "scale="+strconv.Itoa(e.Width)+":"+strconv.Itoa(e.Height)+":flags=bilinear")
		}
		if e.Framerate != fps {
			args = append(args, "-r", f(e.Framerate))
		}
		br := strconv.Itoa(e.Bitrate)
		args = append(args,
			"-c:v", "libx264", "-preset", preset, "-profile:v", "main", "-pix_fmt", "yuv420p",
			"-bf", "0", "-g", strconv.Itoa(gop), "-keyint_min", strconv.Itoa(gop), "-sc_threshold", "0",
			"-b:v", br, "-maxrate", br, "-bufsize", strconv.Itoa(2*e.Bitrate),
			"-c:a", "aac", "-b:a", "128k", "-ar", strconv.Itoa(sampleRate), "-ac", strconv.Itoa(channels),
			"-flvflags", "no_duration_filesize", "-f", "flv", "pipe:"+strconv.Itoa(4+i))
	}
	return args
}

func startEncoder(bin string, canvas layout.Size, fps float64, outs []encodeOut, preset string) (*encoder, error) {
	e := &encoder{done: make(chan struct{})}
	e.cmd = exec.Command(bin, encoderArgs(canvas, fps, outs, preset)...)
	ffmpeg.ChildOfServer(e.cmd)
	e.cmd.Stderr = &e.tail
	var err error
	if e.video, err = e.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	var closeAfterStart []*os.File
	ar, aw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	e.audio = aw
	closeAfterStart = append(closeAfterStart, ar)
	e.cmd.ExtraFiles = []*os.File{ar}
	readers := make([]*os.File, len(outs))
	for i := range outs {
		r, w, err := os.Pipe()
		if err != nil {
			for _, f := range closeAfterStart {
				f.Close()
			}
			return nil, err
		}
		readers[i] = r
		e.cmd.ExtraFiles = append(e.cmd.ExtraFiles, w)
		closeAfterStart = append(closeAfterStart, w)
	}
	err = e.cmd.Start()
	for _, f := range closeAfterStart {
		f.Close() // the child has its own copies
	}
	if err != nil {
		aw.Close()
		for _, r := range readers {
			r.Close()
		}
		return nil, fmt.Errorf("starting the encoder: %w", err)
	}
	for i, r := range readers {
		e.copy.Add(1)
		go func(r *os.File, w io.Writer) {
			defer e.copy.Done()
			defer r.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := r.Read(buf)
				if n > 0 {
					w.Write(buf[:n]) // a failing output keeps failing on its own; the encode goes on
				}
				if err != nil {
					return
				}
			}
		}(r, outs[i].W)
	}
	go func() {
		e.err = e.cmd.Wait()
		e.copy.Wait()
		close(e.done)
	}()
	return e, nil
}

// finish ends the inputs, lets ffmpeg flush its encoders and close the FLV
// streams, and waits for it (killing it after a few seconds).
func (e *encoder) finish() error {
	e.video.Close()
	e.audio.Close()
	return e.wait()
}

func (e *encoder) wait() error {
	<-e.done
	if e.err != nil {
		return fmt.Errorf("%w: %s", e.err, e.tail.String())
	}
	return nil
}

func (e *encoder) kill() {
	e.cmd.Process.Kill()
	e.video.Close()
	e.audio.Close()
}

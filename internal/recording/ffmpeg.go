package recording

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/rostrum-dev/rostrum/internal/ffmpeg"
	"github.com/rostrum-dev/rostrum/internal/sfu"
)

// MediaTypes is what a recording keeps (the model's ParticipantRecordingMediaType).
type MediaTypes string

const (
	AudioVideo MediaTypes = "AUDIO_VIDEO"
	AudioOnly  MediaTypes = "AUDIO_ONLY"
	NoMedia    MediaTypes = "NONE" // thumbnails only
)

// runConfig is what one ffmpeg run makes.
type runConfig struct {
	dir              string // the run's spool folder
	tracks           []sfu.TapTrack
	media            MediaTypes
	segmentSeconds   int
	thumbnailSeconds int // 0: no thumbnails
	firstSegment     int // numbering continues across runs
	firstThumbnail   int
	initName         string // e.g. init-0.mp4
	ffmpeg           string // the binary
	log              *slog.Logger
	// report gives a track's sender report (sfu.Tap.SenderReport).
	report func(track int) (ntp uint64, rtpTime uint32, ok bool)
}

var (
	// ErrToolkit is ffmpeg missing, failing to start, or failing.
	ErrToolkit = errors.New("recording: the media toolkit (ffmpeg) failed")
	// errNothingToRecord: no track the media types ask for.
	errNothingToRecord = errors.New("recording: the publisher has no track to record")
)

// run is one ffmpeg process turning one publisher connection's RTP into
// HLS segments and thumbnails in cfg.dir.
type run struct {
	cfg     runConfig
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	done    chan struct{} // closed when ffmpeg has exited
	err     error         // ffmpeg's exit, valid after done
	logPath string        // ffmpeg's log file, in the run's folder

	outs []*trackOut // per tap track; nil for tracks not recorded

	stopReports chan struct{}
	wg          sync.WaitGroup
}

// trackOut sends one track's RTP and RTCP to ffmpeg.
type trackOut struct {
	rtp, rtcp *net.UDPConn
	buf       []byte // marshal buffer, used only on the track's reader goroutine
	packets   atomic.Uint32
	octets    atomic.Uint32
	ssrc      uint32
}

// wantTrack reports whether a track of kind k is recorded.
func (c *runConfig) wantTrack(k sfu.Kind) bool {
	switch c.media {
	case AudioVideo:
		return true
	case AudioOnly:
		return k == sfu.Audio
	default: // thumbnails only
		return k == sfu.Video && c.thumbnailSeconds > 0
	}
}

// startRun starts ffmpeg on the tracks of cfg. The returned run accepts
// packets at once: ffmpeg has bound its ports when startRun returns.
func startRun(ctx context.Context, cfg runConfig) (*run, error) {
	if err := os.MkdirAll(filepath.Join(cfg.dir, "hls"), 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.dir, "thumbnails"), 0o755); err != nil {
		return nil, err
	}
	var lastErr error
	// ffmpeg binds the ports the SDP names; a port taken between choosing
	// it and ffmpeg binding it makes ffmpeg exit at once, so try again.
	for range 3 {
		r, err := tryStartRun(ctx, cfg)
		if err == nil {
			return r, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func tryStartRun(ctx context.Context, cfg runConfig) (*run, error) {
	r := &run{cfg: cfg, done: make(chan struct{}), stopReports: make(chan struct{})}
	var sdp strings.Builder
	sdp.WriteString("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=rostrum recording\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n")
	var hasVideo, hasAudio bool
	r.outs = make([]*trackOut, len(cfg.tracks))
	for i, t := range cfg.tracks {
		if !cfg.wantTrack(t.Kind) || (t.Kind == sfu.Video && hasVideo) || (t.Kind == sfu.Audio && hasAudio) {
			continue // one audio and one video track: what IVS's clients publish
		}
		port, err := freePortPair()
		if err != nil {
			r.closeOuts()
			return nil, err
		}
		out, err := dialPair(port)
		if err != nil {
			r.closeOuts()
			return nil, err
		}
		out.ssrc = t.SSRC
		r.outs[i] = out
		fmt.Fprintf(&sdp, "m=%s %d RTP/AVP %d\r\n", t.Kind, port, t.PT)
		rtpmap := fmt.Sprintf("%s/%d", t.Codec, t.Clock)
		if t.Kind == sfu.Audio && t.Channels > 0 {
			rtpmap += "/" + strconv.Itoa(int(t.Channels))
		}
		fmt.Fprintf(&sdp, "a=rtpmap:%d %s\r\n", t.PT, rtpmap)
		if t.Fmtp != "" {
			fmt.Fprintf(&sdp, "a=fmtp:%d %s\r\n", t.PT, t.Fmtp)
		}
		if t.Kind == sfu.Video {
			hasVideo = true
		} else {
			hasAudio = true
		}
	}
	if !hasVideo && !hasAudio {
		return nil, errNothingToRecord
	}
	sdpPath := filepath.Join(cfg.dir, "input.sdp")
	if err := os.WriteFile(sdpPath, []byte(sdp.String()), 0o644); err != nil {
		r.closeOuts()
		return nil, err
	}
	args := ffmpegArgs(cfg, sdpPath, hasVideo, hasAudio, r.videoCodec())
	cmd := exec.Command(cfg.ffmpeg, args...)
	cmd.Dir = cfg.dir
	ffmpeg.ChildOfServer(cmd)
	cmd.Stdout = io.Discard
	// ffmpeg's log goes to a file, not to a pipe to this process: if the
	// server dies, a pipe would kill ffmpeg with SIGPIPE at its next log
	// line, in the middle of finishing its files.
	logf, err := os.Create(filepath.Join(cfg.dir, "ffmpeg.log"))
	if err != nil {
		r.closeOuts()
		return nil, err
	}
	defer logf.Close() // the child has its own copy
	r.logPath = logf.Name()
	cmd.Stderr = logf
	stdin, err := cmd.StdinPipe()
	if err != nil {
		r.closeOuts()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		r.closeOuts()
		return nil, fmt.Errorf("%w: %v", ErrToolkit, err)
	}
	r.cmd, r.stdin = cmd, stdin
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()
	// ffmpeg reads the SDP and binds its ports within moments; one that
	// exits now could not (a port taken, a bad SDP).
	select {
	case <-r.done:
		r.closeOuts()
		return nil, fmt.Errorf("%w: ffmpeg exited at start (%v): %s", ErrToolkit, r.err, r.logTail())
	case <-time.After(300 * time.Millisecond):
	case <-ctx.Done():
		r.kill()
		return nil, ctx.Err()
	}
	r.wg.Add(1)
	go r.sendReports()
	return r, nil
}

// videoCodec is the codec of the recorded video track, or "".
func (r *run) videoCodec() string {
	for i, t := range r.cfg.tracks {
		if t.Kind == sfu.Video && r.outs[i] != nil {
			return t.Codec
		}
	}
	return ""
}

// ffmpegArgs builds the command line of one run.
func ffmpegArgs(cfg runConfig, sdpPath string, video, audio bool, videoCodec string) []string {
	remux := strings.EqualFold(videoCodec, "H264")
	// No -nostdin: "q" on standard input is the fallback way to end a run.
	args := []string{"-hide_banner", "-nostats", "-loglevel", "warning",
		"-protocol_whitelist", "file,udp,rtp",
		// The input ends when neither RTP nor RTCP has come for this long:
		// how a run ends (stop). While the publisher is silent, the
		// sender reports every reportInterval keep it open.
		"-listen_timeout", strconv.Itoa(int(inputTimeout / time.Second)),
		// Hold reordered packets a little longer than ffmpeg's default
		// before declaring them lost; the engine already retransmits.
		"-reorder_queue_size", "200",
		"-buffer_size", "4194304",
	}
	if video && remux {
		// The HLS output copies H.264 as it arrived; only the thumbnails
		// decode, and keyframes are enough for them.
		args = append(args, "-skip_frame", "nokey")
	}
	args = append(args, "-i", sdpPath)
	if cfg.media != NoMedia {
		if video && cfg.media == AudioVideo {
			args = append(args, "-map", "0:v:0")
			if remux {
				args = append(args, "-c:v", "copy")
			} else {
				// A keyframe at every segment boundary, so that segments
				// cut where they are asked to.
				args = append(args, "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
					"-profile:v", "high", "-pix_fmt", "yuv420p",
					"-force_key_frames", fmt.Sprintf("expr:gte(t,n_forced*%d)", max(1, cfg.segmentSeconds)))
			}
		}
		if audio {
			args = append(args, "-map", "0:a:0", "-c:a", "aac", "-b:a", "128k", "-ar", "48000")
		}
		args = append(args,
			"-f", "hls",
			"-hls_time", strconv.Itoa(cfg.segmentSeconds),
			"-hls_segment_type", "fmp4",
			"-hls_fmp4_init_filename", cfg.initName,
			"-hls_segment_filename", filepath.Join("hls", "%d.mp4"),
			"-start_number", strconv.Itoa(cfg.firstSegment),
			"-hls_list_size", "0",
			"-hls_playlist_type", "event",
			"-hls_flags", "temp_file+independent_segments",
			filepath.Join("hls", "playlist.m3u8"),
		)
	}
	if video && cfg.thumbnailSeconds > 0 {
		args = append(args,
			"-map", "0:v:0",
			"-vf", fmt.Sprintf("fps=1/%d", cfg.thumbnailSeconds),
			"-q:v", "3",
			"-f", "image2",
			"-start_number", strconv.Itoa(cfg.firstThumbnail),
			"-atomic_writing", "1",
			filepath.Join("thumbnails", "%d.jpg"),
		)
	}
	return args
}

// writeRTP sends one packet of tap track i to ffmpeg. It runs on the
// engine's reader goroutine of that track: it must not block.
func (r *run) writeRTP(i int, h *rtp.Header, payload []byte) {
	if i < 0 || i >= len(r.outs) || r.outs[i] == nil {
		return
	}
	o := r.outs[i]
	n, err := h.MarshalTo(o.buf)
	if err != nil || n+len(payload) > len(o.buf) {
		return
	}
	n += copy(o.buf[n:], payload)
	if _, err := o.rtp.Write(o.buf[:n]); err != nil {
		return // ffmpeg gone: the recording notices it exit
	}
	o.packets.Add(1)
	o.octets.Add(uint32(len(payload)))
}

// inputTimeout is how long ffmpeg waits for a packet before it ends its
// input (ffmpeg's -listen_timeout, whole seconds); reportInterval is how
// often the sender reports go out, well within it.
const (
	inputTimeout   = 2 * time.Second
	reportInterval = 500 * time.Millisecond
)

// sendReports sends each recorded track's sender report to ffmpeg every
// reportInterval: ffmpeg aligns audio and video by them, and they keep its
// input open while the publisher sends nothing.
func (r *run) sendReports() {
	defer r.wg.Done()
	t := time.NewTicker(reportInterval)
	defer t.Stop()
	buf := make([]byte, 64)
	for {
		select {
		case <-r.stopReports:
			return
		case <-t.C:
		}
		for i, o := range r.outs {
			if o == nil || r.cfg.report == nil {
				continue
			}
			ntp, rtpTime, ok := r.cfg.report(i)
			if !ok {
				continue
			}
			sr := rtcp.SenderReport{SSRC: o.ssrc, NTPTime: ntp, RTPTime: rtpTime, PacketCount: o.packets.Load(), OctetCount: o.octets.Load()}
			b, err := sr.Marshal()
			if err != nil || len(b) > len(buf) {
				continue
			}
			_, _ = o.rtcp.Write(b)
		}
	}
}

// stop ends ffmpeg gracefully (it finishes the last segment and its
// playlist), killing it if it has not exited by the deadline. It returns
// ffmpeg's error, if it failed.
func (r *run) stop(timeout time.Duration) error {
	close(r.stopReports)
	r.wg.Wait()
	r.closeOuts()
	// With nothing more coming (no RTP, no sender reports), ffmpeg's input
	// times out after inputTimeout, and ffmpeg finishes: everything it had
	// received goes into the last segment and the playlist gets its end. A
	// signal would not do better: ffmpeg reads "q" or a first SIGINT only
	// between packets, and a second SIGINT, which interrupts a blocked
	// read, also interrupts the writing of the last segment.
	_ = r.stdin.Close()
	select {
	case <-r.done:
	case <-time.After(inputTimeout + 3*time.Second):
		_ = r.cmd.Process.Signal(os.Interrupt)
		select {
		case <-r.done:
		case <-time.After(timeout):
			r.kill()
			<-r.done
			return fmt.Errorf("%w: ffmpeg did not finish within %s", ErrToolkit, inputTimeout+3*time.Second+timeout)
		}
	}
	// ffmpeg reports its input's timeout (how a run ends) with an exit
	// status: what counts is that it finished its playlist.
	if r.err != nil && !r.finishedPlaylist() {
		return fmt.Errorf("%w: ffmpeg: %v: %s", ErrToolkit, r.err, r.logTail())
	}
	return nil
}

// finishedPlaylist reports whether ffmpeg ended its media playlist (or had
// none to write: thumbnails only).
func (r *run) finishedPlaylist() bool {
	if r.cfg.media == NoMedia {
		return true
	}
	b, err := os.ReadFile(filepath.Join(r.cfg.dir, "hls", "playlist.m3u8"))
	if err != nil {
		return false
	}
	_, ended := readFFmpegPlaylist(b)
	return ended
}

func (r *run) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
	}
}

func (r *run) closeOuts() {
	for _, o := range r.outs {
		if o != nil {
			_ = o.rtp.Close()
			_ = o.rtcp.Close()
		}
	}
}

// exited reports whether ffmpeg has stopped by itself.
func (r *run) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// freePortPair finds an even UDP port p on loopback with p+1 free too
// (RTP and RTCP, as ffmpeg binds them).
func freePortPair() (int, error) {
	for range 50 {
		a, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return 0, err
		}
		p := a.LocalAddr().(*net.UDPAddr).Port
		if p%2 != 0 || p+1 > 65535 {
			_ = a.Close()
			continue
		}
		b, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p + 1})
		_ = a.Close()
		if err != nil {
			continue
		}
		_ = b.Close()
		return p, nil
	}
	return 0, errors.New("recording: no free pair of UDP ports on loopback")
}

func dialPair(port int) (*trackOut, error) {
	lo := net.IPv4(127, 0, 0, 1)
	a, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: lo, Port: port})
	if err != nil {
		return nil, err
	}
	b, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: lo, Port: port + 1})
	if err != nil {
		_ = a.Close()
		return nil, err
	}
	_ = a.SetWriteBuffer(1 << 20)
	return &trackOut{rtp: a, rtcp: b, buf: make([]byte, 1600)}, nil
}

// logTail is the end of ffmpeg's log, for errors.
func (r *run) logTail() string {
	b, err := os.ReadFile(r.logPath)
	if err != nil {
		return ""
	}
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return strings.TrimSpace(string(b))
}

package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// AAC to Opus. RTMP encoders send AAC; WebRTC subscribers take Opus. One
// ffmpeg per ingest (the project's media toolkit, as for recording)
// decodes the AAC it reads as ADTS on stdin and writes Opus, 20 ms a
// packet, as Ogg on stdout, one page per packet so that nothing waits in
// ffmpeg's muxer. Ogg is parsed here: it is the one container that gives
// back exactly the Opus packets the encoder made, in order, over a pipe.

// opusFrameSamples is 20 ms at 48 kHz: the RTP timestamp step between two
// packets of the transcoder.
const opusFrameSamples = 960

// errAudioCodec: the AAC is not one the transcoder takes.
var errAudioCodec = errors.New("ingest: audio is not AAC-LC")

// checkAAC accepts what IVS's RTMP ingest takes: AAC-LC (1 or 2 channels;
// other rates than 44.1 and 48 kHz are resampled rather than refused).
func checkAAC(c *mpeg4audio.AudioSpecificConfig) error {
	if c == nil {
		return fmt.Errorf("%w: no AudioSpecificConfig", errAudioCodec)
	}
	if c.Type != mpeg4audio.ObjectTypeAACLC {
		return fmt.Errorf("%w: object type %d", errAudioCodec, c.Type)
	}
	if c.ChannelConfig < 1 || c.ChannelConfig > 2 {
		return fmt.Errorf("%w: channel configuration %d (1 or 2 channels are taken)", errAudioCodec, c.ChannelConfig)
	}
	return nil
}

// transcoder is one ffmpeg turning AAC into Opus packets.
type transcoder struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	conf  *mpeg4audio.AudioSpecificConfig
	log   *slog.Logger

	in   chan []byte // ADTS frames for the writer goroutine
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once

	stderr bytes.Buffer // ffmpeg's complaints, for the log
	errMu  sync.Mutex

	// AAC frames dropped, and when that was last logged (push's caller,
	// the stream's read loop, only).
	dropped    int64
	droppedLog time.Time
}

// transcoderQueue bounds the AAC frames waiting for ffmpeg: about 10 s at
// 44.1 kHz. A stalled ffmpeg loses audio rather than stalling the video
// that is read from the same connection.
const transcoderQueue = 430

// startTranscoder starts ffmpeg for a stream of AAC described by conf;
// onPacket gets each Opus packet (on the transcoder's reader goroutine).
func startTranscoder(ffmpeg string, conf *mpeg4audio.AudioSpecificConfig, onPacket func([]byte), log *slog.Logger) (*transcoder, error) {
	args := []string{
		"-hide_banner", "-loglevel", "error", "-nostats",
		// Start decoding at once: ADTS says everything about the stream.
		"-fflags", "+nobuffer", "-probesize", "32", "-analyzeduration", "0",
		"-f", "aac", "-i", "pipe:0",
		"-vn", "-c:a", "libopus", "-b:a", "96k", "-ar", "48000", "-ac", "2",
		"-frame_duration", "20", "-application", "audio",
		"-f", "ogg", "-page_duration", "20000", "-flush_packets", "1", "pipe:1",
	}
	cmd := exec.Command(ffmpeg, args...)
	childOfServer(cmd)
	t := &transcoder{cmd: cmd, conf: conf, log: log, in: make(chan []byte, transcoderQueue), done: make(chan struct{})}
	cmd.Stderr = &lockedWriter{mu: &t.errMu, w: &t.stderr}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("ingest: starting ffmpeg (%s) for AAC to Opus: %w", ffmpeg, err)
	}
	t.stdin = stdin
	t.wg.Add(2)
	go t.write()
	go t.read(stdout, onPacket)
	return t, nil
}

// push queues one AAC access unit, without blocking.
func (t *transcoder) push(au []byte) {
	pkts := mpeg4audio.ADTSPackets{{Type: t.conf.Type, SampleRate: t.conf.SampleRate, ChannelConfig: t.conf.ChannelConfig, AU: au}}
	b, err := pkts.Marshal()
	if err != nil {
		t.log.Debug("AAC frame not framed as ADTS", "err", err)
		return
	}
	select {
	case t.in <- b:
	case <-t.done:
	default:
		// An encoder that sends audio faster than real time, or an
		// ffmpeg starved of CPU: said once in a while, not per frame.
		if t.dropped++; t.dropped == 1 || time.Since(t.droppedLog) > 10*time.Second {
			t.log.Warn("ffmpeg falls behind: AAC frames are dropped", "dropped", t.dropped)
			t.droppedLog = time.Now()
		}
	}
}

func (t *transcoder) write() {
	defer t.wg.Done()
	defer t.stdin.Close()
	for {
		select {
		case b := <-t.in:
			if _, err := t.stdin.Write(b); err != nil {
				return
			}
		case <-t.done:
			return
		}
	}
}

// read parses ffmpeg's Ogg stream and hands on the Opus packets that
// follow the two header packets (OpusHead, OpusTags).
func (t *transcoder) read(stdout io.Reader, onPacket func([]byte)) {
	defer t.wg.Done()
	r := oggReader{r: bufio.NewReaderSize(stdout, 64<<10)}
	headers := 0
	for {
		pkt, err := r.next()
		if err != nil {
			select {
			case <-t.done:
			default:
				// ffmpeg died under a live stream: its video goes on,
				// its audio stops (say so; nothing restarts it).
				t.errMu.Lock()
				msg := strings.TrimSpace(t.stderr.String())
				t.errMu.Unlock()
				t.log.Warn("the AAC to Opus transcoder ended: the stream's audio stops", "err", err, "ffmpeg", msg)
			}
			io.Copy(io.Discard, stdout) // let ffmpeg finish writing
			return
		}
		if headers < 2 {
			headers++
			continue
		}
		onPacket(pkt)
	}
}

// close stops ffmpeg and waits for it; it returns what ffmpeg complained
// of when it did not end cleanly.
func (t *transcoder) close() error {
	t.once.Do(func() { close(t.done) })
	waited := make(chan error, 1)
	go func() { t.wg.Wait(); waited <- t.cmd.Wait() }()
	var err error
	select {
	case err = <-waited:
	case <-time.After(5 * time.Second):
		_ = t.cmd.Process.Kill()
		err = <-waited
	}
	if err != nil {
		t.errMu.Lock()
		msg := strings.TrimSpace(t.stderr.String())
		t.errMu.Unlock()
		return fmt.Errorf("ingest: ffmpeg: %v: %s", err, msg)
	}
	return nil
}

// pid is ffmpeg's process id (for measuring its cost).
func (t *transcoder) pid() int { return t.cmd.Process.Pid }

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w.Len() < 8<<10 {
		w.w.Write(b)
	}
	return len(b), nil
}

// oggReader splits an Ogg stream (RFC 3533) into packets. One logical
// stream is expected (ffmpeg writes one); CRCs are not checked, since the
// bytes come over a local pipe, nor granule positions, since every packet
// is 20 ms.
type oggReader struct {
	r       *bufio.Reader
	partial []byte   // a packet continued on the next page
	queue   [][]byte // packets of the current page not returned yet
	hdr     [27]byte
	segs    [255]byte
}

var errOgg = errors.New("ingest: malformed Ogg from ffmpeg")

func (o *oggReader) next() ([]byte, error) {
	for len(o.queue) == 0 {
		if err := o.page(); err != nil {
			return nil, err
		}
	}
	p := o.queue[0]
	o.queue = o.queue[1:]
	return p, nil
}

func (o *oggReader) page() error {
	if _, err := io.ReadFull(o.r, o.hdr[:]); err != nil {
		return err
	}
	if string(o.hdr[:4]) != "OggS" || o.hdr[4] != 0 {
		return errOgg
	}
	n := int(o.hdr[26])
	if _, err := io.ReadFull(o.r, o.segs[:n]); err != nil {
		return err
	}
	size := 0
	for _, s := range o.segs[:n] {
		size += int(s)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(o.r, body); err != nil {
		return err
	}
	continued := o.hdr[5]&0x01 != 0
	if !continued {
		o.partial = o.partial[:0]
	}
	off := 0
	for _, s := range o.segs[:n] {
		o.partial = append(o.partial, body[off:off+int(s)]...)
		off += int(s)
		if s < 255 {
			o.queue = append(o.queue, o.partial)
			o.partial = nil
		}
	}
	return nil
}

package output

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"sync"

	"github.com/rostrum-dev/rostrum/internal/ffmpeg"
)

// States of a destination, as the API names them (composition.State*;
// this package does not import composition, which imports it).
const (
	StateStarting     = "STARTING"
	StateActive       = "ACTIVE"
	StateReconnecting = "RECONNECTING"
	StateStopping     = "STOPPING"
	StateStopped      = "STOPPED"
	StateFailed       = "FAILED"
)

// StateFunc is told every state change of an output, in order, from the
// output's own goroutine; reason says why for RECONNECTING and FAILED. It
// must not block for long, nor call the output's Stop.
type StateFunc func(state, reason string)

// transition reports whether an output in state from may go to state to:
// a change (a new reason alone is not one: an outage is one RECONNECTING
// however often its attempts fail), never out of a final state, nor back
// to running once STOPPING.
func transition(from, to string) bool {
	switch {
	case from == to:
		return false
	case from == StateStopped || from == StateFailed:
		return false
	case from == StateStopping:
		return to == StateStopped || to == StateFailed
	}
	return true
}

// status is an output's state as its OnState hears it: changes follow
// transition, and are told in the order they happen, even when Stop and
// the output's own goroutines change the state at once.
type status struct {
	what    string // the output, for logs: "rtmp output", "hls output"
	log     *slog.Logger
	onState StateFunc

	setMu         sync.Mutex // held while a change is told
	mu            sync.Mutex
	state, reason string
}

func (s *status) get() (state, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, s.reason
}

func (s *status) set(state, reason string) {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	s.mu.Lock()
	if !transition(s.state, state) {
		if s.state == state {
			s.reason = reason // the latest, for get
		}
		s.mu.Unlock()
		return
	}
	s.state, s.reason = state, reason
	s.mu.Unlock()
	if state == StateReconnecting || state == StateFailed {
		s.log.Warn(s.what, "state", state, "reason", reason)
	} else {
		s.log.Info(s.what, "state", state)
	}
	s.onState(state, reason)
}

// ErrToolkit is ffmpeg missing or failing to start.
var ErrToolkit = errors.New("output: the media toolkit (ffmpeg) failed")

// inputArgs read an flv.Reader on standard input. The reader begins with
// everything ffmpeg needs to know (the metadata, both sequence headers,
// then a keyframe), so ffmpeg need not count frames to guess the frame
// rate (-fpsprobesize 0): that probe held the output back by about 1.4 s
// of media; without it ffmpeg starts writing within 0.1 s.
var inputArgs = []string{"-fpsprobesize", "0", "-f", "flv", "-i", "pipe:0"}

// findFFmpeg is bin, or ffmpeg on PATH.
func findFFmpeg(bin string) (string, error) {
	p, err := ffmpeg.Find(bin)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrToolkit, err)
	}
	return p, nil
}

// proc is one ffmpeg process reading an FLV reader on its standard input.
type proc struct {
	cmd   *exec.Cmd
	src   io.ReadCloser
	in    io.WriteCloser
	done  chan struct{} // closed when ffmpeg has exited and the pipes are done
	err   error         // ffmpeg's exit, valid after done
	inErr error         // why feeding ffmpeg ended: io.EOF at the stream's end
	log   ffmpeg.Tail
}

// startProc starts ffmpeg with args, feeding it src, which it closes once
// ffmpeg has exited; onProgress, if set, gets each "key=value" line of
// -progress pipe:1. dir is its working folder ("" for none).
func startProc(bin string, args []string, dir string, src io.ReadCloser, onProgress func(key, value string)) (*proc, error) {
	p := &proc{done: make(chan struct{}), src: src}
	started := false
	defer func() {
		if !started {
			_ = src.Close()
		}
	}()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	// Dies with the server: a killed server leaves no ffmpeg pushing.
	ffmpeg.ChildOfServer(cmd)
	cmd.Stderr = &p.log
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	var out io.ReadCloser
	if onProgress != nil {
		if out, err = cmd.StdoutPipe(); err != nil {
			return nil, err
		}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrToolkit, err)
	}
	started = true
	p.cmd, p.in = cmd, in
	var wg sync.WaitGroup
	if out != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if k, v, ok := strings.Cut(sc.Text(), "="); ok {
					onProgress(strings.TrimSpace(k), strings.TrimSpace(v))
				}
			}
			_, _ = io.Copy(io.Discard, out)
		}()
	}
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		_, err := io.Copy(in, src)
		if err == nil {
			err = io.EOF
		}
		p.inErr = err
		// The end of the input (the stream ended, the reader was closed or
		// cut off) ends ffmpeg's input: it finishes its outputs and exits.
		_ = in.Close()
	}()
	go func() {
		wg.Wait() // stdout read to its end before Wait closes it
		p.err = cmd.Wait()
		// The feeder may wait for the stream's next bytes: closing the
		// reader ends it now.
		_ = src.Close()
		<-fed
		close(p.done)
	}()
	return p, nil
}

func (p *proc) kill() { _ = p.cmd.Process.Kill() }

// closeInput ends ffmpeg's input: it finishes its outputs and exits.
func (p *proc) closeInput() error { return p.src.Close() }

// exitReason is the gist of why ffmpeg ended: the last lines it logged
// (it logs errors only), without ffmpeg's "[component @ 0x…] " prefixes.
func (p *proc) exitReason() string {
	lines := strings.Split(p.log.String(), "\n")
	var out []string
	for i := len(lines) - 1; i >= 0 && len(out) < 3; i-- {
		l := strings.TrimSpace(lines[i])
		if strings.HasPrefix(l, "[") {
			if j := strings.Index(l, "] "); j > 0 && strings.Contains(l[:j], " @ 0x") {
				l = l[j+2:]
			}
		}
		if l != "" {
			out = append([]string{l}, out...)
		}
	}
	msg := strings.Join(out, "; ")
	if msg == "" && p.err != nil {
		msg = "ffmpeg: " + p.err.Error()
	}
	return msg
}

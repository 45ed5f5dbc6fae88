// Package ffmpeg holds what Rostrum's users of ffmpeg processes share:
// finding the binary, tying a child's life to the server's, and keeping the
// end of its log for error messages.
package ffmpeg

import (
	"errors"
	"os/exec"
	"strings"
	"sync"
)

// ErrMissing: no ffmpeg on this machine.
var ErrMissing = errors.New("ffmpeg is not installed (Debian: apt-get install ffmpeg)")

// Find returns the path of ffmpeg: path when set, else the one on $PATH.
func Find(path string) (string, error) {
	if path == "" {
		path = "ffmpeg"
	}
	p, err := exec.LookPath(path)
	if err != nil {
		return "", ErrMissing
	}
	return p, nil
}

// Tail is an io.Writer that keeps the last Max bytes written (4 KiB when
// Max is 0): a process's stderr, for the error that says why it ended.
type Tail struct {
	Max int

	mu  sync.Mutex
	buf []byte
}

func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	limit := t.Max
	if limit <= 0 {
		limit = 4096
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > limit {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-limit:]...)
	}
	return len(p), nil
}

// String is the kept end, trimmed.
func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

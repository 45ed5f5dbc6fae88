package rtclient

import (
	"crypto/sha256"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// MaxFrameLog is how many frame hashes a Publisher or Subscriber keeps per
// kind: the most recent ones.
const MaxFrameLog = 10000

// FrameHash is the SHA-256 of one encoded frame in the form that survives
// packetization, so that the sender's hash of a frame equals the receiver's
// hash of the frame it rebuilt from RTP.
//
// For VP8, Opus and other codecs that is the frame's bytes as they are. An
// H.264 access unit is hashed in canonical Annex-B: each NAL unit (trailing
// zero bytes removed) behind a 4-byte start code, leaving out access unit
// delimiters and filler data, which RTP payloaders drop (RFC 6184 §5.3 lets
// them), so that 3- and 4-byte start codes and those NALs do not matter.
func FrameHash(mimeType string, frame []byte) [32]byte {
	if strings.EqualFold(mimeType, webrtc.MimeTypeH264) {
		return sha256.Sum256(canonicalH264(frame))
	}
	return sha256.Sum256(frame)
}

// H.264 NAL unit types this package looks at.
const (
	nalSlice  = 1
	nalIDR    = 5
	nalSEI    = 6
	nalSPS    = 7
	nalPPS    = 8
	nalAUD    = 9
	nalFiller = 12
)

var startCode = []byte{0, 0, 0, 1}

// splitAnnexB calls fn with each NAL unit of an Annex-B byte stream, without
// start codes and without trailing zero bytes. Empty NALs are skipped.
func splitAnnexB(b []byte, fn func(nal []byte)) {
	start := -1 // start of the current NAL, -1 before the first start code
	zeros := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == 0 {
			zeros++
			continue
		}
		if c == 1 && zeros >= 2 {
			if start >= 0 {
				emitNAL(b[start:i-zeros], fn)
			}
			start = i + 1
		}
		zeros = 0
	}
	if start >= 0 {
		emitNAL(b[start:], fn)
	} else if len(b) > 0 {
		// No start code at all: one bare NAL unit.
		emitNAL(b, fn)
	}
}

func emitNAL(nal []byte, fn func([]byte)) {
	for len(nal) > 0 && nal[len(nal)-1] == 0 {
		nal = nal[:len(nal)-1]
	}
	if len(nal) > 0 {
		fn(nal)
	}
}

// canonicalH264 rewrites an access unit in canonical Annex-B (see FrameHash).
func canonicalH264(frame []byte) []byte {
	out := make([]byte, 0, len(frame)+16)
	splitAnnexB(frame, func(nal []byte) {
		switch nal[0] & 0x1f {
		case nalAUD, nalFiller:
			return
		}
		out = append(out, startCode...)
		out = append(out, nal...)
	})
	return out
}

// isKeyframe tells whether an encoded frame of the codec can be decoded on
// its own: a VP8 key frame, an H.264 access unit with an IDR slice. Audio
// frames are never keyframes.
func isKeyframe(mimeType string, frame []byte) bool {
	switch {
	case strings.EqualFold(mimeType, webrtc.MimeTypeVP8):
		return len(frame) > 0 && frame[0]&1 == 0
	case strings.EqualFold(mimeType, webrtc.MimeTypeH264):
		key := false
		splitAnnexB(frame, func(nal []byte) {
			if nal[0]&0x1f == nalIDR {
				key = true
			}
		})
		return key
	}
	return false
}

// frameLog keeps the hashes of the last MaxFrameLog frames of one stream and
// counts all of them.
type frameLog struct {
	mu        sync.Mutex
	ring      [][32]byte // grows up to MaxFrameLog, then wraps
	next      int        // where the next hash goes once the ring is full
	frames    int64      // all frames ever logged
	bytes     int64
	keyframes int64
	first     time.Time
	waiters   []frameWaiter
}

type frameWaiter struct {
	n  int64
	ch chan struct{}
}

// add records one frame. hash is ignored when hashed is false (hashing off).
func (l *frameLog) add(hash [32]byte, hashed bool, size int, key bool, now time.Time) {
	l.mu.Lock()
	if hashed {
		if len(l.ring) < MaxFrameLog {
			l.ring = append(l.ring, hash)
		} else {
			l.ring[l.next] = hash
			l.next = (l.next + 1) % MaxFrameLog
		}
	}
	if l.frames == 0 {
		l.first = now
	}
	l.frames++
	l.bytes += int64(size)
	if key {
		l.keyframes++
	}
	if len(l.waiters) > 0 {
		kept := l.waiters[:0]
		for _, w := range l.waiters {
			if l.frames >= w.n {
				close(w.ch)
			} else {
				kept = append(kept, w)
			}
		}
		l.waiters = kept
	}
	l.mu.Unlock()
}

// hashes returns the kept hashes, oldest first.
func (l *frameLog) hashes() [][32]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([][32]byte, 0, len(l.ring))
	out = append(out, l.ring[l.next:]...)
	return append(out, l.ring[:l.next]...)
}

// wait returns a channel closed once n frames have been logged, and a
// function that forgets the wait if it is given up.
func (l *frameLog) wait(n int64) (<-chan struct{}, func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch := make(chan struct{})
	if l.frames >= n {
		close(ch)
		return ch, func() {}
	}
	l.waiters = append(l.waiters, frameWaiter{n: n, ch: ch})
	return ch, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, w := range l.waiters {
			if w.ch == ch {
				l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
				return
			}
		}
	}
}

func (l *frameLog) counts() (frames, bytes, keyframes int64, first time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.frames, l.bytes, l.keyframes, l.first
}

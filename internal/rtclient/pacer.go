package rtclient

import (
	"strings"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// Pacing spreads a Publisher's video packets over time as a browser's
// sender does, instead of writing each frame's packets back to back.
// libwebrtc (Chrome, and so the IVS Web Broadcast SDK) queues every
// packet in a pacer that lets them out as a leaky bucket: at a pacing rate
// of 2.5 times its send-side target bitrate, and, since 2023, letting a
// debt of up to 40 ms of that rate build up, so that what fits in 40 ms
// leaves at once and the rest of a large frame follows at the rate. Audio
// is not paced (nor counted), as in libwebrtc by default.
//
// The zero Pacing sends unpaced: pion writes a frame's packets as fast as
// it packetizes them.
type Pacing struct {
	// Rate is the pacing rate in bits per second (0: unpaced).
	Rate int
	// Burst is how much may leave at once, as time at Rate: a packet waits
	// while the bytes sent and not yet drained at Rate exceed Rate × Burst.
	// 0 sends every packet only when the previous one has drained.
	Burst time.Duration
}

// pacer is the leaky bucket of one Publisher, shared by its video streams
// (one pacer per transport, as in libwebrtc). It is an interceptor placed
// after the sendTap, so the tap sees when a packet really leaves; the
// writer that calls it (the track's sending goroutine, or pion's NACK
// responder for a retransmission) waits until the packet may go.
type pacer struct {
	interceptor.NoOp
	bytesPerNs float64
	burst      float64 // bytes

	mu   sync.Mutex
	debt float64 // bytes sent and not yet drained, as of last
	last time.Time
}

func newPacer(p Pacing) *pacer {
	rate := float64(p.Rate) / 8 / 1e9
	return &pacer{bytesPerNs: rate, burst: rate * float64(p.Burst)}
}

// reserve accounts a packet of size bytes sent at now and returns how long
// its sender must wait first.
func (p *pacer) reserve(size int, now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.last.IsZero() {
		p.debt = max(0, p.debt-float64(now.Sub(p.last))*p.bytesPerNs)
	}
	p.last = now
	var wait time.Duration
	if p.debt > p.burst {
		wait = time.Duration((p.debt - p.burst) / p.bytesPerNs)
	}
	p.debt += float64(size)
	return wait
}

// BindLocalStream implements interceptor.Interceptor.
func (p *pacer) BindLocalStream(info *interceptor.StreamInfo, writer interceptor.RTPWriter) interceptor.RTPWriter {
	if !strings.HasPrefix(strings.ToLower(info.MimeType), "video/") {
		return writer
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if wait := p.reserve(h.MarshalSize()+len(payload), time.Now()); wait > 0 {
			time.Sleep(wait)
		}
		return writer.Write(h, payload, a)
	})
}

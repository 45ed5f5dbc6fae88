package sfu

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/rtp"
)

// Send-side bandwidth estimation for subscribers: pion's Google Congestion
// Control estimator, fed by the subscriber's transport-wide-cc feedback, sets
// the budget the layer allocator spends. Packets are never paced: an SFU
// forwards what the publisher's encoder already shaped, and holding packets
// back would only add latency, so the estimator is given directPacer.

const (
	// Initial estimates before any feedback: enough for the middle layer of
	// IVS's default simulcast ladder, or for the top one when the subscriber
	// asked to start at the highest layer.
	initialBitrate        = 1_000_000
	initialBitrateHighest = 3_000_000
	minBitrate            = 100_000
	maxBitrate            = 20_000_000
)

// estimator wraps gcc.SendSideBWE so that retransmissions sent on a
// separate RTX SSRC reach the wire: gcc's pacers only know the media SSRC
// each stream was added with.
type estimator struct {
	*gcc.SendSideBWE
	pacer *directPacer
}

func newEstimator(initial int) (*estimator, error) {
	p := &directPacer{}
	bwe, err := gcc.NewSendSideBWE(
		gcc.SendSideBWEInitialBitrate(initial),
		gcc.SendSideBWEMinBitrate(minBitrate),
		gcc.SendSideBWEMaxBitrate(maxBitrate),
		gcc.SendSideBWEPacer(p),
	)
	if err != nil {
		return nil, err
	}
	return &estimator{SendSideBWE: bwe, pacer: p}, nil
}

// AddStream registers a local stream; its RTX SSRC, if any, shares the
// media stream's path (and so its congestion accounting).
func (e *estimator) AddStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	out := e.SendSideBWE.AddStream(info, w)
	if info.SSRCRetransmission != 0 {
		e.pacer.alias(info.SSRCRetransmission, info.SSRC)
	}
	return out
}

// directPacer is a pacer that does not pace: it hands each packet to its
// stream's writer at once. Its SSRC table is copy-on-write so that the
// per-packet lookup takes no lock (gcc.NoOpPacer locks a mutex per packet).
type directPacer struct {
	mu      sync.Mutex // serialises table updates
	writers atomic.Pointer[map[uint32]interceptor.RTPWriter]
}

func (p *directPacer) AddStream(ssrc uint32, w interceptor.RTPWriter) {
	p.update(func(m map[uint32]interceptor.RTPWriter) { m[ssrc] = w })
}

func (p *directPacer) alias(from, to uint32) {
	p.update(func(m map[uint32]interceptor.RTPWriter) {
		if w, ok := m[to]; ok {
			m[from] = w
		}
	})
}

func (p *directPacer) update(f func(map[uint32]interceptor.RTPWriter)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	next := map[uint32]interceptor.RTPWriter{}
	if cur := p.writers.Load(); cur != nil {
		for k, v := range *cur {
			next[k] = v
		}
	}
	f(next)
	p.writers.Store(&next)
}

func (p *directPacer) Write(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
	if m := p.writers.Load(); m != nil {
		if w, ok := (*m)[h.SSRC]; ok {
			return w.Write(h, payload, a)
		}
	}
	return 0, fmt.Errorf("%w: %d", gcc.ErrUnknownStream, h.SSRC)
}

func (p *directPacer) SetTargetBitrate(int) {}
func (p *directPacer) Close() error         { return nil }

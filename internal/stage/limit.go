package stage

import (
	"sync"
	"time"
)

// connectLimiter is a token bucket per participant: every request that
// admits a participant to the media plane (events channel, publish,
// subscribe) takes a token. A legitimate client opens a burst of them on
// joining (its events channel, its publisher, one subscription per
// publisher) and few after; a client that opens and drops connections in a
// loop would otherwise write a JOINED and a LEFT row (or an error event)
// each time, without bound.
type connectLimiter struct {
	rate  float64 // tokens per second; 0 = no limit
	burst float64

	mu      sync.Mutex
	buckets map[string]*bucket
	pruneAt int
}

type bucket struct {
	tokens float64
	at     time.Time
}

const minPruneAt = 1024

func newConnectLimiter(rate float64, burst int) *connectLimiter {
	if burst < 1 {
		burst = 1
	}
	return &connectLimiter{rate: rate, burst: float64(burst), buckets: map[string]*bucket{}, pruneAt: minPruneAt}
}

// allow takes a token of key's bucket if it has one.
func (l *connectLimiter) allow(key string, now time.Time) bool {
	if l.rate <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.pruneAt {
			l.prune(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	l.refill(b, now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (l *connectLimiter) refill(b *bucket, now time.Time) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(l.burst, b.tokens+d.Seconds()*l.rate)
		b.at = now
	}
}

// prune forgets full buckets (a new one starts full too), so that the map
// holds only participants that connected recently.
func (l *connectLimiter) prune(now time.Time) {
	for k, b := range l.buckets {
		if l.refill(b, now); b.tokens >= l.burst {
			delete(l.buckets, k)
		}
	}
	l.pruneAt = max(minPruneAt, 2*len(l.buckets))
}

package rtclient

import (
	"testing"
	"time"
)

// The pacer lets a burst's worth of bytes go at once, then one packet per
// packet's time at the rate, and drains its debt while nothing is sent.
func TestPacerLeakyBucket(t *testing.T) {
	// 8 Mbit/s: 1,000 bytes per millisecond; bursts of 10 ms = 10,000 bytes.
	p := newPacer(Pacing{Rate: 8_000_000, Burst: 10 * time.Millisecond})
	t0 := time.Unix(1000, 0)
	var waits []time.Duration
	for range 11 {
		waits = append(waits, p.reserve(1200, t0))
	}
	// Debts before each packet: 0, 1,200, …, 9,600 (≤ 10,000: at once),
	// then 10,800 and 12,000.
	for i, w := range waits[:9] {
		if w != 0 {
			t.Errorf("packet %d of the burst waits %v", i, w)
		}
	}
	if waits[9] != 800*time.Microsecond || waits[10] != 2*time.Millisecond {
		t.Errorf("after the burst: waits %v, %v; want 800µs, 2ms", waits[9], waits[10])
	}
	// 13,200 bytes owed; 13.2 ms later all of it has drained.
	if w := p.reserve(1200, t0.Add(13200*time.Microsecond)); w != 0 {
		t.Errorf("after draining: wait %v", w)
	}

	// Without a burst every packet waits for the one before to drain.
	q := newPacer(Pacing{Rate: 8_000_000})
	if w := q.reserve(1000, t0); w != 0 {
		t.Errorf("first packet waits %v", w)
	}
	if w := q.reserve(1000, t0); w != time.Millisecond {
		t.Errorf("second packet waits %v, want 1ms", w)
	}
	if w := q.reserve(500, t0.Add(500*time.Microsecond)); w != 1500*time.Microsecond {
		t.Errorf("third packet waits %v, want 1.5ms", w)
	}
}

package bwe

import "math"

// ackedRate is the rate at which the subscriber received what it was sent
// (probes apart), over the last ackWindow of arrival time, in buckets.
type ackedRate struct {
	buckets [ackBuckets]struct {
		idx   int64
		bytes int
	}
	newest, first int64 // bucket index; arrival (µs)
	have          bool
}

const (
	ackBucket  = 25_000 // µs
	ackBuckets = 20     // 500 ms
	// ackMinSpan is how much arrival time the rate needs before it counts.
	ackMinSpan = 100_000
)

func (a *ackedRate) add(arrival int64, size int) {
	if arrival < 0 {
		return
	}
	i := arrival / ackBucket
	if !a.have {
		a.first, a.newest, a.have = arrival, i, true
	}
	if i <= a.newest-ackBuckets {
		return // older than the window
	}
	b := &a.buckets[i%ackBuckets]
	if b.idx != i {
		b.idx, b.bytes = i, 0
	}
	b.bytes += size
	a.newest = max(a.newest, i)
}

// rate is the acknowledged rate in bits per second, once it has enough
// arrival time to go on.
func (a *ackedRate) rate() (int, bool) {
	if !a.have {
		return 0, false
	}
	from := max(a.first, (a.newest-ackBuckets+1)*ackBucket)
	span := (a.newest+1)*ackBucket - from
	if span < ackMinSpan {
		return 0, false
	}
	sum := 0
	for _, b := range a.buckets {
		if b.idx > a.newest-ackBuckets && b.idx <= a.newest {
			sum += b.bytes
		}
	}
	return int(int64(sum) * 8 * 1_000_000 / span), true
}

// rateControl is GCC's AIMD controller (draft-ietf-rmcat-gcc-02 §5.5): on
// overuse the estimate falls to beta × what was acknowledged; while the
// path is neither over- nor underused it grows, by 8 % a second while far
// from the rate at which the path last overflowed, by about a packet per
// response time near it; underuse holds it (the queue is draining).
type rateControl struct {
	target     int
	state      rateState
	lastChange int64 // µs

	lastDecrease int64
	decreased    bool
	// floor bounds decreases until floorUntil: what a probe found arrived.
	floor      int
	floorUntil int64

	// The rates acknowledged when the path overflowed: an estimate of the
	// link's capacity, with its variance.
	capMean, capVar float64
	haveCap         bool
}

type rateState int

const (
	rateHold rateState = iota
	rateIncrease
)

const (
	beta = 0.85
	// decreaseInterval keeps one queue from being answered twice: the
	// feedback that follows a decrease still shows the queue it was about.
	decreaseInterval = 200_000
	// probeQuiet is how long after a decrease no probe is sent.
	probeQuiet = 1_000_000
	// probeFloorTime is how long what a probe found bounds decreases: the
	// feedback about the queue it built.
	probeFloorTime = 1_000_000
	// additiveRate is the increase near the link's capacity, bits per
	// second each second: a 1,200-byte packet per 150 ms response time.
	additiveRate = 1200 * 8 * 1_000_000 / 150_000
	capAlpha     = 0.05
)

func (r *rateControl) update(u usage, acked int, haveAcked bool, now int64, cfg Config) {
	switch u {
	case overusing:
		if haveAcked && (!r.decreased || now-r.lastDecrease >= decreaseInterval) {
			nt := int(beta * float64(acked))
			if now < r.floorUntil {
				nt = max(nt, r.floor)
			}
			if nt < r.target {
				r.target = max(nt, cfg.Min)
			}
			r.observeCapacity(float64(acked))
			r.lastDecrease, r.decreased = now, true
		}
		r.state, r.lastChange = rateHold, now
	case underusing:
		r.state, r.lastChange = rateHold, now
	default:
		if r.state == rateHold {
			r.state, r.lastChange = rateIncrease, now
			return
		}
		dt := min(now-r.lastChange, 1_000_000)
		r.lastChange = now
		if dt <= 0 {
			return
		}
		if haveAcked && float64(r.target) > 1.5*float64(acked)+10_000 {
			// Far above what is being sent: growing it further would be
			// a guess. Probes raise it past this.
			return
		}
		if haveAcked && r.nearCapacity(float64(acked)) {
			r.target += int(additiveRate * dt / 1_000_000)
		} else {
			r.target = int(float64(r.target)*math.Pow(1.08, float64(dt)/1e6)) + 1
		}
		r.target = min(r.target, cfg.Max)
	}
}

func (r *rateControl) recentlyDecreased(now int64) bool {
	return r.decreased && now-r.lastDecrease < probeQuiet
}

func (r *rateControl) observeCapacity(x float64) {
	if !r.haveCap {
		r.capMean, r.capVar, r.haveCap = x, 0, true
		return
	}
	r.capMean = (1-capAlpha)*r.capMean + capAlpha*x
	d := x - r.capMean
	r.capVar = (1-capAlpha)*r.capVar + capAlpha*d*d
}

// nearCapacity tells whether acked is within three deviations of the
// rate the path last overflowed at; well above it, the capacity is
// forgotten (the path got wider).
func (r *rateControl) nearCapacity(acked float64) bool {
	if !r.haveCap {
		return false
	}
	dev := max(math.Sqrt(r.capVar), 0.05*r.capMean)
	if acked > r.capMean+3*dev {
		r.haveCap = false
		return false
	}
	return acked > r.capMean-3*dev
}

// lossControl is the loss-based bound (draft-ietf-rmcat-gcc-02 §6): over
// each half second or more of feedback, more than 10 % lost cuts the
// estimate by half the loss; under 2 % lets the bound grow 8 % a second.
type lossControl struct {
	target      int
	lost, total int
	last        int64
	have        bool
}

const (
	lossInterval   = 500_000
	lossMinPackets = 20
)

func (l *lossControl) add(lost, received int) {
	l.lost += lost
	l.total += lost + received
}

// update applies the loss since the last update to the bound; current is
// the estimate a cut starts from.
func (l *lossControl) update(now int64, current int, cfg Config) {
	if !l.have {
		l.last, l.have = now, true
		return
	}
	dt := now - l.last
	if dt < lossInterval || l.total < lossMinPackets {
		return
	}
	frac := float64(l.lost) / float64(l.total)
	switch {
	case frac > 0.10:
		l.target = max(cfg.Min, int(float64(min(l.target, current))*(1-0.5*frac)))
	case frac < 0.02:
		l.target = min(cfg.Max, int(float64(l.target)*math.Pow(1.08, float64(min(dt, 1_000_000))/1e6))+1)
	}
	l.lost, l.total, l.last = 0, 0, now
}

package bwe

import "math"

// The delay-based detector (draft-ietf-rmcat-gcc-02 §5): packets are grouped
// by send time into bursts of burstTime; between consecutive groups, how
// much more (or less) time the arrivals took than the sends is the delay
// variation. A queue building up at the bottleneck shows as delay
// variations summing up; the trend of that sum over the last
// trendWindow groups, compared with a threshold that adapts to the
// path's noise, says whether the path is overused, underused or neither.

// usage is the detector's signal, in ascending strength: a feedback's
// strongest is acted on.
type usage int

const (
	normal usage = iota
	underusing
	overusing
)

const (
	burstTime    = 5_000 // µs: packets sent within this of a group's first belong to it
	trendWindow  = 20    // groups the slope is taken over
	trendGain    = 4.0   // the slope's weight against the threshold
	smoothing    = 0.9   // of the accumulated delay
	maxDeltas    = 60    // the trend's multiplier grows with the samples, up to this
	overuseTime  = 10.0  // ms the trend must stay over the threshold
	thresholdUp  = 0.0087
	thresholdDn  = 0.039
	thresholdMin = 6.0
	thresholdMax = 600.0
	// A sample this far past the threshold is an outlier (a route change,
	// a stall): the threshold does not move for it.
	thresholdOutlier = 15.0
	// A gap in arrivals this long (µs) starts the detector afresh: what
	// came before says nothing about the queue now.
	arrivalGap = 3_000_000
)

type arrivalGroup struct {
	firstSend, lastSend, lastArrival int64
}

type delayDetector struct {
	cur, prev         arrivalGroup
	haveCur, havePrev bool

	// The trendline.
	accumulated, smoothed float64
	firstArrival          int64
	haveFirst             bool
	xs, ys                [trendWindow]float64
	count, head           int
	deltas                int
	trend                 float64 // modified trend of the last sample
	prevTrend             float64 // the trend the detector saw before

	// The overuse detector.
	threshold     float64
	lastThreshold int64 // arrival time (µs) of its last update
	overTime      float64
	overCount     int
	state         usage
	worst         usage // the strongest signal since the last take
}

func (d *delayDetector) init() {
	d.threshold = 12.5
	d.overTime = -1
}

// packet takes one received packet (send and arrival times in µs) in the
// feedback's order.
func (d *delayDetector) packet(send, arrival int64) {
	if !d.haveCur {
		d.cur, d.haveCur = arrivalGroup{send, send, arrival}, true
		return
	}
	if send < d.cur.firstSend {
		return // reordered before the group: its own group is done
	}
	if send-d.cur.firstSend <= burstTime {
		d.cur.lastSend = max(d.cur.lastSend, send)
		d.cur.lastArrival = max(d.cur.lastArrival, arrival)
		return
	}
	if d.havePrev {
		sendDelta := d.cur.lastSend - d.prev.lastSend
		arrivalDelta := d.cur.lastArrival - d.prev.lastArrival
		switch {
		case arrivalDelta > arrivalGap || arrivalDelta < -arrivalGap:
			d.reset()
		case arrivalDelta >= 0:
			d.sample(float64(arrivalDelta-sendDelta)/1000, d.cur.lastArrival, float64(sendDelta)/1000)
		}
	}
	d.prev, d.havePrev = d.cur, true
	d.cur = arrivalGroup{send, send, arrival}
}

func (d *delayDetector) reset() {
	threshold := d.threshold
	*d = delayDetector{cur: d.cur, haveCur: d.haveCur, worst: d.worst}
	d.init()
	d.threshold = threshold
}

// sample takes one delay variation (ms) between groups, the later group's
// arrival (µs) and the time between their sends (ms).
func (d *delayDetector) sample(variation float64, arrival int64, sendDelta float64) {
	d.deltas = min(d.deltas+1, 1000)
	d.accumulated += variation
	d.smoothed = smoothing*d.smoothed + (1-smoothing)*d.accumulated
	if !d.haveFirst {
		d.firstArrival, d.haveFirst = arrival, true
	}
	d.xs[d.head] = float64(arrival-d.firstArrival) / 1000
	d.ys[d.head] = d.smoothed
	d.head = (d.head + 1) % trendWindow
	d.count = min(d.count+1, trendWindow)
	if d.count == trendWindow {
		if s, ok := slope(d.xs[:], d.ys[:]); ok {
			d.trend = float64(min(d.deltas, maxDeltas)) * s * trendGain
		}
	}
	d.detect(d.trend, sendDelta, arrival)
}

// slope is the least-squares slope of ys over xs.
func slope(xs, ys []float64) (float64, bool) {
	var sx, sy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
	}
	mx, my := sx/float64(len(xs)), sy/float64(len(ys))
	var num, den float64
	for i := range xs {
		dx := xs[i] - mx
		num += dx * (ys[i] - my)
		den += dx * dx
	}
	if den == 0 {
		return 0, false
	}
	return num / den, true
}

func (d *delayDetector) detect(trend, sendDelta float64, arrival int64) {
	switch {
	case d.deltas < 2:
		d.state = normal
	case trend > d.threshold:
		if d.overTime < 0 {
			d.overTime = sendDelta / 2
		} else {
			d.overTime += sendDelta
		}
		d.overCount++
		if d.overTime > overuseTime && d.overCount > 1 && trend >= d.prevTrend {
			d.overTime, d.overCount = 0, 0
			d.state = overusing
		}
	case trend < -d.threshold:
		d.overTime, d.overCount = -1, 0
		d.state = underusing
	default:
		d.overTime, d.overCount = -1, 0
		d.state = normal
	}
	d.prevTrend = trend
	d.adapt(trend, arrival)
	d.worst = max(d.worst, d.state)
}

// adapt moves the threshold towards the trend's magnitude: up slowly, so
// that a real queue still crosses it; down fast, so that the detector
// stays sensitive when the path is quiet (and is not starved by a
// competing TCP flow, which fills queues for good).
func (d *delayDetector) adapt(trend float64, arrival int64) {
	if d.lastThreshold == 0 {
		d.lastThreshold = arrival
	}
	m := math.Abs(trend)
	if m > d.threshold+thresholdOutlier {
		d.lastThreshold = arrival
		return
	}
	k := thresholdUp
	if m < d.threshold {
		k = thresholdDn
	}
	dt := min(float64(arrival-d.lastThreshold)/1000, 100)
	d.threshold += k * (m - d.threshold) * dt
	d.threshold = max(thresholdMin, min(d.threshold, thresholdMax))
	d.lastThreshold = arrival
}

// take returns the strongest signal since the last take and starts over.
// Overuse outranks underuse, which outranks normal.
func (d *delayDetector) take() usage {
	w := d.worst
	d.worst = normal
	return w
}

package bwe

// Probing: a cluster of padding sent at the goal's rate for ProbeDuration.
// The rate at which it arrived, from the feedback, says what the path
// carries up to the goal: a path narrower than the goal queues the
// cluster, and it arrives at the path's rate (draft-ietf-rmcat-gcc-02
// leaves probing to implementations; this follows what libwebrtc's probe
// estimator measures: the lower of the send and receive rates of one
// cluster, less 5 % when it arrived slower than it was sent).

// ProbeDuration is the time, in µs, a probe's padding is spread over.
const ProbeDuration = 40_000

const (
	// probeOvershoot is the probe's rate, in percent of its goal.
	probeOvershoot = 125
	// probeTimeout ends a probe whose feedback did not come.
	probeTimeout = 1_000_000
	// probeMinPackets is the fewest a probe's rates are taken from.
	probeMinPackets = 5
	// The wait before another probe: minProbeWait after one that
	// reached its goal, doubling after each that did not, up to
	// maxProbeWait (a subscriber on a path that is full for good is not
	// probed more than that).
	minProbeWait = 2_000_000
	maxProbeWait = 15_000_000
	// probeTrial is how long after a probe raised the estimate an overuse
	// still counts against it.
	probeTrial = 5_000_000
)

type prober struct {
	id, nextID uint8 // the cluster in flight (0: none), the last id used
	goal       int
	started    int64
	planned    int // packets sent; -1 while sending

	// What the feedback reported of the cluster.
	n, bytes, size            int
	firstSend, lastSend       int64
	firstArrival, lastArrival int64

	wait, notBefore int64
	// raisedAt is when a probe last raised the estimate (0: not since the
	// last overuse).
	raisedAt int64

	lastGoal, lastFound int
	lastReached         bool
}

func (p *prober) init() { p.wait = minProbeWait }

// active is the id to mark padding with: the cluster being sent.
func (p *prober) active() uint8 { return p.id }

func (p *prober) start(goal int, now int64) bool {
	if p.id != 0 {
		if now-p.started < probeTimeout {
			return false
		}
		p.finish(0, true, now)
	}
	if now < p.notBefore {
		return false
	}
	p.nextID++
	if p.nextID == 0 {
		p.nextID = 1
	}
	*p = prober{id: p.nextID, nextID: p.nextID, goal: goal, started: now, planned: -1,
		wait: p.wait, notBefore: p.notBefore, raisedAt: p.raisedAt,
		lastGoal: p.lastGoal, lastFound: p.lastFound, lastReached: p.lastReached}
	return true
}

func (p *prober) sentAll(n int) {
	if p.id != 0 {
		p.planned = n
	}
}

func (p *prober) received(s *sentPacket, arrival int64) {
	if s.probe != p.id || p.id == 0 {
		return // an earlier cluster's, reported late
	}
	if p.n == 0 {
		p.firstSend, p.lastSend, p.firstArrival, p.lastArrival = s.at, s.at, arrival, arrival
	}
	p.firstSend, p.lastSend = min(p.firstSend, s.at), max(p.lastSend, s.at)
	p.firstArrival, p.lastArrival = min(p.firstArrival, arrival), max(p.lastArrival, arrival)
	p.n++
	p.bytes += int(s.size)
	p.size = max(p.size, int(s.size))
}

// result finishes the cluster once the feedback covers it (or it timed
// out) and returns the rate it found, if any.
func (p *prober) result(now int64) (int, bool) {
	if p.id == 0 {
		return 0, false
	}
	covered := p.planned > 0 && p.n*10 >= p.planned*8
	if !covered && now-p.started < probeTimeout {
		return 0, false
	}
	// Less than most of the cluster reported received by the timeout: the
	// path dropped it, a failure. Covered, it found a rate, or nothing.
	found, conclusive := 0, true
	if covered {
		found, conclusive = p.rate()
	}
	p.finish(found, conclusive, now)
	return found, found > 0
}

// rate is what the cluster found. It is not conclusive when the feedback
// cannot say: too few packets, or arrivals bunched up tighter than half
// their sending (a receiver that read them late, a radio that aggregated
// them), which says nothing about the path's rate.
func (p *prober) rate() (int, bool) {
	sendSpan, recvSpan := p.lastSend-p.firstSend, p.lastArrival-p.firstArrival
	if p.n < probeMinPackets || sendSpan <= 0 || recvSpan <= 0 {
		return 0, false
	}
	// The first packet's size is not sent over the span, nor the last's
	// received over it: one packet's worth comes off.
	bits := float64(p.bytes-p.size) * 8 * 1e6
	send, recv := bits/float64(sendSpan), bits/float64(recvSpan)
	if recv > 2*send {
		return 0, false
	}
	if recv < 0.9*send {
		return int(0.95 * recv), true
	}
	return int(min(send, recv)), true
}

// finish closes the cluster. One that reached its goal, or could not
// tell, waits the least before the next (a raise keeps the wait until its
// trial is over); one that found less than its goal doubles the wait.
func (p *prober) finish(found int, conclusive bool, now int64) {
	p.lastGoal, p.lastFound = p.goal, found
	p.lastReached = found >= p.goal
	if p.lastReached || !conclusive {
		p.notBefore = now + minProbeWait
	} else {
		p.notBefore = now + p.wait
		p.wait = min(p.wait*2, maxProbeWait)
	}
	p.id = 0
}

// trial follows a probe's raise of the estimate through probeTrial: an
// overuse within it means the probe failed after all, and the next waits
// longer; a raise that held makes the wait short again.
func (p *prober) trial(state usage, now int64) {
	switch {
	case p.raisedAt == 0:
	case now-p.raisedAt >= probeTrial:
		p.wait, p.raisedAt = minProbeWait, 0
	case state == overusing:
		p.notBefore = max(p.notBefore, now+p.wait)
		p.wait = min(p.wait*2, maxProbeWait)
		p.raisedAt = 0
	}
}

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
	c      cluster // the one in flight; id 0: none
	nextID uint8   // the last id used

	wait, notBefore int64
	// raisedAt is when a probe last raised the estimate (0: not since the
	// last overuse).
	raisedAt int64

	lastGoal, lastFound int
	lastReached         bool
}

// cluster is one probe: what was asked and what the feedback reported of
// its packets.
type cluster struct {
	id      uint8
	goal    int
	started int64
	planned int // packets sent; -1 while sending

	n, bytes, size            int
	firstSend, lastSend       int64
	firstArrival, lastArrival int64
}

func (p *prober) init() { p.wait = minProbeWait }

// active is the id to mark padding with: the cluster being sent.
func (p *prober) active() uint8 { return p.c.id }

func (p *prober) start(goal int, now int64) bool {
	if p.c.id != 0 {
		if now-p.c.started < probeTimeout {
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
	p.c = cluster{id: p.nextID, goal: goal, started: now, planned: -1}
	return true
}

func (p *prober) sentAll(n int) {
	if p.c.id != 0 {
		p.c.planned = n
	}
}

func (c *cluster) received(s *sentPacket, arrival int64) {
	if s.probe != c.id || c.id == 0 {
		return // an earlier cluster's, reported late
	}
	if c.n == 0 {
		c.firstSend, c.lastSend, c.firstArrival, c.lastArrival = s.at, s.at, arrival, arrival
	}
	c.firstSend, c.lastSend = min(c.firstSend, s.at), max(c.lastSend, s.at)
	c.firstArrival, c.lastArrival = min(c.firstArrival, arrival), max(c.lastArrival, arrival)
	c.n++
	c.bytes += int(s.size)
	c.size = max(c.size, int(s.size))
}

// result finishes the cluster once the feedback covers it (or it timed
// out) and returns the rate it found, if any.
func (p *prober) result(now int64) (int, bool) {
	if p.c.id == 0 {
		return 0, false
	}
	covered := p.c.planned > 0 && p.c.n*10 >= p.c.planned*8
	if !covered && now-p.c.started < probeTimeout {
		return 0, false
	}
	// Less than most of the cluster reported received by the timeout: the
	// path dropped it, a failure. Covered, it found a rate, or nothing.
	found, conclusive := 0, true
	if covered {
		found, conclusive = p.c.rate()
	}
	p.finish(found, conclusive, now)
	return found, found > 0
}

// rate is what the cluster found. It is not conclusive when the feedback
// cannot say: too few packets, or arrivals bunched up tighter than half
// their sending (a receiver that read them late, a radio that aggregated
// them), which says nothing about the path's rate.
func (c *cluster) rate() (int, bool) {
	sendSpan, recvSpan := c.lastSend-c.firstSend, c.lastArrival-c.firstArrival
	if c.n < probeMinPackets || sendSpan <= 0 || recvSpan <= 0 {
		return 0, false
	}
	// The first packet's size is not sent over the span, nor the last's
	// received over it: one packet's worth comes off.
	bits := float64(c.bytes-c.size) * 8 * 1e6
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
	p.lastGoal, p.lastFound = p.c.goal, found
	p.lastReached = found >= p.c.goal
	if p.lastReached || !conclusive {
		p.notBefore = now + minProbeWait
	} else {
		p.notBefore = now + p.wait
		p.wait = min(p.wait*2, maxProbeWait)
	}
	p.c.id = 0
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

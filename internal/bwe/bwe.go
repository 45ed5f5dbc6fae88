// Package bwe estimates how much a subscriber's path can take: the send side
// of Google Congestion Control (draft-ietf-rmcat-gcc-02), driven by the
// transport-wide feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01)
// the subscriber sends about every packet the server sent it, plus probing.
//
// An SFU cannot raise its own send rate the way an encoder does: what a
// subscriber gets is the simulcast layer the allocator picked, and a layer
// is chosen only when the estimate says it fits. An estimator that only
// grows towards what it sees acknowledged (GCC caps its increase at 1.5 ×
// the acknowledged rate) therefore keeps a subscriber that once dropped to
// a low layer there for good. Probes break that circle: when the allocator
// wants more than the estimate allows, the server sends a short cluster of
// padding at the rate it wants, and the rate at which the cluster arrived
// becomes the estimate if the path took it.
//
// A Controller is one connection's estimate. Sent is on the per-packet path
// (one lock, no allocation); Feedback runs once per feedback packet (20 a
// second from browsers). Times are microseconds on the caller's monotonic
// clock for what the server sends, and on the receiver's clock (from the
// feedback) for arrivals: only differences of each are used.
package bwe

import (
	"sync"
	"sync/atomic"

	"github.com/pion/rtcp"
)

// Config bounds the estimate, in bits per second.
type Config struct {
	Initial, Min, Max int
}

// historySize is how many sent packets are remembered for their feedback:
// two seconds at 250 packets a second, more than a feedback's delay.
const historySize = 512

type sentPacket struct {
	at    int64 // send time, µs
	size  uint16
	seq   uint16
	probe uint8 // the probe cluster it belongs to; 0: none
	state uint8 // sentValid, sentReported
}

const (
	sentValid    = 1 << 0
	sentReported = 1 << 1
)

// Controller is one connection's bandwidth estimate.
type Controller struct {
	mu   sync.Mutex
	cfg  Config
	sent [historySize]sentPacket

	// The feedback's 24-bit reference time (64 ms units), unwrapped.
	ref, lastRawRef int64
	haveRef         bool

	delay delayDetector
	acked ackedRate
	rate  rateControl
	loss  lossControl
	probe prober

	target atomic.Int64 // bits per second: read without the lock
	// feedbacks counts the feedback packets taken.
	feedbacks atomic.Uint64
}

// New returns a controller whose estimate starts at cfg.Initial.
func New(cfg Config) *Controller {
	if cfg.Min <= 0 {
		cfg.Min = 30_000
	}
	if cfg.Max < cfg.Min {
		cfg.Max = cfg.Min
	}
	cfg.Initial = clamp(cfg.Initial, cfg.Min, cfg.Max)
	c := &Controller{cfg: cfg}
	c.delay.init()
	c.rate.target = cfg.Initial
	c.loss.target = cfg.Max
	c.probe.init()
	c.target.Store(int64(cfg.Initial))
	return c
}

// Target is the estimate, in bits per second.
func (c *Controller) Target() int { return int(c.target.Load()) }

// Feedbacks is how many feedback packets the controller has taken.
func (c *Controller) Feedbacks() uint64 { return c.feedbacks.Load() }

// Sent records a packet sent with transport-wide sequence number seq
// (HOT PATH: once per packet): size is the RTP packet's size in bytes, at
// its send time (µs), probe true for a probe's padding.
func (c *Controller) Sent(seq uint16, size int, at int64, probe bool) {
	c.mu.Lock()
	p := &c.sent[seq%historySize]
	p.at, p.size, p.seq, p.state, p.probe = at, uint16(min(size, 0xffff)), seq, sentValid, 0
	if probe {
		p.probe = c.probe.active()
	}
	c.mu.Unlock()
}

// Feedback takes one transport-wide feedback packet, received at now (µs).
func (c *Controller) Feedback(fb *rtcp.TransportLayerCC, now int64) {
	c.feedbacks.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()

	raw := int64(fb.ReferenceTime & 0xffffff)
	if !c.haveRef {
		c.ref, c.haveRef = raw, true
	} else {
		d := (raw - c.lastRawRef) & 0xffffff
		if d >= 1<<23 {
			d -= 1 << 24
		}
		c.ref += d
	}
	c.lastRawRef = raw
	arrival := c.ref * 64_000

	var lost, received int
	seq := fb.BaseSequenceNumber
	left := int(fb.PacketStatusCount)
	deltas := fb.RecvDeltas
	status := func(symbol uint16) {
		if left <= 0 {
			return
		}
		left--
		p := &c.sent[seq%historySize]
		known := p.state&sentValid != 0 && p.seq == seq && p.state&sentReported == 0
		switch symbol {
		case rtcp.TypeTCCPacketReceivedSmallDelta, rtcp.TypeTCCPacketReceivedLargeDelta:
			if len(deltas) == 0 {
				break // malformed: a received packet without its delta
			}
			arrival += deltas[0].Delta
			deltas = deltas[1:]
			if known {
				p.state |= sentReported
				received++
				c.onReceived(p, arrival, now)
			}
		case rtcp.TypeTCCPacketNotReceived:
			if known {
				// A later feedback may still report it received (it
				// arrived late); counted lost once, as GCC does.
				lost++
			}
		}
		seq++
	}
	for _, chunk := range fb.PacketChunks {
		switch ch := chunk.(type) {
		case *rtcp.RunLengthChunk:
			for range min(int(ch.RunLength), left) {
				status(ch.PacketStatusSymbol)
			}
		case *rtcp.StatusVectorChunk:
			for _, s := range ch.SymbolList {
				if ch.SymbolSize == rtcp.TypeTCCSymbolSizeOneBit && s == 1 {
					s = rtcp.TypeTCCPacketReceivedSmallDelta
				}
				status(s)
			}
		}
	}
	if received == 0 && lost == 0 {
		return
	}
	c.loss.add(lost, received)
	c.update(now)
}

// onReceived takes one packet the feedback reports received at arrival
// (µs, the receiver's clock).
func (c *Controller) onReceived(p *sentPacket, arrival, now int64) {
	if p.probe != 0 {
		c.probe.c.received(p, arrival)
	} else {
		// Probes stay out of the acknowledged rate: it sets how far a
		// decrease goes, and a probe's burst is not what the path carries.
		c.acked.add(arrival, int(p.size))
	}
	c.delay.packet(p.at, arrival)
}

// update moves the estimate after a feedback.
func (c *Controller) update(now int64) {
	acked, haveAcked := c.acked.rate()
	state := c.delay.take()
	// A probe that raised the estimate, followed soon by overuse, found a
	// burst the path let through but not a rate it holds (a policer's
	// bucket, a radio's aggregation): it counts as failed.
	c.probe.trial(state, now)
	c.rate.update(state, acked, haveAcked, now, c.cfg)
	c.loss.update(now, min(c.rate.target, c.loss.target), c.cfg)
	if r, ok := c.probe.result(now); ok {
		c.probed(r, state, now)
	}
	c.target.Store(int64(clamp(min(c.rate.target, c.loss.target), c.cfg.Min, c.cfg.Max)))
}

// probed takes what a probe found, r bits per second. If the path carried
// it without a queue, the estimate starts from it. A probe past the path's
// capacity builds a queue, which the detector reports as overuse, at once
// or a feedback later; the decrease that follows is then taken from what
// the probe found arrived rather than from what the media alone was
// (which, for a subscriber held on a low layer, is far below the path):
// beta × r stays the floor of decreases for probeFloorTime.
func (c *Controller) probed(r int, state usage, now int64) {
	c.rate.floor, c.rate.floorUntil = int(beta*float64(r)), now+probeFloorTime
	if state == overusing {
		r = c.rate.floor
	}
	if r > c.rate.target {
		c.rate.target = clamp(r, c.cfg.Min, c.cfg.Max)
		c.rate.state = rateHold
		c.loss.target = max(c.loss.target, c.rate.target)
		c.probe.raisedAt = now
	}
}

// StartProbe asks for a probe towards goal bits per second at now (µs). It
// returns the bytes of padding to send, spread over ProbeDuration, when the
// controller wants that probe: the goal is above the estimate, no probe is
// in flight, the path is not congested, and the last probes that failed
// have been waited out (the wait doubles with each failure, up to
// maxProbeWait). The padding is then sent with Sent(…, probe true) and the
// probe closed with ProbeSent.
func (c *Controller) StartProbe(goal int, now int64) (bytes int, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	goal = min(goal, c.cfg.Max)
	if goal <= int(c.target.Load()) || c.rate.recentlyDecreased(now) {
		return 0, false
	}
	// The probe asks for more than the goal, so that a path that carries
	// it shows room for the goal with the allocator's headroom.
	rate := min(goal*probeOvershoot/100, c.cfg.Max)
	if !c.probe.start(goal, now) {
		return 0, false
	}
	return rate / 8 * ProbeDuration / 1_000_000, true
}

// ProbeSent closes the probe StartProbe opened: packets were sent.
func (c *Controller) ProbeSent(packets int) {
	c.mu.Lock()
	c.probe.sentAll(packets)
	c.mu.Unlock()
}

// LastProbe reports the last finished probe: its goal, the rate it found
// (0 if it found none) and whether it reached the goal.
func (c *Controller) LastProbe() (goal, found int, reached bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.probe.lastGoal, c.probe.lastFound, c.probe.lastReached
}

func clamp(v, lo, hi int) int { return max(lo, min(v, hi)) }

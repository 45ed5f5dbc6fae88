package sfu

import (
	"context"
	"log/slog"
	"math"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rostrum-dev/rostrum/internal/bwe"
)

// Layer allocation: which simulcast encoding a subscriber's video section
// gets. The rules, in order:
//
//   - a pinned encoding (the WHEP layer link) wins while it is sending;
//   - otherwise the highest sending encoding whose measured bitrate fits the
//     remaining bandwidth estimate, asking 15% headroom to move up, so that
//     an estimate hovering at a layer's bitrate does not flap;
//   - if none fits, the lowest sending encoding: some video beats none;
//   - if nothing is sending (yet), the target stays as it is.

type layerStat struct {
	bitrate int64 // measured, bits per second
	active  bool  // packets arrived in the last second
}

const upgradeHeadroom = 115 // percent

// chooseLayer returns the encoding to target, given the layers in
// ascending quality, the budget in bits per second, the current target and
// the pinned layer (-1: none).
func chooseLayer(layers []layerStat, budget int64, target, pinned int32) int32 {
	anyActive := false
	for _, l := range layers {
		anyActive = anyActive || l.active
	}
	if !anyActive {
		return target
	}
	if pinned >= 0 && int(pinned) < len(layers) {
		if layers[pinned].active {
			return pinned
		}
		return nearestActive(layers, pinned)
	}
	for i := len(layers) - 1; i >= 0; i-- {
		l := layers[i]
		if !l.active {
			continue
		}
		need := l.bitrate
		if int32(i) > target {
			need = need * upgradeHeadroom / 100
		}
		if need <= budget {
			return int32(i)
		}
	}
	for i, l := range layers {
		if l.active {
			return int32(i)
		}
	}
	return target
}

// nearestActive finds the sending layer closest to want, preferring the
// lower one on a tie (it is more likely to fit).
func nearestActive(layers []layerStat, want int32) int32 {
	for d := int32(1); d < int32(len(layers)); d++ {
		if lo := want - d; lo >= 0 && layers[lo].active {
			return lo
		}
		if hi := want + d; int(hi) < len(layers) && layers[hi].active {
			return hi
		}
	}
	return want
}

// estimate is the bandwidth the subscriber can take, in bits per second.
func (s *Subscriber) estimate() int64 {
	if s.twcc && s.est != nil {
		return int64(s.est.GetTargetBitrate())
	}
	if r := s.remb.Load(); r > 0 {
		return r
	}
	return math.MaxInt64
}

// allocate chooses every down-track's target encoding: audio first, then
// video sections in order, each the best its share of the estimate allows.
func (s *Subscriber) allocate() {
	s.allocMu.Lock()
	defer s.allocMu.Unlock()
	if s.closed.Load() {
		return
	}
	budget := s.estimate()
	// want is what the subscriber would take if the budget allowed, and
	// probeOn the video down-track held below its best layer by it.
	var want int64
	var probeOn *downTrack
	for _, d := range s.downs {
		if d.kind == webrtc.RTPCodecTypeAudio && !d.paused.Load() {
			d.setTarget(0)
			budget -= d.up.layers[0].bitrate.Load()
			want += d.up.layers[0].bitrate.Load()
		}
	}
	var stats [8]layerStat
	for _, d := range s.downs {
		if d.kind != webrtc.RTPCodecTypeVideo || d.paused.Load() {
			continue
		}
		n := min(len(d.up.layers), len(stats))
		for i := range n {
			l := d.up.layers[i]
			stats[i] = layerStat{bitrate: l.bitrate.Load(), active: l.active.Load()}
		}
		was := d.target.Load()
		li := chooseLayer(stats[:n], budget, was, d.pinned.Load())
		if li != was && s.log.Enabled(context.Background(), slog.LevelDebug) {
			s.log.Debug("layer target", "mid", d.mid, "from", was, "to", li, "budget", budget, "bitrates", stats[:n])
		}
		if li >= 0 {
			budget -= stats[li].bitrate
		}
		if s.est != nil && li >= 0 {
			// The probe asks for the next layer up, not the best: on a
			// path a little wider than now, a probe for the top layer
			// would fail, and its burst queue up for longer.
			if best := chooseLayer(stats[:n], math.MaxInt64, was, d.pinned.Load()); best > li {
				next := li + 1
				for next < best && !stats[next].active {
					next++
				}
				want += stats[next].bitrate * upgradeHeadroom / 100
				probeOn = d
			} else {
				want += stats[li].bitrate
			}
		}
		d.setTarget(li)
	}
	if probeOn != nil {
		s.probe(probeOn, want)
	}
}

// probeSteps is how many sends a probe's padding is spread over, across
// bwe.ProbeDuration.
const probeSteps = 8

// probe asks the congestion controller for a probe towards goal bits per
// second, and sends it on d, when the budget holds d below the layer it
// would take: the estimate can rise past what the path is seen carrying
// only on what a probe shows (internal/bwe). The padding goes on the RTX
// stream, which receivers drop (it has no payload); without RTX there is
// no probe.
func (s *Subscriber) probe(d *downTrack, goal int64) {
	if !d.canPad() {
		return
	}
	bytes, ok := s.est.c.StartProbe(int(min(goal, math.MaxInt32)), nanotime()/1000)
	if !ok {
		return
	}
	packets := max(bytes/len(probePadding), probeSteps)
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		g, found, reached := s.est.c.LastProbe()
		s.log.Debug("probe", "goal", goal, "estimate", s.est.c.Target(), "packets", packets, "lastGoal", g, "lastFound", found, "lastReached", reached)
	}
	s.r.goTracked(func() {
		sent := 0
		for i := range probeSteps {
			if i > 0 {
				time.Sleep(bwe.ProbeDuration * time.Microsecond / probeSteps)
			}
			if s.closed.Load() {
				break
			}
			// The i-th of probeSteps equal shares of packets.
			sent += d.sendPadding(packets*(i+1)/probeSteps - packets*i/probeSteps)
		}
		s.est.c.ProbeSent(sent)
	})
}

// retryKeyframes repeats keyframe requests for switches still waiting
// (the publisher may have missed one; the request is rate-limited).
func (s *Subscriber) retryKeyframes() {
	for _, d := range s.downs {
		if d.kind != webrtc.RTPCodecTypeVideo {
			continue
		}
		if t := d.target.Load(); t >= 0 && t != d.current.Load() {
			d.up.layers[t].requestKeyframe()
		}
	}
}

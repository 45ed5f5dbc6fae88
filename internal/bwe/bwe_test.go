package bwe

import (
	"testing"
)

func steady(bps int) func(int64) int { return func(int64) int { return bps } }

// The estimate starts above a narrow path, falls to it on the delay the
// queue builds, and the sender settles on the layer the path carries,
// without the queue overflowing for long. The transport-wide sequence
// number and the receiver's 24-bit reference time both wrap during the run.
func TestSettlesOnANarrowPath(t *testing.T) {
	const wrapRef = (1<<24)*64_000 - 3_000_000 // the reference time wraps 3 s in
	s := newSim(t, 4_000_000, simLink{capacity: steady(1_000_000), prop: 20_000}, 65_000, wrapRef)
	s.run(30)
	got := s.c.Target()
	t.Logf("estimate %d bit/s, layers by second %v, sent %d, delivered %d", got, s.layerAt, s.sent, s.delivered)
	if got < 400_000 || got > 1_200_000 {
		t.Errorf("estimate %d bit/s on a 1 Mbit/s path", got)
	}
	for i, li := range s.layerAt[20:] {
		if li != 1 {
			t.Errorf("second %d: layer %d, want 1 (500 kbit/s: the highest that fits 1 Mbit/s)", 20+i, li)
		}
	}
	if lost := float64(s.sent-s.delivered) / float64(s.sent); lost > 0.05 {
		t.Errorf("%.1f %% lost: the estimate did not follow the path", lost*100)
	}
}

// A path that was narrow and opens up: the estimate fell to the narrow
// path's, and only probes can show the wider one (what is sent, the low
// layer, never asks more of the path). Without them the sender stays low.
func TestProbesFindAPathThatOpenedUp(t *testing.T) {
	capacity := func(t int64) int {
		if t < 8_000_000 {
			return 400_000
		}
		return 5_000_000
	}
	for _, probe := range []bool{true, false} {
		s := newSim(t, 4_000_000, simLink{capacity: capacity, prop: 20_000}, 0, 0)
		s.noProbe = !probe
		s.run(30)
		t.Logf("probes %v: estimate %d bit/s, layers by second %v, %d probes", probe, s.c.Target(), s.layerAt, s.probes)
		if s.layerAt[7] != 0 {
			t.Errorf("probes %v: layer %d at 7 s on a 400 kbit/s path, want 0", probe, s.layerAt[7])
		}
		top := s.layerAt[len(s.layerAt)-1] == 2
		if top != probe {
			t.Errorf("probes %v: at the top layer at the end: %v", probe, top)
		}
	}
}

// A probe on a path narrower than its goal finds the path, not the goal.
func TestProbeFindsTheNarrowerPath(t *testing.T) {
	s := newSim(t, 300_000, simLink{capacity: steady(900_000), prop: 20_000}, 0, 0)
	s.run(5)
	goal, found, reached := s.c.LastProbe()
	t.Logf("probe goal %d, found %d, estimate %d, layers %v", goal, found, s.c.Target(), s.layerAt)
	if s.probes == 0 || goal == 0 {
		t.Fatal("no probe")
	}
	if reached {
		t.Errorf("a probe to %d bit/s reached its goal on a 900 kbit/s path", goal)
	}
	if found < 500_000 || found > 1_000_000 {
		t.Errorf("the probe found %d bit/s on a 900 kbit/s path", found)
	}
	if got := s.c.Target(); got > 1_000_000 {
		t.Errorf("estimate %d bit/s on a 900 kbit/s path", got)
	}
}

// Random loss with no queue: the loss-based bound brings the estimate down.
func TestLossCutsTheEstimate(t *testing.T) {
	s := newSim(t, 4_000_000, simLink{capacity: steady(50_000_000), prop: 20_000, loss: 0.2}, 0, 0)
	s.run(10)
	t.Logf("estimate %d, layers %v", s.c.Target(), s.layerAt)
	if got := s.c.Target(); got > 1_000_000 {
		t.Errorf("estimate %d bit/s with 20 %% loss", got)
	}
}

// A wide path keeps the top layer, and no probe is sent once it is there.
func TestWidePathKeepsTheTopLayer(t *testing.T) {
	s := newSim(t, 4_000_000, simLink{capacity: steady(50_000_000), prop: 20_000}, 0, 0)
	s.run(20)
	t.Logf("estimate %d, layers %v, probes %d", s.c.Target(), s.layerAt, s.probes)
	for i, li := range s.layerAt {
		if li != 2 {
			t.Errorf("second %d: layer %d on a wide path", i, li)
		}
	}
	if s.probes != 0 {
		t.Errorf("%d probes with the top layer fitting", s.probes)
	}
}

// A policer lets a probe's burst through at once but holds the rate below
// the top layer: each probe succeeds, and the layer it unlocks overflows
// the path. The overuse that follows counts against the probe, so they
// come further and further apart instead of every few seconds.
func TestProbesBackOffWhenTheirRateDoesNotHold(t *testing.T) {
	s := newSim(t, 4_000_000, simLink{capacity: steady(1_200_000), prop: 20_000, burst: 40_000}, 0, 0)
	s.run(120)
	t.Logf("estimate %d, %d probes, layers %v", s.c.Target(), s.probes, s.layerAt)
	if s.probes > 12 {
		t.Errorf("%d probes in 120 s on a path that never holds the top layer", s.probes)
	}
}

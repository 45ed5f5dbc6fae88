package bwe

import (
	"math/rand/v2"
	"testing"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
)

// A simulated path for the controller, in virtual time: an SFU's sender
// (simulcast layers chosen on the estimate, as the engine's allocator
// does, audio, and probes when the top layer does not fit), a bottleneck
// link with a drop-tail queue, and a receiver that builds its feedback
// with pion's twcc.Recorder (what pion's receivers send) every 50 ms. The
// feedback is marshalled and parsed again, as it crosses the wire.

type simLink struct {
	capacity func(t int64) int // bits per second at time t (µs)
	prop     int64             // one-way propagation, µs
	maxQueue int64             // drop-tail: a packet that would wait longer is lost
	loss     float64           // random loss on top
	// burst, if set, makes the link a policer with a bucket of burst
	// bytes, filled at the capacity: what finds tokens passes at once,
	// the rest queues.
	burst    int
	tokens   float64
	lastFill int64
	free     int64 // when the link is next free
	rng      *rand.Rand
}

// pass returns when a packet of size bytes entering at t arrives, or
// false if it is lost.
func (l *simLink) pass(t int64, size int) (int64, bool) {
	if l.loss > 0 && l.rng.Float64() < l.loss {
		return 0, false
	}
	if l.burst > 0 {
		// Packets leave in order, each when the bucket holds its size.
		rate := float64(l.capacity(t)) / 8e6 // bytes per µs
		depart := max(t, l.free)
		tokens := min(float64(l.burst), l.tokens+float64(depart-l.lastFill)*rate)
		if tokens < float64(size) {
			depart += int64((float64(size)-tokens)/rate) + 1
			tokens = float64(size)
		}
		if depart-t > l.maxQueue {
			return 0, false
		}
		l.tokens, l.lastFill, l.free = tokens-float64(size), depart, depart
		return depart + l.prop, true
	}
	start := max(t, l.free)
	if start-t > l.maxQueue {
		return 0, false
	}
	l.free = start + int64(size)*8*1_000_000/int64(l.capacity(t))
	return l.free + l.prop, true
}

type simArrival struct {
	at  int64
	seq uint16
}

type simFeedback struct {
	at  int64
	raw []byte
}

type sim struct {
	t       *testing.T
	c       *Controller
	link    simLink
	layers  []int // bits per second, ascending
	noProbe bool

	now      int64 // µs
	seq      uint16
	clockOff int64 // the receiver's clock, ahead of the sender's
	inFlight []simArrival
	rec      *twcc.Recorder
	feedback []simFeedback

	layer           int   // chosen
	layerAt         []int // the layer chosen at each second
	sent, delivered int
	probes, probeN  int
	padding         []int64 // when probe packets are due
}

func newSim(t *testing.T, initial int, link simLink, seq uint16, clockOff int64) *sim {
	link.rng = rand.New(rand.NewPCG(1, 2))
	if link.maxQueue == 0 {
		link.maxQueue = 300_000
	}
	return &sim{
		t: t, c: New(Config{Initial: initial, Min: 100_000, Max: 20_000_000}),
		link: link, layers: []int{150_000, 500_000, 1_500_000},
		seq: seq, clockOff: clockOff, rec: twcc.NewRecorder(1),
	}
}

func (s *sim) send(size int, probe bool) {
	seq := s.seq
	s.seq++
	s.c.Sent(seq, size, s.now, probe)
	s.sent++
	if at, ok := s.link.pass(s.now, size); ok {
		s.inFlight = append(s.inFlight, simArrival{at, seq})
	}
}

// choose picks the layer as the engine's allocator does: the highest that
// fits the estimate less audio, with 15 % headroom to move up; and asks
// for a probe for the next layer up when the top layer does not fit.
func (s *sim) choose() {
	budget := s.c.Target() - 64_000
	li := 0
	for i := len(s.layers) - 1; i >= 0; i-- {
		need := s.layers[i]
		if i > s.layer {
			need = need * 115 / 100
		}
		if need <= budget {
			li = i
			break
		}
	}
	s.layer = li
	if top := len(s.layers) - 1; li < top && !s.noProbe {
		goal := s.layers[li+1]*115/100 + 64_000 // the next layer up, as the allocator asks
		if bytes, ok := s.c.StartProbe(goal, s.now); ok {
			s.probes++
			n := max(bytes/padSize, probeMinPackets)
			s.probeN = n
			for i := range n {
				s.padding = append(s.padding, s.now+int64(i)*ProbeDuration/int64(n))
			}
		}
	}
}

const padSize = 255 + 12 + 8 // padding, header, the transport-wide extension

func (s *sim) run(seconds int) {
	end := s.now + int64(seconds)*1_000_000
	for ; s.now < end; s.now += 1000 {
		ms := s.now / 1000
		if ms%500 == 0 {
			s.choose()
		}
		if ms%1000 == 0 {
			s.layerAt = append(s.layerAt, s.layer)
		}
		if ms%20 == 0 {
			s.send(160, false) // audio: 64 kbit/s
		}
		if ms%33 == 0 {
			// A frame of the chosen layer, its packets back to back.
			frame := s.layers[s.layer] / 8 / 30
			for frame > 0 {
				n := min(frame, 1200)
				s.send(n, false)
				frame -= n
			}
		}
		for len(s.padding) > 0 && s.padding[0] <= s.now {
			s.padding = s.padding[1:]
			s.send(padSize, true)
			if len(s.padding) == 0 {
				s.c.ProbeSent(s.probeN)
			}
		}
		// Arrivals at the receiver.
		kept := s.inFlight[:0]
		for _, a := range s.inFlight {
			if a.at <= s.now {
				s.rec.Record(1, a.seq, a.at+s.clockOff)
				s.delivered++
			} else {
				kept = append(kept, a)
			}
		}
		s.inFlight = kept
		if ms%50 == 0 {
			for _, p := range s.rec.BuildFeedbackPacket() {
				raw, err := p.Marshal()
				if err != nil {
					s.t.Fatal(err)
				}
				s.feedback = append(s.feedback, simFeedback{s.now + s.link.prop, raw})
			}
		}
		for len(s.feedback) > 0 && s.feedback[0].at <= s.now {
			pkts, err := rtcp.Unmarshal(s.feedback[0].raw)
			if err != nil {
				s.t.Fatal(err)
			}
			s.feedback = s.feedback[1:]
			for _, p := range pkts {
				if fb, ok := p.(*rtcp.TransportLayerCC); ok {
					s.c.Feedback(fb, s.now)
				}
			}
		}
	}
}

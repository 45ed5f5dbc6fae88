package rtclient

import (
	"slices"
	"time"

	"github.com/pion/rtcp"
)

// A Subscriber makes its own NACKs instead of using pion's NACK generator.
// pion's generator sits in the interceptor chain, before pion unwraps RTX, so
// it never learns that a packet was recovered over RTX and keeps asking for
// it until the packet leaves its window; a server would see every loss
// NACKed many times. The Subscriber's read loop sees packets after
// unwrapping, so it asks for a missing packet only until it arrives, as a
// browser does: first at the next tick after the gap shows, then every
// nackRetry, at most nackMaxTries times, and not once it is more than
// nackMaxAge sequence numbers old.
const (
	nackTick     = 20 * time.Millisecond
	nackRetry    = 100 * time.Millisecond
	nackMaxTries = 10
	nackMaxAge   = 512
)

// nackList holds the missing sequence numbers of one stream (extended).
type nackList struct {
	pending map[int64]*nackEntry
}

type nackEntry struct {
	tries int
	due   time.Time
}

func newNACKList() *nackList { return &nackList{pending: map[int64]*nackEntry{}} }

// gap records the sequence numbers in [from, to) as missing. It reports
// whether anything was added.
func (l *nackList) gap(from, to int64, now time.Time) bool {
	if to-from > nackMaxAge {
		from = to - nackMaxAge
	}
	for e := from; e < to; e++ {
		l.pending[e] = &nackEntry{due: now}
	}
	return to > from
}

// fill records the arrival of a sequence number.
func (l *nackList) fill(ext int64) { delete(l.pending, ext) }

// clear forgets every missing number.
func (l *nackList) clear() { clear(l.pending) }

// due returns the (extended) sequence numbers to NACK now, in ascending
// order, and schedules their retry, forgetting those too old or asked for
// too often; and whether any remain.
func (l *nackList) due(now time.Time, highest int64, out []int64) ([]int64, bool) {
	for e, n := range l.pending {
		if highest-e > nackMaxAge || n.tries >= nackMaxTries {
			delete(l.pending, e)
			continue
		}
		if now.Before(n.due) {
			continue
		}
		n.tries++
		n.due = now.Add(nackRetry)
		out = append(out, e)
	}
	slices.Sort(out)
	return out, len(l.pending) > 0
}

// kickNACK wakes the NACK loop; it never blocks.
func (s *Subscriber) kickNACK() {
	select {
	case s.nackKick <- struct{}{}:
	default:
	}
}

// nackLoop sends the NACKs of all tracks. It sleeps while nothing is
// missing and ticks every nackTick while something is.
func (s *Subscriber) nackLoop() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var (
		seqs []int64
		wire []uint16
	)
	for {
		select {
		case <-s.stop:
			return
		case <-s.nackKick:
		}
		for more := true; more; {
			timer.Reset(nackTick)
			select {
			case <-s.stop:
				return
			case <-timer.C:
			}
			more = false
			now := time.Now()
			for _, st := range s.tracks {
				var ssrc uint32
				var left bool
				st.mu.Lock()
				if st.nack != nil {
					seqs, left = st.nack.due(now, st.seq.highest, seqs[:0])
					ssrc = st.ssrc
				}
				st.mu.Unlock()
				more = more || left
				if len(seqs) == 0 {
					continue
				}
				wire = wireSeqs(seqs, wire[:0])
				_ = s.pc.WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{
					MediaSSRC: ssrc,
					Nacks:     rtcp.NackPairsFromSequenceNumbers(wire),
				}})
				seqs = seqs[:0]
			}
		}
	}
}

// wireSeqs turns ascending extended sequence numbers into the 16-bit ones
// of the wire, still in RTP order (across a wrap too), as
// NackPairsFromSequenceNumbers wants them. Sorting the extended numbers
// rather than the 16-bit ones keeps the order right however far apart they
// are.
func wireSeqs(ext []int64, out []uint16) []uint16 {
	for _, e := range ext {
		out = append(out, uint16(e))
	}
	return out
}

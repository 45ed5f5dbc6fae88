package main

import (
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// seqWindow is how far behind the highest sequence number a packet is
// still told apart as a late arrival (a repair) or a duplicate.
const seqWindow = 4096

// subStats are what one subscriber received of the video track, counted as
// the packets come out of pion (after its interceptors, in arrival order).
type subStats struct {
	mu        sync.Mutex
	started   time.Time // join began
	joined    time.Time // the room connection was up
	first     time.Time // first media packet
	started16 bool
	highest   int64 // highest sequence number, unwrapped
	seen      [seqWindow]bool
	packets   int64 // media packets (with a payload), duplicates included
	bytes     int64
	padding   int64 // packets without payload (the server's probes)
	distinct  int64 // media and padding sequence numbers received, each once
	gaps      int64 // sequence numbers skipped when a higher one came: raw gaps
	late      int64 // sequence numbers that came after a higher one: repairs
	dups      int64
	tooLate   int64
}

// subSnapshot is a subStats at one moment.
type subSnapshot struct {
	packets, bytes, padding, distinct, gaps, late, dups int64
}

func (s *subStats) snapshot() subSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return subSnapshot{s.packets, s.bytes, s.padding, s.distinct, s.gaps, s.late, s.dups}
}

// add counts one packet.
//
// Hot path: once per packet per subscriber.
func (s *subStats) add(seq uint16, payloadLen, size int, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if payloadLen == 0 {
		s.padding++
	} else {
		if s.first.IsZero() {
			s.first = at
		}
		s.packets++
		s.bytes += int64(size)
	}
	if !s.started16 {
		s.started16, s.highest = true, int64(seq)
		s.seen[seq%seqWindow] = true
		s.distinct++
		return
	}
	// Unwrap against the highest: the nearest 64-bit value.
	ext := s.highest + int64(int16(seq-uint16(s.highest)))
	switch {
	case ext > s.highest:
		for n := s.highest + 1; n < ext && n <= s.highest+seqWindow; n++ {
			s.seen[n%seqWindow] = false
		}
		s.gaps += ext - s.highest - 1
		s.highest = ext
		s.seen[ext%seqWindow] = true
		s.distinct++
	case ext <= s.highest-seqWindow:
		s.tooLate++
	case s.seen[ext%seqWindow]:
		s.dups++
	default:
		s.seen[ext%seqWindow] = true
		s.late++
		s.distinct++
	}
}

// read counts the packets of a subscribed track until it ends.
func (s *subStats) read(track *webrtc.TrackRemote) {
	for {
		p, _, err := track.ReadRTP()
		if err != nil {
			return
		}
		s.add(p.SequenceNumber, len(p.Payload), p.MarshalSize(), time.Now())
	}
}

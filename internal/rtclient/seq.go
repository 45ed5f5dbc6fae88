package rtclient

// seqWindow is how many sequence numbers behind the highest one a packet may
// arrive and still be told apart from a duplicate.
const seqWindow = 4096

type seqResult int

const (
	seqNew seqResult = iota
	seqDuplicate
	seqTooLate
	// seqJump: this packet and the one before it (reported seqTooLate)
	// follow each other but lie far from the stream: the stream jumped
	// ahead, and both now count as new.
	seqJump
)

// seqTracker counts the distinct RTP sequence numbers of a stream, unwrapped
// to 64 bits, so that lost = expected − received as in RFC 3550 §6.4.1, but
// with duplicates left out and retransmissions that fill a gap counted.
//
// Each number is unwrapped to the extended one nearest the highest so far,
// which cannot tell a jump ahead of 32,768 or more (a sender that skipped
// numbers, or a relay that dropped that many packets) from a packet from
// long ago. As RFC 3550 §A.1 does, two consecutive numbers far from the
// stream are taken as the stream having moved on: it follows them, and the
// skipped numbers count as lost. Without that, one long outage would make
// every later packet "too late" for good.
type seqTracker struct {
	started  bool
	first    int64 // lowest extended sequence number seen
	highest  int64 // highest extended sequence number seen
	distinct int64 // distinct sequence numbers seen, in [first, highest]
	late     int64 // packets too far behind to count
	badSeq   uint16
	bad      bool // badSeq is the number that would confirm a jump
	seen     [seqWindow / 64]uint64
}

func (t *seqTracker) bit(ext int64) (word int, mask uint64) {
	i := int(uint64(ext) % seqWindow)
	return i / 64, 1 << (i % 64)
}

// add records one packet's sequence number. It returns what the packet was,
// its extended sequence number, and the highest one before it (so that
// ext > prev+1 tells of a gap).
func (t *seqTracker) add(seq uint16) (res seqResult, ext, prev int64) {
	if !t.started {
		t.started = true
		t.first, t.highest = int64(seq), int64(seq)
		w, m := t.bit(int64(seq))
		t.seen[w] |= m
		t.distinct = 1
		return seqNew, int64(seq), int64(seq)
	}
	// The extended number closest to the highest one.
	prev = t.highest
	ext = t.highest + int64(int16(seq-uint16(t.highest)))
	switch {
	case ext > t.highest:
		if ext-t.highest >= seqWindow {
			t.seen = [seqWindow / 64]uint64{}
		} else {
			for e := t.highest + 1; e <= ext; e++ {
				w, m := t.bit(e)
				t.seen[w] &^= m
			}
		}
		t.highest = ext
	case t.highest-ext >= seqWindow:
		if t.bad && seq == t.badSeq {
			// The previous packet and this one: the stream is ahead by
			// this many, not behind.
			ext = t.highest + int64(seq-uint16(t.highest))
			t.seen = [seqWindow / 64]uint64{}
			t.highest = ext
			for _, e := range []int64{ext - 1, ext} {
				w, m := t.bit(e)
				t.seen[w] |= m
			}
			t.distinct += 2
			t.late--
			t.bad = false
			return seqJump, ext, prev
		}
		t.badSeq, t.bad = seq+1, true
		t.late++
		return seqTooLate, ext, prev
	case ext < t.first:
		// Reordered ahead of the first packet: it extends the range; the
		// bits between are clear (never set) as long as it is in the window.
		for e := ext + 1; e < t.first; e++ {
			w, m := t.bit(e)
			t.seen[w] &^= m
		}
		t.first = ext
	}
	t.bad = false
	w, m := t.bit(ext)
	if t.seen[w]&m != 0 {
		return seqDuplicate, ext, prev
	}
	t.seen[w] |= m
	t.distinct++
	return seqNew, ext, prev
}

// lost is the number of sequence numbers in [first, highest] never seen.
func (t *seqTracker) lost() int64 {
	if !t.started {
		return 0
	}
	return t.highest - t.first + 1 - t.distinct
}

// TimestampUnwrapper unwraps 32-bit RTP timestamps to 64 bits, each to the
// value nearest the one before, so that differences stay right across the
// wrap (every 13 h 15 min at 90 kHz, 24 h 51 min at 48 kHz). Timestamps of
// consecutive packets never lie 2^31 ticks apart. The zero value is ready;
// it is not safe for concurrent use.
type TimestampUnwrapper struct {
	started bool
	last    int64
}

// Unwrap returns ts unwrapped: the first one as it is, each later one the
// 64-bit value nearest the one before that is ts modulo 2^32.
func (u *TimestampUnwrapper) Unwrap(ts uint32) int64 {
	if !u.started {
		u.started, u.last = true, int64(ts)
		return u.last
	}
	u.last += int64(int32(ts - uint32(u.last)))
	return u.last
}

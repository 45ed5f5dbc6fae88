package main

import (
	"testing"
	"time"
)

// Raw gaps are the sequence numbers skipped when a higher one comes; one
// that comes after is a repair, again a duplicate; the count runs across
// the 16-bit wrap; padding counts apart from media.
func TestSubStatsGaps(t *testing.T) {
	var s subStats
	now := time.Now()
	for _, seq := range []uint16{65530, 65531, 65534, 65533, 65535, 0, 1, 1, 4, 2, 65532} {
		s.add(seq, 100, 112, now)
	}
	s.add(5, 0, 12, now) // padding
	got := s.snapshot()
	want := subSnapshot{packets: 11, bytes: 11 * 112, padding: 1, distinct: 11, gaps: 4, late: 3, dups: 1}
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if s.highest != 65536+5 {
		t.Errorf("highest %d, want %d", s.highest, 65536+5)
	}
}

func TestCountCPUs(t *testing.T) {
	for in, want := range map[string]int{"0": 1, "0,1": 2, "0-3": 4, "1,4-5": 3} {
		if n, err := countCPUs(in); err != nil || n != want {
			t.Errorf("countCPUs(%q) = %d, %v; want %d", in, n, err, want)
		}
	}
	for _, bad := range []string{"", "a", "3-1", "-1"} {
		if _, err := countCPUs(bad); err == nil {
			t.Errorf("countCPUs(%q) accepted", bad)
		}
	}
}

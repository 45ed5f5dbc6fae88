package stage

import (
	"errors"
	"sync"
	"testing"

	"github.com/pion/rtp"

	"github.com/rostrum-dev/rostrum/internal/ivs"
)

func TestReplicaSetOneReplicationPerDestinationAndAtMostTheQuota(t *testing.T) {
	var s replicaSet
	add := func(src, pid, dst string) error {
		return s.add(&replication{key: replicaKey{src: src, pid: pid, dst: dst}}, 2)
	}
	if err := add("a", "alice", "b"); err != nil {
		t.Fatal(err)
	}
	if err := add("a", "alice", "b"); !errors.Is(err, ivs.ErrAlreadyReplicated) {
		t.Errorf("the same replication again: %v", err)
	}
	if err := add("a", "alice", "c"); err != nil {
		t.Fatal(err)
	}
	if err := add("a", "alice", "d"); !errors.Is(err, ivs.ErrTooManyReplicas) {
		t.Errorf("a third replication with a quota of 2: %v", err)
	}
	// The quota is per participant of a stage.
	if err := add("a", "bob", "d"); err != nil {
		t.Errorf("another participant: %v", err)
	}
	if err := add("x", "alice", "d"); err != nil {
		t.Errorf("the same id in another stage: %v", err)
	}
	r := s.get(replicaKey{"a", "alice", "b"})
	s.remove(r)
	if err := add("a", "alice", "d"); err != nil {
		t.Errorf("after one stopped: %v", err)
	}
}

// writtenConn is a replica's publisher that keeps the headers written.
type writtenConn struct {
	mu sync.Mutex
	hs []rtp.Header
}

func (c *writtenConn) Close() error { return nil }
func (c *writtenConn) WriteRTP(track int, h *rtp.Header, payload []byte) error {
	c.mu.Lock()
	c.hs = append(c.hs, *h)
	c.mu.Unlock()
	return nil
}
func (c *writtenConn) SetSenderReport(int, uint64, uint32) {}

// A replica's subscribers see one stream though each tap of its source
// (each publisher of the source, after a reconnect) numbers its own.
func TestReplicaStreamContinuesAcrossTaps(t *testing.T) {
	conn := &writtenConn{}
	r := &replication{tracks: make([]replicaTrack, 2)}
	r.tracks[0].clock, r.tracks[1].clock = 48000, 90000
	r.ready.Store(&LocalPublication{conn: conn})
	first, second := &tapGen{}, &tapGen{}
	first.to.Store(identityMap(2))
	// The second publisher sends video first: its track 0 is the replica's 1.
	second.to.Store(&[]int{1, 0})

	r.cur.Store(first)
	r.forward(first, 1, &rtp.Header{SequenceNumber: 65534, Timestamp: 4294960000, Marker: true}, nil)
	r.forward(first, 1, &rtp.Header{SequenceNumber: 65535, Timestamp: 4294963000}, nil)
	r.forward(first, 0, &rtp.Header{SequenceNumber: 10, Timestamp: 500}, nil)
	r.cur.Store(second)
	r.forward(second, 0, &rtp.Header{SequenceNumber: 7, Timestamp: 123}, nil) // video
	// A late packet of the replaced tap is dropped.
	r.forward(first, 1, &rtp.Header{SequenceNumber: 0, Timestamp: 4294966000}, nil)
	r.forward(second, 0, &rtp.Header{SequenceNumber: 8, Timestamp: 3123, Marker: true}, nil)
	r.forward(second, 1, &rtp.Header{SequenceNumber: 900, Timestamp: 90}, nil) // audio
	// A track the replica does not have is dropped.
	third := &tapGen{}
	third.to.Store(&[]int{-1})
	r.cur.Store(third)
	r.forward(third, 0, &rtp.Header{SequenceNumber: 1}, nil)

	hs := conn.hs
	if len(hs) != 6 {
		t.Fatalf("%d packets written, want 6", len(hs))
	}
	video := []rtp.Header{hs[0], hs[1], hs[3], hs[4]}
	for i, want := range []uint16{65534, 65535, 0, 1} {
		if video[i].SequenceNumber != want {
			t.Errorf("video packet %d: sequence number %d, want %d", i, video[i].SequenceNumber, want)
		}
	}
	// Timestamps go on forward from the first tap's last, across the wrap,
	// and keep the second tap's own spacing.
	if d := int32(video[2].Timestamp - video[1].Timestamp); d < 1 {
		t.Errorf("the second tap's first video timestamp is %d after the first's last, want > 0", d)
	}
	if d := video[3].Timestamp - video[2].Timestamp; d != 3000 {
		t.Errorf("the second tap's spacing became %d, want 3000", d)
	}
	if !video[0].Marker || video[1].Marker || !video[3].Marker {
		t.Errorf("markers changed: %v %v %v", video[0].Marker, video[1].Marker, video[3].Marker)
	}
	if hs[5].SequenceNumber != 11 || int32(hs[5].Timestamp-hs[2].Timestamp) < 1 {
		t.Errorf("audio after the second tap: seq %d ts %d, after seq %d ts %d", hs[5].SequenceNumber, hs[5].Timestamp, hs[2].SequenceNumber, hs[2].Timestamp)
	}
}

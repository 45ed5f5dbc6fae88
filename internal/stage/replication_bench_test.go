package stage

import (
	"io"
	"log/slog"
	"testing"

	"github.com/pion/rtp"

	"github.com/rostrum-dev/rostrum/internal/sfu"
)

// BenchmarkReplicaForward measures replication's hot path per packet: a
// video packet written into a source publisher with (replica) and without
// (source-only) a replication of it into another session's router. The
// difference is what a replica costs per packet of its source: the tap's
// down-track, the rewriting and the replica's up-track (sequence
// unwrapping, NACK cache, keyframe detection) with nobody subscribed.
func BenchmarkReplicaForward(b *testing.B) {
	for _, replicated := range []bool{false, true} {
		name := "source-only"
		if replicated {
			name = "replica"
		}
		b.Run(name, func(b *testing.B) {
			e, err := sfu.NewEngine(sfu.Config{ListenIP: "127.0.0.1", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			ra, rb := e.NewRouter("st-a"), e.NewRouter("st-b")
			defer ra.Close()
			defer rb.Close()
			tracks := []sfu.LocalTrack{{Kind: sfu.Video, Codec: "H264"}}
			src, err := ra.PublishLocal("alice", tracks, sfu.LocalPublisherOptions{})
			if err != nil {
				b.Fatal(err)
			}
			var r *replication
			if replicated {
				dst, err := rb.PublishLocal("alice", tracks, sfu.LocalPublisherOptions{})
				if err != nil {
					b.Fatal(err)
				}
				r = &replication{key: replicaKey{pid: "alice"}, tracks: make([]replicaTrack, 1), keyframes: make(chan struct{}, 1)}
				r.tracks[0].clock = 90000
				r.ready.Store(&LocalPublication{conn: dst})
				gen, err := r.tapOn(sfuRouter{ra})
				if err != nil {
					b.Fatal(err)
				}
				defer gen.tap.Close()
				gen.to.Store(identityMap(1))
				r.cur.Store(gen)
			}
			key := make([]byte, 1200)
			key[0] = 0x67 // an SPS: a keyframe starts the tap
			delta := make([]byte, 1200)
			delta[0] = 0x41 // a non-IDR slice
			h := &rtp.Header{SequenceNumber: 1, Timestamp: 90000, Marker: true}
			if err := src.WriteRTP(0, h, key); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(1200)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				h.SequenceNumber++
				if i%6 == 0 {
					h.Timestamp += 3000
				}
				if err := src.WriteRTP(0, h, delta); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			// Every packet reached the replica (the first is the keyframe).
			if r != nil {
				t := &r.tracks[0]
				t.mu.Lock()
				got := t.last.seq
				t.mu.Unlock()
				if got != uint16(b.N+1) {
					b.Fatalf("the replica's last packet is %d, want %d", got, uint16(b.N+1))
				}
			}
		})
	}
}

package rtclient

import (
	"sync/atomic"
	"testing"
	"time"
)

// A frame made with Timestamps says in every packet-sized piece when it
// was made, and its number still reads as before.
func TestSyntheticTimestampsInEveryPacket(t *testing.T) {
	src := NewSyntheticSource(SyntheticOptions{FrameSize: 5000, Timestamps: true})
	for i := range 3 {
		before := time.Now().UnixNano()
		f, err := src.NextFrame()
		if err != nil {
			t.Fatal(err)
		}
		after := time.Now().UnixNano()
		if n, ok := SyntheticFrameNumber(f.Data); !ok || n != i {
			t.Fatalf("frame %d: SyntheticFrameNumber = %d, %v", i, n, ok)
		}
		// Cut as a packetizer would, at any offset, into 1,100-byte pieces.
		for off := 0; off < len(f.Data); off += 1100 {
			piece := f.Data[off:min(off+1100, len(f.Data))]
			n, sent, ok := SyntheticPacketSent(piece)
			if len(piece) < 100 {
				continue // too short to be sure of a whole copy
			}
			if !ok || n != i || sent < before || sent > after {
				t.Errorf("frame %d, bytes %d..: SyntheticPacketSent = %d, %d, %v (made between %d and %d)", i, off, n, sent, ok, before, after)
			}
		}
	}
}

func TestSyntheticPacketSentRejectsOtherData(t *testing.T) {
	plain := NewSyntheticSource(SyntheticOptions{})
	f, err := plain.NextFrame()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{nil, []byte("rtclient frame 1 @"), []byte("rtclient frame 1 @12"), []byte("rtclient frame x @1 "), f.Data} {
		if n, sent, ok := SyntheticPacketSent(b); ok {
			t.Errorf("SyntheticPacketSent(%.40q) = %d, %d, true", b, n, sent)
		}
	}
	// A copy cut at the start is skipped for the next whole one.
	if n, sent, ok := SyntheticPacketSent([]byte("e 3 @17 rtclient frame 3 @17 rtclient fr")); !ok || n != 3 || sent != 17 {
		t.Errorf("cut copy: %d, %d, %v", n, sent, ok)
	}
}

func TestSyntheticPacketSentDoesNotAllocate(t *testing.T) {
	src := NewSyntheticSource(SyntheticOptions{FrameSize: 1200, Timestamps: true})
	f, _ := src.NextFrame()
	if a := testing.AllocsPerRun(100, func() { SyntheticPacketSent(f.Data[300:]) }); a != 0 {
		t.Errorf("%v allocations per call", a)
	}
}

// OnPacket sees every packet read, and the send times in them.
func TestSubscribeOnPacket(t *testing.T) {
	checkLeaks(t)
	a := newAnswerer(t)
	a.subSource = func(kind string) MediaSource {
		if kind == KindAudio {
			return nil
		}
		return NewSyntheticSource(SyntheticOptions{FrameSize: 3000, Timestamps: true})
	}
	var packets, stamped atomic.Int64
	var worst atomic.Int64
	s := subscribeTo(t, a, "pubOnPacket", SubscribeOptions{NoFrames: true, OnPacket: func(kind string, pkt []byte, at time.Time) {
		if kind != KindVideo || len(pkt) < 12 {
			t.Errorf("OnPacket(%q, %d bytes)", kind, len(pkt))
			return
		}
		packets.Add(1)
		if _, sent, ok := SyntheticPacketSent(pkt[12:]); ok {
			stamped.Add(1)
			if d := at.UnixNano() - sent; d < 0 {
				worst.Store(d)
			}
		}
	}})
	eventually(t, 10*time.Second, "packets", func() bool { return s.Stats(KindVideo).Packets > 30 })
	if p, st := packets.Load(), s.Stats(KindVideo).Packets; p == 0 || p > st {
		t.Errorf("OnPacket saw %d packets, Stats counts %d", p, st)
	}
	if stamped.Load() == 0 {
		t.Error("no packet carried a send time")
	}
	if w := worst.Load(); w < 0 {
		t.Errorf("a packet arrived %d ns before it was sent", -w)
	}
}

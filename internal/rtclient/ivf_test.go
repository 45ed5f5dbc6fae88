package rtclient

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

// writeIVF writes VP8 frames as an IVF file at fps frames per second.
func writeIVF(t *testing.T, frames [][]byte, fps int) string {
	t.Helper()
	hdr := make([]byte, 32)
	copy(hdr, "DKIF")
	binary.LittleEndian.PutUint16(hdr[6:], 32)
	copy(hdr[8:], "VP80")
	binary.LittleEndian.PutUint16(hdr[12:], 640)
	binary.LittleEndian.PutUint16(hdr[14:], 360)
	binary.LittleEndian.PutUint32(hdr[16:], uint32(fps)) // time base 1/fps s
	binary.LittleEndian.PutUint32(hdr[20:], 1)
	binary.LittleEndian.PutUint32(hdr[24:], uint32(len(frames)))
	out := hdr
	for i, f := range frames {
		var fh [12]byte
		binary.LittleEndian.PutUint32(fh[0:], uint32(len(f)))
		binary.LittleEndian.PutUint64(fh[4:], uint64(i))
		out = append(append(out, fh[:]...), f...)
	}
	path := filepath.Join(t.TempDir(), "loop.ivf")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type sentPacket struct {
	seq     uint16
	payload []byte
}

// A Publisher plays an IVF file in a loop: each frame is cut by pion's VP8
// payloader into packets of at most 1,200 bytes with their RTP header, each
// packet is reported once to OnPacketSent as it leaves, and the sequence
// numbers run on across the loop's restart. The packets, put back together,
// are the file's frames in file order, loop after loop.
func TestPublishLoopsAnIVFFile(t *testing.T) {
	checkLeaks(t)
	// Five frames (a keyframe, a big delta frame that needs several
	// packets, three small ones) at 30 fps: a loop every 167 ms.
	syn := NewSyntheticSource(SyntheticOptions{Codec: CodecVP8, FrameSize: 700, KeyframeSize: 3000, KeyframeInterval: 5})
	var frames [][]byte
	for i := range 5 {
		f, err := syn.NextFrame()
		if err != nil {
			t.Fatal(err)
		}
		d := append([]byte(nil), f.Data...)
		if i == 1 {
			d = append(d, make([]byte, 4000)...)
		}
		frames = append(frames, d)
	}
	src, err := NewFileSource(writeIVF(t, frames, 30))
	if err != nil {
		t.Fatal(err)
	}
	if src.Len() != 5 || src.Duration() != 5*(time.Second/30) {
		t.Fatalf("file read as %d frames of %v", src.Len(), src.Duration())
	}

	var (
		mu   sync.Mutex
		sent []sentPacket
	)
	a := newAnswerer(t)
	ctx := testContext(t)
	p, err := Publish(ctx, stageToken(t, "pubIVF", a.whipURL(), "ws://unused.invalid"), PublishOptions{
		Video: src, LoopbackOnly: true, NoVideoPlaceholder: true,
		OnPacketSent: func(kind string, seq uint16, payload []byte, at time.Time) {
			if kind != KindVideo || at.IsZero() {
				t.Errorf("OnPacketSent(%q, at %v)", kind, at)
			}
			mu.Lock()
			sent = append(sent, sentPacket{seq, append([]byte(nil), payload...)})
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	// Three loops and a bit.
	eventually(t, 20*time.Second, "three loops sent", func() bool { return p.Stats(KindVideo).Frames > 16 })
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	st := p.Stats(KindVideo)
	if int64(len(sent)) != st.Packets {
		t.Errorf("OnPacketSent told of %d packets, the stats count %d", len(sent), st.Packets)
	}
	// Rebuild frames from the packets' VP8 payload descriptors.
	var (
		got   [][]byte
		cur   []byte
		depak codecs.VP8Packet
	)
	for i, sp := range sent {
		if i > 0 && sp.seq != sent[i-1].seq+1 {
			t.Fatalf("packet %d: sequence number %d after %d", i, sp.seq, sent[i-1].seq)
		}
		if n := (&rtp.Header{}).MarshalSize() + len(sp.payload); n > 1200 {
			t.Errorf("packet %d: %d bytes with its header, over 1,200", i, n)
		}
		data, err := depak.Unmarshal(sp.payload)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if depak.S == 1 && cur != nil {
			got = append(got, cur)
			cur = nil
		}
		cur = append(cur, data...)
	}
	if len(got) < 15 {
		t.Fatalf("rebuilt %d frames from %d packets", len(got), len(sent))
	}
	for i, f := range got {
		if string(f) != string(frames[i%5]) {
			t.Fatalf("frame %d (loop %d) is not frame %d of the file", i, i/5, i%5)
		}
	}
	// The RTP timestamp ran on by 1/30 s a frame, across every restart of
	// the file (the last frame, in cur, is the len(got)+1-th).
	if d := st.LastTimestamp - st.FirstTimestamp - 3000*int64(len(got)); d < -1 || d > 1 {
		t.Errorf("timestamps %d..%d over %d frames: not 3,000 a frame", st.FirstTimestamp, st.LastTimestamp, len(got)+1)
	}
	// The big frame took more than one packet.
	if len(sent) < len(got)+3*2 {
		t.Errorf("%d packets for %d frames: the 4 kB frame was not split", len(sent), len(got))
	}
}

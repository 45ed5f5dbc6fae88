package sfu

import (
	"testing"

	"github.com/pion/rtp"
)

// Streams run for hours: these tests push more packets through a
// down-track than the 16-bit sequence number and 32-bit timestamp can
// count, at full speed, and check that nothing is dropped or misnumbered
// on the way (issue 15: every packet 32,768 or more after a layer switch
// was taken for a late one and dropped).

// headerLog keeps only what the wrap tests look at, so that a run of
// 200,000 packets stays small.
type headerLog struct {
	seqs   []uint16
	ts     []uint32
	layers []uint8
	rtx    int
}

func (h *headerLog) WriteRTP(hdr *rtp.Header, payload []byte) (int, error) {
	if hdr.SSRC == 2222 { // the RTX stream of newTestDown
		h.rtx++
		return 12 + len(payload), nil
	}
	h.seqs = append(h.seqs, hdr.SequenceNumber)
	h.ts = append(h.ts, hdr.Timestamp)
	h.layers = append(h.layers, payload[len(payload)-1])
	return 12 + len(payload), nil
}

func (h *headerLog) Write(b []byte) (int, error) { return len(b), nil }

// source is one simulcast encoding of a test publisher: its own sequence
// numbers and timestamps, which may start anywhere.
type source struct {
	layer int
	seq   uint16
	ts    uint32
}

// packet makes the next packet of s (a VP8 payload whose last byte is the
// layer, keyframe or not) without sending it.
func (s *source) packet(t testing.TB, key bool) rtpPacket {
	t.Helper()
	payload := []byte{0x10, 0x00, 0, 0, 0x9d, 0x01, 0x2a, 64, 0, 36, 0, byte(s.layer)} // key: tag bit 0 clear
	if !key {
		payload[1] = 0x01 // inter frame: tag bit 0 set
	}
	var p rtpPacket
	if err := p.parse(rawPacket(s.seq, s.ts, true, payload, 0)); err != nil {
		t.Fatal(err)
	}
	s.seq++
	s.ts += 3000
	return p
}

func init() {
	// The inter-frame payload above must not look like a keyframe, and the
	// key one must: keep the test honest if vp8Keyframe changes.
	key := []byte{0x10, 0x00, 0, 0, 0x9d, 0x01, 0x2a, 64, 0, 36, 0, 0}
	inter := []byte{0x10, 0x01, 0, 0, 0x9d, 0x01, 0x2a, 64, 0, 36, 0, 0}
	if k, _, _ := vp8Keyframe(key); !k {
		panic("wrap_test: key payload is not a keyframe")
	}
	if k, _, _ := vp8Keyframe(inter); k {
		panic("wrap_test: inter payload is a keyframe")
	}
}

// checkContinuous fails unless the forwarded sequence numbers go up by one
// from packet to packet (across every 16-bit wrap) and the timestamps
// never step back (across the 32-bit wrap).
func checkContinuous(t *testing.T, h *headerLog) {
	t.Helper()
	for i := 1; i < len(h.seqs); i++ {
		if h.seqs[i] != h.seqs[i-1]+1 {
			t.Fatalf("packet %d: sequence number %d after %d", i, h.seqs[i], h.seqs[i-1])
		}
		if d := int32(h.ts[i] - h.ts[i-1]); d < 0 {
			t.Fatalf("packet %d: timestamp %d after %d goes back", i, h.ts[i], h.ts[i-1])
		}
	}
}

func TestDownTrackForwardsLongAfterALayerSwitch(t *testing.T) {
	up := newTestTrack(familyVP8, "low", "mid", "hi")
	h := &headerLog{}
	d := newTestDown(up, h, false)
	lo, hi := &source{layer: 0, seq: 40000, ts: 7}, &source{layer: 2, seq: 3, ts: 1 << 31}
	now := int64(1e9)
	send := func(s *source, key bool) {
		p := s.packet(t, key)
		now += 1e6
		up.layers[s.layer].forward(&p, now)
	}
	// Start on low, run it past its wrap, then switch to hi.
	send(lo, true)
	for range 30000 {
		send(lo, false)
	}
	d.setTarget(2)
	send(hi, false) // not a keyframe: no switch yet
	send(lo, false)
	send(hi, true)
	switched := len(h.seqs) - 1
	// 70,000 packets of hi after the switch: two halves of the circle and a
	// wrap, each of which the old comparison lost.
	const after = 70000
	for range after {
		send(hi, false)
	}
	if got, want := len(h.seqs), switched+1+after; got != want {
		t.Fatalf("forwarded %d packets after the switch, want %d", got-switched-1, after)
	}
	if h.layers[switched-1] != 0 || h.layers[switched] != 2 || h.layers[len(h.layers)-1] != 2 {
		t.Fatalf("layers around the switch %v, last %d", h.layers[switched-1:switched+1], h.layers[len(h.layers)-1])
	}
	checkContinuous(t, h)
}

func TestDownTrackCrossesBothWrapsFromThePublishersStart(t *testing.T) {
	for _, rtx := range []bool{false, true} {
		up := newTestTrack(familyVP8)
		h := &headerLog{}
		d := newTestDown(up, h, rtx)
		// Sequence numbers 100 short of their wrap, timestamps 100 frames
		// short of theirs: both wrap early, and the sequence number twice
		// more before the end.
		src := &source{seq: 65436, ts: tsNearWrap}
		now := int64(1e9)
		const total = 140000
		for i := range total {
			p := src.packet(t, i == 0)
			now += 1e6
			up.layers[0].forward(&p, now)
		}
		if len(h.seqs) != total {
			t.Fatalf("rtx=%v: forwarded %d of %d packets", rtx, len(h.seqs), total)
		}
		// One encoding, never switched: the publisher's own numbers go out.
		if h.seqs[0] != 65436 || h.ts[0] != tsNearWrap {
			t.Fatalf("rtx=%v: first packet seq %d ts %d, want the publisher's", rtx, h.seqs[0], h.ts[0])
		}
		checkContinuous(t, h)

		// NACKs for the last packets, across the latest wrap of the
		// subscriber's numbers, are answered; one for a number not sent
		// recently is not answered with an older packet of the same number.
		last := h.seqs[len(h.seqs)-1]
		buf := make([]byte, maxPacket)
		sentBefore := len(h.seqs) + h.rtx
		for back := range uint16(20) {
			d.retransmit(last-back, buf, 0)
		}
		if got := len(h.seqs) + h.rtx - sentBefore; got != 20 {
			t.Fatalf("rtx=%v: %d of 20 NACKed packets resent", rtx, got)
		}
		if !rtx {
			for i, s := range h.seqs[total:] {
				if s != last-uint16(i) {
					t.Fatalf("resent seq %d, want %d", s, last-uint16(i))
				}
			}
		}
		sentBefore = len(h.seqs) + h.rtx
		d.retransmit(last+1000, buf, 0) // never sent; 65,536 packets ago it was
		if len(h.seqs)+h.rtx != sentBefore {
			t.Fatalf("rtx=%v: a NACK for an unsent number was answered", rtx)
		}
	}
}

func TestDownTrackReorderedAndRepeatedPacketsAroundTheWrap(t *testing.T) {
	up := newTestTrack(familyVP8)
	h := &headerLog{}
	newTestDown(up, h, false)
	src := &source{seq: 65530}
	var pkts []rtpPacket
	for i := range 12 { // 65530 … 65535, 0 … 5
		pkts = append(pkts, src.packet(t, i == 0))
	}
	order := []int{0, 1, 2, 3, 5, 4, 7, 6, 6, 8, 11, 9, 10, 10} // swaps across the wrap, and two repeats
	for i, k := range order {
		p := pkts[k]
		up.layers[0].forward(&p, int64(i+1)*1e6)
	}
	// Every packet goes out once, in the order it came: the repeats are
	// copies subscribers already have.
	once := []int{0, 1, 2, 3, 5, 4, 7, 6, 8, 11, 9, 10}
	if len(h.seqs) != len(once) {
		t.Fatalf("forwarded %d packets, want %d: reordered ones across the wrap dropped, or repeats forwarded", len(h.seqs), len(once))
	}
	for i, k := range once {
		if h.seqs[i] != pkts[k].seq {
			t.Fatalf("packet %d went out as %d, want %d", i, h.seqs[i], pkts[k].seq)
		}
	}
	// The stream then goes on far past the wrap.
	for range 40000 {
		p := src.packet(t, false)
		up.layers[0].forward(&p, 1e9)
	}
	if len(h.seqs) != len(once)+40000 {
		t.Fatalf("forwarded %d packets, want %d", len(h.seqs), len(once)+40000)
	}
}

func TestDownTrackDropsLatePacketsFromBeforeASwitchAfterAWrap(t *testing.T) {
	up := newTestTrack(familyVP8, "low", "hi")
	h := &headerLog{}
	d := newTestDown(up, h, false)
	lo, hi := &source{layer: 0}, &source{layer: 1, seq: 65534}
	p := lo.packet(t, true)
	up.layers[0].forward(&p, 1)
	early := hi.packet(t, false) // 65534: held back, arrives after the switch
	d.setTarget(1)
	key := hi.packet(t, true) // 65535: the switch
	up.layers[1].forward(&key, 2)
	for range 20000 { // past the wrap
		p := hi.packet(t, false)
		up.layers[1].forward(&p, 3)
	}
	n := len(h.seqs)
	up.layers[1].forward(&early, 4)
	if len(h.seqs) != n {
		t.Fatal("a packet from before the switch was forwarded under a number already used")
	}
	for range 20000 { // and on beyond half the circle from the switch
		p := hi.packet(t, false)
		up.layers[1].forward(&p, 5)
	}
	if n := len(h.seqs); n != 1+1+40000 {
		t.Fatalf("forwarded %d packets, want %d", n, 1+1+40000)
	}
	checkContinuous(t, h)
}

func TestSeqUnwrapper(t *testing.T) {
	var u seqUnwrapper
	in := []uint16{65534, 65535, 0, 65533, 1, 32768, 2, 40000, 65535, 100}
	want := []int64{0, 1, 2, -1, 3, 32770, 4, 40002, 65537, 65638}
	base := u.unwrap(in[0])
	for i, s := range in {
		got := int64(u.unwrap(s) - base)
		if i == 0 {
			got = 0
		}
		if got != want[i] {
			t.Fatalf("packet %d (%d): extended %d, want %d", i, s, got, want[i])
		}
	}
	if unwrapNear(65535, 1<<16|3) != 1<<16-1 || unwrapNear(2, 1<<16|65534) != 2<<16|2 {
		t.Fatal("unwrapNear does not pick the nearest")
	}
}

// tsNearWrap is 100 frames of 90 kHz video short of the timestamp wrap.
const tsNearWrap = uint32(1<<32 - 100*3000)

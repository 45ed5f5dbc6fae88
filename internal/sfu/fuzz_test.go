package sfu

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/pion/rtp"
)

// Fuzz targets for the packet handling the engine does itself: RTP header
// parsing, keyframe detection (VP8, H.264 and its SPS), and the
// down-track's rewriting and NACK answering.

func FuzzParseRTP(f *testing.F) {
	f.Add(rawPacket(1, 2, true, []byte{1, 2, 3}, 0))
	f.Add(rawPacket(65535, 0, false, []byte{9}, 3))
	f.Add([]byte{0x80, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p rtpPacket
		err := p.parse(b)
		var ref rtp.Packet
		refErr := ref.Unmarshal(b)
		if refErr == nil && ref.Version == 2 {
			// Whatever pion accepts, the engine reads the same way.
			if err != nil {
				t.Fatalf("pion parses, we do not: %v", err)
			}
			if p.seq != ref.SequenceNumber || p.ts != ref.Timestamp || p.ssrc != ref.SSRC ||
				p.pt != ref.PayloadType || p.marker != ref.Marker || !bytes.Equal(p.payload(), ref.Payload) ||
				p.padding != ref.PaddingSize {
				t.Fatalf("disagree with pion: %+v vs %+v", p, ref.Header)
			}
		}
		if err == nil && (p.payloadOff > p.payloadEnd || p.payloadEnd > len(b)) {
			t.Fatalf("payload bounds %d..%d of %d", p.payloadOff, p.payloadEnd, len(b))
		}
	})
}

func FuzzVP8Keyframe(f *testing.F) {
	for _, pl := range (vp8Frames{}).frame(0, 0, true, 640, 360) {
		f.Add(pl)
	}
	f.Add([]byte{0x90, 0xe0, 0x81, 0x23, 0x05, 0x40, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		key, w, h := vp8Keyframe(b)
		if !key && (w != 0 || h != 0) || w < 0 || h < 0 || w > 0x3fff || h > 0x3fff {
			t.Fatalf("key=%v %dx%d", key, w, h)
		}
	})
}

func FuzzH264Keyframe(f *testing.F) {
	for _, pl := range (h264Frames{}).frame(0, 0, true, 1280, 720) {
		f.Add(pl)
	}
	f.Add(testSPSProfile(100, 1920, 1080))
	f.Add([]byte{0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x0f, 0x03, 0xc6, 0x0c, 0xa8})
	f.Fuzz(func(t *testing.T, b []byte) {
		key, w, h := h264Keyframe(b)
		if !key && (w != 0 || h != 0) || w < 0 || h < 0 || w > 16384 || h > 32768 {
			t.Fatalf("key=%v %dx%d", key, w, h)
		}
		if w, h, ok := h264SPSSize(b); ok && (w <= 0 || h <= 0) {
			t.Fatalf("SPS size %dx%d", w, h)
		}
	})
}

// FuzzDownTrack drives a down-track with an arbitrary interleaving of
// packets from three simulcast layers (some held back and delivered late),
// keyframes, layer targets, pauses and NACKs, and checks what reaches the
// subscriber: every switch of layer (or resumption) at a keyframe and
// right after the last sequence number sent, no sequence number reused
// for other content, and retransmissions that repeat what was sent.
func FuzzDownTrack(f *testing.F) {
	f.Add([]byte{0x03, 0x00, 0x10, 0x11, 0x12, 0x22, 0x13, 0x02, 0x42, 0x50, 0x41, 0x60, 0x68})
	f.Add([]byte{0x08, 0x20, 0x30, 0x72, 0x0a, 0x80, 0x91, 0x72, 0x0a, 0xa0, 0xb3, 0x01})
	f.Fuzz(func(t *testing.T, ops []byte) {
		up := newTestTrack(familyVP8, "low", "mid", "hi")
		w := &captureWriter{}
		d := newTestDown(up, w, len(ops)%2 == 0)
		seqs := [3]uint16{1, 30000, 65000}
		ts := [3]uint32{0, 1 << 31, 1 << 20}
		var held [3][][]byte
		now := int64(1e9)
		buf := make([]byte, maxPacket)
		var sent []capturedPacket // first transmissions, in order
		var maxSeq uint64
		var outs seqUnwrapper // what the subscriber sees, unwrapped as a receiver would
		bySeq := map[uint64][]byte{}
		deliver := func(l int, raw []byte) {
			var p rtpPacket
			if err := p.parse(raw); err != nil {
				t.Fatal(err)
			}
			before, cur := len(w.pkts), d.current.Load()
			up.layers[l].forward(&p, now)
			if len(w.pkts) == before {
				return
			}
			got := w.pkts[len(w.pkts)-1]
			out := outs.unwrap(got.hdr.SequenceNumber)
			if prev, ok := bySeq[out]; ok && !bytes.Equal(prev, got.payload) {
				t.Fatalf("sequence number %d reused", out)
			}
			bySeq[out] = got.payload
			if d.current.Load() != cur { // this packet switched or resumed
				if !p.keyframe {
					t.Fatal("switch at a non-keyframe")
				}
				if len(sent) > 0 && out != maxSeq+1 {
					t.Fatalf("switch left a gap: %d after %d", out, maxSeq)
				}
			}
			if len(sent) == 0 || out > maxSeq {
				maxSeq = out
			}
			sent = append(sent, got)
		}
		for _, op := range ops {
			arg := op & 0x0f
			l := int(arg % 3)
			switch op >> 4 {
			case 0, 1, 2, 3, 4, 5, 6: // the next packet of layer l; bit 3: keyframe; 6: hold it
				pl := (vp8Frames{}).frame(uint8(l), uint32(seqs[l]), arg&0x8 != 0, 320, 180)[0]
				raw := rawPacket(seqs[l], ts[l], true, pl, 0)
				seqs[l]++
				ts[l] += 3000
				now += int64(op) * 1e5
				if op>>4 == 6 {
					held[l] = append(held[l], raw)
					continue
				}
				deliver(l, raw)
			case 7: // late delivery of the held packets of layer l
				for _, raw := range held[l] {
					deliver(l, raw)
				}
				held[l] = nil
			case 8:
				d.setTarget(int32(arg%4) - 1)
			case 9:
				d.pause()
			case 10:
				d.play()
			default: // NACK one of the last 16 packets sent
				if len(sent) == 0 {
					continue
				}
				want := sent[max(0, len(sent)-1-int(arg))]
				before := len(w.pkts)
				d.retransmit(want.hdr.SequenceNumber, buf, 0)
				if len(w.pkts) == before {
					continue // resent too often, or no longer cached
				}
				got := w.pkts[len(w.pkts)-1]
				payload := got.payload
				if d.rtxSSRC != 0 {
					if len(payload) < 2 || binary.BigEndian.Uint16(payload) != want.hdr.SequenceNumber {
						t.Fatal("RTX without the original sequence number")
					}
					payload = payload[2:]
				}
				if !bytes.Equal(payload, want.payload) || got.hdr.Timestamp != want.hdr.Timestamp {
					t.Fatal("retransmission differs from the original")
				}
			}
		}
	})
}

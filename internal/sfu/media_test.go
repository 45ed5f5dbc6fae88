package sfu

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Synthetic media for the tests: payloads with just enough codec framing
// for the engine's keyframe detection (a VP8 payload descriptor and frame
// tag, H.264 STAP-A/FU-A/single NAL units, opaque Opus), followed by
// recognisable content: filler bytes derived from the packet's identity
// and a trailer naming it, so a subscriber can check every byte and place
// every packet in the publisher's order.

const (
	trailerLen = 16
	audioLayer = 0xff
)

var trailerMagic = [3]byte{0xc0, 0xff, 0xee}

// packetID is what the trailer says about a packet.
type packetID struct {
	layer     uint8 // simulcast layer index, audioLayer for audio
	frame     uint32
	index     uint8 // packet within the frame
	count     uint8 // packets in the frame
	keyframe  bool
	prefixLen uint8 // codec framing before the filler
	srcSeq    uint16
}

func fill(b []byte, id packetID) {
	for i := range b {
		b[i] = byte(int(id.frame)*31 + int(id.index)*7 + i)
	}
}

// synthPayload builds prefix + filler + trailer, size bytes in all.
func synthPayload(prefix []byte, size int, id packetID) []byte {
	size = max(size, len(prefix)+trailerLen)
	b := make([]byte, size)
	copy(b, prefix)
	id.prefixLen = uint8(len(prefix))
	fill(b[len(prefix):size-trailerLen], id)
	t := b[size-trailerLen:]
	copy(t, trailerMagic[:])
	t[3] = id.layer
	binary.BigEndian.PutUint32(t[4:], id.frame)
	t[8], t[9], t[10] = id.index, id.count, id.prefixLen
	if id.keyframe {
		t[11] = 1
	}
	binary.BigEndian.PutUint16(t[12:], id.srcSeq)
	return b
}

// parsePayload checks a received payload byte for byte and returns its
// identity.
func parsePayload(b []byte) (packetID, error) {
	if len(b) < trailerLen {
		return packetID{}, errors.New("payload shorter than the trailer")
	}
	t := b[len(b)-trailerLen:]
	if [3]byte(t[:3]) != trailerMagic {
		return packetID{}, errors.New("no trailer")
	}
	id := packetID{
		layer: t[3], frame: binary.BigEndian.Uint32(t[4:]),
		index: t[8], count: t[9], prefixLen: t[10], keyframe: t[11] == 1,
		srcSeq: binary.BigEndian.Uint16(t[12:]),
	}
	if int(id.prefixLen) > len(b)-trailerLen {
		return id, errors.New("bad prefix length")
	}
	body := b[id.prefixLen : len(b)-trailerLen]
	want := make([]byte, len(body))
	fill(want, id)
	for i := range body {
		if body[i] != want[i] {
			return id, fmt.Errorf("byte %d of frame %d packet %d corrupted", i, id.frame, id.index)
		}
	}
	return id, nil
}

// frameWriter produces one codec's frames as lists of RTP payloads.
type frameWriter interface {
	frame(layer uint8, n uint32, key bool, width, height int) [][]byte
}

// vp8Frames makes synthetic VP8 frames: two packets a delta frame, four a
// keyframe, unless perLayer says how many a layer's delta frames have
// (keyframes then two more).
type vp8Frames struct{ perLayer [3]uint8 }

func (v vp8Frames) frame(layer uint8, n uint32, key bool, width, height int) [][]byte {
	count := uint8(2)
	if c := v.perLayer[min(int(layer), 2)]; c > 0 {
		count = c
	}
	if key {
		count += 2
	}
	out := make([][]byte, count)
	for i := range count {
		id := packetID{layer: layer, frame: n, index: i, count: count, keyframe: key}
		prefix := []byte{0x00} // descriptor: continuation
		if i == 0 {
			prefix = []byte{0x10} // S=1, partition 0
			if key {
				// Frame tag (key frame, shown), start code, size.
				prefix = append(prefix, 0x10, 0x00, 0x00, 0x9d, 0x01, 0x2a,
					byte(width), byte(width>>8), byte(height), byte(height>>8))
			} else {
				prefix = append(prefix, 0x11, 0x00, 0x00)
			}
		}
		out[i] = synthPayload(prefix, 200+int(i)*50, id)
	}
	return out
}

type h264Frames struct{}

func (h264Frames) frame(layer uint8, n uint32, key bool, width, height int) [][]byte {
	if !key {
		id := packetID{layer: layer, frame: n, count: 1}
		return [][]byte{synthPayload([]byte{0x41}, 300, id)} // single NAL, non-IDR slice
	}
	const fragments = 3
	count := uint8(1 + fragments)
	out := make([][]byte, 0, count)
	sps := testSPS(width, height)
	pps := []byte{0x68, 0xce, 0x38, 0x80}
	stap := []byte{0x78}
	for _, nal := range [][]byte{sps, pps} {
		stap = binary.BigEndian.AppendUint16(stap, uint16(len(nal)))
		stap = append(stap, nal...)
	}
	// The content travels as a third aggregated NAL unit (SEI, type 6),
	// so that the STAP-A stays well-formed.
	const bodyLen = 41
	stap = binary.BigEndian.AppendUint16(stap, bodyLen)
	stap = append(stap, 0x06)
	out = append(out, synthPayload(stap, len(stap)+bodyLen-1, packetID{layer: layer, frame: n, count: count, keyframe: true}))
	for i := range fragments {
		fu := byte(nalIDR)
		switch i {
		case 0:
			fu |= 0x80
		case fragments - 1:
			fu |= 0x40
		}
		id := packetID{layer: layer, frame: n, index: uint8(1 + i), count: count, keyframe: true}
		out = append(out, synthPayload([]byte{0x7c, fu}, 1000, id))
	}
	return out
}

// testSPS encodes a baseline-profile SPS for width×height (multiples of 2),
// with frame cropping when the size is not a multiple of 16.
func testSPS(width, height int) []byte { return testSPSProfile(66, width, height) }

// testSPSProfile writes profile 66 (baseline) or 100 (high, 4:2:0, with a
// scaling matrix, to exercise the parser's longer path).
func testSPSProfile(profile uint32, width, height int) []byte {
	var w bitWriter
	w.bits(profile, 8)
	w.bits(0xe0, 8) // constraint flags
	w.bits(31, 8)   // level 3.1
	w.ue(0)         // seq_parameter_set_id
	if profile == 100 {
		w.ue(1)      // chroma_format_idc 4:2:0
		w.ue(0)      // bit_depth_luma_minus8
		w.ue(0)      // bit_depth_chroma_minus8
		w.bits(0, 1) // qpprime_y_zero_transform_bypass_flag
		w.bits(1, 1) // seq_scaling_matrix_present_flag
		for i := range 8 {
			if i == 0 {
				w.bits(1, 1) // one explicit 4x4 list: all deltas 0 but the first
				w.se(5)
				for range 15 {
					w.se(0)
				}
			} else {
				w.bits(0, 1)
			}
		}
	}
	w.ue(0)      // log2_max_frame_num_minus4
	w.ue(2)      // pic_order_cnt_type
	w.ue(1)      // max_num_ref_frames
	w.bits(0, 1) // gaps_in_frame_num_value_allowed_flag
	mbW, mbH := (width+15)/16, (height+15)/16
	w.ue(uint32(mbW - 1))
	w.ue(uint32(mbH - 1))
	w.bits(1, 1) // frame_mbs_only_flag
	w.bits(1, 1) // direct_8x8_inference_flag
	cropR, cropB := (mbW*16-width)/2, (mbH*16-height)/2
	if cropR > 0 || cropB > 0 {
		w.bits(1, 1)
		w.ue(0)
		w.ue(uint32(cropR))
		w.ue(0)
		w.ue(uint32(cropB))
	} else {
		w.bits(0, 1)
	}
	w.bits(0, 1) // vui_parameters_present_flag
	w.bits(1, 1) // rbsp_stop_one_bit
	return append([]byte{0x67}, escapeRBSP(w.bytes())...)
}

type bitWriter struct {
	buf  []byte
	nbit int
}

func (w *bitWriter) bits(v uint32, n int) {
	for i := n - 1; i >= 0; i-- {
		if w.nbit%8 == 0 {
			w.buf = append(w.buf, 0)
		}
		if v>>uint(i)&1 == 1 {
			w.buf[len(w.buf)-1] |= 0x80 >> uint(w.nbit%8)
		}
		w.nbit++
	}
}

func (w *bitWriter) ue(v uint32) {
	v++
	n := 0
	for x := v; x > 1; x >>= 1 {
		n++
	}
	w.bits(0, n)
	w.bits(v, n+1)
}

func (w *bitWriter) se(v int32) {
	if v > 0 {
		w.ue(uint32(2*v - 1))
	} else {
		w.ue(uint32(-2 * v))
	}
}

func (w *bitWriter) bytes() []byte { return w.buf }

// escapeRBSP inserts emulation-prevention bytes.
func escapeRBSP(b []byte) []byte {
	var out []byte
	zeros := 0
	for _, c := range b {
		if zeros >= 2 && c <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

func opusPayload(n uint32) []byte {
	return synthPayload([]byte{0xfc}, 80, packetID{layer: audioLayer, frame: n, count: 1})
}

package sfu

import "encoding/binary"

// Keyframe detection. A subscriber may only start on, or switch to, a layer
// at a packet that begins a keyframe: anything else references frames the
// decoder never saw. These functions look at one RTP payload and never
// allocate; they run for every video packet a publisher sends.

// vp8Keyframe reports whether payload (RFC 7741) is the first packet of a VP8
// key frame, and the frame's size when the packet carries it.
func vp8Keyframe(payload []byte) (key bool, width, height int) {
	if len(payload) < 1 {
		return false, 0, 0
	}
	desc := payload[0]
	// S (start of partition) set and partition index 0: first packet of a frame.
	if desc&0x10 == 0 || desc&0x07 != 0 {
		return false, 0, 0
	}
	off := 1
	if desc&0x80 != 0 { // X: extended control bits follow
		if len(payload) < 2 {
			return false, 0, 0
		}
		ext := payload[1]
		off = 2
		if ext&0x80 != 0 { // I: picture ID, 7 or 15 bits
			if len(payload) < off+1 {
				return false, 0, 0
			}
			if payload[off]&0x80 != 0 {
				off++
			}
			off++
		}
		if ext&0x40 != 0 { // L: TL0PICIDX
			off++
		}
		if ext&0x30 != 0 { // T or K: TID/Y/KEYIDX byte
			off++
		}
	}
	if len(payload) <= off {
		return false, 0, 0
	}
	hdr := payload[off:]
	// The first bit of the VP8 frame tag is the inverse key-frame flag.
	if hdr[0]&0x01 != 0 {
		return false, 0, 0
	}
	// A key frame's tag is followed by the start code 9d 01 2a and then the
	// 14-bit width and height (RFC 6386 §9.1).
	if len(hdr) >= 10 && hdr[3] == 0x9d && hdr[4] == 0x01 && hdr[5] == 0x2a {
		width = int(binary.LittleEndian.Uint16(hdr[6:]) & 0x3fff)
		height = int(binary.LittleEndian.Uint16(hdr[8:]) & 0x3fff)
	}
	return true, width, height
}

// KeyframeInfo reports whether an RTP payload of codec ("VP8" or "H264",
// as TapTrack.Codec names it) begins a keyframe — for H.264 the packet of
// an SPS or of the start of an IDR slice, so several packets of one access
// unit (same RTP timestamp) may report it — and the picture size when the
// packet carries it (a VP8 keyframe header, an H.264 SPS). It is for the
// engine's in-process readers (taps), which decode what they read.
func KeyframeInfo(codec string, payload []byte) (key bool, width, height int) {
	switch codec {
	case "VP8":
		return vp8Keyframe(payload)
	case "H264":
		return h264Keyframe(payload)
	}
	return false, 0, 0
}

// H.264 NAL unit types (RFC 6184 and ITU-T H.264 Table 7-1).
const (
	nalIDR   = 5
	nalSPS   = 7
	nalSTAPA = 24
	nalFUA   = 28
)

// h264Keyframe reports whether payload (RFC 6184, packetization-mode 1)
// begins an IDR access unit: it carries an SPS (which encoders send right
// before an IDR) or the start of an IDR slice. When an SPS is present, its
// picture size is returned too.
func h264Keyframe(payload []byte) (key bool, width, height int) {
	if len(payload) < 1 {
		return false, 0, 0
	}
	switch typ := payload[0] & 0x1f; typ {
	case nalSTAPA:
		// Aggregated NAL units, each preceded by a 16-bit size.
		rest := payload[1:]
		for len(rest) > 2 {
			size := int(binary.BigEndian.Uint16(rest))
			rest = rest[2:]
			if size == 0 || size > len(rest) {
				break
			}
			nal := rest[:size]
			switch nal[0] & 0x1f {
			case nalSPS:
				key = true
				if w, h, ok := h264SPSSize(nal); ok {
					width, height = w, h
				}
			case nalIDR:
				key = true
			}
			rest = rest[size:]
		}
		return key, width, height
	case nalFUA:
		if len(payload) < 2 {
			return false, 0, 0
		}
		// Start bit set on a fragment of an IDR slice (or, unusually, SPS).
		fu := payload[1]
		start := fu&0x80 != 0
		inner := fu & 0x1f
		return start && (inner == nalIDR || inner == nalSPS), 0, 0
	case nalSPS:
		if w, h, ok := h264SPSSize(payload); ok {
			return true, w, h
		}
		return true, 0, 0
	case nalIDR:
		return true, 0, 0
	default:
		return false, 0, 0
	}
}

// bitReader reads an H.264 RBSP straight out of a NAL unit, skipping the
// emulation-prevention bytes (00 00 03) as it goes, so that no unescaped
// copy has to be made.
type bitReader struct {
	b     []byte
	pos   int // next byte to load
	cur   byte
	left  uint8 // bits left in cur
	zeros int   // consecutive zero bytes loaded
	err   bool
}

func (r *bitReader) bit() uint32 {
	if r.left == 0 {
		if r.pos >= len(r.b) {
			r.err = true
			return 0
		}
		c := r.b[r.pos]
		r.pos++
		if r.zeros >= 2 && c == 0x03 {
			// Emulation prevention byte: drop it and load the next one.
			r.zeros = 0
			if r.pos >= len(r.b) {
				r.err = true
				return 0
			}
			c = r.b[r.pos]
			r.pos++
		}
		if c == 0 {
			r.zeros++
		} else {
			r.zeros = 0
		}
		r.cur, r.left = c, 8
	}
	r.left--
	return uint32(r.cur>>r.left) & 1
}

func (r *bitReader) bits(n int) uint32 {
	var v uint32
	for range n {
		v = v<<1 | r.bit()
	}
	return v
}

// ue reads an unsigned Exp-Golomb code (H.264 §9.1).
func (r *bitReader) ue() uint32 {
	zeros := 0
	for r.bit() == 0 {
		if r.err || zeros == 31 {
			r.err = true
			return 0
		}
		zeros++
	}
	return (1<<zeros - 1) + r.bits(zeros)
}

func (r *bitReader) se() int32 {
	v := r.ue()
	if v&1 != 0 {
		return int32((v + 1) / 2)
	}
	return -int32(v / 2)
}

// h264SPSSize returns the cropped picture size coded in an SPS NAL unit
// (H.264 §7.3.2.1.1), for the WHEP layer report.
func h264SPSSize(nal []byte) (width, height int, ok bool) {
	if len(nal) < 4 {
		return 0, 0, false
	}
	r := bitReader{b: nal[1:]}
	profile := r.bits(8)
	r.bits(16) // constraint flags, level_idc
	r.ue()     // seq_parameter_set_id
	chroma := uint32(1)
	switch profile {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		chroma = r.ue()
		if chroma == 3 {
			r.bit() // separate_colour_plane_flag
		}
		r.ue()            // bit_depth_luma_minus8
		r.ue()            // bit_depth_chroma_minus8
		r.bit()           // qpprime_y_zero_transform_bypass_flag
		if r.bit() == 1 { // seq_scaling_matrix_present_flag
			lists := 8
			if chroma == 3 {
				lists = 12
			}
			for i := range lists {
				if r.bit() == 1 {
					size := 16
					if i >= 6 {
						size = 64
					}
					skipScalingList(&r, size)
				}
			}
		}
	}
	r.ue()          // log2_max_frame_num_minus4
	switch r.ue() { // pic_order_cnt_type
	case 0:
		r.ue() // log2_max_pic_order_cnt_lsb_minus4
	case 1:
		r.bit() // delta_pic_order_always_zero_flag
		r.se()  // offset_for_non_ref_pic
		r.se()  // offset_for_top_to_bottom_field
		n := r.ue()
		if n > 255 {
			return 0, 0, false
		}
		for range n {
			r.se()
		}
	}
	r.ue()  // max_num_ref_frames
	r.bit() // gaps_in_frame_num_value_allowed_flag
	wMBs := r.ue() + 1
	hMapUnits := r.ue() + 1
	frameMBsOnly := r.bit()
	if frameMBsOnly == 0 {
		r.bit() // mb_adaptive_frame_field_flag
	}
	r.bit() // direct_8x8_inference_flag
	var cropL, cropR, cropT, cropB uint32
	if r.bit() == 1 {
		cropL, cropR, cropT, cropB = r.ue(), r.ue(), r.ue(), r.ue()
	}
	if r.err || wMBs > 1024 || hMapUnits > 1024 {
		return 0, 0, false
	}
	// Crop units depend on chroma subsampling (H.264 Table 6-1).
	unitX, unitY := uint32(1), 2-frameMBsOnly
	switch chroma {
	case 1:
		unitX, unitY = 2, 2*(2-frameMBsOnly)
	case 2:
		unitX = 2
	}
	w := wMBs * 16
	h := (2 - frameMBsOnly) * hMapUnits * 16
	cw, ch := (cropL+cropR)*unitX, (cropT+cropB)*unitY
	if cw >= w || ch >= h {
		return 0, 0, false
	}
	return int(w - cw), int(h - ch), true
}

func skipScalingList(r *bitReader, size int) {
	last, next := int32(8), int32(8)
	for range size {
		if next != 0 {
			next = (last + r.se() + 256) % 256
		}
		if next != 0 {
			last = next
		}
		if r.err {
			return
		}
	}
}

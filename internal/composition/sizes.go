package composition

import "errors"

// The layout needs each participant's video size (the grid's AUTO aspect
// ratio, the PiP window, the crop of a fill mode) before anything is
// decoded, so the sizes are read off the RTP payloads the tap delivers: the
// VP8 keyframe header, or the H.264 sequence parameter set.

var errNoSize = errors.New("no frame size in this packet")

// frameSize returns the video size a packet announces: a VP8 keyframe's
// first packet or an H.264 packet carrying an SPS. ok is false for any
// other packet.
func frameSize(codec string, payload []byte) (w, h int, ok bool) {
	switch codec {
	case "VP8":
		return vp8Size(payload)
	case "H264":
		return h264Size(payload)
	}
	return 0, 0, false
}

// vp8Frame returns the start of a VP8 frame in a packet that begins one
// (RFC 7741 §4.2 payload descriptor: S set, partition 0), or nil.
func vp8Frame(p []byte) []byte {
	if len(p) < 1 {
		return nil
	}
	start, pid := p[0]&0x10 != 0, p[0]&0x07
	if !start || pid != 0 {
		return nil
	}
	i := 1
	if p[0]&0x80 != 0 { // X: extension byte
		if len(p) < 2 {
			return nil
		}
		x := p[1]
		i = 2
		if x&0x80 != 0 { // I: picture id, 7 or 15 bits
			if len(p) <= i {
				return nil
			}
			if p[i]&0x80 != 0 {
				i += 2
			} else {
				i++
			}
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K
			i++
		}
	}
	if i >= len(p) {
		return nil
	}
	return p[i:]
}

// vp8Size reads a VP8 keyframe header (RFC 6386 §9.1).
func vp8Size(p []byte) (int, int, bool) {
	f := vp8Frame(p)
	if len(f) < 10 || f[0]&0x01 != 0 { // inter frame
		return 0, 0, false
	}
	if f[3] != 0x9d || f[4] != 0x01 || f[5] != 0x2a {
		return 0, 0, false
	}
	w := int(f[6]) | int(f[7]&0x3f)<<8
	h := int(f[8]) | int(f[9]&0x3f)<<8
	return w, h, w > 0 && h > 0
}

// keyframeStart says whether a packet begins a keyframe a decoder can
// start from: a VP8 keyframe's first packet, or an H.264 SPS (which
// encoders send right before each IDR picture, with the PPS).
func keyframeStart(codec string, p []byte) bool {
	switch codec {
	case "VP8":
		f := vp8Frame(p)
		return len(f) > 0 && f[0]&0x01 == 0
	case "H264":
		if len(p) < 1 {
			return false
		}
		switch p[0] & 0x1f {
		case 7:
			return true
		case 24:
			return len(p) > 3 && p[3]&0x1f == 7
		}
	}
	return false
}

// h264Size finds an SPS in an RTP payload (a single NAL unit or a STAP-A,
// RFC 6184) and reads the picture size from it.
func h264Size(p []byte) (int, int, bool) {
	if len(p) < 1 {
		return 0, 0, false
	}
	switch p[0] & 0x1f {
	case 7:
		w, h, err := spsSize(p)
		return w, h, err == nil
	case 24: // STAP-A: 16-bit sizes and NAL units
		for i := 1; i+2 <= len(p); {
			n := int(p[i])<<8 | int(p[i+1])
			i += 2
			if n == 0 || i+n > len(p) {
				return 0, 0, false
			}
			if p[i]&0x1f == 7 {
				w, h, err := spsSize(p[i : i+n])
				return w, h, err == nil
			}
			i += n
		}
	}
	return 0, 0, false
}

// spsSize parses an H.264 sequence parameter set NAL unit (ITU-T H.264
// §7.3.2.1.1) as far as the picture size and cropping.
func spsSize(nal []byte) (int, int, error) {
	if len(nal) < 4 {
		return 0, 0, errNoSize
	}
	// Remove emulation prevention bytes (00 00 03).
	rbsp := make([]byte, 0, len(nal))
	zeros := 0
	for _, b := range nal[1:] {
		if zeros >= 2 && b == 3 {
			zeros = 0
			continue
		}
		if b == 0 {
			zeros++
		} else {
			zeros = 0
		}
		rbsp = append(rbsp, b)
	}
	r := &bitReader{b: rbsp}
	profile := r.bits(8)
	r.bits(16) // constraint flags, level
	r.ue()     // seq_parameter_set_id
	chroma := uint32(1)
	switch profile {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		chroma = r.ue()
		if chroma == 3 {
			r.bits(1) // separate_colour_plane_flag
		}
		r.ue()              // bit_depth_luma_minus8
		r.ue()              // bit_depth_chroma_minus8
		r.bits(1)           // qpprime_y_zero_transform_bypass_flag
		if r.bits(1) == 1 { // seq_scaling_matrix_present_flag
			lists := 8
			if chroma == 3 {
				lists = 12
			}
			for i := 0; i < lists; i++ {
				if r.bits(1) == 0 {
					continue
				}
				size := 16
				if i >= 6 {
					size = 64
				}
				last, next := int32(8), int32(8)
				for j := 0; j < size; j++ {
					if next != 0 {
						next = (last + r.se() + 256) % 256
					}
					if next != 0 {
						last = next
					}
				}
			}
		}
	}
	r.ue()          // log2_max_frame_num_minus4
	switch r.ue() { // pic_order_cnt_type
	case 0:
		r.ue() // log2_max_pic_order_cnt_lsb_minus4
	case 1:
		r.bits(1) // delta_pic_order_always_zero_flag
		r.se()    // offset_for_non_ref_pic
		r.se()    // offset_for_top_to_bottom_field
		n := r.ue()
		if n > 255 {
			return 0, 0, errNoSize
		}
		for i := uint32(0); i < n; i++ {
			r.se()
		}
	}
	r.ue()    // max_num_ref_frames
	r.bits(1) // gaps_in_frame_num_value_allowed_flag
	wMbs := r.ue() + 1
	hMaps := r.ue() + 1
	frameMbsOnly := r.bits(1)
	if frameMbsOnly == 0 {
		r.bits(1) // mb_adaptive_frame_field_flag
	}
	r.bits(1) // direct_8x8_inference_flag
	var cl, cr, ct, cb uint32
	if r.bits(1) == 1 {
		cl, cr, ct, cb = r.ue(), r.ue(), r.ue(), r.ue()
	}
	if r.err {
		return 0, 0, errNoSize
	}
	unitX, unitY := uint32(1), 2-frameMbsOnly
	if chroma == 1 || chroma == 2 {
		unitX = 2
	}
	if chroma == 1 {
		unitY *= 2
	}
	w := int(wMbs*16) - int(unitX*(cl+cr))
	h := int((2-frameMbsOnly)*hMaps*16) - int(unitY*(ct+cb))
	if w <= 0 || h <= 0 || w > 16384 || h > 16384 {
		return 0, 0, errNoSize
	}
	return w, h, nil
}

// bitReader reads the big-endian bits and Exp-Golomb codes of an RBSP; a
// read past the end sets err and yields zeros.
type bitReader struct {
	b   []byte
	pos int // in bits
	err bool
}

func (r *bitReader) bits(n int) uint32 {
	var v uint32
	for ; n > 0; n-- {
		if r.pos >= len(r.b)*8 {
			r.err = true
			return 0
		}
		v = v<<1 | uint32(r.b[r.pos/8]>>(7-r.pos%8)&1)
		r.pos++
	}
	return v
}

func (r *bitReader) ue() uint32 {
	zeros := 0
	for r.bits(1) == 0 {
		if r.err || zeros > 31 {
			r.err = true
			return 0
		}
		zeros++
	}
	return (1<<zeros - 1) + r.bits(zeros)
}

func (r *bitReader) se() int32 {
	v := r.ue()
	if v&1 == 1 {
		return int32((v + 1) / 2)
	}
	return -int32(v / 2)
}

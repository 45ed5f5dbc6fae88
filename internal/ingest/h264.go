package ingest

import (
	"encoding/binary"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// H.264 from RTMP to RTP. The encoder's video is passed through, never
// re-encoded: each FLV access unit (AVCC NAL units) becomes the RTP
// packets of RFC 6184 packetization-mode 1 that WebRTC subscribers expect.

// maxPayload is the largest RTP payload the ingest writes: what browsers
// and pion send, so that no packet is fragmented on a 1500-byte path once
// SRTP and the subscriber's header extensions are added.
const maxPayload = 1200

// h264Params are the parameter sets a keyframe needs before it. RTMP
// sends them once, in the AVC sequence header, and encoders may repeat
// them in band; the latest of either is kept, so that every keyframe
// forwarded starts with the SPS and PPS that decode it.
type h264Params struct {
	sps, pps []byte
}

// packetize turns one access unit into RTP payloads (returned in order;
// the last one carries the marker bit). key says the unit is an IDR
// picture: its SPS and PPS are put in front as one STAP-A, the way
// WebRTC encoders send keyframes and what the engine's keyframe detection
// recognises. Access unit delimiters and filler data are dropped: they
// mean nothing to a WebRTC decoder.
func (ps *h264Params) packetize(au [][]byte) (payloads [][]byte, key bool) {
	nalus := make([][]byte, 0, len(au)+2)
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			ps.sps = append(ps.sps[:0], n...)
			continue
		case h264.NALUTypePPS:
			ps.pps = append(ps.pps[:0], n...)
			continue
		case h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeFillerData:
			continue
		case h264.NALUTypeIDR:
			key = true
		}
		nalus = append(nalus, n)
	}
	if key && len(ps.sps) > 0 && len(ps.pps) > 0 {
		stap := []byte{0x78} // F=0, NRI=3, type 24 (STAP-A)
		for _, n := range [][]byte{ps.sps, ps.pps} {
			stap = binary.BigEndian.AppendUint16(stap, uint16(len(n)))
			stap = append(stap, n...)
		}
		payloads = append(payloads, stap)
	}
	for _, n := range nalus {
		payloads = appendNALU(payloads, n)
	}
	return payloads, key
}

// appendNALU adds one NAL unit: whole when it fits, else as FU-A
// fragments (RFC 6184 §5.8).
func appendNALU(payloads [][]byte, n []byte) [][]byte {
	if len(n) <= maxPayload {
		return append(payloads, n)
	}
	indicator := n[0]&0xe0 | 28 // F and NRI of the unit, type FU-A
	typ := n[0] & 0x1f
	rest := n[1:]
	for first := true; len(rest) > 0; first = false {
		size := min(len(rest), maxPayload-2)
		header := typ
		if first {
			header |= 0x80 // S
		}
		if size == len(rest) {
			header |= 0x40 // E
		}
		p := make([]byte, 0, size+2)
		p = append(p, indicator, header)
		p = append(p, rest[:size]...)
		payloads = append(payloads, p)
		rest = rest[size:]
	}
	return payloads
}

// IVS's ingest limits for video (IVS-BEHAVIOUR.md, "Media limits for
// WHIP/RTMP ingest"): up to 720p, in either orientation.
const (
	maxLongSide  = 1280
	maxShortSide = 720
)

// videoFormat is what the SPS says of the encoder's video.
type videoFormat struct {
	profile       uint8
	width, height int
}

// errVideoCodec and errResolution are the refusals checkSPS finds.
var (
	errVideoCodec = fmt.Errorf("ingest: video is not H.264 that WebRTC decoders take")
	errResolution = fmt.Errorf("ingest: video is larger than 720p")
)

// checkSPS decides whether an encoder's H.264 can be forwarded. WebRTC
// subscribers are offered constrained baseline (the only H.264 the
// engine negotiates), and every browser decoder takes Main and High
// 8-bit 4:2:0 streams too as long as they have no B-frames (which are
// refused separately, frame by frame: B_FRAME_PRESENT). So Baseline, Main
// and High are passed through; High 10, 4:2:2, 4:4:4 and interlaced
// streams, which browsers cannot decode, are refused.
func checkSPS(nalu []byte) (videoFormat, error) {
	var sps h264.SPS
	if err := sps.Unmarshal(nalu); err != nil {
		return videoFormat{}, fmt.Errorf("%w: its SPS cannot be read: %v", errVideoCodec, err)
	}
	f := videoFormat{profile: sps.ProfileIdc, width: sps.Width(), height: sps.Height()}
	switch sps.ProfileIdc {
	case 66, 77, 100:
	default:
		return f, fmt.Errorf("%w: profile_idc %d (Baseline 66, Main 77 or High 100 are taken)", errVideoCodec, sps.ProfileIdc)
	}
	if sps.ProfileIdc == 100 && (sps.ChromaFormatIdc != 1 || sps.BitDepthLumaMinus8 != 0 || sps.BitDepthChromaMinus8 != 0) {
		return f, fmt.Errorf("%w: chroma format %d, %d-bit (8-bit 4:2:0 is taken)", errVideoCodec, sps.ChromaFormatIdc, 8+sps.BitDepthLumaMinus8)
	}
	if !sps.FrameMbsOnlyFlag {
		return f, fmt.Errorf("%w: interlaced", errVideoCodec)
	}
	long, short := max(f.width, f.height), min(f.width, f.height)
	if long > maxLongSide || short > maxShortSide {
		return f, fmt.Errorf("%w: %dx%d", errResolution, f.width, f.height)
	}
	return f, nil
}

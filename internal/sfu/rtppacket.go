package sfu

import (
	"encoding/binary"
	"errors"
)

var (
	errShortPacket = errors.New("sfu: RTP packet too short")
	errRTPVersion  = errors.New("sfu: not an RTP version 2 packet")
	errRTPPadding  = errors.New("sfu: invalid RTP padding")
)

// rtpPacket is a parsed view of one RTP packet held in a buffer the engine
// owns. It is parsed by hand instead of with rtp.Packet.Unmarshal because the
// forwarding path needs only the fixed header fields and the payload bounds,
// and must not allocate: header extensions and CSRCs are skipped, not
// decoded, since nothing the publisher put there is forwarded.
type rtpPacket struct {
	raw        []byte
	payloadOff int // first payload byte
	payloadEnd int // one past the last payload byte, padding excluded
	padding    uint8
	marker     bool
	pt         uint8
	seq        uint16
	ts         uint32
	ssrc       uint32

	// Set by the reader, not by parse.
	ext      uint64 // seq unwrapped by the encoding's seqUnwrapper
	arrival  int64  // monotonic nanoseconds (see nanotime)
	keyframe bool   // the packet starts a keyframe: a point to switch layers at
}

func (p *rtpPacket) payload() []byte { return p.raw[p.payloadOff:p.payloadEnd] }

// parse fills p from b without copying; p.raw aliases b.
func (p *rtpPacket) parse(b []byte) error {
	if len(b) < 12 {
		return errShortPacket
	}
	if b[0]>>6 != 2 {
		return errRTPVersion
	}
	off := 12 + 4*int(b[0]&0x0f)
	if len(b) < off {
		return errShortPacket
	}
	if b[0]&0x10 != 0 {
		if len(b) < off+4 {
			return errShortPacket
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
		if len(b) < off {
			return errShortPacket
		}
	}
	end := len(b)
	var pad uint8
	if b[0]&0x20 != 0 {
		if end == off {
			return errRTPPadding
		}
		pad = b[end-1]
		if pad == 0 || int(pad) > end-off {
			return errRTPPadding
		}
		end -= int(pad)
	}
	*p = rtpPacket{
		raw:        b,
		payloadOff: off,
		payloadEnd: end,
		padding:    pad,
		marker:     b[1]&0x80 != 0,
		pt:         b[1] & 0x7f,
		seq:        binary.BigEndian.Uint16(b[2:]),
		ts:         binary.BigEndian.Uint32(b[4:]),
		ssrc:       binary.BigEndian.Uint32(b[8:]),
	}
	return nil
}

// seqUnwrapper turns one stream's 16-bit RTP sequence numbers into a 64-bit
// extended counter that never wraps (RFC 3550 §A.1 keeps the same count of
// cycles). Everything in the engine that orders, subtracts or looks up
// sequence numbers does so on extended numbers: comparing 16-bit numbers
// directly is only right within half the circle, and a stream that runs
// longer than 32,768 packets past any reference point leaves that half.
//
// A packet is placed at the distance from the highest number seen that is
// shortest around the circle, so reordering and retransmissions of up to
// 32,767 packets land before it and everything else after.
type seqUnwrapper struct {
	highest uint64 // 0 until the first packet
}

// extFirstCycle is where the first packet's cycle count starts, so that a
// packet reordered before the stream's first one still has a positive
// extended number and all numbers compare as plain integers.
const extFirstCycle = 1 << 16

func (u *seqUnwrapper) unwrap(seq uint16) uint64 {
	if u.highest == 0 {
		u.highest = extFirstCycle | uint64(seq)
		return u.highest
	}
	ext := u.highest + uint64(int64(int16(seq-uint16(u.highest))))
	if ext > u.highest {
		u.highest = ext
	}
	return ext
}

// unwrapNear places a 16-bit sequence number at the extended number
// nearest to ref (the receiver's own counter, for NACKs of what it sent).
func unwrapNear(seq uint16, ref uint64) uint64 {
	return ref + uint64(int64(int16(seq-uint16(ref))))
}

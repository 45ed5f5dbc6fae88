package ingest

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtp/codecs"
)

// SPSs of real x264 streams (ffmpeg -c:v libx264 -profile:v … -pix_fmt …,
// one frame of testsrc2), and a PPS.
var (
	spsBaseline360  = unhex("6742c01ed900a02ff970110000030001000003003c0f162e48")
	spsBaseline1080 = unhex("6742c028d900780227e5c044000003000400000300f03c60c920")
	spsHigh422      = unhex("677a001eb6cd940a02ff89c044000003000400000300f03c58b658") // 640x360 High 4:2:2 10-bit
	spsMainPortrait = unhex("674d401feca05a050d8088000003000800000301e078c18cb0")     // 720x1280 Main
	ppsBaseline     = []byte{0x68, 0xce, 0x0f, 0x2c, 0x80}
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestPacketizeKeyframeStartsWithParameterSets(t *testing.T) {
	ps := h264Params{sps: spsBaseline360, pps: ppsBaseline}
	idr := append([]byte{0x65}, bytes.Repeat([]byte{0xab}, 3000)...)
	aud := []byte{0x09, 0xf0}
	sei := []byte{0x06, 0x05, 0x01, 0x00, 0x80}
	payloads, key := ps.packetize([][]byte{aud, sei, idr})
	if !key {
		t.Fatal("an IDR access unit is not a keyframe")
	}
	// STAP-A(SPS, PPS), SEI, then the IDR in FU-A fragments.
	if payloads[0][0]&0x1f != 24 {
		t.Fatalf("first payload type %d, want STAP-A", payloads[0][0]&0x1f)
	}
	stap := payloads[0][1:]
	for _, want := range [][]byte{spsBaseline360, ppsBaseline} {
		n := int(binary.BigEndian.Uint16(stap))
		if !bytes.Equal(stap[2:2+n], want) {
			t.Fatalf("STAP-A unit %x, want %x", stap[2:2+n], want)
		}
		stap = stap[2+n:]
	}
	if !bytes.Equal(payloads[1], sei) {
		t.Fatalf("second payload %x, want the SEI", payloads[1])
	}
	// pion's depacketizer puts the IDR back together, byte for byte.
	var d codecs.H264Packet
	d.IsAVC = true
	var got []byte
	for _, p := range payloads[2:] {
		if len(p) > maxPayload {
			t.Fatalf("a payload of %d bytes (limit %d)", len(p), maxPayload)
		}
		out, err := d.Unmarshal(p)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, out...)
	}
	if len(payloads) < 5 || !bytes.Equal(got[4:], idr) || int(binary.BigEndian.Uint32(got)) != len(idr) {
		t.Fatalf("the IDR came back as %d bytes from %d payloads", len(got), len(payloads))
	}
	for _, p := range payloads {
		if p[0]&0x1f == 9 {
			t.Fatal("an access unit delimiter was forwarded")
		}
	}
}

func TestPacketizeKeepsInBandParameterSets(t *testing.T) {
	ps := h264Params{sps: []byte{0x67, 1}, pps: []byte{0x68, 1}}
	newSPS := append([]byte(nil), spsBaseline360...)
	payloads, key := ps.packetize([][]byte{newSPS, ppsBaseline, {0x65, 1, 2, 3}})
	if !key || !bytes.Equal(ps.sps, newSPS) || !bytes.Equal(ps.pps, ppsBaseline) {
		t.Fatalf("in-band parameter sets not kept: key %v, sps %x", key, ps.sps)
	}
	if len(payloads) != 2 || payloads[0][0]&0x1f != 24 {
		t.Fatalf("payloads %x: want one STAP-A with the new sets, then the IDR", payloads)
	}
	// A delta frame is not a keyframe and gets no parameter sets.
	payloads, key = ps.packetize([][]byte{{0x41, 9, 9}})
	if key || len(payloads) != 1 || payloads[0][0] != 0x41 {
		t.Fatalf("delta frame: key %v, payloads %x", key, payloads)
	}
}

func TestCheckSPS(t *testing.T) {
	f, err := checkSPS(spsBaseline360)
	if err != nil || f.width != 640 || f.height != 360 || f.profile != 66 {
		t.Fatalf("baseline 640x360: %+v, %v", f, err)
	}
	if f, err := checkSPS(spsMainPortrait); err != nil || f.width != 720 || f.height != 1280 {
		t.Fatalf("720x1280 Main (portrait 720p): %+v, %v", f, err)
	}
	if _, err := checkSPS(spsBaseline1080); !errors.Is(err, errResolution) {
		t.Fatalf("1080p: %v", err)
	}
	if _, err := checkSPS(spsHigh422); !errors.Is(err, errVideoCodec) {
		t.Fatalf("High 4:2:2 10-bit: %v", err)
	}
	if _, err := checkSPS([]byte{0x67, 0x42}); !errors.Is(err, errVideoCodec) {
		t.Fatalf("a truncated SPS: %v", err)
	}
}

func TestAudioClockFindsTheEncodersGaps(t *testing.T) {
	c := audioClock{frame: aacFrame(&mpeg4audio.AudioSpecificConfig{SampleRate: 44100})} // 23.22 ms
	// FLV's whole-millisecond timestamps of frame i.
	flv := func(i int) time.Duration { return time.Duration(int64(float64(i)*1024*1000/44100)) * time.Millisecond }
	ms := func(v int) time.Duration { return time.Duration(v) * time.Millisecond }
	// Contiguous frames: no gap.
	for i := range 100 {
		if g := c.gap(flv(i)); g != 0 {
			t.Fatalf("frame %d: a gap of %v in contiguous audio", i, g)
		}
	}
	// Frame 100 is missing (and 101 comes on time after it): one frame's gap.
	if g := c.gap(flv(101)); g < ms(22) || g > ms(24) {
		t.Fatalf("a dropped frame makes a gap of %v", g)
	}
	if g := c.gap(flv(102)); g != 0 {
		t.Fatalf("after the gap: %v", g)
	}
	// Going back (an encoder's reset) is not a gap.
	if g := c.gap(0); g != 0 {
		t.Fatalf("a timestamp going back: %v", g)
	}
}

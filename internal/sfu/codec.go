package sfu

import (
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// The codecs Rostrum forwards, as IVS's SDKs and WHIP ingest use them: Opus,
// H.264 constrained baseline (42e01f) or baseline (42001f) with
// packetization-mode 1, and VP8. Nothing else is registered, so pion never
// negotiates a codec the engine cannot find keyframes in.

const twccURI = sdp.TransportCCURI

var (
	videoFeedback = []webrtc.RTCPFeedback{
		{Type: webrtc.TypeRTCPFBTransportCC},
		{Type: webrtc.TypeRTCPFBGoogREMB},
		{Type: webrtc.TypeRTCPFBCCM, Parameter: "fir"},
		{Type: webrtc.TypeRTCPFBNACK},
		{Type: webrtc.TypeRTCPFBNACK, Parameter: "pli"},
	}
	audioFeedback = []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBTransportCC}}
)

// engineCodec is one codec the engine registers, for one media kind.
type engineCodec struct {
	kind  webrtc.RTPCodecType
	codec webrtc.RTPCodecParameters
}

// registeredCodecs returns the engine's codecs with their default payload
// types (answers always use the offerer's payload types instead).
func registeredCodecs() []engineCodec {
	video := func(pt uint8, mime, fmtp string) engineCodec {
		return engineCodec{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: mime, ClockRate: 90000, SDPFmtpLine: fmtp, RTCPFeedback: videoFeedback},
			PayloadType:        webrtc.PayloadType(pt),
		}}
	}
	rtx := func(pt, apt uint8) engineCodec {
		return engineCodec{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: fmt.Sprintf("apt=%d", apt)},
			PayloadType:        webrtc.PayloadType(pt),
		}}
	}
	return []engineCodec{
		{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1", RTCPFeedback: audioFeedback},
			PayloadType:        111,
		}},
		video(102, webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"),
		rtx(103, 102),
		video(106, webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"),
		rtx(107, 106),
		video(96, webrtc.MimeTypeVP8, ""),
		rtx(97, 96),
	}
}

// newMediaEngine registers exactly the forwarded codecs, RTX for the video
// ones, and the header extensions simulcast and transport-wide congestion
// control need.
func newMediaEngine() (*webrtc.MediaEngine, error) {
	m := &webrtc.MediaEngine{}
	for _, c := range registeredCodecs() {
		if err := m.RegisterCodec(c.codec, c.kind); err != nil {
			return nil, err
		}
	}
	exts := []struct {
		uri  string
		kind webrtc.RTPCodecType
	}{
		{sdp.SDESMidURI, webrtc.RTPCodecTypeAudio},
		{sdp.SDESMidURI, webrtc.RTPCodecTypeVideo},
		{sdp.SDESRTPStreamIDURI, webrtc.RTPCodecTypeVideo},
		{sdp.SDESRepairRTPStreamIDURI, webrtc.RTPCodecTypeVideo},
		{twccURI, webrtc.RTPCodecTypeAudio},
		{twccURI, webrtc.RTPCodecTypeVideo},
	}
	for _, x := range exts {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: x.uri}, x.kind); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// codecFamily is what the forwarding path needs to know of a codec.
type codecFamily uint8

const (
	familyNone codecFamily = iota
	familyOpus
	familyVP8
	familyH264
)

func (f codecFamily) String() string {
	switch f {
	case familyOpus:
		return "opus"
	case familyVP8:
		return "VP8"
	case familyH264:
		return "H264"
	}
	return ""
}

// supportedFamily classifies one offered codec, or returns familyNone when
// the engine cannot forward it.
func supportedFamily(kind Kind, c offerCodec) codecFamily {
	switch {
	case kind == Audio && strings.EqualFold(c.name, "opus") && c.clock == 48000:
		return familyOpus
	case kind == Video && strings.EqualFold(c.name, "VP8") && c.clock == 90000:
		return familyVP8
	case kind == Video && strings.EqualFold(c.name, "H264") && c.clock == 90000 && h264Acceptable(c.fmtp):
		return familyH264
	}
	return familyNone
}

// h264Acceptable accepts packetization-mode 1 with a baseline profile_idc
// (0x42) and the constrained-baseline (e0) or plain-baseline (00)
// constraint byte, whatever the level: the same test pion applies when it
// matches an offer against 42e01f and 42001f.
func h264Acceptable(fmtp string) bool {
	var mode, plid string
	for p := range strings.SplitSeq(fmtp, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch strings.ToLower(k) {
		case "packetization-mode":
			mode = v
		case "profile-level-id":
			plid = strings.ToLower(v)
		}
	}
	if mode != "1" || len(plid) != 6 {
		return false
	}
	return plid[:2] == "42" && (plid[2:4] == "e0" || plid[2:4] == "00")
}

// parameters turns an offered codec back into the form pion's
// SetCodecPreferences takes, keeping the offerer's payload type.
func (c offerCodec) parameters(kind Kind) webrtc.RTPCodecParameters {
	prefix := "video/"
	if kind == Audio {
		prefix = "audio/"
	}
	return webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType:     prefix + c.name,
			ClockRate:    c.clock,
			Channels:     c.channels,
			SDPFmtpLine:  c.fmtp,
			RTCPFeedback: c.feedback,
		},
		PayloadType: webrtc.PayloadType(c.pt),
	}
}

// preferences is the one codec (plus its RTX twin when offered) an answer
// should contain for a section: pinning the answer to one codec is what
// lets the engine know, before any packet arrives, what a publisher sends
// and what each subscriber can receive.
func (c offerCodec) preferences(kind Kind) []webrtc.RTPCodecParameters {
	prefs := []webrtc.RTPCodecParameters{c.parameters(kind)}
	if c.rtxPT != 0 {
		prefs = append(prefs, webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType:    webrtc.MimeTypeRTX,
				ClockRate:   c.clock,
				SDPFmtpLine: fmt.Sprintf("apt=%d", c.pt),
			},
			PayloadType: webrtc.PayloadType(c.rtxPT),
		})
	}
	return prefs
}

func hasFeedback(fb []webrtc.RTCPFeedback, typ, param string) bool {
	for _, f := range fb {
		if strings.EqualFold(f.Type, typ) && strings.EqualFold(f.Parameter, param) {
			return true
		}
	}
	return false
}

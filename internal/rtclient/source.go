package rtclient

import (
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
)

// Frame is one encoded media frame: an Opus packet, a VP8 frame or an H.264
// access unit in Annex-B.
type Frame struct {
	// Data is the encoded frame. It is valid until the next NextFrame call of
	// the source that returned it and must not be modified.
	Data []byte
	// Duration is how long the frame plays; the Publisher sends the next
	// frame that much later, and advances the RTP timestamp by it.
	Duration time.Duration
	// Keyframe is set on frames that decode on their own.
	Keyframe bool
}

// MediaSource is what a Publisher sends: an endless (or finite) series of
// encoded frames of one codec. The Publisher paces them in real time by
// their durations, from one goroutine per source, so a source need not be
// safe for concurrent use (but see KeyframeRequester). Give each track its
// own source: FileSource.Clone and NewSyntheticSource make more.
type MediaSource interface {
	// Codec is the codec of the frames, as the track will offer it
	// (MimeType, ClockRate, Channels, SDPFmtpLine). Kind follows from the
	// MIME type: "audio/…" or "video/…".
	Codec() webrtc.RTPCodecCapability
	// NextFrame returns the next frame. A source that has no more frames
	// returns io.EOF; the Publisher then stops sending on that track.
	NextFrame() (Frame, error)
}

// KeyframeRequester is implemented by sources that can make a keyframe on
// demand. The Publisher calls RequestKeyframe, from its RTCP goroutine, when
// the server sends a PLI or FIR for the source's track; it must be safe to
// call concurrently with NextFrame.
type KeyframeRequester interface {
	RequestKeyframe()
}

// Kinds of media, as used by SentFrames, ReceivedFrames and Stats. Simulcast
// layers are "video/hi", "video/mid" and "video/low" (see SimulcastKind).
const (
	KindAudio = "audio"
	KindVideo = "video"
)

// Simulcast layer names (rids), as the Web SDK uses them (IVS-BEHAVIOUR.md §2.3).
var SimulcastRIDs = []string{"hi", "mid", "low"}

// SimulcastKind is the kind under which a Publisher logs the frames of one
// simulcast layer: "video/" + rid.
func SimulcastKind(rid string) string { return KindVideo + "/" + rid }

// kindOf is "audio" or "video" for a codec's MIME type.
func kindOf(mimeType string) string {
	if strings.HasPrefix(strings.ToLower(mimeType), "audio/") {
		return KindAudio
	}
	return KindVideo
}

// Codec capabilities this package sends and receives. The H.264 one is the
// Web SDK's preferred profile, constrained baseline 3.1 (IVS-BEHAVIOUR.md §2.3).
var (
	CodecOpus = webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1",
	}
	CodecVP8  = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	CodecH264 = webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
	}
)

// h264Codec is the capability to offer for a stream whose SPS names
// profile_idc: constrained baseline for baseline streams (what IVS ingests),
// main and high as pion and browsers spell them.
func h264Codec(profileIDC byte) webrtc.RTPCodecCapability {
	c := CodecH264
	switch profileIDC {
	case 77:
		c.SDPFmtpLine = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f"
	case 100:
		c.SDPFmtpLine = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f"
	}
	return c
}

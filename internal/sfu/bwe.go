package sfu

import (
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/rostrum-dev/rostrum/internal/bwe"
)

// Send-side bandwidth estimation for subscribers: the engine's congestion
// controller (internal/bwe), fed by the subscriber's transport-wide-cc
// feedback, sets the budget the layer allocator spends, and probes the path
// when the allocator wants more than the budget (Subscriber.probe). Packets
// are never paced: an SFU forwards what the publisher's encoder already
// shaped, and holding packets back would only add latency.

const (
	// The estimate before any feedback: enough for the top layer of IVS's
	// default simulcast ladder (720p at up to 2.5 Mbit/s) with the
	// allocator's headroom to move up, audio, and the overshoot of an
	// encoder's first seconds. Starting high is what a congested
	// subscriber pays for at once instead: its first feedback shows the
	// delay building, and the estimate falls to 85 % of what arrived, a
	// layer down; probes bring it back up when the path allows (a
	// controller that only grows towards what it sees acknowledged would
	// hold it there). The layer preference (InitialLayer) decides only the
	// first layer, which is sent until its keyframe; both start from the
	// same estimate.
	initialBitrate        = 4_000_000
	initialBitrateHighest = initialBitrate
	minBitrate            = 100_000
	maxBitrate            = 20_000_000
)

// estimator is a subscriber connection's congestion controller as pion's
// cc.BandwidthEstimator: pion's connections hand it their streams and RTCP
// through the cc interceptor, lean connections directly (lean.go). Each
// stream's writer records the packets sent with their transport-wide
// sequence numbers, which the stamper (twcc.go), outside it, has written.
type estimator struct {
	c *bwe.Controller
}

func newEstimator(initial int) (*estimator, error) {
	return &estimator{c: bwe.New(bwe.Config{Initial: initial, Min: minBitrate, Max: maxBitrate})}, nil
}

// AddStream returns the writer that records what a stream sends.
func (e *estimator) AddStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	id := transportCCID(info)
	if id == 0 {
		return w
	}
	return &estimatedStream{c: e.c, id: id, next: w}
}

// WriteRTCP takes the subscriber's RTCP: its transport-wide feedback.
func (e *estimator) WriteRTCP(pkts []rtcp.Packet, _ interceptor.Attributes) error {
	now := nanotime() / 1000
	for _, p := range pkts {
		if fb, ok := p.(*rtcp.TransportLayerCC); ok {
			e.c.Feedback(fb, now)
		}
	}
	return nil
}

func (e *estimator) GetTargetBitrate() int { return e.c.Target() }

// OnTargetBitrateChange is not used: the allocator reads the estimate on
// each of its rounds.
func (e *estimator) OnTargetBitrateChange(func(int)) {}

func (e *estimator) GetStats() map[string]any {
	return map[string]any{"targetBitrate": e.c.Target()}
}

func (e *estimator) Close() error { return nil }

// feedbacks counts the transport-wide feedback packets the controller was
// given: tests check that it still gets them.
func (e *estimator) feedbacks() uint64 { return e.c.Feedbacks() }

type estimatedStream struct {
	c    *bwe.Controller
	id   uint8
	next interceptor.RTPWriter
}

// Write records one packet (HOT PATH: once per packet per subscriber).
// A probe's padding is the one packet the engine sends with the padding
// flag and the padding in the payload (downTrack.sendPadding); media and
// retransmissions keep theirs in PaddingSize.
func (s *estimatedStream) Write(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
	if ext := h.GetExtension(s.id); len(ext) == 2 {
		probe := h.Padding && h.PaddingSize == 0
		s.c.Sent(binary.BigEndian.Uint16(ext), h.MarshalSize()+len(payload)+int(h.PaddingSize), nanotime()/1000, probe)
	}
	return s.next.Write(h, payload, a)
}

// publisherStartBitrate is the estimate, in kbit/s, a publishing browser is
// told to start from (x-google-start-bitrate on the answer's video codecs;
// libwebrtc reads it from the remote description for what it sends, and
// other clients ignore a parameter they do not know). Chrome's own start is
// 300 kbit/s, and with one layer its encoder picks the size of its first
// frames from that, before its first probe has been answered: 320×180, and
// then a step up every few seconds as its quality scaler allows (issue 13's
// "320×180, then 480×270, 640×360, 960×540"). At 1.2 Mbit/s one run in
// three of the official SDK still started at 640×360 (libwebrtc's VP8
// starts 1280×720 from 900 kbit/s; the SDK's codec's limit was not looked
// up); at 2 Mbit/s none did (docs/performance.md). A congested publisher's estimate falls from there
// on its first feedback, as it climbs from 300 otherwise.
const publisherStartBitrate = 2000

// withStartBitrate adds x-google-start-bitrate=kbps to every video codec
// of an SDP answer but RTX, RED and FEC, to the fmtp line of the codec's
// payload type or in a new one after its rtpmap.
func withStartBitrate(answer string, kbps int) string {
	param := "x-google-start-bitrate=" + strconv.Itoa(kbps)
	lines := strings.SplitAfter(answer, "\n")
	out := make([]string, 0, len(lines)+4)
	video := false
	// The section's codecs (by payload type) to mark, and those marked.
	mark := map[string]bool{}
	for i, l := range lines {
		t := strings.TrimRight(l, "\r\n")
		if strings.HasPrefix(t, "m=") {
			video = strings.HasPrefix(t, "m=video ")
			clear(mark)
		}
		if video && strings.HasPrefix(t, "a=rtpmap:") {
			pt, codec, _ := strings.Cut(strings.TrimPrefix(t, "a=rtpmap:"), " ")
			name, _, _ := strings.Cut(codec, "/")
			switch strings.ToLower(name) {
			case "rtx", "red", "ulpfec", "flexfec-03":
			default:
				mark[pt] = true
				if e := eol(l); e != "" && !fmtpFollows(lines[i+1:], pt) {
					out = append(out, l, "a=fmtp:"+pt+" "+param+e)
					continue
				}
			}
		}
		if video && strings.HasPrefix(t, "a=fmtp:") {
			pt, params, _ := strings.Cut(strings.TrimPrefix(t, "a=fmtp:"), " ")
			if mark[pt] && !strings.Contains(params, "x-google-start-bitrate") {
				out = append(out, t+";"+param+eol(l))
				continue
			}
		}
		out = append(out, l)
	}
	return strings.Join(out, "")
}

// fmtpFollows reports whether the section after an rtpmap line has an fmtp
// line for pt.
func fmtpFollows(rest []string, pt string) bool {
	for _, l := range rest {
		if strings.HasPrefix(l, "m=") {
			return false
		}
		if strings.HasPrefix(l, "a=fmtp:"+pt+" ") {
			return true
		}
	}
	return false
}

// eol is the line ending of l.
func eol(l string) string {
	if strings.HasSuffix(l, "\r\n") {
		return "\r\n"
	}
	if strings.HasSuffix(l, "\n") {
		return "\n"
	}
	return ""
}

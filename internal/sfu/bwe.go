package sfu

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// Send-side bandwidth estimation for subscribers: pion's Google Congestion
// Control estimator, fed by the subscriber's transport-wide-cc feedback, sets
// the budget the layer allocator spends. Packets are never paced: an SFU
// forwards what the publisher's encoder already shaped, and holding packets
// back would only add latency, so the estimator is given directPacer.

const (
	// The estimate before any feedback: enough for the top layer of IVS's
	// default simulcast ladder (720p at up to 2.5 Mbit/s) with the
	// allocator's headroom to move up, audio, and the overshoot of an
	// encoder's first seconds. pion's estimator grows by at most 8 % a
	// second and has no probing (Chrome's starts at 300 kbit/s but probes
	// its way up within a second), so a low start held subscribers below
	// a top layer they could take for 10 s and more: from 1 Mbit/s, 2.9
	// Mbit/s takes 14 s (docs/performance.md, "Time to full quality").
	// Starting high is what a congested subscriber pays for at once
	// instead: its first feedback shows the delay building, and the
	// estimator falls to 85 % of what arrived, a layer down. The layer
	// preference (InitialLayer) decides only the first layer, which is
	// sent until its keyframe; both start from the same estimate.
	initialBitrate        = 4_000_000
	initialBitrateHighest = initialBitrate
	minBitrate            = 100_000
	maxBitrate            = 20_000_000
)

// estimator wraps gcc.SendSideBWE so that retransmissions sent on a
// separate RTX SSRC reach the wire: gcc's pacers only know the media SSRC
// each stream was added with.
type estimator struct {
	*gcc.SendSideBWE
	pacer *directPacer
	// twccReports counts the transport-wide feedback packets the
	// controller was given: it sees RTCP only through the sender's read
	// chain (feedback.go), and tests check that it still does.
	twccReports atomic.Uint64
}

// WriteRTCP is how pion's congestion-control interceptor hands the
// estimator the RTCP it read.
func (e *estimator) WriteRTCP(pkts []rtcp.Packet, a interceptor.Attributes) error {
	for _, p := range pkts {
		if _, ok := p.(*rtcp.TransportLayerCC); ok {
			e.twccReports.Add(1)
		}
	}
	return e.SendSideBWE.WriteRTCP(pkts, a)
}

func newEstimator(initial int) (*estimator, error) {
	p := &directPacer{}
	bwe, err := gcc.NewSendSideBWE(
		gcc.SendSideBWEInitialBitrate(initial),
		gcc.SendSideBWEMinBitrate(minBitrate),
		gcc.SendSideBWEMaxBitrate(maxBitrate),
		gcc.SendSideBWEPacer(p),
	)
	if err != nil {
		return nil, err
	}
	return &estimator{SendSideBWE: bwe, pacer: p}, nil
}

// AddStream registers a local stream; its RTX SSRC, if any, shares the
// media stream's path (and so its congestion accounting).
func (e *estimator) AddStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	out := e.SendSideBWE.AddStream(info, w)
	if info.SSRCRetransmission != 0 {
		e.pacer.alias(info.SSRCRetransmission, info.SSRC)
	}
	return out
}

// directPacer is a pacer that does not pace: it hands each packet to its
// stream's writer at once. Its SSRC table is copy-on-write so that the
// per-packet lookup takes no lock (gcc.NoOpPacer locks a mutex per packet).
type directPacer struct {
	mu      sync.Mutex // serialises table updates
	writers atomic.Pointer[map[uint32]interceptor.RTPWriter]
}

func (p *directPacer) AddStream(ssrc uint32, w interceptor.RTPWriter) {
	p.update(func(m map[uint32]interceptor.RTPWriter) { m[ssrc] = w })
}

func (p *directPacer) alias(from, to uint32) {
	p.update(func(m map[uint32]interceptor.RTPWriter) {
		if w, ok := m[to]; ok {
			m[from] = w
		}
	})
}

func (p *directPacer) update(f func(map[uint32]interceptor.RTPWriter)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	next := map[uint32]interceptor.RTPWriter{}
	if cur := p.writers.Load(); cur != nil {
		for k, v := range *cur {
			next[k] = v
		}
	}
	f(next)
	p.writers.Store(&next)
}

func (p *directPacer) Write(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
	if m := p.writers.Load(); m != nil {
		if w, ok := (*m)[h.SSRC]; ok {
			return w.Write(h, payload, a)
		}
	}
	return 0, fmt.Errorf("%w: %d", gcc.ErrUnknownStream, h.SSRC)
}

func (p *directPacer) SetTargetBitrate(int) {}
func (p *directPacer) Close() error         { return nil }

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

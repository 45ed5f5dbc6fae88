package rtclient

import (
	"encoding/binary"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
)

// receiveTap is the first interceptor of a Subscriber's chain, the one
// nearest the network. On the way in it applies SubscribeOptions.Drop, before
// the NACK generator sees the packets, so that a dropped packet is NACKed
// like a lost one. On the way out it counts the NACKs and PLIs sent.
type receiveTap struct {
	interceptor.NoOp
	drop func(kind string, seq uint16) bool

	mu    sync.Mutex
	kinds map[uint32]string // media SSRC → kind

	audio, video tapCounters
}

type tapCounters struct {
	dropped, nacks, nacked, plis atomic.Int64
}

func newReceiveTap(drop func(kind string, seq uint16) bool) *receiveTap {
	return &receiveTap{drop: drop, kinds: map[uint32]string{}}
}

func (t *receiveTap) counters(kind string) *tapCounters {
	if kind == KindAudio {
		return &t.audio
	}
	return &t.video
}

func isRepairStream(mimeType string) bool {
	m := strings.ToLower(mimeType)
	return strings.HasSuffix(m, "/rtx") || strings.Contains(m, "fec")
}

// BindRemoteStream implements interceptor.Interceptor. Repair streams (RTX)
// are not subject to Drop: pion unwraps them into the media stream later.
func (t *receiveTap) BindRemoteStream(info *interceptor.StreamInfo, reader interceptor.RTPReader) interceptor.RTPReader {
	if isRepairStream(info.MimeType) {
		return reader
	}
	kind := kindOf(info.MimeType)
	t.mu.Lock()
	t.kinds[info.SSRC] = kind
	t.mu.Unlock()
	if t.drop == nil {
		return reader
	}
	c := t.counters(kind)
	drop := t.drop
	// Hot path: once per packet received.
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		for {
			n, attrs, err := reader.Read(b, a)
			if err != nil || n < 4 {
				return n, attrs, err
			}
			if drop(kind, binary.BigEndian.Uint16(b[2:4])) {
				c.dropped.Add(1)
				continue
			}
			return n, attrs, err
		}
	})
}

// UnbindRemoteStream implements interceptor.Interceptor.
func (t *receiveTap) UnbindRemoteStream(info *interceptor.StreamInfo) {
	t.mu.Lock()
	delete(t.kinds, info.SSRC)
	t.mu.Unlock()
}

// BindRTCPWriter implements interceptor.Interceptor.
func (t *receiveTap) BindRTCPWriter(writer interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, a interceptor.Attributes) (int, error) {
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.TransportLayerNack:
				if c := t.countersFor(p.MediaSSRC); c != nil {
					c.nacks.Add(1)
					var n int64
					for _, pair := range p.Nacks {
						n += int64(len(pair.PacketList()))
					}
					c.nacked.Add(n)
				}
			case *rtcp.PictureLossIndication:
				if c := t.countersFor(p.MediaSSRC); c != nil {
					c.plis.Add(1)
				}
			}
		}
		return writer.Write(pkts, a)
	})
}

func (t *receiveTap) countersFor(ssrc uint32) *tapCounters {
	t.mu.Lock()
	kind, ok := t.kinds[ssrc]
	t.mu.Unlock()
	if !ok {
		return nil
	}
	return t.counters(kind)
}

// ridTagger is the first interceptor of a simulcast Publisher's chain. pion
// sends simulcast encodings on their own SSRCs but does not put the MID and
// RID header extensions (RFC 8852) on the packets, which is how a receiver
// tells the layers apart when the SDP names rids rather than SSRCs. The tagger
// adds them: MID and RID on media packets, MID and repaired RID on RTX.
type ridTagger struct {
	interceptor.NoOp
	mu     sync.Mutex
	bySSRC map[uint32]ridTag // media SSRC → its tag
}

type ridTag struct{ mid, rid string }

func newRIDTagger() *ridTagger { return &ridTagger{bySSRC: map[uint32]ridTag{}} }

func (t *ridTagger) set(ssrc uint32, mid, rid string) {
	t.mu.Lock()
	t.bySSRC[ssrc] = ridTag{mid: mid, rid: rid}
	t.mu.Unlock()
}

// BindLocalStream implements interceptor.Interceptor.
func (t *ridTagger) BindLocalStream(info *interceptor.StreamInfo, writer interceptor.RTPWriter) interceptor.RTPWriter {
	t.mu.Lock()
	tag, ok := t.bySSRC[info.SSRC]
	t.mu.Unlock()
	if !ok {
		return writer
	}
	var midID, ridID, rridID uint8
	for _, e := range info.RTPHeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			midID = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			ridID = uint8(e.ID)
		case sdp.SDESRepairRTPStreamIDURI:
			rridID = uint8(e.ID)
		}
	}
	if midID == 0 || ridID == 0 {
		return writer
	}
	mid, rid := []byte(tag.mid), []byte(tag.rid)
	media, repair := info.SSRC, info.SSRCRetransmission
	// Hot path: once per packet sent on a simulcast layer.
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		switch {
		case h.SSRC == media:
			_ = h.SetExtension(midID, mid)
			_ = h.SetExtension(ridID, rid)
		case repair != 0 && h.SSRC == repair && rridID != 0:
			_ = h.SetExtension(midID, mid)
			_ = h.SetExtension(rridID, rid)
		}
		return writer.Write(h, payload, a)
	})
}

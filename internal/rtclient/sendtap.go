package rtclient

import (
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// sendTap is the first interceptor of a Publisher's chain, the one nearest
// the network: it sees every RTP packet as it leaves, the retransmissions
// pion's NACK responder makes included, and counts them per stream (track
// or simulcast layer). A receiver compares what it got with these counts to
// find packets that never came, which counting holes between the packets
// that did come cannot show.
type sendTap struct {
	interceptor.NoOp
	mu     sync.Mutex
	bySSRC map[uint32]*sendCounter // media SSRC → its stream's counter
}

func newSendTap() *sendTap { return &sendTap{bySSRC: map[uint32]*sendCounter{}} }

// set names the counter of the stream sent on ssrc. It must be called
// before the stream is bound (before the answer is applied).
func (t *sendTap) set(ssrc uint32, c *sendCounter) {
	t.mu.Lock()
	t.bySSRC[ssrc] = c
	t.mu.Unlock()
}

// BindLocalStream implements interceptor.Interceptor.
func (t *sendTap) BindLocalStream(info *interceptor.StreamInfo, writer interceptor.RTPWriter) interceptor.RTPWriter {
	t.mu.Lock()
	c := t.bySSRC[info.SSRC]
	t.mu.Unlock()
	if c == nil {
		return writer
	}
	media, repair := info.SSRC, info.SSRCRetransmission
	// Hot path: once per packet sent.
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		n, err := writer.Write(h, payload, a)
		if err == nil {
			switch {
			case h.SSRC == media:
				now := time.Now()
				if c.sent(h.SequenceNumber, h.Timestamp, h.MarshalSize()+len(payload), now) && c.onSent != nil {
					c.onSent(h.SequenceNumber, payload, now)
				}
			case repair != 0 && h.SSRC == repair:
				c.retransmitted()
			}
		}
		return n, err
	})
}

// sendCounter counts the packets of one stream a Publisher sent.
type sendCounter struct {
	mu          sync.Mutex
	seq         seqTracker
	ts          TimestampUnwrapper
	packets     int64 // distinct sequence numbers sent
	bytes       int64
	resent      int64
	firstTS     int64
	lastTS      int64
	firstPacket time.Time
	lastPacket  time.Time
	// onSent, if set (before the stream is bound), is told of each packet
	// sent for the first time: PublishOptions.OnPacketSent.
	onSent func(seq uint16, payload []byte, at time.Time)
}

// sent counts one packet and reports whether it was sent for the first time.
func (c *sendCounter) sent(seq uint16, ts uint32, size int, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	res, _, _ := c.seq.add(seq)
	if res == seqDuplicate || res == seqTooLate {
		// A retransmission on the media SSRC (no RTX negotiated).
		c.resent++
		return false
	}
	ext := c.ts.Unwrap(ts)
	if c.packets == 0 {
		c.firstPacket, c.firstTS = now, ext
	}
	c.packets++
	c.bytes += int64(size)
	c.lastPacket, c.lastTS = now, ext
	return true
}

func (c *sendCounter) retransmitted() {
	c.mu.Lock()
	c.resent++
	c.mu.Unlock()
}

// fill copies the counters into s.
func (c *sendCounter) fill(s *SendStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.Packets, s.PacketBytes, s.Retransmissions = c.packets, c.bytes, c.resent
	s.FirstPacket, s.LastPacket = c.firstPacket, c.lastPacket
	if c.packets > 0 {
		s.FirstSeq, s.LastSeq = c.seq.first, c.seq.highest
		s.FirstTimestamp, s.LastTimestamp = c.firstTS, c.lastTS
	}
}

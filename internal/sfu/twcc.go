package sfu

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
)

// twccStamper is the subscriber side's transport-wide sequence numbering
// (draft-holmer-rmcat-transport-wide-cc-extensions-01): it writes one
// sequence number, counted over the whole peer connection, into every RTP
// packet sent, for the congestion controller to match with the
// subscriber's feedback. It does what pion's twcc.HeaderExtensionInterceptor
// does without that interceptor's allocations per packet: the extension's
// two bytes live in the stream's own buffer, and the packet goes on with
// the stream's own interceptor.Attributes, so that pion's congestion
// controller, next in the chain, records its attribute in a map that
// exists already instead of making one per packet.
//
// Each stream's writer is used by one down-track, whose lock serialises its
// writes (media and retransmissions alike), so the per-stream buffer and
// attributes are never used by two packets at once.
type twccStamper struct {
	interceptor.NoOp
	next atomic.Uint32 // the next transport-wide sequence number
}

type twccStamperFactory struct{}

func (twccStamperFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &twccStamper{}, nil
}

// BindLocalStream implements interceptor.Interceptor.
func (t *twccStamper) BindLocalStream(info *interceptor.StreamInfo, writer interceptor.RTPWriter) interceptor.RTPWriter {
	var id uint8
	for _, e := range info.RTPHeaderExtensions {
		if e.URI == sdp.TransportCCURI {
			id = uint8(e.ID)
			break
		}
	}
	if id == 0 {
		return writer // not negotiated for this stream
	}
	s := &stampedStream{t: t, id: id, writer: writer, attrs: interceptor.Attributes{}}
	return s
}

type stampedStream struct {
	t      *twccStamper
	id     uint8
	writer interceptor.RTPWriter
	ext    [2]byte
	attrs  interceptor.Attributes
}

// Write stamps one packet (HOT PATH: once per packet per subscriber).
func (s *stampedStream) Write(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
	seq := s.t.next.Add(1) - 1
	binary.BigEndian.PutUint16(s.ext[:], uint16(seq))
	if err := h.SetExtension(s.id, s.ext[:]); err != nil {
		return 0, err
	}
	if a == nil {
		a = s.attrs
	}
	return s.writer.Write(h, payload, a)
}

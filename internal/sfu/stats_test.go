package sfu

import (
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// The stats interceptor counts on the packet path without allocating.
func TestStatsInterceptorCountsWithoutAllocating(t *testing.T) {
	var s engineStats
	sub := &statsInterceptor{s: &s}
	pub := &statsInterceptor{s: &s, publisher: true}
	w := sub.BindLocalStream(nil, interceptor.RTPWriterFunc(func(h *rtp.Header, p []byte, _ interceptor.Attributes) (int, error) {
		return h.MarshalSize() + len(p), nil
	}))
	r := pub.BindRemoteStream(nil, interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		return 1200, a, nil
	}))
	h := &rtp.Header{Version: 2, SequenceNumber: 1, SSRC: 1}
	payload, buf := make([]byte, 1000), make([]byte, 1500)
	if n := testing.AllocsPerRun(1000, func() {
		w.Write(h, payload, nil)
		r.Read(buf, nil)
	}); n != 0 {
		t.Errorf("%v allocations per packet", n)
	}
	if s.fwdPackets.Load() != 1001 || s.fwdBytes.Load() != 1001*uint64(12+1000) || s.recvPackets.Load() != 1001 || s.recvBytes.Load() != 1001*1200 {
		t.Errorf("counted %d/%d forwarded, %d/%d received", s.fwdPackets.Load(), s.fwdBytes.Load(), s.recvPackets.Load(), s.recvBytes.Load())
	}
}

// NACKed sequence numbers, keyframe requests and loss are counted from the
// RTCP each side sends.
func TestStatsInterceptorReadsRTCP(t *testing.T) {
	var s engineStats
	up := (&statsInterceptor{s: &s, publisher: true}).BindRTCPWriter(interceptor.RTCPWriterFunc(func(p []rtcp.Packet, _ interceptor.Attributes) (int, error) {
		return 0, nil
	}))
	up.Write([]rtcp.Packet{
		&rtcp.TransportLayerNack{Nacks: []rtcp.NackPair{{PacketID: 10, LostPackets: 0b101}}}, // 10, 11, 13
		&rtcp.PictureLossIndication{MediaSSRC: 1},
		&rtcp.ReceiverReport{Reports: []rtcp.ReceptionReport{{FractionLost: 64}}}, // a quarter
	}, nil)
	raw, err := rtcp.Marshal([]rtcp.Packet{
		&rtcp.TransportLayerNack{Nacks: []rtcp.NackPair{{PacketID: 1}}},
		&rtcp.FullIntraRequest{FIR: []rtcp.FIREntry{{SSRC: 1}}},
		&rtcp.PictureLossIndication{MediaSSRC: 1},
		&rtcp.ReceiverReport{Reports: []rtcp.ReceptionReport{{FractionLost: 0}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	down := (&statsInterceptor{s: &s}).BindRTCPReader(interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		return copy(b, raw), a, nil
	}))
	n, attrs, err := down.Read(make([]byte, 1500), nil)
	if err != nil || n != len(raw) {
		t.Fatal(n, err)
	}
	if pkts, err := attrs.GetRTCPPackets(nil); err != nil || len(pkts) != 4 {
		t.Errorf("the parsed packets are not left for the next reader: %d, %v", len(pkts), err)
	}
	if s.nacksSent.Load() != 3 || s.keyframesSent.Load() != 1 || s.nacksRecv.Load() != 1 || s.keyframesRecv.Load() != 2 {
		t.Errorf("NACKs %d sent %d received, keyframe requests %d sent %d received",
			s.nacksSent.Load(), s.nacksRecv.Load(), s.keyframesSent.Load(), s.keyframesRecv.Load())
	}
	upLoss, downLoss := s.upLoss.snapshot(lossBounds), s.downLoss.snapshot(lossBounds)
	if upLoss.Count != 1 || upLoss.Sum != 0.25 || upLoss.Counts[6] != 1 {
		t.Errorf("upstream loss %+v, want one report of 0.25 in the le=0.5 bucket", upLoss)
	}
	if downLoss.Count != 1 || downLoss.Sum != 0 || downLoss.Counts[0] != 1 {
		t.Errorf("downstream loss %+v, want one loss-free report", downLoss)
	}
}

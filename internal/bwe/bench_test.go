package bwe

import (
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
)

// BenchmarkSent is the controller's cost per packet sent.
func BenchmarkSent(b *testing.B) {
	c := New(Config{Initial: 1_000_000, Min: 100_000, Max: 10_000_000})
	b.ReportAllocs()
	for i := range b.N {
		c.Sent(uint16(i), 1200, int64(i)*100, false)
	}
}

// BenchmarkFeedback is the cost of one feedback packet about 25 packets
// (a 50 ms feedback interval at 500 packets a second), per packet
// reported.
func BenchmarkFeedback(b *testing.B) {
	const per = 25
	c := New(Config{Initial: 1_000_000, Min: 100_000, Max: 10_000_000})
	fbs := benchFeedbacks(per)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		fb := fbs[i%len(fbs)]
		base := fb.BaseSequenceNumber
		for k := range per {
			c.Sent(base+uint16(k), 1200, int64(i)*50_000+int64(k)*2_000, false)
		}
		c.Feedback(fb, int64(i)*50_000+40_000)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*per), "ns/packet")
}

// BenchmarkFeedbackPionGCC is BenchmarkFeedback's work done by pion's GCC
// estimator, which subscribers used before this controller: the packets
// sent through its stream writer, then its feedback.
func BenchmarkFeedbackPionGCC(b *testing.B) {
	const per = 25
	bwe, err := gcc.NewSendSideBWE(gcc.SendSideBWEInitialBitrate(1_000_000), gcc.SendSideBWEPacer(gcc.NewNoOpPacer()))
	if err != nil {
		b.Fatal(err)
	}
	defer bwe.Close()
	info := &interceptor.StreamInfo{SSRC: 1, RTPHeaderExtensions: []interceptor.RTPHeaderExtension{{URI: sdp.TransportCCURI, ID: 3}}}
	w := bwe.AddStream(info, interceptor.RTPWriterFunc(func(*rtp.Header, []byte, interceptor.Attributes) (int, error) { return 0, nil }))
	fbs := benchFeedbacks(per)
	payload := make([]byte, 1188)
	var ext [2]byte
	h := &rtp.Header{Version: 2, SSRC: 1}
	attrs := interceptor.Attributes{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		fb := fbs[i%len(fbs)]
		for k := range per {
			s := fb.BaseSequenceNumber + uint16(k)
			ext[0], ext[1] = byte(s>>8), byte(s)
			if err := h.SetExtension(3, ext[:]); err != nil {
				b.Fatal(err)
			}
			if _, err := w.Write(h, payload, attrs); err != nil {
				b.Fatal(err)
			}
		}
		if err := bwe.WriteRTCP([]rtcp.Packet{fb}, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*per), "ns/packet")
}

// benchFeedbacks is 64 feedback packets about per packets each, as pion's
// receivers build them.
func benchFeedbacks(per int) []*rtcp.TransportLayerCC {
	fbs := make([]*rtcp.TransportLayerCC, 0, 64)
	rec := twcc.NewRecorder(1)
	seq := uint16(0)
	for f := range cap(fbs) {
		for range per {
			rec.Record(1, seq, int64(seq)*2_000+int64(f))
			seq++
		}
		for _, p := range rec.BuildFeedbackPacket() {
			fbs = append(fbs, p.(*rtcp.TransportLayerCC))
		}
	}
	return fbs
}

package bwe

import (
	"testing"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
)

// FuzzFeedback feeds the controller whatever a subscriber could send as
// transport-wide feedback: it must never panic, and its estimate stays in
// its bounds.
func FuzzFeedback(f *testing.F) {
	rec := twcc.NewRecorder(1)
	for i := range 40 {
		if i%7 != 3 {
			rec.Record(1, uint16(65_520+i), int64(i)*4_000)
		}
	}
	for _, p := range rec.BuildFeedbackPacket() {
		raw, err := p.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c := New(Config{Initial: 1_000_000, Min: 100_000, Max: 5_000_000})
		for i := range 64 {
			c.Sent(uint16(65_500+i), 1200, int64(i)*1_000, i%5 == 0)
		}
		pkts, err := rtcp.Unmarshal(raw)
		if err != nil {
			return
		}
		for i, p := range pkts {
			if fb, ok := p.(*rtcp.TransportLayerCC); ok {
				c.Feedback(fb, int64(100_000+i*50_000))
				c.Feedback(fb, int64(1_200_000+i*50_000))
			}
		}
		if got := c.Target(); got < 100_000 || got > 5_000_000 {
			t.Fatalf("estimate %d out of its bounds", got)
		}
	})
}

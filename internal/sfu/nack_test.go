package sfu

import (
	"sync"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Lost packets are recovered from the engine's per-track cache, as RTX
// where the subscriber negotiated it and as plain retransmissions where not.
func TestNACKRecoversDroppedPackets(t *testing.T) {
	for _, rtx := range []bool{true, false} {
		name := "RTX"
		if !rtx {
			name = "plain"
		}
		t.Run(name, func(t *testing.T) {
			checkLeaks(t)
			ctx := testContext(t)
			e := newTestEngine(t)
			r := e.NewRouter("stage")
			startPublisher(t, ctx, r, "alice", pubOpts{})

			var mu sync.Mutex
			seen := 0
			dropped := map[uint16]bool{}
			drop := func(h *rtp.Header) bool {
				if h.PayloadType != clientVP8PT {
					return false // audio, or an RTX retransmission
				}
				mu.Lock()
				defer mu.Unlock()
				seen++
				// Keep the first packets (the keyframe the stream starts at:
				// a receiver cannot ask for what it never knew existed), then
				// drop every tenth packet, once.
				if seen < 20 || h.SequenceNumber%10 != 3 || dropped[h.SequenceNumber] {
					return false
				}
				dropped[h.SequenceNumber] = true
				return true
			}
			ts, err := subscribe(t, ctx, r, "bob", "alice", subOpts{client: clientOpts{noRTX: !rtx, drop: drop}})
			must(t, err)
			waitFor(t, ctx, "video", func() bool { return ts.count(webrtc.RTPCodecTypeVideo) >= 300 })
			// Every dropped packet but the most recent ones must be back.
			const slack = 20
			waitFor(t, ctx, "retransmissions", func() bool {
				got := map[uint16]bool{}
				pkts := ts.snapshot(webrtc.RTPCodecTypeVideo)
				for _, p := range pkts {
					got[p.seq] = true
				}
				last := pkts[len(pkts)-1].seq
				mu.Lock()
				defer mu.Unlock()
				for s := range dropped {
					if !got[s] && int16(last-s) > slack {
						return false
					}
				}
				return true
			})
			mu.Lock()
			n := len(dropped)
			mu.Unlock()
			if n < 10 {
				t.Fatalf("only %d packets dropped", n)
			}
			if err := ts.errors(); err != nil {
				t.Fatal(err)
			}
			checkStream(t, ts.snapshot(webrtc.RTPCodecTypeVideo), true, slack)
			if rtx {
				if d := ts.sub.downs[1]; d.rtxSSRC == 0 {
					t.Error("RTX not negotiated")
				}
			}
		})
	}
}

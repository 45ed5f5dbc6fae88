package sfu

import (
	"sort"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// extSeqs unwraps the sequence numbers of pkts (in arrival order).
func extSeqs(pkts []received) []int64 {
	out := make([]int64, len(pkts))
	if len(pkts) == 0 {
		return out
	}
	ref := int64(pkts[0].seq)
	for i, p := range pkts {
		d := int64(int16(p.seq - uint16(ref)))
		out[i] = ref + d
		ref = out[i]
	}
	return out
}

// checkStream verifies what a subscriber received of one track: every
// payload intact, sequence numbers continuous from the first packet to
// slack packets before the last, payloads in the publisher's order, and
// a video stream starting and changing layer only at keyframes.
func checkStream(t *testing.T, pkts []received, video bool, slack int) {
	t.Helper()
	if len(pkts) == 0 {
		t.Fatal("nothing received")
	}
	ext := extSeqs(pkts)
	type item struct {
		seq int64
		p   received
	}
	items := make([]item, len(pkts))
	for i := range pkts {
		items[i] = item{ext[i], pkts[i]}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].seq < items[j].seq })
	// Duplicates (a retransmission of a packet that was not lost) are
	// harmless; drop them.
	uniq := items[:1]
	for _, it := range items[1:] {
		if it.seq != uniq[len(uniq)-1].seq {
			uniq = append(uniq, it)
		}
	}
	last := uniq[len(uniq)-1].seq - int64(slack)
	for i := 1; i < len(uniq) && uniq[i].seq <= last; i++ {
		if uniq[i].seq != uniq[i-1].seq+1 {
			t.Fatalf("sequence gap: %d then %d", uniq[i-1].seq, uniq[i].seq)
		}
	}
	if video && !uniq[0].p.keyStart {
		for i, p := range pkts[:min(12, len(pkts))] {
			t.Logf("arrival %d: seq %d layer %d frame %d/%d key %v", i, p.seq, p.id.layer, p.id.frame, p.id.index, p.keyStart)
		}
		t.Fatalf("video starts with a non-keyframe packet (frame %d packet %d)", uniq[0].p.id.frame, uniq[0].p.id.index)
	}
	for i := 1; i < len(uniq); i++ {
		a, b := uniq[i-1].p, uniq[i].p
		if uniq[i].seq != uniq[i-1].seq+1 {
			continue // a hole in the slack at the end
		}
		if a.id.layer != b.id.layer {
			if !b.keyStart {
				t.Fatalf("layer %d→%d switch at seq %d is not at a keyframe", a.id.layer, b.id.layer, uniq[i].seq)
			}
			if int32(b.fullTS-a.fullTS) <= 0 {
				t.Fatalf("timestamp goes back at the switch: %d then %d", a.fullTS, b.fullTS)
			}
			continue
		}
		same := b.id.frame == a.id.frame && b.id.index == a.id.index+1
		next := b.id.frame == a.id.frame+1 && b.id.index == 0 && a.id.index+1 == a.id.count
		if !same && !next {
			t.Fatalf("out of publisher order at seq %d: frame %d/%d then %d/%d", uniq[i].seq, a.id.frame, a.id.index, b.id.frame, b.id.index)
		}
		if b.id.srcSeq-a.id.srcSeq != 1 {
			t.Fatalf("source sequence numbers %d then %d within one layer", a.id.srcSeq, b.id.srcSeq)
		}
		if next && int32(b.fullTS-a.fullTS) <= 0 {
			t.Fatalf("timestamp does not advance between frames: %d then %d", a.fullTS, b.fullTS)
		}
	}
}

func TestForwardOpusAndVideo(t *testing.T) {
	for _, codec := range []string{"VP8", "H264"} {
		t.Run(codec, func(t *testing.T) {
			checkLeaks(t)
			ctx := testContext(t)
			e := newTestEngine(t)
			r := e.NewRouter("stage")
			tp := startPublisher(t, ctx, r, "alice", pubOpts{codec: codec})
			select {
			case <-tp.media:
			case <-ctx.Done():
				t.Fatal("OnMedia not called")
			}
			tracks := tp.pub.Tracks()
			if len(tracks) != 2 || tracks[0].Kind != Audio || tracks[0].Codec != "opus" || tracks[1].Kind != Video || tracks[1].Codec != codec {
				t.Fatalf("Tracks() = %+v", tracks)
			}
			ts, err := subscribe(t, ctx, r, "bob", "alice", subOpts{client: clientOpts{video: []string{codec}}})
			must(t, err)
			waitFor(t, ctx, "media at the subscriber", func() bool {
				return ts.count(webrtc.RTPCodecTypeAudio) >= 100 && ts.count(webrtc.RTPCodecTypeVideo) >= 150
			})
			if err := ts.errors(); err != nil {
				t.Fatal(err)
			}
			checkStream(t, ts.snapshot(webrtc.RTPCodecTypeAudio), false, 0)
			checkStream(t, ts.snapshot(webrtc.RTPCodecTypeVideo), true, 0)
			wantPT := uint8(clientVP8PT)
			if codec == "H264" {
				wantPT = clientH264PT
			}
			if got := ts.snapshot(webrtc.RTPCodecTypeVideo)[0].pt; got != wantPT {
				t.Errorf("video payload type %d, want the subscriber's %d", got, wantPT)
			}
			layers := ts.sub.Layers()
			waitFor(t, ctx, "layer statistics", func() bool {
				layers = ts.sub.Layers()
				for _, ls := range layers {
					return len(ls) == 1 && ls[0].Bitrate > 0 && ls[0].Width == 320 && ls[0].Height == 180 && ls[0].Selected
				}
				return false
			})
			t.Logf("%s layers: %+v", codec, layers)
		})
	}
}

// TestSenderReportsUsePublisherClock checks that a subscriber's sender
// reports map RTP time to NTP time exactly as the publisher's do, shifted
// by the engine's timestamp offset, so receivers can sync audio and video.
func TestSenderReportsUsePublisherClock(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	e := newTestEngine(t)
	r := e.NewRouter("stage")
	startPublisher(t, ctx, r, "alice", pubOpts{})
	ts, err := subscribe(t, ctx, r, "bob", "alice", subOpts{})
	must(t, err)
	// Wait until the engine has the publisher's reports and the subscriber
	// got a few of its own.
	waitFor(t, ctx, "sender reports", func() bool {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		return len(ts.srs) >= 4
	})
	ssrcs := map[uint32]bool{}
	for _, d := range ts.sub.downs {
		ssrcs[d.boundSSRC()] = true
	}
	ts.mu.Lock()
	for _, sr := range ts.srs {
		if !ssrcs[sr.SSRC] {
			t.Errorf("sender report for SSRC %d, not a down-track's", sr.SSRC)
		}
	}
	ts.mu.Unlock()
	for _, d := range ts.sub.downs {
		l := d.up.layers[0]
		src := l.lastSR()
		if !src.ok {
			t.Fatalf("%s: no publisher sender report", d.kind)
		}
		sr, ok := d.senderReport(time.Now(), nanotime())
		if !ok {
			t.Fatalf("%s: no report", d.kind)
		}
		// Elapsed NTP time since the publisher's report, in RTP ticks, must
		// match the elapsed RTP time.
		elNTP := int64(sr.NTPTime - src.ntp)
		elNS := elNTP * 1_000_000_000 >> 32
		wantRTP := src.rtp + rtpTicks(elNS, d.up.clock) - d.tsOffset
		if diff := int32(sr.RTPTime - wantRTP); diff < -1 || diff > 1 {
			t.Errorf("%s: RTP time %d, want %d", d.kind, sr.RTPTime, wantRTP)
		}
	}
}

package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/pion/webrtc/v4"

	"github.com/rostrum-dev/rostrum/internal/rtclient"
	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// Issue 15: video stopped for every subscriber 32,768 packets after it
// started, because the down-track compared 16-bit sequence numbers. A stage
// must carry media across every boundary of RTP's counters: the 16-bit
// sequence number wrap, 32,768 packets after the subscriber's first packet
// (half the sequence space, where 16-bit "is it newer" comparisons flip),
// and the 32-bit timestamp wrap.
//
// A real pion publisher starts its sequence numbers just below 65,536 and
// its timestamps just below 2^32 and sends fast (500 video frames of about
// four packets and 2,000 audio frames a second), so that more than 32,768
// packets of each kind flow after the subscriber's start within seconds.
// After each boundary, the subscriber must rebuild frames the publisher sent
// after it, each one unchanged and in order (FrameHash on both sides).
func TestMediaCrossesSequenceAndTimestampWraps(t *testing.T) {
	if testing.Short() {
		t.Skip("sends some 80,000 packets through the server")
	}
	ts := startServer(t, "")
	c := ts.client()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	stage := newStage(t, c)
	pubTok, pubID := newToken(t, c, stage, "alice")
	subTok, _ := newToken(t, c, stage, "bob", types.ParticipantTokenCapabilitySubscribe)

	const (
		seqBefore = 1000    // packets before the sequence number wraps
		tsBefore  = 90000   // ticks before the timestamp wraps: 1 s of video, 1.9 s of audio
		halfSpace = 1 << 15 // packets after the subscriber's first, where 16-bit comparisons flip
		past      = 1000    // how far past a boundary frames are looked for
		seqSpace  = 1 << 16 // sequence numbers
		tsSpace   = 1 << 32 // timestamps
		firstTS   = tsSpace - tsBefore
		firstSeq  = seqSpace - seqBefore
		deadline  = 4 * time.Minute
	)
	seq, stamp := uint16(firstSeq), uint32(firstTS)
	// The sources send one frame (so that the server knows the tracks and
	// takes the subscription), then wait for the subscriber: it must see
	// the wraps, however slowly it joins.
	gate := make(chan struct{})
	var openOnce sync.Once
	open := func() { openOnce.Do(func() { close(gate) }) }
	defer open()
	pub := publish(t, ctx, pubTok, rtclient.PublishOptions{
		Audio: &gatedSource{src: rtclient.NewSyntheticSource(rtclient.SyntheticOptions{
			Codec: rtclient.CodecOpus, FrameDuration: 500 * time.Microsecond,
		}), gate: gate},
		Video: &gatedSource{src: rtclient.NewSyntheticSource(rtclient.SyntheticOptions{
			Codec: rtclient.CodecVP8, FrameDuration: 2 * time.Millisecond, FrameSize: 4000, KeyframeSize: 8000, KeyframeInterval: 250,
		}), gate: gate},
		FirstSequenceNumber: &seq, FirstTimestamp: &stamp,
	})
	kinds := []string{rtclient.KindAudio, rtclient.KindVideo}
	for _, kind := range kinds {
		testutil.Eventually(t, "the publisher's first "+kind+" packet", func() bool { return pub.Stats(kind).Packets > 0 })
	}
	sub := subscribeWhenPublished(t, ctx, subTok, pubID)
	open()

	// The boundaries, in the publisher's terms, and for each the last frame
	// sent when it was crossed: a frame after that one, rebuilt by the
	// subscriber, has crossed it.
	type boundary struct {
		kind, name string
		crossed    func(rtclient.SendStats) bool
		mark       *[32]byte // the last frame sent once crossed
		passed     bool
	}
	var bounds []*boundary
	for _, kind := range kinds {
		// Where the subscriber's stream started, in packets sent: no
		// earlier than the publisher's count when its first packet arrived.
		var started int64
		testutil.Eventually(t, "the subscriber's first "+kind+" packet", func() bool {
			if sub.Stats(kind).FirstPacket.IsZero() {
				return false
			}
			started = pub.Stats(kind).Packets
			return true
		})
		bounds = append(bounds,
			&boundary{kind: kind, name: "the sequence number wrap", crossed: func(s rtclient.SendStats) bool { return s.LastSeq >= seqSpace+past }},
			&boundary{kind: kind, name: "the timestamp wrap", crossed: func(s rtclient.SendStats) bool { return s.LastTimestamp >= tsSpace+tsBefore/4 }},
			&boundary{kind: kind, name: fmt.Sprintf("%d packets after the subscriber's first", halfSpace), crossed: func(s rtclient.SendStats) bool {
				return s.Packets >= started+halfSpace+past
			}},
			&boundary{kind: kind, name: "the second wrap of its sequence numbers", crossed: func(s rtclient.SendStats) bool { return s.LastSeq >= 2*seqSpace+past }},
		)
	}

	begin := time.Now()
	for {
		left := 0
		for _, b := range bounds {
			if b.passed {
				continue
			}
			left++
			if b.mark == nil {
				st := pub.Stats(b.kind)
				if !b.crossed(st) {
					continue
				}
				sent := pub.SentFrames(b.kind)
				b.mark = &sent[len(sent)-1]
				t.Logf("%s: publisher past %s at %s (packet %d, seq %d, timestamp %d)", b.kind, b.name, time.Since(begin).Round(time.Millisecond), st.Packets, st.LastSeq, st.LastTimestamp)
			}
			// Received first: every frame in it was sent before the
			// publisher's log is read.
			got := sub.ReceivedFrames(b.kind)
			beyond, err := framesBeyond(pub.SentFrames(b.kind), got, *b.mark)
			if err != nil {
				t.Fatalf("%s after %s: %v", b.kind, b.name, err)
			}
			if beyond {
				b.passed = true
				t.Logf("%s: subscriber past %s at %s (%+v)", b.kind, b.name, time.Since(begin).Round(time.Millisecond), sub.Stats(b.kind))
			}
		}
		if left == 0 {
			break
		}
		if time.Since(begin) > deadline {
			var missing []string
			for _, b := range bounds {
				if !b.passed {
					missing = append(missing, b.kind+" past "+b.name)
				}
			}
			t.Fatalf("after %s the subscriber has no frames sent after: %s\npublisher: audio %+v\nvideo %+v\nsubscriber: audio %+v\nvideo %+v",
				deadline, strings.Join(missing, "; "), pub.Stats(rtclient.KindAudio), pub.Stats(rtclient.KindVideo),
				sub.Stats(rtclient.KindAudio), sub.Stats(rtclient.KindVideo))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, kind := range kinds {
		st := sub.Stats(kind)
		t.Logf("%s: %d packets sent, %d received (%d lost, %d late, %d NACKed), %d frames sent, %d rebuilt",
			kind, pub.Stats(kind).Packets, st.Packets, st.Lost, st.Late, st.NACKedSeqs, pub.Stats(kind).Frames, st.Frames)
	}
}

// framesBeyond checks the frames a subscriber rebuilt against those sent:
// from the first one the publisher's log still holds on, every one must be
// in it, in the order sent (frames may be missing: audio is not
// retransmitted). It reports whether one of them was sent after mark.
func framesBeyond(sent, got [][32]byte, mark [32]byte) (bool, error) {
	at := make(map[[32]byte]int, len(sent))
	for i, h := range sent {
		at[h] = i
	}
	m, ok := at[mark]
	if !ok {
		// The publisher's log (the newest frames only) has moved past the
		// mark: every frame it holds was sent after it. (A loaded machine
		// checks seldom enough for that at 2,000 frames a second.)
		m = -1
	}
	prev, beyond := -1, false
	for i, h := range got {
		j, ok := at[h]
		switch {
		case !ok && prev < 0:
			continue // older than the publisher's log
		case !ok:
			return false, fmt.Errorf("received frame %d of %d (%x) was never sent", i, len(got), h[:6])
		case j <= prev:
			return false, fmt.Errorf("received frame %d is sent frame %d, after sent frame %d: out of order or repeated", i, j, prev)
		}
		prev = j
		beyond = beyond || j > m
	}
	return beyond, nil
}

// gatedSource sends its first frame, then waits for gate to close. It
// passes keyframe requests on.
type gatedSource struct {
	src  *rtclient.SyntheticSource
	gate <-chan struct{}
	n    int
}

func (g *gatedSource) Codec() webrtc.RTPCodecCapability { return g.src.Codec() }
func (g *gatedSource) RequestKeyframe()                 { g.src.RequestKeyframe() }
func (g *gatedSource) NextFrame() (rtclient.Frame, error) {
	if g.n == 1 {
		<-g.gate
	}
	g.n++
	return g.src.NextFrame()
}

// subscribeWhenPublished subscribes once the server has the publisher's
// first packets (before that it answers 2004, publisher not found).
func subscribeWhenPublished(t *testing.T, ctx context.Context, tok, pubID string) *rtclient.Subscriber {
	t.Helper()
	var sub *rtclient.Subscriber
	var err error
	testutil.Eventually(t, "a subscription", func() bool {
		sub, err = rtclient.Subscribe(ctx, tok, rtclient.SubscribeOptions{PublisherID: pubID, LoopbackOnly: true})
		return err == nil
	})
	t.Cleanup(func() { sub.Close(context.Background()) })
	return sub
}

package e2e

import (
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/rostrum-dev/rostrum/internal/rtclient"
	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// TestMeasureReplicationCost measures what a replica costs the server: the
// process's CPU time while P publishers publish, then while each is also
// replicated into 5 stages (IVS's maximum per participant). The clients
// are the same in both phases (nobody subscribes to the replicas), so the
// difference is the server's: the tap, the rewriting, and the replica's
// up-track (unwrapping, NACK cache, keyframe detection, statistics). A
// measurement, not a check: it runs only with ROSTRUM_MEASURE=1.
//
//	ROSTRUM_MEASURE=1 ROSTRUM_MEASURE_PUBLISHERS=4 go test -run TestMeasureReplicationCost -v -timeout 5m ./test/e2e/
func TestMeasureReplicationCost(t *testing.T) {
	testutil.Measurement(t)
	publishers := testutil.MeasureInt("ROSTRUM_MEASURE_PUBLISHERS", 4)
	const replicasEach, window = 5, 20 * time.Second
	ts := startServer(t, "")
	c := ts.client()
	ctx := testContext(t)
	a := newStage(t, c)
	type pub struct {
		id string
		p  *rtclient.Publisher
	}
	var pubs []pub
	for i := range publishers {
		tok, id := newToken(t, c, a, "p"+strconv.Itoa(i), types.ParticipantTokenCapabilityPublish)
		// H.264 framed 1.5 Mbit/s at 30 fps (a keyframe every 2 s, four
		// times a delta frame), and Opus: what rostrum loadtest sends.
		video := rtclient.NewSyntheticSource(rtclient.SyntheticOptions{Codec: rtclient.CodecH264, FrameSize: 5952, KeyframeSize: 4 * 5952, KeyframeInterval: 60, Width: 1280, Height: 720})
		audio := rtclient.NewSyntheticSource(rtclient.SyntheticOptions{Codec: rtclient.CodecOpus, FrameSize: 160})
		pubs = append(pubs, pub{id, publish(t, ctx, tok, rtclient.PublishOptions{Audio: audio, Video: video})})
	}
	sid := activeSession(t, c, a)
	for _, p := range pubs {
		testutil.Eventually(t, "publishing", func() bool { return hasEvent(c, a, sid, p.id, types.EventNamePublishStarted, "") })
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	measure := func() (cores float64, packets int64) {
		time.Sleep(3 * time.Second) // settle
		var sent int64
		for _, p := range pubs {
			sent += p.p.Stats("audio").Packets + p.p.Stats("video").Packets
		}
		c0, t0 := cpu(), time.Now()
		time.Sleep(window)
		c1, t1 := cpu(), time.Now()
		for _, p := range pubs {
			packets += p.p.Stats("audio").Packets + p.p.Stats("video").Packets
		}
		return (c1 - c0).Seconds() / t1.Sub(t0).Seconds(), packets - sent
	}
	base, basePackets := measure()
	for _, p := range pubs {
		for range replicasEach {
			if err := replicate(c, a, newStage(t, c), p.id, 0, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	with, packets := measure()
	n := publishers * replicasEach
	perReplica := (with - base) / float64(n)
	pps := float64(packets) / window.Seconds() / float64(publishers)
	t.Logf("%d publishers: %.3f cores; with %d replicas: %.3f cores; %.4f cores per replica (%.0f packets/s each: %.1f µs per packet); packets sent %d then %d",
		publishers, base, n, with, perReplica, pps, perReplica/pps*1e6, basePackets, packets)
}

package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/rtclient"
	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// The WHEP playback-control link pauses and resumes forwarding, the
// session-delete link is the web client's unload beacon, and the events
// channel answers PING.
func TestPlaybackControlSessionDeleteBeaconAndPing(t *testing.T) {
	ts := startServer(t, "")
	c := ts.client()
	ctx := testContext(t)
	stage := newStage(t, c)
	pubTok, pubID := newToken(t, c, stage, "pub")
	subTok, _ := newToken(t, c, stage, "sub")
	ev, err := rtclient.ConnectEventsWith(ctx, subTok, rtclient.EventsOptions{PingInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	pub := publish(t, ctx, pubTok, rtclient.PublishOptions{Video: rtclient.NewSyntheticSource(rtclient.SyntheticOptions{})})
	sub := subscribe(t, ctx, subTok, rtclient.SubscribeOptions{PublisherID: pubID})
	if err := sub.WaitFrames(ctx, "video", 5); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "a PONG", func() bool { return !ev.LastPong().IsZero() })

	// Paused: while the publisher sends 30 more frames, nothing reaches the
	// subscriber but, at most, a few packets that were already on their
	// way; played: the stream flows again. (Counted in frames sent, not in
	// time, so that a slow machine changes nothing.)
	if err := sub.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	paused := sub.Stats("video").Packets
	sent := pub.Stats("video").Frames
	testutil.Eventually(t, "30 frames sent while paused", func() bool { return pub.Stats("video").Frames >= sent+30 })
	if got := sub.Stats("video").Packets - paused; got > 5 {
		t.Errorf("%d packets arrived while the publisher sent 30 frames to a paused subscription", got)
	}
	if err := sub.Play(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "packets after play", func() bool { return sub.Stats("video").Packets > paused })

	// The beacon ends the publisher's resource; its subscriber ends with it.
	link := pub.Links()[rtclient.RelSessionDelete]
	if link == "" {
		t.Fatalf("no session-delete link in %v", pub.Links())
	}
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	beacon := ts.BaseURL + u.Path
	resp, err := http.Post(beacon, "text/plain;charset=UTF-8", strings.NewReader(`{"authorization":"`+pubTok+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("beacon: %d", resp.StatusCode)
	}
	select {
	case <-sub.Done():
	case <-ctx.Done():
		t.Fatal("the subscription outlived its publisher's session-delete beacon")
	}
	// A beacon with someone else's token is refused.
	resp, err = http.Post(beacon, "text/plain", strings.NewReader(`{"authorization":"`+subTok+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 && resp.StatusCode != 403 {
		t.Errorf("beacon for a gone resource with another token: %d", resp.StatusCode)
	}
}

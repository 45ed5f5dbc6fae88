package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/rtclient"
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
	eventually(t, "a PONG", func() bool { return !ev.LastPong().IsZero() })

	// Paused: nothing flows but, at most, a late retransmission; played: the
	// stream flows again.
	flowing := sub.Stats("video").Packets
	time.Sleep(500 * time.Millisecond)
	flowing = sub.Stats("video").Packets - flowing
	if err := sub.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let packets in flight arrive
	paused := sub.Stats("video").Packets
	time.Sleep(500 * time.Millisecond)
	if got := sub.Stats("video").Packets - paused; got > 2 || flowing < 10 {
		t.Errorf("%d packets arrived in 500 ms while paused, %d in 500 ms before", got, flowing)
	}
	if err := sub.Play(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "packets after play", func() bool { return sub.Stats("video").Packets > paused })

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

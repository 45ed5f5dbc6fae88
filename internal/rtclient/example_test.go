package rtclient_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/rostrum-dev/rostrum/internal/rtclient"
)

// A stage test: one participant publishes test media, another subscribes to
// it, and what arrived is compared with what was sent. The tokens come from
// CreateParticipantToken. (Compiled, not run: it needs a server.)
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var publisherToken, viewerToken string // from CreateParticipantToken

	fx, err := rtclient.GenerateFixtures(ctx, "/tmp/rtclient-fixtures")
	if err != nil {
		log.Fatal(err)
	}
	video, err := rtclient.NewFileSource(fx.H264)
	if err != nil {
		log.Fatal(err)
	}
	audio, err := rtclient.NewFileSource(fx.Opus)
	if err != nil {
		log.Fatal(err)
	}

	// The events socket first, as the Web SDK does.
	events, err := rtclient.ConnectEvents(ctx, publisherToken)
	if err != nil {
		log.Fatal(err)
	}
	defer events.Close()

	pub, err := rtclient.Publish(ctx, publisherToken, rtclient.PublishOptions{Audio: audio, Video: video, LoopbackOnly: true})
	if err != nil {
		log.Fatal(err)
	}
	defer pub.Close(ctx)
	id := pub.Token().ParticipantID
	if _, err := events.WaitState(ctx, func(s rtclient.StageState) bool {
		p, ok := s.Participant(id)
		return ok && p.IsPublishing
	}); err != nil {
		log.Fatal(err)
	}

	sub, err := rtclient.Subscribe(ctx, viewerToken, rtclient.SubscribeOptions{PublisherID: id, LoopbackOnly: true})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close(ctx)
	if err := sub.WaitFrames(ctx, rtclient.KindVideo, 60); err != nil {
		log.Fatal(err)
	}
	st := sub.Stats(rtclient.KindVideo)
	fmt.Println(len(sub.ReceivedFrames(rtclient.KindVideo)), len(pub.SentFrames(rtclient.KindVideo)), st.Lost, st.NACKs)
}

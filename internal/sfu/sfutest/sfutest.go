// Package sfutest has what tests of the engine's in-process readers
// (recording, composition) share: a real pion peer publishing media files
// straight to a router, without the stage and HTTP layers.
package sfutest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/rostrum-dev/rostrum/internal/rtclient"
	"github.com/rostrum-dev/rostrum/internal/sfu"
)

// Publisher is a pion peer publishing file sources to a router.
type Publisher struct {
	Pub  *sfu.Publisher
	pc   *webrtc.PeerConnection
	stop chan struct{}
	wg   sync.WaitGroup
}

func Publish(t testing.TB, r *sfu.Router, id string, sources ...rtclient.MediaSource) *Publisher {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Offer only the codecs sent: the engine answers with the first it
	// supports.
	me := &webrtc.MediaEngine{}
	for i, src := range sources {
		c := src.Codec()
		kind := webrtc.RTPCodecTypeVideo
		if strings.HasPrefix(c.MimeType, "audio/") {
			kind = webrtc.RTPCodecTypeAudio
		}
		if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: c, PayloadType: webrtc.PayloadType(96 + i)}, kind); err != nil {
			t.Fatal(err)
		}
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	p := &Publisher{pc: pc, stop: make(chan struct{})}
	type out struct {
		tr  *webrtc.TrackLocalStaticSample
		src rtclient.MediaSource
	}
	var outs []out
	for i, src := range sources {
		tr, err := webrtc.NewTrackLocalStaticSample(src.Codec(), fmt.Sprintf("t%d", i), id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
		outs = append(outs, out{tr, src})
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	sp, answer, err := r.Publish(ctx, id, pc.LocalDescription().SDP, sfu.PublisherCallbacks{})
	if err != nil {
		t.Fatal(err)
	}
	p.Pub = sp
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			next := time.Now()
			for {
				f, err := o.src.NextFrame()
				if err != nil {
					return
				}
				_ = o.tr.WriteSample(media.Sample{Data: f.Data, Duration: f.Duration})
				next = next.Add(f.Duration)
				select {
				case <-p.stop:
					return
				case <-time.After(time.Until(next)):
				}
			}
		}()
	}
	return p
}

// Close leaves as a client does (WHIP DELETE): the server closes the
// publisher.
func (p *Publisher) Close() {
	select {
	case <-p.stop:
		return
	default:
	}
	close(p.stop)
	p.wg.Wait()
	_ = p.Pub.Close()
	_ = p.pc.Close()
}

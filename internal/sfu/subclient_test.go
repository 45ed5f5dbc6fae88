package sfu

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// received is one packet a test subscriber got.
type received struct {
	seq      uint16
	fullTS   uint32
	ssrc     uint32
	pt       uint8
	id       packetID
	keyStart bool // first packet of a keyframe
}

// testSubscriber is a pion peer receiving from the engine.
type testSubscriber struct {
	t      testing.TB
	pc     *webrtc.PeerConnection
	sub    *Subscriber
	closed chan error
	// offer is the SDP sent; pc.LocalDescription() gains candidates
	// later (an active TCP one once the answer's passive one is known).
	offer string

	mu      sync.Mutex
	packets map[webrtc.RTPCodecType][]received
	tracks  map[webrtc.RTPCodecType]*webrtc.TrackRemote
	errs    []error
	srs     []rtcp.SenderReport
	wg      sync.WaitGroup
}

type subOpts struct {
	client  clientOpts
	options SubscribeOptions
	video   int  // video sections to offer (default 1)
	noRead  bool // read nothing (benchmarks: only the engine's side counts)
	// mungeOffer, if set, rewrites the offer before it is sent.
	mungeOffer func(string) string
}

func subscribe(t testing.TB, ctx context.Context, r *Router, id, pubID string, o subOpts) (*testSubscriber, error) {
	t.Helper()
	ts := &testSubscriber{t: t, closed: make(chan error, 1), packets: map[webrtc.RTPCodecType][]received{}, tracks: map[webrtc.RTPCodecType]*webrtc.TrackRemote{}}
	var cfg webrtc.Configuration
	if o.client.cryptex {
		cfg.RTPHeaderEncryptionPolicy = webrtc.RTPHeaderEncryptionPolicyRequire
	}
	pc, err := clientAPI(t, o.client).NewPeerConnection(cfg)
	must(t, err)
	ts.pc = pc
	t.Cleanup(func() {
		_ = pc.GracefulClose()
		ts.wg.Wait()
	})
	recv := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}
	if !o.client.noAudio {
		_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, recv)
		must(t, err)
	}
	if o.video == 0 {
		o.video = 1
	}
	for range o.video {
		_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, recv)
		must(t, err)
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, rc *webrtc.RTPReceiver) {
		if o.noRead {
			return
		}
		ts.mu.Lock()
		ts.tracks[tr.Kind()] = tr
		ts.mu.Unlock()
		ts.wg.Add(2)
		go ts.read(tr)
		go ts.readRTCP(rc)
	})
	offer := offerFrom(t, ctx, pc)
	if o.mungeOffer != nil {
		offer = o.mungeOffer(offer)
	}
	o.options.OnClosed = func(err error) { ts.closed <- err }
	sub, answer, err := r.Subscribe(ctx, id, pubID, offer, o.options)
	if err != nil {
		return nil, err
	}
	ts.sub = sub
	ts.offer = offer
	must(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}))
	return ts, nil
}

func (ts *testSubscriber) read(tr *webrtc.TrackRemote) {
	defer ts.wg.Done()
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		id, perr := parsePayload(p.Payload)
		rec := received{seq: p.SequenceNumber, fullTS: p.Timestamp, ssrc: p.SSRC, pt: p.PayloadType, id: id}
		switch tr.Codec().MimeType {
		case webrtc.MimeTypeVP8:
			rec.keyStart, _, _ = vp8Keyframe(p.Payload)
		case webrtc.MimeTypeH264:
			rec.keyStart, _, _ = h264Keyframe(p.Payload)
		}
		ts.mu.Lock()
		if perr != nil {
			ts.errs = append(ts.errs, fmt.Errorf("seq %d: %w", p.SequenceNumber, perr))
		}
		ts.packets[tr.Kind()] = append(ts.packets[tr.Kind()], rec)
		ts.mu.Unlock()
	}
}

func (ts *testSubscriber) readRTCP(rc *webrtc.RTPReceiver) {
	defer ts.wg.Done()
	for {
		pkts, _, err := rc.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok {
				ts.mu.Lock()
				ts.srs = append(ts.srs, *sr)
				ts.mu.Unlock()
			}
		}
	}
}

func (ts *testSubscriber) count(kind webrtc.RTPCodecType) int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.packets[kind])
}

func (ts *testSubscriber) snapshot(kind webrtc.RTPCodecType) []received {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]received(nil), ts.packets[kind]...)
}

func (ts *testSubscriber) errors() error {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return errors.Join(ts.errs...)
}

func (ts *testSubscriber) track(kind webrtc.RTPCodecType) *webrtc.TrackRemote {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.tracks[kind]
}

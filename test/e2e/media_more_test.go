package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/rostrum-dev/rostrum/internal/rtclient"
	"github.com/rostrum-dev/rostrum/internal/testutil"
	"github.com/rostrum-dev/rostrum/internal/token"
)

func TestEventsChannelRefusesBadTokensWithJoinError(t *testing.T) {
	ts := startServer(t, "")
	c := ts.client()
	ctx := testContext(t)
	stage := newStage(t, c)
	good, _ := newToken(t, c, stage, "a")
	p, err := token.Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	expired := p.Claims
	expired.IssuedAt, expired.ExpiresAt = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
	expiredTok, err := ts.service().SigningKey().Sign(expired)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := token.GenerateSigningKey()
	forged, _ := other.Sign(p.Claims)
	for name, tc := range map[string]struct{ tok, code string }{
		"expired": {expiredTok, "TOKEN_EXPIRED"},
		"forged":  {forged, "TOKEN_INVALID_SIGNATURE"},
	} {
		ev, err := rtclient.ConnectEvents(ctx, tc.tok)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		waitMessage(t, ctx, ev, "aws:ivs:JOIN_ERROR", tc.code)
		ev.Close()
	}
	// And the HTTP endpoints answer 401 with IVS's codes.
	_, err = rtclient.Publish(ctx, expiredTok, rtclient.PublishOptions{Video: rtclient.NewSyntheticSource(rtclient.SyntheticOptions{}), LoopbackOnly: true})
	var he *rtclient.HTTPError
	if !errors.As(err, &he) || he.Status != 401 || he.Code != 2002 {
		t.Errorf("publish with an expired token: %v", err)
	}
}

// A customer signs its own tokens with a key imported through
// ImportPublicKey, and exchanges them on the events channel.
func TestSelfSignedTokensJoinAndExchange(t *testing.T) {
	ts := startServer(t, "")
	c := ts.client()
	ctx := testContext(t)
	stage := newStage(t, c)
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	pk, err := c.ImportPublicKey(bg, &ivsrealtime.ImportPublicKeyInput{PublicKeyMaterial: aws.String(pemPublicKey(t, &key.PublicKey))})
	if err != nil {
		t.Fatal(err)
	}
	g, _ := c.GetStage(bg, &ivsrealtime.GetStageInput{Arn: aws.String(stage)})
	mint := func(attrs map[string]string) string {
		now := time.Now()
		claims := token.Claims{
			IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix(), ParticipantID: "customer-chosen-1",
			Resource: stage, Topic: stage[strings.LastIndex(stage, "/")+1:],
			EventsURL: *g.Stage.Endpoints.Events, WhipURL: *g.Stage.Endpoints.Whip,
			UserID: "self", Attributes: attrs, Capabilities: token.Capabilities{Publish: true, Subscribe: true}, Version: "1.0",
		}
		return signES384(t, key, *pk.PublicKey.Arn, claims)
	}
	first := mint(map[string]string{"role": "guest"})
	ev := joinEvents(t, ctx, first)
	waitState(t, ctx, ev, func(s rtclient.StageState) bool {
		p, ok := s.Participant("customer-chosen-1")
		return ok && p.Attributes["role"] == "guest"
	})
	if err := ev.Send(ctx, map[string]any{"type": "aws:ivs:EXCHANGE_TOKEN", "payload": map[string]string{
		"oldToken": first, "newToken": mint(map[string]string{"role": "host"}), "requestId": "r1", "traceId": "t1"}}); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, ctx, ev, "aws:ivs:EXCHANGE_TOKEN", `"requestId":"r1"`)
	waitState(t, ctx, ev, func(s rtclient.StageState) bool {
		p, ok := s.Participant("customer-chosen-1")
		return ok && p.Attributes["role"] == "host"
	})
	sid := activeSession(t, c, stage)
	testutil.Eventually(t, "TOKEN_EXCHANGED recorded", func() bool {
		return hasEvent(c, stage, sid, "customer-chosen-1", types.EventName("TOKEN_EXCHANGED"), "")
	})
	// Deleting the public key revokes every token it signed.
	if _, err := c.DeletePublicKey(bg, &ivsrealtime.DeletePublicKeyInput{Arn: pk.PublicKey.Arn}); err != nil {
		t.Fatal(err)
	}
	_, err = rtclient.Publish(ctx, first, rtclient.PublishOptions{Video: rtclient.NewSyntheticSource(rtclient.SyntheticOptions{}), LoopbackOnly: true})
	var he *rtclient.HTTPError
	if !errors.As(err, &he) || he.Status != 401 {
		t.Errorf("publish with a token of a deleted key: %v", err)
	}
}

// signES384 signs a JWT the way a customer's own code would (RFC 7515
// compact JWS, raw r||s signature), independently of Rostrum's signer.
func signES384(t *testing.T, key *ecdsa.PrivateKey, kid string, claims token.Claims) string {
	t.Helper()
	header, _ := json.Marshal(map[string]string{"alg": "ES384", "typ": "JWT", "kid": kid})
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	digest := sha512.Sum384([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 96)
	r.FillBytes(sig[:48])
	s.FillBytes(sig[48:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func mustStage(t *testing.T, c *ivsrealtime.Client, arn string) *types.Stage {
	t.Helper()
	g, err := c.GetStage(bg, &ivsrealtime.GetStageInput{Arn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	return g.Stage
}

func TestDeleteStageDisconnectsEveryone(t *testing.T) {
	ts := startServer(t, "")
	c := ts.client()
	ctx := testContext(t)
	stage := newStage(t, c)
	tok, _ := newToken(t, c, stage, "a")
	ev := joinEvents(t, ctx, tok)
	pub := publish(t, ctx, tok, rtclient.PublishOptions{Video: rtclient.NewSyntheticSource(rtclient.SyntheticOptions{})})
	if _, err := c.DeleteStage(bg, &ivsrealtime.DeleteStageInput{Arn: aws.String(stage)}); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, ctx, ev, "aws:ivs:DISCONNECT", "STAGE_DELETED")
	select {
	case <-pub.Done():
	case <-ctx.Done():
		t.Fatal("the publisher stayed connected to a deleted stage")
	}
}

// OBS and other WHIP clients POST to the bare whip endpoint; they open no
// events channel, and still show as participants while they publish.
func TestOBSStyleWHIPPublish(t *testing.T) {
	f := fixtures(t)
	ts := startServer(t, "")
	c := ts.client()
	ctx := testContext(t)
	stage := newStage(t, c)
	tok, pid := newToken(t, c, stage, "obs", types.ParticipantTokenCapabilityPublish)
	viewer, _ := newToken(t, c, stage, "viewer", types.ParticipantTokenCapabilitySubscribe)
	whip := *mustStage(t, c, stage).Endpoints.Whip
	pub, err := rtclient.Publish(ctx, tok, rtclient.PublishOptions{URL: whip, Audio: source(t, f.Opus), Video: source(t, f.H264), LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(pub.Location(), ts.BaseURL+"/whip/resources/") && !strings.HasPrefix(pub.Location(), "/whip/resources/") {
		t.Errorf("Location = %q", pub.Location())
	}
	if pub.Links()[rtclient.RelSessionDelete] == "" {
		t.Errorf("no session-delete link: %v", pub.Links())
	}
	sub := subscribe(t, ctx, viewer, rtclient.SubscribeOptions{PublisherID: pid})
	if err := sub.WaitFrames(ctx, "video", 10); err != nil {
		t.Fatal(err)
	}
	sid := activeSession(t, c, stage)
	testutil.Eventually(t, "the OBS participant CONNECTED and published", func() bool {
		p, err := c.GetParticipant(bg, &ivsrealtime.GetParticipantInput{StageArn: aws.String(stage), SessionId: aws.String(sid), ParticipantId: aws.String(pid)})
		return err == nil && p.Participant.State == types.ParticipantStateConnected && p.Participant.Published
	})
	// DELETE on the resource unpublishes; with no other connection, it leaves.
	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "LEFT after the WHIP DELETE", func() bool { return hasEvent(c, stage, sid, pid, types.EventNameLeft, "") })
}

func TestSetStateAndPublisherQuota(t *testing.T) {
	ts := startServer(t, "", func(c *configT) { c.MaxPublishers = 1 })
	c := ts.client()
	ctx := testContext(t)
	stage := newStage(t, c)
	aTok, aID := newToken(t, c, stage, "a")
	bTok, bID := newToken(t, c, stage, "b")
	aEv := joinEvents(t, ctx, aTok)
	bEv := joinEvents(t, ctx, bTok)
	if err := aEv.SetState(ctx, true, false); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, bEv, func(s rtclient.StageState) bool {
		p, ok := s.Participant(aID)
		return ok && p.AudioMuted && !p.VideoStopped
	})
	publish(t, ctx, aTok, rtclient.PublishOptions{Video: rtclient.NewSyntheticSource(rtclient.SyntheticOptions{})})
	_, err := rtclient.Publish(ctx, bTok, rtclient.PublishOptions{Video: rtclient.NewSyntheticSource(rtclient.SyntheticOptions{}), LoopbackOnly: true})
	var he *rtclient.HTTPError
	if !errors.As(err, &he) || he.Code != 2005 {
		t.Fatalf("second publisher with a quota of 1: %v", err)
	}
	sid := activeSession(t, c, stage)
	testutil.Eventually(t, "PUBLISH_ERROR QUOTA_EXCEEDED", func() bool {
		return hasEvent(c, stage, sid, bID, types.EventNamePublishError, "", types.EventErrorCodeQuotaExceeded)
	})
}

// Simulcast end to end: three layers in, one out, pinned through the WHEP
// layer link; NACK recovery; a subscriber's PLI reaches the publisher; ICE
// over TCP.
func TestSimulcastNACKAndPLIThroughTheServer(t *testing.T) {
	f := fixtures(t)
	ts := startServer(t, "")
	c := ts.client()
	ctx := testContext(t)
	stage := newStage(t, c)
	pubTok, pubID := newToken(t, c, stage, "pub")
	subTok, _ := newToken(t, c, stage, "sub")
	var layers []rtclient.MediaSource
	for _, p := range f.SimulcastVP8 {
		layers = append(layers, source(t, p))
	}
	pub := publish(t, ctx, pubTok, rtclient.PublishOptions{Simulcast: layers})
	// Drop ten video packets on purpose before the layer switch below; the
	// server must retransmit every one of them.
	var dropped atomic.Int32
	sub, err := rtclient.Subscribe(ctx, subTok, rtclient.SubscribeOptions{PublisherID: pubID, LoopbackOnly: true, InitialLayer: "lowest",
		Drop: func(kind string, seq uint16) bool {
			if kind == "video" && seq%20 == 7 && dropped.Load() < 10 {
				dropped.Add(1)
				return true
			}
			return false
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(ctx)
	if err := sub.WaitFrames(ctx, "video", 30); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "ten dropped packets recovered by NACK", func() bool {
		st := sub.Stats("video")
		return dropped.Load() == 10 && st.NACKs > 0 && st.Lost == 0
	})
	ls, err := sub.Layers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 3 {
		t.Fatalf("layers = %+v, want hi, mid and low", ls)
	}
	if err := sub.PinLayer(ctx, "", "hi"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the hi layer selected", func() bool {
		ls, err := sub.Layers(ctx)
		if err != nil {
			return false
		}
		for _, l := range ls {
			if l.EncodingID == "hi" && l.Selected {
				return true
			}
		}
		return false
	})
	// The frames after the switch are the hi layer's, in order.
	before := len(sub.ReceivedFrames("video"))
	if err := sub.WaitFrames(ctx, "video", before+30); err != nil {
		t.Fatal(err)
	}
	got := sub.ReceivedFrames("video")[before+5:]
	if !isContiguousRun(got, pub.SentFrames(rtclient.SimulcastKind("hi"))) {
		t.Error("frames after pinning hi are not a run of the hi layer's frames")
	}
	plis := pub.ReceivedPLIs()
	if err := sub.SendPLI(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the subscriber's PLI to reach the publisher", func() bool { return pub.ReceivedPLIs() > plis })

	// A client that can only use TCP.
	tcpTok, _ := newToken(t, c, stage, "tcp")
	tcpSub := subscribe(t, ctx, tcpTok, rtclient.SubscribeOptions{PublisherID: pubID, ICETransport: "tcp"})
	if err := tcpSub.WaitFrames(ctx, "video", 10); err != nil {
		t.Fatalf("over ICE-TCP: %v", err)
	}
}

// Nothing leaks: after every client left and the server stopped, the
// goroutines are those of before.
func TestNoGoroutinesLeakAfterAMediaSession(t *testing.T) {
	http.DefaultClient.CloseIdleConnections()
	before := runtime.NumGoroutine()
	func() {
		ts := startServer(t, "")
		transport := &http.Transport{}
		defer transport.CloseIdleConnections()
		c := ivsrealtime.NewFromConfig(ts.awsConfig(ts.cfg.AccessKeyID, ts.cfg.SecretAccessKey), func(o *ivsrealtime.Options) {
			o.BaseEndpoint = aws.String(ts.BaseURL)
			o.HTTPClient = &http.Client{Transport: transport}
		})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		stage := newStage(t, c)
		tok, pid := newToken(t, c, stage, "a")
		ev, err := rtclient.ConnectEvents(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := rtclient.Publish(ctx, tok, rtclient.PublishOptions{Video: rtclient.NewSyntheticSource(rtclient.SyntheticOptions{}), LoopbackOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		sub, err := rtclient.Subscribe(ctx, tok, rtclient.SubscribeOptions{PublisherID: pid, LoopbackOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := sub.WaitFrames(ctx, "video", 5); err != nil {
			t.Fatal(err)
		}
		// Bad requests leave nothing behind either.
		for i := 0; i < 5; i++ {
			req, _ := http.NewRequest("POST", ts.BaseURL+"/whip", strings.NewReader("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/sdp")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		sub.Close(ctx)
		pub.Close(ctx)
		ev.Close()
		ts.stop(t)
	}()
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(15 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestSubscriberQuota(t *testing.T) {
	ts := startServer(t, "", func(c *configT) { c.MaxSubscribers = 1 })
	c := ts.client()
	ctx := testContext(t)
	stage := newStage(t, c)
	pubTok, pubID := newToken(t, c, stage, "pub")
	aTok, _ := newToken(t, c, stage, "a", types.ParticipantTokenCapabilitySubscribe)
	bTok, bID := newToken(t, c, stage, "b", types.ParticipantTokenCapabilitySubscribe)
	publish(t, ctx, pubTok, rtclient.PublishOptions{Video: rtclient.NewSyntheticSource(rtclient.SyntheticOptions{})})
	joinEvents(t, ctx, bTok)
	subscribe(t, ctx, aTok, rtclient.SubscribeOptions{PublisherID: pubID})
	_, err := rtclient.Subscribe(ctx, bTok, rtclient.SubscribeOptions{PublisherID: pubID, LoopbackOnly: true})
	var he *rtclient.HTTPError
	if !errors.As(err, &he) || he.Status != 403 || he.Code != 2005 {
		t.Fatalf("second subscribing participant with a quota of 1: %v", err)
	}
	sid := activeSession(t, c, stage)
	testutil.Eventually(t, "SUBSCRIBE_ERROR QUOTA_EXCEEDED", func() bool {
		return hasEvent(c, stage, sid, bID, types.EventNameSubscribeError, pubID, types.EventErrorCodeQuotaExceeded)
	})
}

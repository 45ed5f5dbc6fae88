package e2e

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/rostrum-dev/rostrum/internal/rtclient"
	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// fixtures are real encoded media made by ffmpeg once per test binary.
var fixtureCache struct {
	f   *rtclient.Fixtures
	err error
}

func fixtures(t *testing.T) *rtclient.Fixtures {
	t.Helper()
	if fixtureCache.f == nil && fixtureCache.err == nil {
		dir, err := os.MkdirTemp("", "rostrum-fixtures-")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		f, err := rtclient.GenerateFixtures(ctx, dir)
		fixtureCache.f, fixtureCache.err = &f, err
	}
	if fixtureCache.err != nil {
		if os.Getenv("CI") == "" && errors.Is(fixtureCache.err, rtclient.ErrNoFFmpeg) {
			t.Skipf("ffmpeg is needed for media fixtures: %v", fixtureCache.err)
		}
		t.Fatal(fixtureCache.err)
	}
	return fixtureCache.f
}

// source opens a media file as a looping, real-time paced source.
func source(t *testing.T, path string) rtclient.MediaSource {
	t.Helper()
	s, err := rtclient.NewFileSource(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newStage creates a stage and a token per capability set.
func newStage(t *testing.T, c *ivsrealtime.Client) string {
	t.Helper()
	st, err := c.CreateStage(bg, &ivsrealtime.CreateStageInput{Name: aws.String("media")})
	if err != nil {
		t.Fatal(err)
	}
	return *st.Stage.Arn
}

func newToken(t *testing.T, c *ivsrealtime.Client, stage, user string, caps ...types.ParticipantTokenCapability) (token, pid string) {
	t.Helper()
	out, err := c.CreateParticipantToken(bg, &ivsrealtime.CreateParticipantTokenInput{
		StageArn: aws.String(stage), UserId: aws.String(user), Capabilities: caps, Attributes: map[string]string{"name": user},
	})
	if err != nil {
		t.Fatal(err)
	}
	return *out.ParticipantToken.Token, *out.ParticipantToken.ParticipantId
}

// isContiguousSuffixOf reports whether got is a run of consecutive frames
// of sent: a subscriber joins a stream already running and sees it from
// then on, with nothing lost, changed or reordered.
func isContiguousRun(got, sent [][32]byte) bool {
	if len(got) == 0 {
		return false
	}
	for start := range sent {
		if sent[start] != got[0] {
			continue
		}
		ok := true
		for i := range got {
			if start+i >= len(sent) || sent[start+i] != got[i] {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// joinEvents opens a participant's events channel for the rest of the test.
func joinEvents(t *testing.T, ctx context.Context, tok string) *rtclient.Events {
	t.Helper()
	ev, err := rtclient.ConnectEvents(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Close() })
	return ev
}

// publish publishes over loopback for the rest of the test (or until the
// test closes it).
func publish(t *testing.T, ctx context.Context, tok string, opts rtclient.PublishOptions) *rtclient.Publisher {
	t.Helper()
	opts.LoopbackOnly = true
	p, err := rtclient.Publish(ctx, tok, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

// subscribe subscribes over loopback for the rest of the test (or until the
// test closes it).
func subscribe(t *testing.T, ctx context.Context, tok string, opts rtclient.SubscribeOptions) *rtclient.Subscriber {
	t.Helper()
	opts.LoopbackOnly = true
	s, err := rtclient.Subscribe(ctx, tok, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// activeSession waits for the stage's active session: the media plane
// records it moments after the first participant joins.
func activeSession(t *testing.T, c *ivsrealtime.Client, stage string) string {
	t.Helper()
	var sid string
	testutil.Eventually(t, "an active session", func() bool {
		g, err := c.GetStage(bg, &ivsrealtime.GetStageInput{Arn: aws.String(stage)})
		if err != nil {
			return false
		}
		sid = aws.ToString(g.Stage.ActiveSessionId)
		return sid != ""
	})
	return sid
}

func TestPublishSubscribeAndWhatTheAPIShows(t *testing.T) {
	for _, video := range []string{"VP8", "H264"} {
		t.Run(video, func(t *testing.T) {
			f := fixtures(t)
			ts := startServer(t, "")
			c := ts.client()
			ctx := testContext(t)
			stage := newStage(t, c)
			pubTok, pubID := newToken(t, c, stage, "alice")
			subTok, subID := newToken(t, c, stage, "bob", types.ParticipantTokenCapabilitySubscribe)

			aliceEvents := joinEvents(t, ctx, pubTok)
			bobEvents := joinEvents(t, ctx, subTok)

			videoFile := f.VP8
			if video == "H264" {
				videoFile = f.H264
			}
			pub := publish(t, ctx, pubTok, rtclient.PublishOptions{Audio: source(t, f.Opus), Video: source(t, videoFile)})
			// Bob sees Alice publishing in a STAGE_STATE snapshot.
			waitState(t, ctx, bobEvents, func(s rtclient.StageState) bool {
				for _, p := range s.Participants {
					if p.ID == pubID && p.IsPublishing && p.UserID == "alice" && p.Attributes["name"] == "alice" {
						return true
					}
				}
				return false
			})
			sub := subscribe(t, ctx, subTok, rtclient.SubscribeOptions{PublisherID: pubID})
			for _, kind := range []string{"audio", "video"} {
				if err := sub.WaitFrames(ctx, kind, 30); err != nil {
					t.Fatalf("%s frames: %v", kind, err)
				}
				if got, sent := sub.ReceivedFrames(kind), pub.SentFrames(kind); !isContiguousRun(got, sent) {
					t.Errorf("%s: the %d frames received are not a run of the %d sent, unchanged and in order", kind, len(got), len(sent))
				}
			}

			// The API shows what happened.
			sid := activeSession(t, c, stage)
			testutil.Eventually(t, "both participants CONNECTED, alice published", func() bool {
				out, err := c.ListParticipants(bg, &ivsrealtime.ListParticipantsInput{StageArn: aws.String(stage), SessionId: aws.String(sid)})
				if err != nil || len(out.Participants) != 2 {
					return false
				}
				for _, p := range out.Participants {
					if p.State != types.ParticipantStateConnected || (aws.ToString(p.ParticipantId) == pubID) != p.Published {
						return false
					}
				}
				return true
			})
			gp, err := c.GetParticipant(bg, &ivsrealtime.GetParticipantInput{StageArn: aws.String(stage), SessionId: aws.String(sid), ParticipantId: aws.String(pubID)})
			if err != nil || aws.ToString(gp.Participant.UserId) != "alice" || gp.Participant.Protocol != types.ParticipantProtocolWhip {
				t.Errorf("GetParticipant = %+v, %v", gp, err)
			}
			testutil.Eventually(t, "bob's SUBSCRIBE_STARTED naming alice", func() bool {
				return hasEvent(c, stage, sid, subID, types.EventNameSubscribeStarted, pubID)
			})
			testutil.Eventually(t, "alice's PUBLISH_STARTED", func() bool { return hasEvent(c, stage, sid, pubID, types.EventNamePublishStarted, "") })

			// Alice unpublishes and leaves: Bob's subscription ends, events follow.
			if err := pub.Close(ctx); err != nil {
				t.Fatal(err)
			}
			aliceEvents.Close()
			waitState(t, ctx, bobEvents, func(s rtclient.StageState) bool {
				for _, p := range s.Participants {
					if p.ID == pubID {
						return false
					}
				}
				return true
			})
			testutil.Eventually(t, "alice's PUBLISH_STOPPED and LEFT", func() bool {
				return hasEvent(c, stage, sid, pubID, types.EventNamePublishStopped, "") && hasEvent(c, stage, sid, pubID, types.EventNameLeft, "")
			})
			testutil.Eventually(t, "bob's SUBSCRIBE_STOPPED", func() bool { return hasEvent(c, stage, sid, subID, types.EventNameSubscribeStopped, pubID) })

			// When Bob goes too, the session ends after the grace period.
			sub.Close(ctx)
			bobEvents.Close()
			testutil.Eventually(t, "the session to end", func() bool {
				ss, err := c.GetStageSession(bg, &ivsrealtime.GetStageSessionInput{StageArn: aws.String(stage), SessionId: aws.String(sid)})
				return err == nil && ss.StageSession.EndTime != nil
			})
			g, _ := c.GetStage(bg, &ivsrealtime.GetStageInput{Arn: aws.String(stage)})
			if g.Stage.ActiveSessionId != nil {
				t.Errorf("activeSessionId after the session ended: %s", *g.Stage.ActiveSessionId)
			}
		})
	}
}

// hasEvent reports whether the participant has an event of that name (and,
// when given, that remote participant and error code).
func hasEvent(c *ivsrealtime.Client, stage, sid, pid string, name types.EventName, remote string, code ...types.EventErrorCode) bool {
	out, err := c.ListParticipantEvents(bg, &ivsrealtime.ListParticipantEventsInput{StageArn: aws.String(stage), SessionId: aws.String(sid), ParticipantId: aws.String(pid)})
	if err != nil {
		return false
	}
	for _, e := range out.Events {
		if e.Name == name && (remote == "" || aws.ToString(e.RemoteParticipantId) == remote) && (len(code) == 0 || e.ErrorCode == code[0]) {
			return true
		}
	}
	return false
}

func waitState(t *testing.T, ctx context.Context, ev *rtclient.Events, cond func(rtclient.StageState) bool) rtclient.StageState {
	t.Helper()
	for {
		select {
		case s, ok := <-ev.States():
			if !ok {
				t.Fatal("events channel closed")
			}
			if cond(s) {
				return s
			}
		case <-ctx.Done():
			t.Fatal("timed out waiting for a STAGE_STATE")
		}
	}
}

func TestDisconnectParticipantKicksForGood(t *testing.T) {
	f := fixtures(t)
	ts := startServer(t, "")
	c := ts.client()
	ctx := testContext(t)
	stage := newStage(t, c)
	pubTok, pubID := newToken(t, c, stage, "alice")
	subTok, _ := newToken(t, c, stage, "bob")
	aliceEvents := joinEvents(t, ctx, pubTok)
	bobEvents := joinEvents(t, ctx, subTok)
	pub := publish(t, ctx, pubTok, rtclient.PublishOptions{Audio: source(t, f.Opus), Video: source(t, f.VP8)})
	sub := subscribe(t, ctx, subTok, rtclient.SubscribeOptions{PublisherID: pubID})
	if err := sub.WaitFrames(ctx, "video", 5); err != nil {
		t.Fatal(err)
	}

	if _, err := c.DisconnectParticipant(bg, &ivsrealtime.DisconnectParticipantInput{StageArn: aws.String(stage), ParticipantId: aws.String(pubID), Reason: aws.String("bye")}); err != nil {
		t.Fatal(err)
	}
	// Alice's channel says why, then closes; her peer connection closes.
	waitMessage(t, ctx, aliceEvents, "aws:ivs:DISCONNECT", "PARTICIPANT_DISCONNECTED")
	select {
	case <-pub.Done():
	case <-ctx.Done():
		t.Fatal("alice's peer connection did not close")
	}
	// Bob is told she was kicked.
	waitState(t, ctx, bobEvents, func(s rtclient.StageState) bool {
		for _, d := range s.Disconnected {
			if d.ID == pubID && d.Status == "KICKED" {
				return true
			}
		}
		return false
	})
	// Her token is revoked for good.
	_, err := rtclient.Publish(ctx, pubTok, rtclient.PublishOptions{Video: source(t, f.VP8), LoopbackOnly: true})
	var he *rtclient.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusForbidden || he.Code != 2003 {
		t.Errorf("publishing with a revoked token: %v", err)
	}
	sid := activeSession(t, c, stage)
	testutil.Eventually(t, "alice's LEFT", func() bool { return hasEvent(c, stage, sid, pubID, types.EventNameLeft, "") })
	// A missing stage is ResourceNotFound.
	_, err = c.DisconnectParticipant(bg, &ivsrealtime.DisconnectParticipantInput{StageArn: aws.String(stage + "x"), ParticipantId: aws.String(pubID)})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("DisconnectParticipant on a missing stage: %v", err)
	}
}

func waitMessage(t *testing.T, ctx context.Context, ev *rtclient.Events, typ, contains string) {
	t.Helper()
	for {
		select {
		case m, ok := <-ev.Messages():
			if !ok {
				t.Fatalf("events channel closed before %s", typ)
			}
			if m.Type == typ && bytes.Contains(m.Payload, []byte(contains)) {
				return
			}
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", typ)
		}
	}
}

func TestMediaEndpointRefusals(t *testing.T) {
	f := fixtures(t)
	ts := startServer(t, "")
	c := ts.client()
	ctx := testContext(t)
	stage := newStage(t, c)
	subOnly, subOnlyID := newToken(t, c, stage, "viewer", types.ParticipantTokenCapabilitySubscribe)
	pubOnly, pubOnlyID := newToken(t, c, stage, "host", types.ParticipantTokenCapabilityPublish)
	// Keep the session open so refusals are recorded in it.
	joinEvents(t, ctx, subOnly)

	code := func(err error) (int, int) {
		var he *rtclient.HTTPError
		if !errors.As(err, &he) {
			t.Fatalf("want an HTTP error, got %v", err)
		}
		return he.Status, he.Code
	}
	_, err := rtclient.Publish(ctx, subOnly, rtclient.PublishOptions{Video: source(t, f.VP8), LoopbackOnly: true})
	if s, cd := code(err); s != 403 || cd != 2003 {
		t.Errorf("publish without PUBLISH: %d %d", s, cd)
	}
	_, err = rtclient.Subscribe(ctx, pubOnly, rtclient.SubscribeOptions{PublisherID: subOnlyID, LoopbackOnly: true})
	if s, cd := code(err); s != 403 || cd != 2003 {
		t.Errorf("subscribe without SUBSCRIBE: %d %d", s, cd)
	}
	_, err = rtclient.Subscribe(ctx, subOnly, rtclient.SubscribeOptions{PublisherID: pubOnlyID, LoopbackOnly: true})
	if s, cd := code(err); s != 404 || cd != 2004 {
		t.Errorf("subscribe to someone not publishing: %d %d", s, cd)
	}
	sid := activeSession(t, c, stage)
	testutil.Eventually(t, "PUBLISH_ERROR and SUBSCRIBE_ERROR events", func() bool {
		return hasEvent(c, stage, sid, subOnlyID, types.EventNamePublishError, "", types.EventErrorCodeInsufficientCapabilities) &&
			hasEvent(c, stage, sid, subOnlyID, types.EventNameSubscribeError, "", types.EventErrorCodePublisherNotFound)
	})

	post := func(path, tok, ctype, body string) (int, string) {
		req, _ := http.NewRequest("POST", ts.BaseURL+path, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		req.Header.Set("Content-Type", ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	for name, tc := range map[string]struct {
		path, tok, ctype, body string
		status                 int
		code                   string
	}{
		"no token":          {"/whip", "", "application/sdp", "v=0", 401, `"code":2001`},
		"garbage token":     {"/whip", "not.a.token", "application/sdp", "v=0", 401, `"code":2001`},
		"wrong type":        {"/whip", pubOnly, "text/plain", "v=0", 415, `"code":2001`},
		"empty offer":       {"/whip", pubOnly, "application/sdp", "", 400, `"code":2011`},
		"bad SDP":           {"/whip", pubOnly, "application/sdp", "this is not SDP", 400, `"code":2001`},
		"someone else's id": {"/whip/publish/" + subOnlyID, pubOnly, "application/sdp", "v=0", 403, `"code":2003`},
	} {
		status, body := post(tc.path, tc.tok, tc.ctype, tc.body)
		if status != tc.status || !strings.Contains(body, tc.code) {
			t.Errorf("%s: %d %s, want %d %s", name, status, body, tc.status, tc.code)
		}
	}
	// An offer with only unknown codecs.
	status, body := post("/whip", pubOnly, "application/sdp", strings.Join([]string{
		"v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0",
		"m=video 9 UDP/TLS/RTP/SAVPF 96", "c=IN IP4 0.0.0.0", "a=mid:0", "a=sendonly", "a=rtpmap:96 AV1X/90000",
		"a=ice-ufrag:abcd", "a=ice-pwd:abcdefghijklmnopqrstuvwx", "a=fingerprint:sha-256 " + strings.Repeat("AB:", 31) + "AB", "a=setup:actpass", "a=rtcp-mux", "",
	}, "\r\n"))
	if status != 400 || !strings.Contains(body, `"code":2014`) {
		t.Errorf("unknown codecs only: %d %s", status, body)
	}
	// CORS preflight for IVS's headers.
	req, _ := http.NewRequest("OPTIONS", ts.BaseURL+"/whip/publish/x", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,x-stages-sdk")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "X-Stages-SDK") ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Location") {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
}

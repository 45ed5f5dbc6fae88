package stage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rostrum-dev/rostrum/internal/ivs"
	"github.com/rostrum-dev/rostrum/internal/recording"
	"github.com/rostrum-dev/rostrum/internal/sfu"
	"github.com/rostrum-dev/rostrum/internal/testutil"
	"github.com/rostrum-dev/rostrum/internal/token"
)

func TestJoinLeaveAndGracePeriod(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, func(c *Config) { c.SessionGrace = 10 * time.Second })
		alice, aliceSink := r.open("alice")
		if !strings.Contains(aliceSink.last(), `"id":"alice"`) {
			t.Fatalf("alice's snapshot: %s", aliceSink.last())
		}
		bob, _ := r.open("bob")
		if !strings.Contains(aliceSink.last(), `"id":"bob"`) {
			t.Fatalf("alice does not see bob: %s", aliceSink.last())
		}
		bob.Closed()
		alice.Closed()
		r.expectWrites("session started", "alice CONNECTED", "alice JOINED", "bob JOINED", "bob LEFT", "alice LEFT")

		// Alice comes back within the grace period: the same session.
		time.Sleep(9 * time.Second)
		synctest.Wait()
		alice, _ = r.open("alice")
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if got := r.svc.recorded(); count(got, "session ended") != 0 {
			t.Fatalf("the session ended while alice was back: %q", got)
		}
		alice.Closed()

		// Nobody comes back: the session ends after the grace period, not
		// before.
		time.Sleep(10*time.Second - time.Millisecond)
		synctest.Wait()
		if got := r.svc.recorded(); count(got, "session ended") != 0 {
			t.Fatalf("the session ended before its grace period: %q", got)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if got := r.svc.recorded(); count(got, "session ended") != 1 || count(got, "session started") != 1 {
			t.Fatalf("one session should have started and ended: %q", got)
		}
		if r.m.lookupStage(testStageARN) != nil {
			t.Error("the stage is still live after its session ended")
		}
		if !r.engine.routers[0].isClosed() {
			t.Error("the session's router is still open")
		}

		// The next join starts a new session.
		c, _ := r.open("carol")
		c.Closed()
		time.Sleep(11 * time.Second)
		synctest.Wait()
		if got := r.svc.recorded(); count(got, "session started") != 2 || count(got, "session ended") != 2 {
			t.Fatalf("a second session: %q", got)
		}
		if len(r.warns.Lines()) != 0 {
			t.Errorf("warnings: %q", r.warns.Lines())
		}
	})
}

func TestMediaConnectionsKeepAParticipantPresent(t *testing.T) {
	testutil.CheckLeaks(t)
	r := newRig(t)
	ev, _ := r.open("alice")
	_, pub := r.publish("alice")
	ev.Closed()
	r.flush()
	if got := r.svc.recorded(); count(got, "alice LEFT") != 0 {
		t.Fatalf("alice left while publishing: %q", got)
	}
	// The publisher's connection fails: alice has nothing left.
	pub.fail()
	r.expectWrites("alice JOINED", "alice PUBLISH_STARTED", "alice PUBLISH_STOPPED", "alice LEFT")
	r.m.Close()
}

func TestDisconnectParticipant(t *testing.T) {
	testutil.CheckLeaks(t)
	r := newRig(t)
	_, aliceSink := r.open("alice")
	_, bobSink := r.open("bob")
	_, pub := r.publish("bob")
	r.subscribe("alice", "bob")

	if err := r.m.DisconnectParticipant(context.Background(), testStageARN, "bob", "misbehaving"); err != nil {
		t.Fatal(err)
	}
	if bobSink.closedWith() == "" || !strings.Contains(bobSink.last(), `"code":"PARTICIPANT_DISCONNECTED"`) || !strings.Contains(bobSink.last(), "misbehaving") {
		t.Fatalf("bob's channel: closed %q, last %s", bobSink.closedWith(), bobSink.last())
	}
	if !pub.isClosed() {
		t.Error("bob's publisher is still open")
	}
	snap := aliceSink.last()
	if !strings.Contains(snap, `"disconnected":[{"id":"bob","userId":"user-bob","status":"KICKED"}]`) || strings.Contains(snap, `"participants":[{"id":"bob"`) {
		t.Fatalf("alice's snapshot after the kick: %s", snap)
	}
	r.expectWrites("bob PUBLISH_STARTED", "bob PUBLISH_STOPPED", "bob LEFT")
	// Kicking someone not on the stage, or on no live stage, is harmless.
	r.m.DisconnectParticipant(context.Background(), testStageARN, "nobody", "")
	r.m.DisconnectParticipant(context.Background(), "arn:aws:ivs:us-east-1:123456789012:stage/other", "bob", "")
	r.m.Close()
}

func TestQuotasAndCapabilities(t *testing.T) {
	testutil.CheckLeaks(t)
	r := newRig(t, func(c *Config) { c.MaxPublishers, c.MaxSubscribers = 1, 1 })
	ctx := context.Background()
	r.publish("alice")
	// Alice publishing again replaces her publisher: not a second one.
	r.publish("alice")
	_, _, err := r.m.Publish(ctx, r.id("bob", all), ClientInfo{}, "offer")
	if !errors.Is(err, ErrStageFull) {
		t.Fatalf("second publisher: %v", err)
	}
	_, _, err = r.m.Publish(ctx, r.id("carol", token.Capabilities{Subscribe: true}), ClientInfo{}, "offer")
	if !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("publish without the capability: %v", err)
	}
	r.subscribe("dave", "alice")
	_, _, err = r.m.Subscribe(ctx, r.id("erin", all), ClientInfo{}, "alice", "offer", "")
	if !errors.Is(err, ErrStageFull) {
		t.Fatalf("second subscriber: %v", err)
	}
	_, _, err = r.m.Subscribe(ctx, r.id("dave", all), ClientInfo{}, "nobody", "offer", "")
	if !errors.Is(err, ErrPublisherNotFound) {
		t.Fatalf("subscribe to nobody: %v", err)
	}
	_, _, err = r.m.Subscribe(ctx, r.id("frank", token.Capabilities{Publish: true}), ClientInfo{}, "alice", "offer", "")
	if !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("subscribe without the capability: %v", err)
	}
	r.expectWrites("bob PUBLISH_ERROR QUOTA_EXCEEDED", "carol PUBLISH_ERROR INSUFFICIENT_CAPABILITIES",
		"erin SUBSCRIBE_ERROR alice QUOTA_EXCEEDED", "dave SUBSCRIBE_ERROR nobody PUBLISHER_NOT_FOUND",
		"frank SUBSCRIBE_ERROR alice INSUFFICIENT_CAPABILITIES")
	// Refusals do not make anyone present.
	for _, who := range []string{"bob", "carol", "erin", "frank"} {
		if got := r.svc.recorded(); count(got, who+" JOINED") != 0 {
			t.Errorf("%s joined by being refused: %q", who, got)
		}
	}
	r.m.Close()
}

func TestOneSubscriptionPerPublisher(t *testing.T) {
	testutil.CheckLeaks(t)
	r := newRig(t)
	r.publish("alice")
	first, firstConn := r.subscribe("bob", "alice")
	second, _ := r.subscribe("bob", "alice")
	if !firstConn.isClosed() {
		t.Error("the first subscription is still open")
	}
	if r.m.Resource(first.ID) != nil || r.m.Resource(second.ID) == nil {
		t.Error("the first resource should be gone and the second live")
	}
	r.expectWrites("bob SUBSCRIBE_STARTED alice", "bob SUBSCRIBE_STOPPED alice", "bob SUBSCRIBE_STARTED alice")
	if got := r.svc.recorded(); count(got, "bob LEFT") != 0 {
		t.Errorf("bob left while replacing his subscription: %q", got)
	}
	r.m.Close()
}

func TestSubscriptionControls(t *testing.T) {
	testutil.CheckLeaks(t)
	r := newRig(t)
	pubRes, _ := r.publish("alice")
	sub, conn := r.subscribe("bob", "alice")
	if err := sub.SetLayer("1", "hi"); err != nil {
		t.Error(err)
	}
	if err := sub.SetLayer("9", "hi"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("pin on an unknown section: %v", err)
	}
	if err := sub.Playback([]string{"1"}, nil); err != nil || len(conn.paused) != 1 {
		t.Errorf("pause: %v %v", err, conn.paused)
	}
	if _, err := pubRes.Layers(); !errors.Is(err, ErrNotSubscription) {
		t.Errorf("layers of a publisher: %v", err)
	}
	ctx := context.Background()
	if _, err := r.m.OwnedResource(ctx, sub.ID, sub.Token); err != nil {
		t.Errorf("owner: %v", err)
	}
	if _, err := r.m.OwnedResource(ctx, "nope", sub.Token); !errors.Is(err, ErrUnknownResource) {
		t.Errorf("unknown resource: %v", err)
	}
	if _, err := r.m.OwnedResource(ctx, sub.ID, ""); !errors.Is(err, ErrTokenMissing) {
		t.Errorf("no token: %v", err)
	}
	r.m.Close()
}

func TestMediaErrorsAreTheClients(t *testing.T) {
	testutil.CheckLeaks(t)
	r := newRig(t)
	ctx := context.Background()
	r.engine.publishErr = fmt.Errorf("%w: a=mid:0 names two media sections", sfu.ErrBadOffer)
	_, _, err := r.m.Publish(ctx, r.id("alice", all), ClientInfo{}, "offer")
	if !errors.Is(err, ErrBadOffer) || !strings.Contains(err.Error(), "a=mid:0 names two media sections") || strings.Contains(err.Error(), "sfu:") {
		t.Fatalf("bad offer: %v", err)
	}
	r.engine.publishErr = sfu.ErrNoMatchingCodec
	if _, _, err := r.m.Publish(ctx, r.id("alice", all), ClientInfo{}, "offer"); !errors.Is(err, ErrNoMatchingCodec) {
		t.Fatalf("no codec: %v", err)
	}
	r.engine.publishErr = errors.New("pion: something broke")
	if _, _, err := r.m.Publish(ctx, r.id("alice", all), ClientInfo{}, "offer"); !errors.Is(err, ErrInternal) {
		t.Fatalf("engine failure: %v", err)
	}
	r.expectWrites("alice JOINED", "alice PUBLISH_ERROR INVALID_INPUT", "alice PUBLISH_ERROR INVALID_VIDEO_CODEC", "alice PUBLISH_ERROR INVALID_INPUT", "alice LEFT")
	r.m.Close()
}

func TestDeleteStage(t *testing.T) {
	testutil.CheckLeaks(t)
	r := newRig(t)
	_, aliceSink := r.open("alice")
	_, pub := r.publish("alice")
	_, sub := r.subscribe("bob", "alice")
	r.flush()

	// The API deletes the stage (and the store its sessions), then tells
	// the media plane.
	r.svc.deleteStage(testStageARN)
	r.m.StageDeleted(context.Background(), testStageARN)
	if !strings.Contains(aliceSink.last(), `"code":"STAGE_DELETED"`) || aliceSink.closedWith() == "" {
		t.Fatalf("alice's channel: %s (closed %q)", aliceSink.last(), aliceSink.closedWith())
	}
	if !pub.isClosed() || !sub.isClosed() {
		t.Error("media connections are still open")
	}
	if r.m.lookupStage(testStageARN) != nil {
		t.Error("the deleted stage is still live")
	}
	// What the deleted stage would still have recorded is dropped, not
	// failed: nothing is logged.
	if w := r.warns.Lines(); len(w) != 0 {
		t.Errorf("warnings: %q", w)
	}
	// A join authenticated before the delete is refused.
	if _, err := r.m.OpenEvents(r.id("carol", all), ClientInfo{}, &fakeSink{}); !errors.Is(err, ErrStageDeleted) {
		t.Fatalf("join after the delete: %v", err)
	}
}

// A join that authenticated just before the stage was deleted must not
// land in the session being ended: while the delete closes the stage's
// connections, the stage is already closed to joins.
func TestJoinDuringDelete(t *testing.T) {
	testutil.CheckLeaks(t)
	r := newRig(t)
	r.open("alice")
	r.publish("alice")

	closing := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	r.engine.closing = func() {
		once.Do(func() {
			close(closing)
			<-release
		})
	}
	deleted := make(chan struct{})
	go func() {
		r.svc.deleteStage(testStageARN)
		r.m.StageDeleted(context.Background(), testStageARN)
		close(deleted)
	}()
	<-closing // the delete is closing alice's publisher
	sink := &fakeSink{}
	_, err := r.m.OpenEvents(r.id("carol", all), ClientInfo{}, sink)
	close(release)
	<-deleted
	if !errors.Is(err, ErrStageDeleted) {
		t.Fatalf("carol joined a stage being deleted: %v", err)
	}
	if r.m.lookupStage(testStageARN) != nil {
		t.Error("a live stage remains after the delete")
	}
}

func TestShutdownRecordsTheEnd(t *testing.T) {
	testutil.CheckLeaks(t)
	r := newRig(t)
	r.open("alice")
	r.publish("alice")
	r.subscribe("bob", "alice")
	r.m.Close()
	r.expectWrites("alice PUBLISH_STARTED", "bob SUBSCRIBE_STARTED alice", "alice PUBLISH_STOPPED", "alice LEFT", "session ended")
	got := r.svc.recorded()
	if count(got, "bob SUBSCRIBE_STOPPED alice") != 1 || count(got, "bob LEFT") != 1 {
		t.Errorf("bob's end: %q", got)
	}
	if _, err := r.m.OpenEvents(r.id("carol", all), ClientInfo{}, &fakeSink{}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("join after Close: %v", err)
	}
}

func TestConnectRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, func(c *Config) { c.ConnectRate, c.ConnectBurst = 1, 3 })
		for range 3 {
			c, _ := r.open("mallory")
			c.Closed()
		}
		_, err := r.m.OpenEvents(r.id("mallory", all), ClientInfo{}, &fakeSink{})
		if !errors.Is(err, ErrThrottled) {
			t.Fatalf("fourth connection at once: %v", err)
		}
		_, _, err = r.m.Publish(context.Background(), r.id("mallory", token.Capabilities{}), ClientInfo{}, "offer")
		if !errors.Is(err, ErrThrottled) {
			t.Fatalf("publish while throttled: %v", err)
		}
		// Throttled requests write nothing.
		r.flush()
		if got := r.svc.recorded(); count(got, "mallory JOINED") != 3 || count(got, "mallory PUBLISH_ERROR INSUFFICIENT_CAPABILITIES") != 0 {
			t.Fatalf("writes: %q", got)
		}
		// Others are not affected, and the bucket refills.
		c, _ := r.open("alice")
		c.Closed()
		time.Sleep(time.Second)
		c, _ = r.open("mallory")
		c.Closed()
		r.m.Close()
	})
}

func TestAuthenticate(t *testing.T) {
	r := newRig(t)
	now := time.Now()
	sign := func(mut func(*token.Claims)) string {
		c := token.Claims{
			ParticipantID: "alice", Resource: testStageARN, Topic: "AbCdEfGhIjKl",
			EventsURL: "ws://127.0.0.1/events", WhipURL: "http://127.0.0.1/whip",
			Capabilities: all, Version: token.VersionServer,
		}
		if err := c.SetLifetime(now, 60); err != nil {
			t.Fatal(err)
		}
		if mut != nil {
			mut(&c)
		}
		s, err := r.svc.key.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ctx := context.Background()
	id, err := r.m.Authenticate(ctx, sign(nil))
	if err != nil || id.Claims.ParticipantID != "alice" || id.Stage.ARN != testStageARN {
		t.Fatalf("good token: %v %+v", err, id)
	}
	other, err := token.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := other.Sign(id.Claims)
	cases := []struct {
		name string
		tok  string
		prep func()
		want error
	}{
		{"missing", "", nil, ErrTokenMissing},
		{"garbage", "a.b.c", nil, ErrTokenInvalid},
		{"too large", strings.Repeat("a", MaxTokenBytes+1), nil, ErrTokenInvalid},
		{"another key", foreign, nil, ErrTokenSignature},
		{"expired", sign(func(c *token.Claims) {
			c.IssuedAt, c.ExpiresAt = now.Add(-3*time.Hour).Unix(), now.Add(-2*time.Hour).Unix()
		}), nil, ErrTokenExpired},
		{"revoked", sign(nil), func() { r.svc.revoked[testStageARN+"/alice"] = true }, ErrDisconnected},
		{"store failure", sign(nil), func() { r.svc.admitErr = errStore }, ErrInternal},
		{"stage gone", sign(nil), func() { r.svc.admitErr = nil; delete(r.svc.stages, testStageARN) }, ErrStageDeleted},
	}
	for _, c := range cases {
		if c.prep != nil {
			c.prep()
		}
		if _, err := r.m.Authenticate(ctx, c.tok); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// On a stage that records, a participant who starts publishing is handed
// to the recorder; the recorder's reports become the participant's
// recording state in its record, with their events, while the session
// lives, and patches of the stored record after it.
func TestPublishersOfARecordingStageAreRecorded(t *testing.T) {
	testutil.CheckLeaks(t)
	r := newRig(t)
	r.stage.Recording = true
	r.stage.RecordingSettings = &ivs.RecordingSettings{
		StorageConfigurationARN: "arn:aws:ivs:us-east-1:123456789012:storage-configuration/s", Bucket: "b",
		MediaTypes: "AUDIO_ONLY", ThumbnailIntervalSeconds: 0, SegmentSeconds: 4, ReconnectWindowSeconds: 30,
	}
	rec := &fakeRecorder{}
	r.m.SetRecorder(rec)
	r.open("bob") // bob only listens: not recorded
	_, pub := r.publish("alice")
	calls := rec.called()
	if len(calls) != 1 || calls[0].ParticipantID != "alice" || calls[0].StageID != "AbCdEfGhIjKl" || calls[0].SessionID == "" {
		t.Fatalf("recorder asked %+v", calls)
	}
	if s := rec.sets[0]; s.Bucket != "b" || s.MediaTypes != recording.AudioOnly || s.SegmentSeconds != 4 || s.ReconnectWindow != 30*time.Second {
		t.Fatalf("recorder settings %+v", s)
	}
	sid := calls[0].SessionID
	prefix := "AbCdEfGhIjKl/" + sid + "/alice"
	// Before the recording reports, the bucket and prefix are known.
	r.expectWrites("alice CONNECTED recording= b " + prefix)

	r.m.RecordingChanged(recording.Change{Participant: calls[0], State: recording.Active, Outcome: recording.Started, Bucket: "b", KeyPrefix: prefix + "/2026-12-01T00-00-00Z"})
	r.expectWrites("alice CONNECTED recording=ACTIVE b "+prefix, "alice recording ACTIVE Recording Start")

	// After the session, the service patches the stored record.
	pub.Close()
	r.m.Close()
	r.m.RecordingChanged(recording.Change{Participant: calls[0], State: recording.Stopped, Outcome: recording.Ended, Bucket: "b", KeyPrefix: prefix + "/2026-12-01T00-00-00Z", Duration: time.Minute})
	if got := r.svc.recorded(); got[len(got)-1] != "alice recording STOPPED Recording End" {
		t.Fatalf("the end after the session: %q", got[len(got)-1])
	}
}

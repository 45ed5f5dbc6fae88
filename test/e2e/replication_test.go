package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/rostrum-dev/rostrum/internal/config"
	"github.com/rostrum-dev/rostrum/internal/events"
	"github.com/rostrum-dev/rostrum/internal/rtclient"
	"github.com/rostrum-dev/rostrum/internal/testutil"
	"github.com/rostrum-dev/rostrum/internal/token"
)

// Participant replication, driven as a user drives it: a pion publisher in
// stage A, StartParticipantReplication through aws-sdk-go-v2, a pion
// subscriber in stage B.

// replicate starts replicating pid from src into dst.
func replicate(c *ivsrealtime.Client, src, dst, pid string, window int32, attrs map[string]string) error {
	in := &ivsrealtime.StartParticipantReplicationInput{
		SourceStageArn: aws.String(src), DestinationStageArn: aws.String(dst), ParticipantId: aws.String(pid), Attributes: attrs,
	}
	if window > 0 {
		in.ReconnectWindowSeconds = aws.Int32(window)
	}
	_, err := c.StartParticipantReplication(bg, in)
	return err
}

func stopReplication(c *ivsrealtime.Client, src, dst, pid string) error {
	_, err := c.StopParticipantReplication(bg, &ivsrealtime.StopParticipantReplicationInput{
		SourceStageArn: aws.String(src), DestinationStageArn: aws.String(dst), ParticipantId: aws.String(pid),
	})
	return err
}

// getParticipant is GetParticipant's answer, or nil.
func getParticipant(c *ivsrealtime.Client, stage, sid, pid string) *types.Participant {
	out, err := c.GetParticipant(bg, &ivsrealtime.GetParticipantInput{StageArn: aws.String(stage), SessionId: aws.String(sid), ParticipantId: aws.String(pid)})
	if err != nil {
		return nil
	}
	return out.Participant
}

func replicas(t *testing.T, c *ivsrealtime.Client, src, pid string) []types.ParticipantReplica {
	t.Helper()
	var all []types.ParticipantReplica
	pg := ivsrealtime.NewListParticipantReplicasPaginator(c, &ivsrealtime.ListParticipantReplicasInput{SourceStageArn: aws.String(src), ParticipantId: aws.String(pid)})
	for pg.HasMorePages() {
		out, err := pg.NextPage(bg)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, out.Replicas...)
	}
	return all
}

// event returns the participant's first event of that name, or nil.
func event(c *ivsrealtime.Client, stage, sid, pid string, name types.EventName, remote string) *types.Event {
	out, err := c.ListParticipantEvents(bg, &ivsrealtime.ListParticipantEventsInput{StageArn: aws.String(stage), SessionId: aws.String(sid), ParticipantId: aws.String(pid)})
	if err != nil {
		return nil
	}
	for _, e := range out.Events {
		if e.Name == name && (remote == "" || aws.ToString(e.RemoteParticipantId) == remote) {
			return &e
		}
	}
	return nil
}

// isReplica says whether GetParticipant shows p as the replica of src's
// session srcSID, in that state.
func isReplica(p *types.Participant, src, srcSID string, state types.ReplicationState) bool {
	return p != nil && p.ReplicationType == types.ReplicationTypeReplica && p.ReplicationState == state &&
		aws.ToString(p.SourceStageArn) == src && aws.ToString(p.SourceSessionId) == srcSID
}

func isSource(p *types.Participant, state types.ReplicationState) bool {
	return p != nil && p.ReplicationType == types.ReplicationTypeSource && p.ReplicationState == state
}

// replicationSetup is a publisher in stage A and a subscriber's token in
// stage B.
type replicationSetup struct {
	c              *ivsrealtime.Client
	ctx            context.Context
	f              *rtclient.Fixtures
	a, b           string // stage ARNs
	aliceTok       string
	alice          string // the publisher's participant id
	bobTok, bob    string
	pub            *rtclient.Publisher
	sidA           string
	bobEvents      *rtclient.Events
	replicaVisible func(attrs map[string]string) rtclient.StageState
}

func setUpReplication(t *testing.T, ts *testServer) *replicationSetup {
	t.Helper()
	s := &replicationSetup{c: ts.client(), ctx: testContext(t), f: fixtures(t)}
	s.a, s.b = newStage(t, s.c), newStage(t, s.c)
	s.aliceTok, s.alice = newToken(t, s.c, s.a, "alice", types.ParticipantTokenCapabilityPublish)
	s.bobTok, s.bob = newToken(t, s.c, s.b, "bob", types.ParticipantTokenCapabilitySubscribe)
	s.pub = s.publish(t)
	s.sidA = activeSession(t, s.c, s.a)
	return s
}

// publish publishes alice's audio and video (H.264) in stage A, and waits
// until the stage says she publishes.
func (s *replicationSetup) publish(t *testing.T) *rtclient.Publisher {
	t.Helper()
	pub := publish(t, s.ctx, s.aliceTok, rtclient.PublishOptions{Audio: source(t, s.f.Opus), Video: source(t, s.f.H264)})
	testutil.Eventually(t, "alice publishing in A", func() bool {
		sid := activeSessionNow(s.c, s.a)
		p := getParticipant(s.c, s.a, sid, s.alice)
		return p != nil && p.Published && event(s.c, s.a, sid, s.alice, types.EventNamePublishStarted, "") != nil &&
			countEvents(s.c, s.a, sid, s.alice, types.EventNamePublishStarted) == countEvents(s.c, s.a, sid, s.alice, types.EventNamePublishStopped)+1
	})
	return pub
}

func activeSessionNow(c *ivsrealtime.Client, stage string) string {
	g, err := c.GetStage(bg, &ivsrealtime.GetStageInput{Arn: aws.String(stage)})
	if err != nil {
		return ""
	}
	return aws.ToString(g.Stage.ActiveSessionId)
}

// checkReceives subscribes bob in B to alice's replica and checks that he
// gets the media alice sends, unchanged and in order.
func (s *replicationSetup) checkReceives(t *testing.T) *rtclient.Subscriber {
	t.Helper()
	sub := subscribe(t, s.ctx, s.bobTok, rtclient.SubscribeOptions{PublisherID: s.alice})
	for _, kind := range []string{"audio", "video"} {
		if err := sub.WaitFrames(s.ctx, kind, 30); err != nil {
			t.Fatalf("%s frames through the replica: %v", kind, err)
		}
		if got, sent := sub.ReceivedFrames(kind), s.pub.SentFrames(kind); !isContiguousRun(got, sent) {
			t.Errorf("%s: the %d frames received in B are not a run of the %d alice sent in A, unchanged and in order", kind, len(got), len(sent))
		}
	}
	return sub
}

func TestParticipantReplicationCopiesAPublisherIntoAnotherStage(t *testing.T) {
	hook := newHookReceiver(t)
	ts := startServer(t, "", withWebhook(hook.srv.URL, ""))
	s := setUpReplication(t, ts)
	c := s.c

	// Bob is on stage B before the replica arrives.
	bobEvents := joinEvents(t, s.ctx, s.bobTok)
	if err := replicate(c, s.a, s.b, s.alice, 0, map[string]string{"room": "b", "name": "alice-in-b"}); err != nil {
		t.Fatal(err)
	}
	// Bob sees alice on B, publishing, with the replication's attributes
	// merged over her token's.
	waitState(t, s.ctx, bobEvents, func(st rtclient.StageState) bool {
		for _, p := range st.Participants {
			if p.ID == s.alice && p.IsPublishing && p.UserID == "alice" && p.Attributes["name"] == "alice-in-b" && p.Attributes["room"] == "b" {
				return true
			}
		}
		return false
	})
	sub := s.checkReceives(t)
	// A keyframe request of a subscriber in B reaches the publisher in A.
	plis := s.pub.ReceivedPLIs()
	testutil.Eventually(t, "bob's PLI at alice's publisher", func() bool {
		if err := sub.SendPLI(); err != nil {
			t.Fatal(err)
		}
		return s.pub.ReceivedPLIs() > plis
	})

	// The API shows the replica in B and the source in A. The replica
	// publishes with its first packet, which may come after
	// StartParticipantReplication answered; B writes its record
	// (published) and then its PUBLISH_STARTED after bob saw it on the
	// websocket, so the event is waited for first.
	sidB := activeSession(t, c, s.b)
	testutil.Eventually(t, "the replica's PUBLISH_STARTED in B", func() bool {
		return event(c, s.b, sidB, s.alice, types.EventNamePublishStarted, "") != nil
	})
	testutil.Eventually(t, "GetParticipant: REPLICA in B, SOURCE in A", func() bool {
		return isReplica(getParticipant(c, s.b, sidB, s.alice), s.a, s.sidA, types.ReplicationStateActive) &&
			isSource(getParticipant(c, s.a, s.sidA, s.alice), types.ReplicationStateActive)
	})
	rp := getParticipant(c, s.b, sidB, s.alice)
	if rp.State != types.ParticipantStateConnected || !rp.Published || aws.ToString(rp.UserId) != "alice" ||
		rp.Attributes["name"] != "alice-in-b" || rp.Attributes["room"] != "b" {
		t.Errorf("the replica in B: %+v", rp)
	}
	lp, err := c.ListParticipants(bg, &ivsrealtime.ListParticipantsInput{StageArn: aws.String(s.b), SessionId: aws.String(sidB)})
	if err != nil {
		t.Fatal(err)
	}
	var summaries []string
	for _, p := range lp.Participants {
		summaries = append(summaries, fmt.Sprintf("%s:%s:%s:%s", aws.ToString(p.ParticipantId), p.ReplicationType, p.ReplicationState, aws.ToString(p.SourceStageArn)))
	}
	if want := fmt.Sprintf("%s:REPLICA:ACTIVE:%s", s.alice, s.a); !strings.Contains(strings.Join(summaries, " "), want) ||
		!strings.Contains(strings.Join(summaries, " "), s.bob+":NONE::") {
		t.Errorf("ListParticipants of B: %v, want %s and bob NONE", summaries, want)
	}
	rs := replicas(t, c, s.a, s.alice)
	if len(rs) != 1 || aws.ToString(rs[0].DestinationStageArn) != s.b || aws.ToString(rs[0].DestinationSessionId) != sidB ||
		aws.ToString(rs[0].SourceSessionId) != s.sidA || aws.ToString(rs[0].SourceStageArn) != s.a || rs[0].ReplicationState != types.ReplicationStateActive {
		t.Errorf("ListParticipantReplicas: %+v", rs)
	}

	// The events: REPLICATION_STARTED on the source, naming B's session;
	// the replica's own events and the subscriptions to it say replica.
	testutil.Eventually(t, "REPLICATION_STARTED in A", func() bool {
		return event(c, s.a, s.sidA, s.alice, types.EventNameReplicationStarted, "") != nil
	})
	ev := event(c, s.a, s.sidA, s.alice, types.EventNameReplicationStarted, "")
	if aws.ToString(ev.DestinationStageArn) != s.b || aws.ToString(ev.DestinationSessionId) != sidB || ev.Replica {
		t.Errorf("REPLICATION_STARTED: %+v", ev)
	}
	for _, name := range []types.EventName{types.EventNameJoined, types.EventNamePublishStarted} {
		if e := event(c, s.b, sidB, s.alice, name, ""); e == nil || !e.Replica {
			t.Errorf("the replica's %s in B: %+v", name, e)
		}
	}
	testutil.Eventually(t, "bob's SUBSCRIBE_STARTED to the replica", func() bool {
		e := event(c, s.b, sidB, s.bob, types.EventNameSubscribeStarted, s.alice)
		return e != nil && e.Replica
	})

	// One replication per participant and destination.
	if err := replicate(c, s.a, s.b, s.alice, 0, nil); apiErrorCode(t, err) != "ConflictException" {
		t.Errorf("replicating again into B: %v", err)
	}

	// Stopping ends the replica: bob's subscription ends, the records and
	// events say STOPPED, alice goes on publishing in A.
	if err := stopReplication(c, s.a, s.b, s.alice); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sub.Done():
	case <-s.ctx.Done():
		t.Fatal("bob's subscription to the replica outlived the replication")
	}
	testutil.Eventually(t, "the replica STOPPED and gone from B, the source STOPPED", func() bool {
		rp := getParticipant(c, s.b, sidB, s.alice)
		return isReplica(rp, s.a, s.sidA, types.ReplicationStateStopped) && rp.State == types.ParticipantStateDisconnected &&
			isSource(getParticipant(c, s.a, s.sidA, s.alice), types.ReplicationStateStopped) &&
			event(c, s.a, s.sidA, s.alice, types.EventNameReplicationStopped, "") != nil &&
			event(c, s.b, sidB, s.alice, types.EventNameLeft, "") != nil
	})
	if rs := replicas(t, c, s.a, s.alice); len(rs) != 1 || rs[0].ReplicationState != types.ReplicationStateStopped {
		t.Errorf("ListParticipantReplicas after the stop: %+v", rs)
	}
	if p := getParticipant(c, s.a, s.sidA, s.alice); p.State != types.ParticipantStateConnected {
		t.Errorf("alice in A after the stop: %+v", p)
	}
	if err := stopReplication(c, s.a, s.b, s.alice); apiErrorCode(t, err) != "ResourceNotFoundException" {
		t.Errorf("stopping a stopped replication: %v", err)
	}

	// The EventBridge events: Participant Replication Started and Ended,
	// IVS Stage Update of the source stage, naming the destination.
	var started, ended *events.Event
	testutil.Eventually(t, "the replication's Stage Update events at the webhook", func() bool {
		for _, e := range hook.got() {
			switch detailOf(t, e).EventName {
			case events.ParticipantReplicationStarted:
				started = e
			case events.ParticipantReplicationEnded:
				ended = e
			}
		}
		return started != nil && ended != nil
	})
	for _, e := range []*events.Event{started, ended} {
		var d struct {
			SessionID, ParticipantID, UserID, DestinationStageARN, DestinationSessionID string
		}
		raw := map[string]string{}
		json.Unmarshal(e.Detail, &raw)
		d.SessionID, d.ParticipantID, d.UserID = raw["session_id"], raw["participant_id"], raw["user_id"]
		d.DestinationStageARN, d.DestinationSessionID = raw["destination_stage_arn"], raw["destination_session_id"]
		if e.DetailType != events.DetailTypeStageUpdate || len(e.Resources) != 1 || e.Resources[0] != s.a ||
			d.SessionID != s.sidA || d.ParticipantID != s.alice || d.UserID != "alice" ||
			d.DestinationStageARN != s.b || d.DestinationSessionID != sidB {
			t.Errorf("%s: %s %v %s", e.DetailType, e.Resources, raw, e.Detail)
		}
	}
}

// The reconnect window keeps the replica through a short absence of its
// source: the replica stays in B and its subscribers receive the source's
// next publisher. A longer absence ends it, after the window.
func TestReplicationReconnectWindow(t *testing.T) {
	ts := startServer(t, "")
	s := setUpReplication(t, ts)
	c := s.c
	const window = 3
	if err := replicate(c, s.a, s.b, s.alice, window, nil); err != nil {
		t.Fatal(err)
	}
	sub := s.checkReceives(t)
	sidB := activeSession(t, c, s.b)

	// Alice's publisher goes and a new one comes: the replica stays, bob
	// gets the new publisher's media on the same subscription.
	if err := s.pub.Close(s.ctx); err != nil {
		t.Fatal(err)
	}
	before := map[string]int{"audio": len(sub.ReceivedFrames("audio")), "video": len(sub.ReceivedFrames("video"))}
	s.pub = s.publish(t)
	for _, kind := range []string{"audio", "video"} {
		if err := sub.WaitFrames(s.ctx, kind, before[kind]+30); err != nil {
			t.Fatalf("%s frames after alice published again: %v", kind, err)
		}
		got := sub.ReceivedFrames(kind)
		if !isContiguousRun(got[len(got)-20:], s.pub.SentFrames(kind)) {
			t.Errorf("%s: the last frames received are not a run of those alice's new publisher sent", kind)
		}
	}
	select {
	case <-sub.Done():
		t.Fatal("bob's subscription ended while the source was away for less than the window")
	default:
	}
	if p := getParticipant(c, s.b, sidB, s.alice); !isReplica(p, s.a, s.sidA, types.ReplicationStateActive) || p.State != types.ParticipantStateConnected {
		t.Errorf("the replica after alice came back: %+v", p)
	}
	if n := countEvents(c, s.b, sidB, s.alice, types.EventNameLeft); n != 0 {
		t.Errorf("the replica left B %d times during a short absence of its source", n)
	}
	if e := event(c, s.a, s.sidA, s.alice, types.EventNameReplicationStopped, ""); e != nil {
		t.Errorf("REPLICATION_STOPPED during a short absence: %+v", e)
	}

	// Alice leaves for good: the replica ends, no sooner than the window.
	left := time.Now()
	if err := s.pub.Close(s.ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sub.Done():
	case <-s.ctx.Done():
		t.Fatal("the replica outlived its source's absence")
	}
	if d := time.Since(left); d < window*time.Second {
		t.Errorf("the replica ended %v after its source left, before the %ds window", d, window)
	}
	testutil.Eventually(t, "the replication STOPPED on both sides", func() bool {
		rp := getParticipant(c, s.b, sidB, s.alice)
		rs := replicas(t, c, s.a, s.alice)
		return isReplica(rp, s.a, s.sidA, types.ReplicationStateStopped) && rp.State == types.ParticipantStateDisconnected &&
			isSource(getParticipant(c, s.a, s.sidA, s.alice), types.ReplicationStateStopped) &&
			event(c, s.a, s.sidA, s.alice, types.EventNameReplicationStopped, "") != nil &&
			len(rs) == 1 && rs[0].ReplicationState == types.ReplicationStateStopped
	})
	// The source's session was held open for the window, then ends.
	testutil.Eventually(t, "A's session to end", func() bool { return activeSessionNow(c, s.a) == "" })
}

// Without a window, the source leaving ends the replica at once; deleting
// either stage ends its replications.
func TestReplicationEndsWithItsSourceOrAStage(t *testing.T) {
	ts := startServer(t, "")
	s := setUpReplication(t, ts)
	c := s.c
	cStage := newStage(t, c)
	if err := replicate(c, s.a, s.b, s.alice, 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := replicate(c, s.a, cStage, s.alice, 0, nil); err != nil {
		t.Fatal(err)
	}
	sidB, sidC := activeSession(t, c, s.b), activeSession(t, c, cStage)
	if rs := replicas(t, c, s.a, s.alice); len(rs) != 2 {
		t.Fatalf("ListParticipantReplicas: %+v", rs)
	}

	// Deleting the destination C ends that replication.
	if _, err := c.DeleteStage(bg, &ivsrealtime.DeleteStageInput{Arn: aws.String(cStage)}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the replication into the deleted stage STOPPED", func() bool {
		for _, r := range replicas(t, c, s.a, s.alice) {
			if aws.ToString(r.DestinationStageArn) == cStage {
				return r.ReplicationState == types.ReplicationStateStopped && aws.ToString(r.DestinationSessionId) == sidC
			}
		}
		return false
	})
	if p := getParticipant(c, s.a, s.sidA, s.alice); !isSource(p, types.ReplicationStateActive) {
		t.Errorf("alice in A still replicates to B: %+v", p)
	}

	// Alice stops publishing: with no window, the replica in B ends.
	s.pub.Close(s.ctx)
	testutil.Eventually(t, "the replica in B gone with its source", func() bool {
		rp := getParticipant(c, s.b, sidB, s.alice)
		return isReplica(rp, s.a, s.sidA, types.ReplicationStateStopped) && rp.State == types.ParticipantStateDisconnected &&
			isSource(getParticipant(c, s.a, s.sidA, s.alice), types.ReplicationStateStopped)
	})

	// A new replication, then the source stage is deleted: the replica
	// leaves B.
	s.pub = s.publish(t)
	sidA := activeSessionNow(c, s.a)
	if err := replicate(c, s.a, s.b, s.alice, 60, nil); err != nil {
		t.Fatal(err)
	}
	// B's session ended when the first replica left it: the new replica
	// starts another.
	var sidB2 string
	testutil.Eventually(t, "the new replica in B", func() bool {
		sidB2 = activeSessionNow(c, s.b)
		return isReplica(getParticipant(c, s.b, sidB2, s.alice), s.a, sidA, types.ReplicationStateActive)
	})
	if _, err := c.DeleteStage(bg, &ivsrealtime.DeleteStageInput{Arn: aws.String(s.a)}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the replica gone from B with its source stage", func() bool {
		rp := getParticipant(c, s.b, sidB2, s.alice)
		return isReplica(rp, s.a, sidA, types.ReplicationStateStopped) && rp.State == types.ParticipantStateDisconnected
	})
}

func TestReplicationRefusals(t *testing.T) {
	ts := startServer(t, "", func(c *config.Config) { c.MaxPublishers = 2 })
	s := setUpReplication(t, ts)
	c := s.c
	missing := s.a[:strings.LastIndex(s.a, "/")+1] + "AbCdEfGhIjKl"
	foreign := strings.Replace(s.b, testAccount, "999999999999", 1)
	for _, tc := range []struct {
		what          string
		src, dst, pid string
		attrs         map[string]string
		code          string
	}{
		{"a missing source stage", missing, s.b, s.alice, nil, "ResourceNotFoundException"},
		{"a missing destination stage", s.a, missing, s.alice, nil, "ResourceNotFoundException"},
		{"another account's destination", s.a, foreign, s.alice, nil, "AccessDeniedException"},
		{"the source stage as destination", s.a, s.a, s.alice, nil, "ValidationException"},
		{"a participant who is not in the source stage", s.a, s.b, "NoSuchPerson1", nil, "ResourceNotFoundException"},
		{"a participant of the destination, not the source", s.b, s.a, s.alice, nil, "ResourceNotFoundException"},
		{"attributes over 1 KB", s.a, s.b, s.alice, map[string]string{"big": strings.Repeat("x", 1100)}, "ValidationException"},
	} {
		if err := replicate(c, tc.src, tc.dst, tc.pid, 0, tc.attrs); err == nil || apiErrorCode(t, err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.what, err, tc.code)
		}
	}
	// reconnectWindowSeconds beyond the model's 300.
	body := fmt.Sprintf(`{"sourceStageArn":%q,"destinationStageArn":%q,"participantId":%q,"reconnectWindowSeconds":301}`, s.a, s.b, s.alice)
	if status, hdr, resp := ts.call(t, "POST", "/StartParticipantReplication", []byte(body)); status != 400 || hdr.Get("x-amzn-ErrorType") != "ValidationException" {
		t.Errorf("reconnectWindowSeconds 301: %d %s %s", status, hdr.Get("x-amzn-ErrorType"), resp)
	}
	if err := stopReplication(c, s.a, s.b, s.alice); apiErrorCode(t, err) != "ResourceNotFoundException" {
		t.Errorf("stopping a replication that never started: %v", err)
	}
	if rs := replicas(t, c, s.a, s.alice); len(rs) != 0 {
		t.Errorf("ListParticipantReplicas after refusals: %+v", rs)
	}
	// ListParticipantReplicas declares neither ResourceNotFound nor
	// Conflict: a stage that does not exist has no replicas; another
	// account's is AccessDenied.
	if rs := replicas(t, c, missing, s.alice); len(rs) != 0 {
		t.Errorf("ListParticipantReplicas of a missing stage: %+v", rs)
	}
	if _, err := c.ListParticipantReplicas(bg, &ivsrealtime.ListParticipantReplicasInput{SourceStageArn: aws.String(foreign), ParticipantId: aws.String(s.alice)}); apiErrorCode(t, err) != "AccessDeniedException" {
		t.Errorf("ListParticipantReplicas of another account's stage: %v", err)
	}

	// A destination at its publisher limit (2 here) takes no replica.
	full := newStage(t, c)
	for _, user := range []string{"p1", "p2"} {
		tok, _ := newToken(t, c, full, user, types.ParticipantTokenCapabilityPublish)
		publish(t, s.ctx, tok, rtclient.PublishOptions{Audio: source(t, s.f.Opus)})
	}
	testutil.Eventually(t, "two publishers in the full stage", func() bool {
		sid := activeSessionNow(c, full)
		out, err := c.ListParticipants(bg, &ivsrealtime.ListParticipantsInput{StageArn: aws.String(full), SessionId: aws.String(sid), FilterByPublished: true})
		return err == nil && len(out.Participants) == 2
	})
	if err := replicate(c, s.a, full, s.alice, 0, nil); apiErrorCode(t, err) != "ServiceQuotaExceededException" {
		t.Errorf("replicating into a stage at its publisher limit: %v", err)
	}

	// At most 5 concurrent replications of one participant; the list
	// pages.
	var dsts []string
	for range 5 {
		d := newStage(t, c)
		if err := replicate(c, s.a, d, s.alice, 0, nil); err != nil {
			t.Fatal(err)
		}
		dsts = append(dsts, d)
	}
	if err := replicate(c, s.a, newStage(t, c), s.alice, 0, nil); apiErrorCode(t, err) != "ServiceQuotaExceededException" {
		t.Errorf("a sixth replication: %v", err)
	}
	page, err := c.ListParticipantReplicas(bg, &ivsrealtime.ListParticipantReplicasInput{SourceStageArn: aws.String(s.a), ParticipantId: aws.String(s.alice), MaxResults: aws.Int32(2)})
	if err != nil || len(page.Replicas) != 2 || page.NextToken == nil {
		t.Fatalf("ListParticipantReplicas maxResults 2: %+v, %v", page, err)
	}
	var got []string
	pg := ivsrealtime.NewListParticipantReplicasPaginator(c, &ivsrealtime.ListParticipantReplicasInput{SourceStageArn: aws.String(s.a), ParticipantId: aws.String(s.alice), MaxResults: aws.Int32(2)})
	for pg.HasMorePages() {
		out, err := pg.NextPage(bg)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range out.Replicas {
			got = append(got, aws.ToString(r.DestinationStageArn))
		}
	}
	if strings.Join(got, " ") != strings.Join(dsts, " ") {
		t.Errorf("paged replicas %v, want %v in order", got, dsts)
	}
	// A replica cannot be replicated in turn.
	if err := replicate(c, dsts[0], dsts[1], s.alice, 0, nil); apiErrorCode(t, err) != "ValidationException" {
		t.Errorf("replicating a replica: %v", err)
	}
}

// DisconnectParticipant of the replica in its destination ends the
// replication; a destination where a participant of that id already is
// (a self-signed token chose it) refuses a replica of it.
func TestReplicaDisconnectedAndParticipantIDTaken(t *testing.T) {
	ts := startServer(t, "")
	s := setUpReplication(t, ts)
	c := s.c
	if err := replicate(c, s.a, s.b, s.alice, 60, nil); err != nil {
		t.Fatal(err)
	}
	sidB := activeSession(t, c, s.b)
	if _, err := c.DisconnectParticipant(bg, &ivsrealtime.DisconnectParticipantInput{StageArn: aws.String(s.b), ParticipantId: aws.String(s.alice)}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the replication STOPPED by the replica's disconnection", func() bool {
		rp := getParticipant(c, s.b, sidB, s.alice)
		rs := replicas(t, c, s.a, s.alice)
		return isReplica(rp, s.a, s.sidA, types.ReplicationStateStopped) && rp.State == types.ParticipantStateDisconnected &&
			isSource(getParticipant(c, s.a, s.sidA, s.alice), types.ReplicationStateStopped) &&
			event(c, s.a, s.sidA, s.alice, types.EventNameReplicationStopped, "") != nil &&
			len(rs) == 1 && rs[0].ReplicationState == types.ReplicationStateStopped
	})
	if p := getParticipant(c, s.a, s.sidA, s.alice); p.State != types.ParticipantStateConnected {
		t.Errorf("the source after its replica was disconnected: %+v", p)
	}

	// Stage D has its own participant with alice's id.
	d := newStage(t, c)
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	pk, err := c.ImportPublicKey(bg, &ivsrealtime.ImportPublicKeyInput{PublicKeyMaterial: aws.String(pemPublicKey(t, &key.PublicKey))})
	if err != nil {
		t.Fatal(err)
	}
	g := mustStage(t, c, d)
	now := time.Now()
	tok := signES384(t, key, *pk.PublicKey.Arn, token.Claims{
		IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix(), ParticipantID: s.alice,
		Resource: d, Topic: d[strings.LastIndex(d, "/")+1:], EventsURL: *g.Endpoints.Events, WhipURL: *g.Endpoints.Whip,
		UserID: "someone-else", Capabilities: token.Capabilities{Subscribe: true}, Version: "1.0",
	})
	ev := joinEvents(t, s.ctx, tok)
	waitState(t, s.ctx, ev, func(st rtclient.StageState) bool { _, ok := st.Participant(s.alice); return ok })
	if err := replicate(c, s.a, d, s.alice, 0, nil); apiErrorCode(t, err) != "ConflictException" {
		t.Errorf("replicating into a stage where the participant id is taken: %v", err)
	}
	// The stage's writes reach the store in order but after the
	// websocket's state (the session's start is written before the
	// participant), so the record is waited for.
	sidD := activeSession(t, c, d)
	var own *types.Participant
	testutil.Eventually(t, "D's own participant in the store", func() bool {
		own = getParticipant(c, d, sidD, s.alice)
		return own != nil
	})
	if own.ReplicationType != types.ReplicationTypeNone || aws.ToString(own.UserId) != "someone-else" {
		t.Errorf("D's own participant after the refused replication: %+v", own)
	}

	// DisconnectParticipant of the source ends its replications at once:
	// it cannot come back, so the 60 s window (longer than this test
	// waits) is not waited for.
	e := newStage(t, c)
	if err := replicate(c, s.a, e, s.alice, 60, nil); err != nil {
		t.Fatal(err)
	}
	sidE := activeSession(t, c, e)
	if _, err := c.DisconnectParticipant(bg, &ivsrealtime.DisconnectParticipantInput{StageArn: aws.String(s.a), ParticipantId: aws.String(s.alice)}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the replication STOPPED with its disconnected source", func() bool {
		rp := getParticipant(c, e, sidE, s.alice)
		return isReplica(rp, s.a, s.sidA, types.ReplicationStateStopped) && rp.State == types.ParticipantStateDisconnected
	})
}

// A replica in a stage that records its participants is recorded like any
// publisher, unless the stage's recordParticipantReplicas is false.
func TestReplicaRecording(t *testing.T) {
	needTool(t, "ffmpeg")
	data := t.TempDir()
	ts := startServer(t, data)
	s := setUpReplication(t, ts)
	c := s.c
	recorded := recordingStage(t, c, "recordings")
	// aws-sdk-go-v2 leaves a false boolean out (and absent is true), so
	// the stage that does not record replicas is created as the CLI would.
	sc, err := c.ListStorageConfigurations(bg, &ivsrealtime.ListStorageConfigurationsInput{})
	if err != nil || len(sc.StorageConfigurations) != 1 {
		t.Fatalf("storage configurations: %+v, %v", sc, err)
	}
	body := fmt.Sprintf(`{"autoParticipantRecordingConfiguration":{"storageConfigurationArn":%q,"recordParticipantReplicas":false}}`, aws.ToString(sc.StorageConfigurations[0].Arn))
	status, _, resp := ts.call(t, "POST", "/CreateStage", []byte(body))
	var created struct{ Stage struct{ Arn string } }
	if err := json.Unmarshal(resp, &created); status != 200 || err != nil {
		t.Fatalf("CreateStage: %d %s", status, resp)
	}
	unrecorded := created.Stage.Arn
	for _, d := range []string{recorded, unrecorded} {
		if err := replicate(c, s.a, d, s.alice, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	awaitRecordingState(t, c, recorded, s.alice, types.ParticipantRecordingStateActive)
	time.Sleep(4 * time.Second) // a few segments
	for _, d := range []string{recorded, unrecorded} {
		if err := stopReplication(c, s.a, d, s.alice); err != nil {
			t.Fatal(err)
		}
	}
	p := awaitRecordingState(t, c, recorded, s.alice, types.ParticipantRecordingStateStopped)
	dir := recordingDir(t, filepath.Join(data, "storage", "recordings"), aws.ToString(p.RecordingS3Prefix))
	pl, err := os.ReadFile(filepath.Join(dir, "media/hls/high/playlist.m3u8"))
	if err != nil || !strings.Contains(string(pl), "#EXT-X-ENDLIST") || !strings.Contains(string(pl), ".mp4") {
		t.Errorf("the replica's recording playlist (%v):\n%s", err, pl)
	}
	if p := participant(t, c, unrecorded, s.alice); p.RecordingState != types.ParticipantRecordingStateDisabled || p.ReplicationType != types.ReplicationTypeReplica {
		t.Errorf("the replica where replicas are not recorded: %+v", p)
	}
	stageID := unrecorded[strings.LastIndex(unrecorded, "/")+1:]
	if dirs, _ := filepath.Glob(filepath.Join(data, "storage", "recordings", stageID, "*")); len(dirs) != 0 {
		t.Errorf("recordings of a stage that does not record replicas: %v", dirs)
	}
}

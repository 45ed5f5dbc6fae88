package e2e

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/rostrum-dev/rostrum/internal/config"
	"github.com/rostrum-dev/rostrum/internal/events"
	"github.com/rostrum-dev/rostrum/internal/rtclient"
	"github.com/rostrum-dev/rostrum/internal/store"
	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// Everything acknowledged survives a restart, and tokens minted before it
// still verify with the same persisted signing key.
func TestStatePersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir)
	c := ts.client()
	st, err := c.CreateStage(bg, &ivsrealtime.CreateStageInput{Name: aws.String("kept"), Tags: map[string]string{"a": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := c.CreateParticipantToken(bg, &ivsrealtime.CreateParticipantTokenInput{StageArn: st.Stage.Arn})
	ec, _ := c.CreateEncoderConfiguration(bg, &ivsrealtime.CreateEncoderConfigurationInput{Name: aws.String("enc")})
	sc, _ := c.CreateStorageConfiguration(bg, &ivsrealtime.CreateStorageConfigurationInput{S3: &types.S3StorageConfiguration{BucketName: aws.String("bkt")}})
	ic, _ := c.CreateIngestConfiguration(bg, &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmps})
	sid, err := ts.service().StartStageSession(bg, *st.Stage.Arn)
	if err != nil {
		t.Fatal(err)
	}
	oldKey := ts.service().SigningKey().ID
	ts.stop(t)

	ts2 := startServer(t, dir)
	c2 := ts2.client()
	g, err := c2.GetStage(bg, &ivsrealtime.GetStageInput{Arn: st.Stage.Arn})
	if err != nil || *g.Stage.Name != "kept" || g.Stage.Tags["a"] != "1" {
		t.Fatalf("stage after restart: %+v %v", g, err)
	}
	// The session was this server's: it stopped, so the session ended
	// (and is kept, ended).
	if g.Stage.ActiveSessionId != nil {
		t.Errorf("activeSessionId %s after restart", *g.Stage.ActiveSessionId)
	}
	if ss, err := c2.GetStageSession(bg, &ivsrealtime.GetStageSessionInput{StageArn: st.Stage.Arn, SessionId: aws.String(sid)}); err != nil || ss.StageSession.EndTime == nil {
		t.Errorf("session after restart: %+v %v", ss, err)
	}
	if ts2.service().SigningKey().ID != oldKey {
		t.Error("signing key changed across restart")
	}
	verifyToken(t, ts2, *tok.ParticipantToken.Token)
	if _, err := c2.GetEncoderConfiguration(bg, &ivsrealtime.GetEncoderConfigurationInput{Arn: ec.EncoderConfiguration.Arn}); err != nil {
		t.Error(err)
	}
	if _, err := c2.GetStorageConfiguration(bg, &ivsrealtime.GetStorageConfigurationInput{Arn: sc.StorageConfiguration.Arn}); err != nil {
		t.Error(err)
	}
	got, err := c2.GetIngestConfiguration(bg, &ivsrealtime.GetIngestConfigurationInput{Arn: ic.IngestConfiguration.Arn})
	if err != nil || *got.IngestConfiguration.StreamKey != *ic.IngestConfiguration.StreamKey {
		t.Errorf("ingest configuration after restart: %+v %v", got, err)
	}
	// New resources keep a stable order after old ones.
	st2, _ := c2.CreateStage(bg, &ivsrealtime.CreateStageInput{})
	l, _ := c2.ListStages(bg, &ivsrealtime.ListStagesInput{})
	if len(l.Stages) != 2 || *l.Stages[0].Arn != *st.Stage.Arn || *l.Stages[1].Arn != *st2.Stage.Arn {
		t.Errorf("order after restart: %+v", l.Stages)
	}
}

// serveProcess is `rostrum serve` running as its own process, as an
// operator runs it, so that it can be killed for real.
type serveProcess struct {
	cmd    *exec.Cmd
	url    string
	mu     sync.Mutex
	log    []string // its stderr, line by line
	exited chan struct{}
}

// buildRostrum builds cmd/rostrum into dir.
func buildRostrum(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "rostrum")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/rostrum").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runServe starts `rostrum serve` on a free loopback port and waits for the
// line that says where it serves. The process is killed when the test ends
// if it is still running.
func runServe(t *testing.T, bin string, args ...string) *serveProcess {
	t.Helper()
	args = append([]string{"serve", "--listen", "127.0.0.1:0", "--rtc-udp-port", "0", "--rtc-tcp-port", "0", "--rtc-listen-ip", "127.0.0.1"}, args...)
	p := &serveProcess{cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log = append(p.log, line)
			p.mu.Unlock()
			if i := strings.Index(line, " url="); i >= 0 && strings.Contains(line, "rostrum serving") {
				urls <- strings.Fields(line[i+5:])[0]
			}
		}
		p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("rostrum serve %s:\n%s", strings.Join(args, " "), p.logText())
		}
	})
	select {
	case p.url = <-urls:
	case <-p.exited:
		t.Fatalf("rostrum serve exited before serving:\n%s", p.logText())
	case <-time.After(60 * time.Second):
		t.Fatalf("rostrum serve did not report its URL:\n%s", p.logText())
	}
	return p
}

func (p *serveProcess) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.log, "\n")
}

// signal sends sig and waits for the process to exit.
func (p *serveProcess) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("rostrum serve did not exit on %v", sig)
	}
}

func (p *serveProcess) client() *ivsrealtime.Client {
	return ivsrealtime.NewFromConfig(aws.Config{
		Region:      testRegion,
		Credentials: credentials.NewStaticCredentialsProvider(config.DevAccessKeyID, config.DevSecretAccessKey, ""),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}, func(o *ivsrealtime.Options) { o.BaseEndpoint = aws.String(p.url) })
}

// A server killed with SIGKILL while real participants publish and
// subscribe leaves its session open; the next start ends it as of the
// node's last heartbeat: participants DISCONNECTED, their media stopped and
// LEFT, the events delivered, and the stage ready for a new session.
func TestSessionEndsAfterSIGKILL(t *testing.T) {
	dir := t.TempDir()
	bin := buildRostrum(t, dir)
	data := filepath.Join(dir, "data")
	hook := newHookReceiver(t)
	args := []string{"--data-dir", data, "--heartbeat-interval", "100ms", "--node-timeout", "1s",
		"--event-webhook", hook.srv.URL + "/hook " + everyDetailType, "--event-webhook-secret", hookSecret,
		"--event-retry-initial", "10ms", "--event-retry-max", "40ms"}
	args = append(args, serveDatabaseArgs(t, data)...) // postgres_test.go
	srv := runServe(t, bin, args...)
	c := srv.client()
	ctx := testContext(t)

	stage := newStage(t, c)
	aliceTok, alice := newToken(t, c, stage, "alice")
	bobTok, bob := newToken(t, c, stage, "bob", types.ParticipantTokenCapabilitySubscribe)
	aliceEvents := joinEvents(t, ctx, aliceTok)
	waitState(t, ctx, aliceEvents, func(s rtclient.StageState) bool { return len(s.Participants) == 1 })
	bobEvents := joinEvents(t, ctx, bobTok)
	waitState(t, ctx, bobEvents, func(s rtclient.StageState) bool { return len(s.Participants) == 2 })
	publish(t, ctx, aliceTok, rtclient.PublishOptions{
		Audio: rtclient.NewSyntheticSource(rtclient.SyntheticOptions{Codec: rtclient.CodecOpus}),
		Video: rtclient.NewSyntheticSource(rtclient.SyntheticOptions{Codec: rtclient.CodecVP8}),
	})
	waitState(t, ctx, bobEvents, func(s rtclient.StageState) bool { p, ok := s.Participant(alice); return ok && p.IsPublishing })
	sub := subscribe(t, ctx, bobTok, rtclient.SubscribeOptions{PublisherID: alice})
	if err := sub.WaitFrames(ctx, "video", 5); err != nil {
		t.Fatal(err)
	}
	sid := activeSession(t, c, stage)
	testutil.Eventually(t, "bob's SUBSCRIBE_STARTED", func() bool { return hasEvent(c, stage, sid, bob, types.EventNameSubscribeStarted, alice) })

	// The node's last sign of life is a heartbeat after everything it
	// recorded; wait for one, read from the database beside the server.
	history, err := c.ListParticipantEvents(bg, &ivsrealtime.ListParticipantEventsInput{StageArn: aws.String(stage), SessionId: aws.String(sid), ParticipantId: aws.String(bob)})
	if err != nil {
		t.Fatal(err)
	}
	lastEvent := *history.Events[len(history.Events)-1].EventTime
	db, err := openServerDatabase(&config.Config{DataDir: data, DatabaseURL: testDatabaseURL(t, data)})
	if err != nil {
		t.Fatal(err)
	}
	var beat time.Time
	testutil.Eventually(t, "a heartbeat after the last event", func() bool {
		nodes, err := db.ListNodes(bg)
		if err != nil || len(nodes) != 1 {
			return false
		}
		beat = nodes[0].Heartbeat
		return beat.After(lastEvent)
	})
	db.Close()

	killedAt := time.Now()
	srv.signal(t, syscall.SIGKILL)
	aliceEvents.Close()
	bobEvents.Close()

	srv = runServe(t, bin, args...)
	c = srv.client()
	if log := srv.logText(); !strings.Contains(log, "ended the stage sessions the previous run left active") || !strings.Contains(log, "sessions=1") {
		t.Errorf("the restart does not tell the operator what it ended:\n%s", log)
	}
	g, err := c.GetStage(bg, &ivsrealtime.GetStageInput{Arn: aws.String(stage)})
	if err != nil || g.Stage.ActiveSessionId != nil {
		t.Fatalf("GetStage after the restart: active session %v, %v", aws.ToString(g.Stage.ActiveSessionId), err)
	}
	ss, err := c.GetStageSession(bg, &ivsrealtime.GetStageSessionInput{StageArn: aws.String(stage), SessionId: aws.String(sid)})
	if err != nil || ss.StageSession.EndTime == nil {
		t.Fatalf("GetStageSession after the restart: %+v, %v", ss, err)
	}
	end := *ss.StageSession.EndTime
	if end.Before(beat) || end.After(killedAt) {
		t.Errorf("the session ended at %v; the node's last heartbeat was %v and it was killed at %v", end, beat, killedAt)
	}
	connected, err := c.ListParticipants(bg, &ivsrealtime.ListParticipantsInput{StageArn: aws.String(stage), SessionId: aws.String(sid), FilterByState: types.ParticipantStateConnected})
	if err != nil || len(connected.Participants) != 0 {
		t.Fatalf("CONNECTED participants after the restart: %+v, %v", connected, err)
	}
	gone, err := c.ListParticipants(bg, &ivsrealtime.ListParticipantsInput{StageArn: aws.String(stage), SessionId: aws.String(sid), FilterByState: types.ParticipantStateDisconnected})
	if err != nil || len(gone.Participants) != 2 {
		t.Fatalf("DISCONNECTED participants after the restart: %+v, %v", gone, err)
	}
	for pid, want := range map[string]string{
		alice: "JOINED, PUBLISH_STARTED, PUBLISH_STOPPED, LEFT",
		bob:   "JOINED, SUBSCRIBE_STARTED " + alice + ", SUBSCRIBE_STOPPED " + alice + ", LEFT",
	} {
		out, err := c.ListParticipantEvents(bg, &ivsrealtime.ListParticipantEventsInput{StageArn: aws.String(stage), SessionId: aws.String(sid), ParticipantId: aws.String(pid)})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range out.Events {
			names = append(names, strings.TrimSpace(string(e.Name)+" "+aws.ToString(e.RemoteParticipantId)))
		}
		if got := strings.Join(names, ", "); got != want {
			t.Errorf("%s's events after the restart: %s, want %s", pid, got, want)
		}
		if last := out.Events[len(out.Events)-1]; !last.EventTime.Equal(end) {
			t.Errorf("%s LEFT at %v, the session ended at %v", pid, last.EventTime, end)
		}
	}

	// The application hears the whole story, the end included.
	users := map[string]string{alice: "alice", bob: "bob"}
	story := twoPersonStory(alice, bob)
	checkStory(t, "webhook", hook.waitFor(t, len(story)), stage, sid, users, story)

	// The stage starts a new session, cleanly.
	carolTok, carol := newToken(t, c, stage, "carol")
	carolEvents := joinEvents(t, ctx, carolTok)
	waitState(t, ctx, carolEvents, func(s rtclient.StageState) bool { _, ok := s.Participant(carol); return ok && len(s.Participants) == 1 })
	sid2 := activeSession(t, c, stage)
	if sid2 == sid {
		t.Fatal("the new session has the dead one's id")
	}
	ss2, err := c.GetStageSession(bg, &ivsrealtime.GetStageSessionInput{StageArn: aws.String(stage), SessionId: aws.String(sid2)})
	if err != nil || ss2.StageSession.EndTime != nil {
		t.Fatalf("the new session: %+v, %v", ss2, err)
	}
	testutil.Eventually(t, "carol CONNECTED in the new session", func() bool {
		out, err := c.ListParticipants(bg, &ivsrealtime.ListParticipantsInput{StageArn: aws.String(stage), SessionId: aws.String(sid2), FilterByState: types.ParticipantStateConnected})
		return err == nil && len(out.Participants) == 1 && aws.ToString(out.Participants[0].ParticipantId) == carol
	})
	checkStory(t, "webhook, new session", hook.waitFor(t, len(story)+2)[len(story):], stage, sid2, map[string]string{carol: "carol"}, []step{
		{events.DetailTypeStageActivity, events.SessionStarted, "", ""},
		{events.DetailTypeStageActivity, events.ParticipantJoined, carol, ""},
	})

	// A clean stop ends its session itself: the next start has nothing
	// left to end.
	srv.signal(t, syscall.SIGTERM)
	if code := srv.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("rostrum serve exited %d on SIGTERM", code)
	}
	srv = runServe(t, bin, args...)
	c = srv.client()
	if strings.Contains(srv.logText(), "previous run left active") {
		t.Errorf("a clean stop left sessions to end:\n%s", srv.logText())
	}
	ss2, err = c.GetStageSession(bg, &ivsrealtime.GetStageSessionInput{StageArn: aws.String(stage), SessionId: aws.String(sid2)})
	if err != nil || ss2.StageSession.EndTime == nil {
		t.Fatalf("the session after a clean stop: %+v, %v", ss2, err)
	}
	if !hasEvent(c, stage, sid2, carol, types.EventNameLeft, "") {
		t.Error("carol has no LEFT after a clean stop")
	}
}

// Nodes sharing one database: a node whose heartbeat stopped longer ago
// than --node-timeout has its sessions ended by a live one, as of its last
// heartbeat.
func TestDeadPeerSessionsEnd(t *testing.T) {
	ts := startServer(t, "", func(c *config.Config) {
		c.Node.ID = "live"
		c.Node.Heartbeat, c.Node.Timeout = 20*time.Millisecond, time.Second
	})
	c := ts.client()
	stage := newStage(t, c)
	// The dead node's session, written beside the server as that node
	// would have: a participant joined, then the node's last heartbeat.
	db, err := openServerDatabase(ts.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Millisecond)
	beat := start.Add(30 * time.Minute)
	const sid = "st-DeadN0deSe55x"
	if err := db.StartStageSession(bg, &store.StageSession{StageARN: stage, SessionID: sid, StartTime: start, NodeID: "dead"}); err != nil {
		t.Fatal(err)
	}
	doc, _ := json.Marshal(map[string]any{"participantId": "p-1", "userId": "erin", "state": "CONNECTED", "firstJoinTime": start, "published": false})
	if err := db.PutParticipant(bg, &store.Participant{StageARN: stage, SessionID: sid, ParticipantID: "p-1", UserID: "erin",
		State: "CONNECTED", FirstJoinTime: start, Doc: doc}); err != nil {
		t.Fatal(err)
	}
	ev, _ := json.Marshal(map[string]any{"name": "JOINED", "participantId": "p-1", "eventTime": start})
	if err := db.AddParticipantEvent(bg, &store.ParticipantEvent{StageARN: stage, SessionID: sid, ParticipantID: "p-1", EventTime: start, Doc: ev}); err != nil {
		t.Fatal(err)
	}
	if err := db.Heartbeat(bg, "dead", beat); err != nil {
		t.Fatal(err)
	}

	var end time.Time
	testutil.Eventually(t, "the dead node's session to end", func() bool {
		ss, err := c.GetStageSession(bg, &ivsrealtime.GetStageSessionInput{StageArn: aws.String(stage), SessionId: aws.String(sid)})
		if err != nil || ss.StageSession.EndTime == nil {
			return false
		}
		end = *ss.StageSession.EndTime
		return true
	})
	if !end.Equal(beat) {
		t.Errorf("the session ended at %v, the node's last heartbeat was %v", end, beat)
	}
	g, err := c.GetStage(bg, &ivsrealtime.GetStageInput{Arn: aws.String(stage)})
	if err != nil || g.Stage.ActiveSessionId != nil {
		t.Errorf("GetStage: active session %v, %v", aws.ToString(g.Stage.ActiveSessionId), err)
	}
	p, err := c.GetParticipant(bg, &ivsrealtime.GetParticipantInput{StageArn: aws.String(stage), SessionId: aws.String(sid), ParticipantId: aws.String("p-1")})
	if err != nil || p.Participant.State != types.ParticipantStateDisconnected || aws.ToString(p.Participant.UserId) != "erin" {
		t.Errorf("the dead node's participant: %+v, %v", p, err)
	}
	if !hasEvent(c, stage, sid, "p-1", types.EventNameLeft, "") {
		t.Error("no LEFT for the dead node's participant")
	}
	// The live node is still listed, the dead one is gone.
	testutil.Eventually(t, "only the live node left", func() bool {
		nodes, err := db.ListNodes(bg)
		return err == nil && len(nodes) == 1 && nodes[0].ID == "live"
	})
}

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/config"
	"github.com/rostrum-dev/rostrum/internal/events"
	"github.com/rostrum-dev/rostrum/internal/events/sink"
	"github.com/rostrum-dev/rostrum/internal/rtclient"
	"github.com/rostrum-dev/rostrum/internal/sigv4"
	"github.com/rostrum-dev/rostrum/internal/testutil"
)

const hookSecret = "webhook-test-secret"

// everyDetailType is a sink pattern that asks for Rostrum's detail-type
// too.
const everyDetailType = `{"detail-type":["IVS Stage Update","Rostrum Stage Activity"]}`

// hookReceiver is an application's webhook endpoint: it checks each
// request's signature, and deduplicates by event id, as at-least-once
// delivery asks receivers to.
type hookReceiver struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	down     bool // answer 503 without looking
	ackLost  int  // the first ackLost events taken are answered 500 anyway
	attempts int
	requests int // requests that passed the signature check
	badSig   int
	events   []*events.Event // each event once, in order of first arrival
	seen     map[string]int  // deliveries per id
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{t: t, seen: map[string]int{}}
	h.srv = httptest.NewServer(h)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.attempts++
	if h.down {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	if err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if err := sink.VerifySignature([]byte(hookSecret), body, r.Header.Get(sink.SignatureHeader), time.Now(), 5*time.Minute); err != nil {
		h.badSig++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	ev, err := events.Parse(body)
	if err != nil || ev.ID != r.Header.Get(sink.EventIDHeader) {
		http.Error(w, "not an event", http.StatusBadRequest)
		return
	}
	h.requests++
	if h.seen[ev.ID] == 0 {
		h.events = append(h.events, ev)
	}
	h.seen[ev.ID]++
	if h.requests <= h.ackLost {
		// Processed, but the answer is lost: the server must send it again.
		http.Error(w, "oops", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookReceiver) got() []*events.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*events.Event(nil), h.events...)
}

func (h *hookReceiver) waitFor(t *testing.T, n int) []*events.Event {
	t.Helper()
	testutil.Eventually(t, fmt.Sprintf("%d events at the webhook", n), func() bool { return len(h.got()) >= n })
	return h.got()
}

// withWebhook configures a webhook sink (pattern "" for IVS's
// detail-types) and quick retries.
func withWebhook(u, pattern string) func(*config.Config) {
	return func(c *config.Config) {
		v := u
		if pattern != "" {
			v += " " + pattern
		}
		c.Events.Webhooks.Set(v)
		c.Events.WebhookSecret = hookSecret
		c.Events.RetryInitial, c.Events.RetryMax = 10*time.Millisecond, 40*time.Millisecond
	}
}

type detail struct {
	SessionID           string  `json:"session_id"`
	EventName           string  `json:"event_name"`
	EventTime           string  `json:"event_time"`
	UserID              *string `json:"user_id"`
	ParticipantID       string  `json:"participant_id"`
	RemoteParticipantID string  `json:"remote_participant_id"`
}

func detailOf(t *testing.T, ev *events.Event) detail {
	t.Helper()
	var d detail
	if err := json.Unmarshal(ev.Detail, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// step is an expected event: detail-type, event name, participant and
// remote participant.
type step struct{ detailType, name, pid, remote string }

func checkStory(t *testing.T, what string, got []*events.Event, stage, sid string, users map[string]string, want []step) {
	t.Helper()
	var lines []string
	for _, ev := range got {
		d := detailOf(t, ev)
		lines = append(lines, fmt.Sprintf("%s / %s %s %s", ev.DetailType, d.EventName, d.ParticipantID, d.RemoteParticipantID))
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d:\n%s", what, len(got), len(want), strings.Join(lines, "\n"))
	}
	for i, w := range want {
		ev, d := got[i], detailOf(t, got[i])
		if ev.DetailType != w.detailType || d.EventName != w.name || d.ParticipantID != w.pid || d.RemoteParticipantID != w.remote {
			t.Errorf("%s: event %d is %s, want %s / %s %s %s", what, i, lines[i], w.detailType, w.name, w.pid, w.remote)
		}
		if ev.Version != "0" || ev.Source != "aws.ivs" || ev.Account != testAccount || ev.Region != testRegion ||
			len(ev.Resources) != 1 || ev.Resources[0] != stage || d.SessionID != sid {
			t.Errorf("%s: event %d envelope %+v, session %s", what, i, ev, d.SessionID)
		}
		if _, err := time.Parse(time.RFC3339, ev.Time); err != nil || ev.Time != d.EventTime {
			t.Errorf("%s: event %d time %q, event_time %q", what, i, ev.Time, d.EventTime)
		}
		if w.pid != "" && (d.UserID == nil || *d.UserID != users[w.pid]) {
			t.Errorf("%s: event %d user_id %v, want %q", what, i, d.UserID, users[w.pid])
		}
	}
}

// A stage's life, driven by real WebRTC clients, reaches the application's
// webhooks as IVS's EventBridge documents (and Rostrum's own, where asked
// for), in order, signed, each event once per id though the receiver lost
// the first answers.
func TestWebhooksGetAStageLifeInOrder(t *testing.T) {
	f := fixtures(t)
	every, ivsOnly := newHookReceiver(t), newHookReceiver(t)
	every.ackLost = 3
	ts := startServer(t, "", withWebhook(every.srv.URL+"/every", everyDetailType), withWebhook(ivsOnly.srv.URL+"/ivs", ""))
	c := ts.client()
	ctx := testContext(t)
	stage := newStage(t, c)
	aliceTok, alice := newToken(t, c, stage, "alice")
	bobTok, bob := newToken(t, c, stage, "bob", types.ParticipantTokenCapabilitySubscribe)
	present := func(ids ...string) func(rtclient.StageState) bool {
		return func(s rtclient.StageState) bool {
			if len(s.Participants) != len(ids) {
				return false
			}
			for _, id := range ids {
				if _, ok := s.Participant(id); !ok {
					return false
				}
			}
			return true
		}
	}

	// Join: alice, then bob.
	aliceEvents := joinEvents(t, ctx, aliceTok)
	waitState(t, ctx, aliceEvents, present(alice))
	bobEvents := joinEvents(t, ctx, bobTok)
	waitState(t, ctx, bobEvents, present(alice, bob))
	// Publish.
	pub := publish(t, ctx, aliceTok, rtclient.PublishOptions{Audio: source(t, f.Opus), Video: source(t, f.VP8)})
	waitState(t, ctx, bobEvents, func(s rtclient.StageState) bool { p, ok := s.Participant(alice); return ok && p.IsPublishing })
	// Subscribe, and media flows.
	sub := subscribe(t, ctx, bobTok, rtclient.SubscribeOptions{PublisherID: alice})
	if err := sub.WaitFrames(ctx, "video", 5); err != nil {
		t.Fatal(err)
	}
	// Unsubscribe, unpublish, leave: alice, then bob.
	if err := sub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	aliceEvents.Close()
	waitState(t, ctx, bobEvents, present(bob))
	bobEvents.Close()

	// The session ends after the grace period: its end is the last event.
	users := map[string]string{alice: "alice", bob: "bob"}
	story := twoPersonStory(alice, bob)
	got := every.waitFor(t, len(story))
	sid := detailOf(t, got[0]).SessionID
	checkStory(t, "every detail-type", got, stage, sid, users, story)
	checkStory(t, "IVS's detail-types", ivsOnly.waitFor(t, 2), stage, sid, users, []step{story[3], story[6]})

	// The same facts as ListParticipantEvents.
	out, err := c.ListParticipantEvents(bg, &ivsrealtime.ListParticipantEventsInput{StageArn: aws.String(stage), SessionId: aws.String(sid), ParticipantId: aws.String(alice)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range out.Events {
		names = append(names, string(e.Name))
	}
	if got := strings.Join(names, ","); got != "JOINED,PUBLISH_STARTED,PUBLISH_STOPPED,LEFT" {
		t.Errorf("alice's ListParticipantEvents: %s", got)
	}

	// At least once: the lost answers were retried, and deduplication by
	// id leaves every event exactly once. Every request was signed.
	every.mu.Lock()
	defer every.mu.Unlock()
	if every.requests < len(story)+every.ackLost || every.badSig != 0 {
		t.Errorf("%d signed requests for %d events (%d answers lost), %d bad signatures", every.requests, len(story), every.ackLost, every.badSig)
	}
	redelivered := 0
	for _, n := range every.seen {
		redelivered += n - 1
	}
	if redelivered < every.ackLost {
		t.Errorf("%d events delivered again, want at least %d", redelivered, every.ackLost)
	}
	ivsOnly.mu.Lock()
	defer ivsOnly.mu.Unlock()
	if ivsOnly.requests != 2 || ivsOnly.badSig != 0 {
		t.Errorf("the IVS-only webhook got %d requests, %d badly signed", ivsOnly.requests, ivsOnly.badSig)
	}
}

// recordStageLife records what the media plane would for one participant,
// through the service, and returns the stage, session and participant.
func recordStageLife(t *testing.T, ts *testServer) (stage, sid, pid string) {
	t.Helper()
	c := ts.client()
	stage = newStage(t, c)
	svc := ts.service()
	sid, err := svc.StartStageSession(bg, stage)
	if err != nil {
		t.Fatal(err)
	}
	pid = "p-carol"
	now := time.Now().UTC().Truncate(time.Millisecond)
	if err := svc.RecordParticipant(bg, stage, sid, &api.Participant{ParticipantId: aws.String(pid), UserId: aws.String("carol"), FirstJoinTime: &now}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT"} {
		if err := svc.RecordParticipantEvent(bg, stage, sid, &api.Event{Name: aws.String(name), ParticipantId: aws.String(pid)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.EndStageSession(bg, stage, sid); err != nil {
		t.Fatal(err)
	}
	return stage, sid, pid
}

func lifeStory(pid string) []step {
	return []step{
		{events.DetailTypeStageActivity, events.SessionStarted, "", ""},
		{events.DetailTypeStageActivity, events.ParticipantJoined, pid, ""},
		{events.DetailTypeStageUpdate, events.ParticipantPublished, pid, ""},
		{events.DetailTypeStageUpdate, events.ParticipantUnpublished, pid, ""},
		{events.DetailTypeStageActivity, events.ParticipantLeft, pid, ""},
		{events.DetailTypeStageActivity, events.SessionEnded, "", ""},
	}
}

// Events in the outbox when the server stops are delivered after it
// starts again.
func TestUndeliveredEventsArriveAfterRestart(t *testing.T) {
	dir := t.TempDir()
	hook := newHookReceiver(t)
	hook.down = true
	url := hook.srv.URL + "/hook"
	ts := startServer(t, dir, withWebhook(url, everyDetailType))
	stage, sid, pid := recordStageLife(t, ts)
	testutil.Eventually(t, "a failed delivery", func() bool { hook.mu.Lock(); defer hook.mu.Unlock(); return hook.attempts > 0 })
	ts.stop(t)

	// The events wait in the outbox.
	st, err := openServerDatabase(ts.cfg)
	if err != nil {
		t.Fatal(err)
	}
	counts, err := st.CountEvents(bg)
	st.Close()
	if err != nil || counts["webhook "+url] != len(lifeStory(pid)) {
		t.Fatalf("outbox after stopping: %v, %v", counts, err)
	}
	if n := len(hook.got()); n != 0 {
		t.Fatalf("%d events delivered while the receiver was down", n)
	}

	hook.mu.Lock()
	hook.down = false
	hook.mu.Unlock()
	ts2 := startServer(t, dir, withWebhook(url, everyDetailType))
	checkStory(t, "after the restart", hook.waitFor(t, len(lifeStory(pid))), stage, sid, map[string]string{pid: "carol"}, lifeStory(pid))
	testutil.Eventually(t, "an empty outbox", func() bool {
		for _, s := range ts2.Events.Stats().Sinks {
			if s.Queued != 0 {
				return false
			}
		}
		return true
	})
}

// fakeEventBridge is an EventBridge-compatible endpoint: it decodes
// PutEvents as AWS receives it (awsJson1_1, X-Amz-Target
// AWSEvents.PutEvents, SigV4 for "events") and refuses the first entry it
// sees, as EventBridge may refuse single entries.
type fakeEventBridge struct {
	verifier *sigv4.Verifier
	mu       sync.Mutex
	calls    int
	refused  int
	entries  []map[string]any
}

func (f *fakeEventBridge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if _, err := f.verifier.Verify(r, body); err != nil {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `{"__type":"UnrecognizedClientException","message":%q}`, err.Error())
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" || r.Header.Get("X-Amz-Target") != "AWSEvents.PutEvents" ||
		r.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		http.Error(w, "not PutEvents", http.StatusBadRequest)
		return
	}
	var in struct{ Entries []map[string]any }
	if err := json.Unmarshal(body, &in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	var out struct {
		FailedEntryCount int
		Entries          []map[string]string
	}
	for _, e := range in.Entries {
		if f.refused == 0 {
			f.refused++
			out.FailedEntryCount++
			out.Entries = append(out.Entries, map[string]string{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"})
			continue
		}
		f.entries = append(f.entries, e)
		out.Entries = append(out.Entries, map[string]string{"EventId": events.NewID()})
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(out)
}

func TestPutEventsToAnEventBridgeCompatibleEndpoint(t *testing.T) {
	fake := &fakeEventBridge{verifier: &sigv4.Verifier{Service: "events", Region: "eu-central-1",
		Credentials: []sigv4.Credential{{AccessKeyID: "AKIDEVENTBRIDGE", SecretAccessKey: "bridge-secret", AccountID: "210987654321"}}}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	ts := startServer(t, "", func(c *config.Config) {
		c.Events.BridgeBus = "rostrum-test-bus"
		c.Events.BridgeEndpoint = srv.URL
		c.Events.BridgeRegion = "eu-central-1"
		c.Events.BridgeAccessKeyID, c.Events.BridgeSecretAccessKey = "AKIDEVENTBRIDGE", "bridge-secret"
		c.Events.BridgeSource = "rostrum.ivs"
		c.Events.BridgePattern = everyDetailType
		c.Events.RetryInitial, c.Events.RetryMax = 10*time.Millisecond, 40*time.Millisecond
	})
	stage, sid, pid := recordStageLife(t, ts)
	story := lifeStory(pid)
	testutil.Eventually(t, "every entry", func() bool { fake.mu.Lock(); defer fake.mu.Unlock(); return len(fake.entries) >= len(story) })
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.entries) != len(story) || fake.refused != 1 {
		t.Fatalf("%d entries (one refused: %d), want %d", len(fake.entries), fake.refused, len(story))
	}
	// The entries, rebuilt into the documents an EventBridge rule's target
	// would get, tell the stage's story in order.
	var got []*events.Event
	for i, e := range fake.entries {
		res, _ := e["Resources"].([]any)
		sec, _ := e["Time"].(float64)
		if e["Source"] != "rostrum.ivs" || e["EventBusName"] != "rostrum-test-bus" || len(res) != 1 || sec == 0 {
			t.Errorf("entry %d: %v", i, e)
			continue
		}
		got = append(got, &events.Event{
			Version: "0", DetailType: e["DetailType"].(string), Source: events.Source, Account: testAccount, Region: testRegion,
			Time: time.Unix(int64(sec), 0).UTC().Format(time.RFC3339), Resources: []string{res[0].(string)}, Detail: json.RawMessage(e["Detail"].(string)),
		})
	}
	checkStory(t, "PutEvents entries", got, stage, sid, map[string]string{pid: "carol"}, story)
}

// The live stream: server-sent events over HTTP, authenticated with SigV4
// like the API (or the --event-stream-token bearer token).
func TestEventStream(t *testing.T) {
	ts := startServer(t, "", func(c *config.Config) { c.Events.StreamToken = "dashboard-token" })
	resp, err := http.Get(ts.BaseURL + "/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unauthenticated stream: HTTP %d", resp.StatusCode)
	}

	q := url.Values{"detail-type": {events.DetailTypeStageUpdate, events.DetailTypeStageActivity}}
	req, _ := http.NewRequest(http.MethodGet, ts.BaseURL+"/v1/events?"+q.Encode(), nil)
	creds := aws.Credentials{AccessKeyID: ts.cfg.AccessKeyID, SecretAccessKey: ts.cfg.SecretAccessKey}
	if err := v4.NewSigner().SignHTTP(bg, creds, req, emptyPayloadHash, "ivs", testRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	stream := openEventStream(t, req.WithContext(ctx))
	testutil.Eventually(t, "the stream client", func() bool { return ts.Events.Stats().StreamClients == 1 })

	stage, sid, pid := recordStageLife(t, ts)
	story := lifeStory(pid)
	var got []*events.Event
	for range story {
		select {
		case ev := <-stream:
			got = append(got, ev)
		case <-time.After(20 * time.Second):
			t.Fatal("timed out waiting for the stream")
		}
	}
	checkStory(t, "the stream", got, stage, sid, map[string]string{pid: "carol"}, story)

	// The bearer token opens it too; the metrics count what was published.
	req, _ = http.NewRequest(http.MethodGet, ts.BaseURL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer dashboard-token")
	open := openEventStream(t, req)
	testutil.Eventually(t, "two stream clients", func() bool { return ts.Events.Stats().StreamClients == 2 })
	resp, err = http.Get(ts.BaseURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `rostrum_events_published_total{detail_type="IVS Stage Update"} 2`) {
		t.Errorf("metrics:\n%s", body)
	}

	// Stopping the server ends open streams: they do not hold up its
	// shutdown.
	sctx, scancel := context.WithTimeout(bg, 10*time.Second)
	defer scancel()
	if err := ts.Shutdown(sctx); err != nil {
		t.Errorf("shutdown with an open stream: %v", err)
	}
	for range open {
	}
}

var emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// openEventStream returns the events of a /v1/events response.
func openEventStream(t *testing.T, req *http.Request) <-chan *events.Event {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		t.Fatalf("stream: HTTP %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan *events.Event, 100)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				if ev, err := events.Parse([]byte(data)); err == nil {
					out <- ev
				}
			}
		}
	}()
	return out
}

// twoPersonStory is the life of a session in which alice publishes, bob
// subscribes to her, and both leave, alice first: what every sink hears.
func twoPersonStory(alice, bob string) []step {
	const activity, update = events.DetailTypeStageActivity, events.DetailTypeStageUpdate
	return []step{
		{activity, events.SessionStarted, "", ""},
		{activity, events.ParticipantJoined, alice, ""},
		{activity, events.ParticipantJoined, bob, ""},
		{update, events.ParticipantPublished, alice, ""},
		{activity, events.ParticipantSubscribed, bob, alice},
		{activity, events.ParticipantUnsubscribed, bob, alice},
		{update, events.ParticipantUnpublished, alice, ""},
		{activity, events.ParticipantLeft, alice, ""},
		{activity, events.ParticipantLeft, bob, ""},
		{activity, events.SessionEnded, "", ""},
	}
}

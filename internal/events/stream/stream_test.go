package stream

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/rostrum-dev/rostrum/internal/events"
	"github.com/rostrum-dev/rostrum/internal/events/eventstest"
	"github.com/rostrum-dev/rostrum/internal/sigv4"
	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// sseClient reads a server-sent-events response.
type sseClient struct {
	resp   *http.Response
	events chan sse
}

type sse struct{ id, data string }

func openStream(t *testing.T, req *http.Request) *sseClient {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("stream: HTTP %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	c := &sseClient{resp: resp, events: make(chan sse, 100)}
	go func() {
		defer close(c.events)
		sc := bufio.NewScanner(resp.Body)
		var cur sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if cur.data != "" {
					c.events <- cur
				}
				cur = sse{}
			case strings.HasPrefix(line, "id: "):
				cur.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				cur.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	t.Cleanup(func() { resp.Body.Close() })
	return c
}

func (c *sseClient) next(t *testing.T) sse {
	t.Helper()
	select {
	case e, ok := <-c.events:
		if !ok {
			t.Fatal("the stream ended")
		}
		return e
	case <-time.After(20 * time.Second):
		t.Fatal("timed out waiting for a stream event")
	}
	return sse{}
}

func streamServer(t *testing.T, b *events.Bus) (*httptest.Server, *sigv4.Verifier) {
	t.Helper()
	v := &sigv4.Verifier{Service: "ivs", Region: "us-east-1",
		Credentials: []sigv4.Credential{{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret", AccountID: "123456789012"}}}
	srv := httptest.NewServer(Handler(b, Auth{Verifier: v, Token: "stream-token"}))
	t.Cleanup(srv.Close)
	return srv, v
}

func get(t *testing.T, u string, hdr map[string]string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return req
}

var emptySHA = func() string { s := sha256.Sum256(nil); return hex.EncodeToString(s[:]) }()

func TestStreamAuthentication(t *testing.T) {
	b := eventstest.NewBus(t, events.Config{})
	srv, _ := streamServer(t, b)
	status := func(req *http.Request) int {
		t.Helper()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(get(t, srv.URL, nil)); got != http.StatusUnauthorized {
		t.Errorf("no credentials: %d", got)
	}
	if got := status(get(t, srv.URL, map[string]string{"Authorization": "Bearer wrong"})); got != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", got)
	}
	if got := status(get(t, srv.URL+"?access_token=wrong", nil)); got != http.StatusUnauthorized {
		t.Errorf("wrong token in the query: %d", got)
	}
	bad := get(t, srv.URL, nil)
	v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "wrong"}, bad, emptySHA, "ivs", "us-east-1", time.Now())
	if got := status(bad); got != http.StatusForbidden {
		t.Errorf("bad SigV4 signature: %d", got)
	}
	post, _ := http.NewRequest(http.MethodPost, srv.URL, nil)
	if got := status(post); got != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", got)
	}
	if got := status(get(t, srv.URL+"?pattern=%7B%7D&detail-type=x", map[string]string{"Authorization": "Bearer stream-token"})); got != http.StatusBadRequest {
		t.Errorf("pattern with detail-type: %d", got)
	}
	if got := status(get(t, srv.URL+"?pattern=nope", map[string]string{"Authorization": "Bearer stream-token"})); got != http.StatusBadRequest {
		t.Errorf("bad pattern: %d", got)
	}
}

func TestStreamDeliversLiveEventsWithFilters(t *testing.T) {
	b := eventstest.NewBus(t, events.Config{})
	srv, _ := streamServer(t, b)

	// SigV4 in the header: the account's events, IVS's detail-types.
	signed := get(t, srv.URL, nil)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"},
		signed, emptySHA, "ivs", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	account := openStream(t, signed)
	// A presigned URL (as a dashboard hands a browser), asking for
	// Rostrum's activity on one stage.
	q := url.Values{"detail-type": {events.DetailTypeStageActivity}, "resource": {eventstest.StageARN(1)}}
	presign := get(t, srv.URL+"?"+q.Encode(), nil)
	u, _, err := v4.NewSigner().PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"},
		presign, emptySHA, "ivs", "us-east-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	activity := openStream(t, get(t, u, nil))
	// The bearer token, through the query as EventSource sends it, with a
	// pattern: every account.
	pattern := `{"detail-type":["IVS Stage Update"],"detail":{"event_name":["Participant Published"]}}`
	all := openStream(t, get(t, srv.URL+"?access_token=stream-token&pattern="+url.QueryEscape(pattern), nil))
	testutil.Eventually(t, "three clients", func() bool { return b.Stats().StreamClients == 3 })

	other := events.NewStageUpdate("arn:aws:ivs:us-east-1:999999999999:stage/x", eventstest.FixedTime, events.StageUpdate{EventName: events.ParticipantPublished, ParticipantID: "other"})
	mine := eventstest.Update(0, 1)
	act := events.NewSessionEvent(eventstest.StageARN(1), "st-1", eventstest.FixedTime, true)
	actOther := events.NewSessionEvent(eventstest.StageARN(2), "st-1", eventstest.FixedTime, true)
	for _, ev := range []*events.Event{other, actOther, act, mine} {
		eventstest.Publish(t, b, ev)
	}
	if e := account.next(t); e.id != mine.ID || e.data != string(mine.Marshal()) {
		t.Errorf("account stream got %s %s", e.id, e.data)
	}
	if e := activity.next(t); e.id != act.ID {
		t.Errorf("activity stream got %s", e.data)
	}
	if e := all.next(t); e.id != other.ID {
		t.Errorf("token stream got %s", e.data)
	}
	if e := all.next(t); e.id != mine.ID {
		t.Errorf("token stream got %s", e.data)
	}
}

func TestStreamReplaysAfterLastEventID(t *testing.T) {
	b := eventstest.NewBus(t, events.Config{})
	srv, _ := streamServer(t, b)
	var evs []*events.Event
	for i := range 4 {
		ev := eventstest.Update(0, i)
		evs = append(evs, ev)
		eventstest.Publish(t, b, ev)
	}
	c := openStream(t, get(t, srv.URL, map[string]string{"Authorization": "Bearer stream-token", "Last-Event-ID": evs[1].ID}))
	for _, want := range evs[2:] {
		if e := c.next(t); e.id != want.ID {
			t.Fatalf("replayed %s, want %s", e.id, want.ID)
		}
	}
	live := eventstest.Update(0, 9)
	eventstest.Publish(t, b, live)
	if e := c.next(t); e.id != live.ID {
		t.Fatalf("got %s, want the live %s", e.id, live.ID)
	}
}

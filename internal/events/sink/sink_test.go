package sink

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/rostrum-dev/rostrum/internal/events"
	"github.com/rostrum-dev/rostrum/internal/events/eventstest"
	"github.com/rostrum-dev/rostrum/internal/sigv4"
	"github.com/rostrum-dev/rostrum/internal/testutil"
)

func TestSignatureRoundTrip(t *testing.T) {
	secret, body := []byte("s3cret"), []byte(`{"id":"x"}`)
	at := time.Unix(1_700_000_000, 0)
	h := Sign(secret, body, at)
	if !strings.HasPrefix(h, "t=1700000000,v1=") {
		t.Fatalf("header %q", h)
	}
	if err := VerifySignature(secret, body, h, at.Add(time.Minute), 5*time.Minute); err != nil {
		t.Errorf("valid signature: %v", err)
	}
	for name, tc := range map[string]struct {
		secret, body []byte
		header       string
		now          time.Time
		want         error
	}{
		"other secret":    {[]byte("other"), body, h, at, ErrBadSignature},
		"other body":      {secret, []byte(`{"id":"y"}`), h, at, ErrBadSignature},
		"other time":      {secret, body, strings.Replace(h, "t=1700000000", "t=1700000001", 1), at, ErrBadSignature},
		"no signature":    {secret, body, "t=1700000000", at, ErrBadSignature},
		"garbage":         {secret, body, "nonsense", at, ErrBadSignature},
		"too old":         {secret, body, h, at.Add(10 * time.Minute), ErrStaleSignature},
		"from the future": {secret, body, h, at.Add(-10 * time.Minute), ErrStaleSignature},
	} {
		if err := VerifySignature(tc.secret, tc.body, tc.header, tc.now, 5*time.Minute); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	// Several v1 values (a secret being rotated): one match is enough.
	if err := VerifySignature(secret, body, "t=1700000000,v1=00,"+strings.SplitN(h, ",", 2)[1], at, 0); err != nil {
		t.Errorf("with two v1 values: %v", err)
	}
}

func TestWebhookPostsSignedDocuments(t *testing.T) {
	secret := []byte("hook-secret")
	var mu sync.Mutex
	var got []*http.Request
	var bodies [][]byte
	status := http.StatusNoContent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, b)
		code := status
		mu.Unlock()
		if code == http.StatusFound {
			http.Redirect(w, r, "/elsewhere", code)
			return
		}
		w.WriteHeader(code)
	}))
	defer srv.Close()
	w, err := NewWebhook(srv.URL+"/hook?x=1", secret, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	doc := []byte(`{"version":"0","id":"abc"}`)
	if errs := w.Deliver(context.Background(), []events.Delivery{{ID: "abc", Doc: doc, Attempt: 2}}); errs[0] != nil {
		t.Fatalf("delivery: %v", errs[0])
	}
	r, body := got[0], bodies[0]
	if r.Method != http.MethodPost || r.URL.Path != "/hook" || r.URL.RawQuery != "x=1" || string(body) != string(doc) {
		t.Errorf("request %s %s %s", r.Method, r.URL, body)
	}
	if r.Header.Get("Content-Type") != "application/json" || r.Header.Get(EventIDHeader) != "abc" || r.Header.Get(AttemptHeader) != "2" {
		t.Errorf("headers %v", r.Header)
	}
	if err := VerifySignature(secret, body, r.Header.Get(SignatureHeader), time.Now(), time.Minute); err != nil {
		t.Errorf("signature: %v", err)
	}
	for _, code := range []int{http.StatusInternalServerError, http.StatusBadRequest, http.StatusFound} {
		mu.Lock()
		status = code
		mu.Unlock()
		if errs := w.Deliver(context.Background(), []events.Delivery{{ID: "abc", Doc: doc, Attempt: 1}}); errs[0] == nil {
			t.Errorf("HTTP %d taken as delivered", code)
		}
	}
	if n := len(got); n != 4 {
		t.Errorf("%d requests, want 4 (a redirect is not followed)", n)
	}
	if w.BatchSize() != 1 || !strings.HasPrefix(w.Name(), "webhook ") {
		t.Errorf("BatchSize %d, Name %q", w.BatchSize(), w.Name())
	}
}

func TestWebhookShowsNoSecret(t *testing.T) {
	// Receivers put secrets in the user info, the path (Slack-style hook
	// URLs) and the query (?token=): logs and metrics show none of them.
	w, err := NewWebhook("https://user:pass@hooks.example:8443/services/T0/B0/hooksecret?token=querysecret", []byte("k"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"pass", "hooksecret", "querysecret", "user"} {
		if strings.Contains(w.String(), secret) {
			t.Errorf("String() = %q shows %q", w.String(), secret)
		}
	}
	if w.String() != "webhook https://hooks.example:8443" {
		t.Errorf("String() = %q, want the scheme and host", w.String())
	}
	for _, bad := range []string{"", "ftp://x/y", "/relative", "http://"} {
		if _, err := NewWebhook(bad, []byte("k"), time.Second); err == nil {
			t.Errorf("NewWebhook(%q) accepted", bad)
		}
	}
	if _, err := NewWebhook("https://x/y", nil, time.Second); err == nil {
		t.Error("a webhook without secret accepted")
	}
}

// fakeEventBridge decodes PutEvents as AWS's endpoint receives it:
// awsJson1_1, X-Amz-Target AWSEvents.PutEvents, SigV4 for "events".
type fakeEventBridge struct {
	t        *testing.T
	verifier *sigv4.Verifier
	mu       sync.Mutex
	entries  []map[string]any
	// refuse returns the error code for an entry ("" to take it).
	refuse func(entry map[string]any) string
}

func (f *fakeEventBridge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if _, err := f.verifier.Verify(r, body); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	if r.Header.Get("X-Amz-Target") != "AWSEvents.PutEvents" || r.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		http.Error(w, "not PutEvents", http.StatusBadRequest)
		return
	}
	var in struct{ Entries []map[string]any }
	if err := json.Unmarshal(body, &in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	type result struct {
		EventId      string `json:",omitempty"`
		ErrorCode    string `json:",omitempty"`
		ErrorMessage string `json:",omitempty"`
	}
	out := struct {
		FailedEntryCount int
		Entries          []result
	}{}
	f.mu.Lock()
	for _, e := range in.Entries {
		if code := f.refuse(e); code != "" {
			out.FailedEntryCount++
			out.Entries = append(out.Entries, result{ErrorCode: code, ErrorMessage: "try again"})
			continue
		}
		f.entries = append(f.entries, e)
		out.Entries = append(out.Entries, result{EventId: events.NewID()})
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(out)
}

func TestEventBridgePutEvents(t *testing.T) {
	fake := &fakeEventBridge{t: t, verifier: &sigv4.Verifier{Service: "events", Region: "eu-west-1",
		Credentials: []sigv4.Credential{{AccessKeyID: "AKIDEVENTS", SecretAccessKey: "secret", AccountID: "123456789012"}}}}
	refused := map[string]bool{}
	fake.refuse = func(e map[string]any) string {
		// The first sight of the second event is refused.
		if strings.Contains(e["Detail"].(string), `"participant_id":"1"`) && !refused["1"] {
			refused["1"] = true
			return "InternalFailure"
		}
		return ""
	}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	eb, err := NewEventBridge(EventBridgeConfig{Endpoint: srv.URL, Region: "eu-west-1", Bus: "rostrum-bus", Source: "rostrum.ivs",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEVENTS", "secret", "")})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(eb.String(), "secret") || eb.BatchSize() != 10 {
		t.Errorf("String %q, BatchSize %d", eb.String(), eb.BatchSize())
	}
	b := eventstest.NewBus(t, events.Config{Sinks: []events.SinkConfig{{Sink: eb}}})
	var sent []*events.Event
	for i := range 3 {
		ev := eventstest.Update(i, i) // three stages: one PutEvents call can carry them all
		sent = append(sent, ev)
		eventstest.Publish(t, b, ev)
	}
	testutil.Eventually(t, "three entries", func() bool { fake.mu.Lock(); defer fake.mu.Unlock(); return len(fake.entries) == 3 })
	if !refused["1"] {
		t.Error("the refusal was not exercised")
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	byDetail := map[string]map[string]any{}
	for _, e := range fake.entries {
		byDetail[e["Detail"].(string)] = e
	}
	for _, ev := range sent {
		e := byDetail[string(ev.Detail)]
		if e == nil {
			t.Fatalf("no entry with detail %s", ev.Detail)
		}
		res, _ := e["Resources"].([]any)
		if e["Source"] != "rostrum.ivs" || e["DetailType"] != "IVS Stage Update" || e["EventBusName"] != "rostrum-bus" ||
			len(res) != 1 || res[0] != ev.Resources[0] {
			t.Errorf("entry %v", e)
		}
		// Time is epoch seconds on the awsJson wire.
		if sec, ok := e["Time"].(float64); !ok || int64(sec) != eventstest.FixedTime.Unix() {
			t.Errorf("Time %v, want %d", e["Time"], eventstest.FixedTime.Unix())
		}
	}
}

func TestEventBridgeFailsWholeBatchOnTransportError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"__type":"InternalException","message":"boom"}`)
	}))
	defer srv.Close()
	eb, err := NewEventBridge(EventBridgeConfig{Endpoint: srv.URL, Region: "us-east-1", Bus: "b",
		Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")})
	if err != nil {
		t.Fatal(err)
	}
	errs := eb.Deliver(context.Background(), []events.Delivery{{ID: "1", Doc: eventstest.Update(0, 0).Marshal()}, {ID: "2", Doc: []byte("not json")}})
	if errs[0] == nil || errs[1] == nil {
		t.Errorf("errors %v", errs)
	}
	if _, err := NewEventBridge(EventBridgeConfig{Region: "us-east-1"}); err == nil {
		t.Error("a config without bus accepted")
	}
}

// A failed delivery's error is logged and kept in the outbox: it names the
// webhook without the secrets of its URL.
func TestWebhookErrorsShowNoSecret(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close() // nothing listens there any more: the POST fails to connect
	w, err := NewWebhook(addr+"/hooks/pathsecret?token=querysecret", []byte("k"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	errs := w.Deliver(context.Background(), []events.Delivery{{ID: "1", Doc: []byte(`{}`), Attempt: 1}})
	if errs[0] == nil {
		t.Fatal("a POST to a closed port succeeded")
	}
	if msg := errs[0].Error(); strings.Contains(msg, "pathsecret") || strings.Contains(msg, "querysecret") || !strings.Contains(msg, addr) {
		t.Errorf("error %q: want the scheme and host, no secret", msg)
	}
}

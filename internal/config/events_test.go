package config

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

func parseEventFlags(t *testing.T, env map[string]string, args ...string) (*Config, error) {
	t.Helper()
	return Parse(args, func(k string) string { return env[k] }, io.Discard)
}

func TestEventFlags(t *testing.T) {
	c, err := parseEventFlags(t, nil,
		"--event-webhook", "https://a.example/hook",
		"--event-webhook", `http://127.0.0.1:9/x {"detail-type":["Rostrum Stage Activity"]}`,
		"--event-webhook-secret", "k",
		"--event-bridge-bus", "bus", "--event-bridge-endpoint", "http://127.0.0.1:4010", "--event-retry-initial", "10ms")
	if err != nil {
		t.Fatal(err)
	}
	hooks := c.Events.WebhookList()
	if len(hooks) != 2 || hooks[0].URL != "https://a.example/hook" || hooks[0].Pattern != "" ||
		hooks[1].URL != "http://127.0.0.1:9/x" || hooks[1].Pattern != `{"detail-type":["Rostrum Stage Activity"]}` {
		t.Errorf("webhooks %+v", hooks)
	}
	if c.Events.RetryInitial != 10*time.Millisecond || c.Events.QueueMax != 10000 || c.Events.BridgeSource != "aws.ivs" {
		t.Errorf("events %+v", c.Events)
	}
}

// ROSTRUM_EVENT_WEBHOOK holds one webhook per line; --event-webhook flags
// replace them, as flags win over the environment.
func TestEventWebhooksFromEnvironment(t *testing.T) {
	env := map[string]string{"ROSTRUM_EVENT_WEBHOOK": "https://a.example/1\nhttps://a.example/2", "ROSTRUM_EVENT_WEBHOOK_SECRET": "k"}
	c, err := parseEventFlags(t, env)
	if err != nil {
		t.Fatal(err)
	}
	if h := c.Events.WebhookList(); len(h) != 2 || h[1].URL != "https://a.example/2" {
		t.Errorf("from the environment: %+v", h)
	}
	c, err = parseEventFlags(t, env, "--event-webhook", "https://b.example/1", "--event-webhook", "https://b.example/2")
	if err != nil {
		t.Fatal(err)
	}
	if h := c.Events.WebhookList(); len(h) != 2 || h[0].URL != "https://b.example/1" || h[1].URL != "https://b.example/2" {
		t.Errorf("flags over the environment: %+v", h)
	}
}

func TestEventFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--event-webhook", "https://a.example/x"}, "--event-webhook-secret"},
		{[]string{"--event-webhook", "ftp://a/x", "--event-webhook-secret", "k"}, "absolute http or https"},
		{[]string{"--event-webhook", "https://a/x {nope", "--event-webhook-secret", "k"}, "event pattern"},
		{[]string{"--event-webhook", "https://a/x", "--event-webhook", "https://a/x", "--event-webhook-secret", "k"}, "given twice"},
		{[]string{"--event-bridge-endpoint", "nope"}, "--event-bridge-endpoint"},
		{[]string{"--event-bridge-access-key-id", "a"}, "go together"},
		{[]string{"--event-bridge-pattern", "[]"}, "--event-bridge-pattern"},
		{[]string{"--event-queue-max", "-1"}, "--event-queue-max"},
		{[]string{"--event-retry-initial", "2m", "--event-retry-max", "1m"}, "--event-retry-initial"},
		{[]string{"--event-retry-for", "-1s"}, "--event-retry-for"},
	} {
		_, err := parseEventFlags(t, nil, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error about %s", tc.args, err, tc.want)
		}
	}
}

func TestHelpDocumentsEventFlags(t *testing.T) {
	var out bytes.Buffer
	Parse([]string{"--help"}, func(string) string { return "" }, &out)
	for _, f := range []string{"-event-webhook", "-event-webhook-secret", "-event-bridge-bus", "-event-bridge-endpoint",
		"-event-bridge-region", "-event-bridge-access-key-id", "-event-bridge-secret-access-key", "-event-bridge-source",
		"-event-bridge-pattern", "-event-stream-token", "-event-queue-max", "-event-retry-initial", "-event-retry-max", "-event-retry-for"} {
		if !strings.Contains(out.String(), f+" ") {
			t.Errorf("--help does not list %s", f)
		}
	}
}

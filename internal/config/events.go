package config

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/rostrum-dev/rostrum/internal/events"
)

// Events configures the event bus's sinks (docs/events.md).
type Events struct {
	// Webhooks are "URL" or "URL PATTERN" (an EventBridge event pattern
	// after the first space), one per --event-webhook.
	Webhooks      stringList
	WebhookSecret string

	BridgeBus             string // empty: no EventBridge sink
	BridgeEndpoint        string
	BridgeRegion          string
	BridgeAccessKeyID     string
	BridgeSecretAccessKey string
	BridgeSource          string
	BridgePattern         string

	StreamToken string

	QueueMax     int
	RetryInitial time.Duration
	RetryMax     time.Duration
	RetryFor     time.Duration
}

// Webhook is one --event-webhook.
type Webhook struct {
	URL     string
	Pattern string // "" for IVS's detail-types
}

// WebhookList parses the --event-webhook values.
func (e *Events) WebhookList() []Webhook {
	var out []Webhook
	for _, v := range e.Webhooks.vals {
		u, pattern, _ := strings.Cut(strings.TrimSpace(v), " ")
		out = append(out, Webhook{URL: u, Pattern: strings.TrimSpace(pattern)})
	}
	return out
}

func (c *Config) eventFlagDefs(fs *flag.FlagSet) {
	e := &c.Events
	fs.Var(&e.Webhooks, "event-webhook", "deliver events to `URL` as signed HTTP POSTs, retried until delivered (repeatable; \"URL PATTERN\" adds an EventBridge event pattern, e.g. 'https://app/hook {\"detail-type\":[\"IVS Stage Update\",\"Rostrum Stage Activity\"]}'; without one, IVS's detail-types)")
	fs.StringVar(&e.WebhookSecret, "event-webhook-secret", "", "`key` of the HMAC-SHA256 Rostrum-Signature header of webhook deliveries (required with --event-webhook)")
	fs.StringVar(&e.BridgeBus, "event-bridge-bus", "", "also send events with PutEvents to this EventBridge `bus` (name or ARN; empty: off)")
	fs.StringVar(&e.BridgeEndpoint, "event-bridge-endpoint", "", "PutEvents endpoint `URL` of an EventBridge-compatible service (default: AWS's for --event-bridge-region)")
	fs.StringVar(&e.BridgeRegion, "event-bridge-region", "", "region of the EventBridge bus (default: --region)")
	fs.StringVar(&e.BridgeAccessKeyID, "event-bridge-access-key-id", "", "access key for PutEvents (default: AWS_ACCESS_KEY_ID)")
	fs.StringVar(&e.BridgeSecretAccessKey, "event-bridge-secret-access-key", "", "secret key for PutEvents (default: AWS_SECRET_ACCESS_KEY; AWS_SESSION_TOKEN is used with them)")
	fs.StringVar(&e.BridgeSource, "event-bridge-source", events.Source, "`source` of the PutEvents entries (AWS reserves aws.* for its own services: with AWS itself, use e.g. rostrum.ivs)")
	fs.StringVar(&e.BridgePattern, "event-bridge-pattern", "", "EventBridge event `pattern` (JSON) of the events sent with PutEvents (default: IVS's detail-types)")
	fs.StringVar(&e.StreamToken, "event-stream-token", "", "bearer `token` that opens the live event stream GET /v1/events to every account's events (SigV4 with the API credentials always opens it to the account's)")
	fs.IntVar(&e.QueueMax, "event-queue-max", 10000, "undelivered events kept per sink; beyond it, new events are dropped for that sink, logged and counted (0 = unbounded)")
	fs.DurationVar(&e.RetryInitial, "event-retry-initial", events.DefaultRetry.Initial, "first retry of a failed delivery after about this long, doubling each time")
	fs.DurationVar(&e.RetryMax, "event-retry-max", events.DefaultRetry.Max, "longest wait between retries of a delivery")
	fs.DurationVar(&e.RetryFor, "event-retry-for", events.DefaultRetry.For, "give up on (drop, log and count) an event not delivered within this long (0 = never)")
}

func (c *Config) validateEvents() error {
	e := &c.Events
	var errs []error
	hooks := e.WebhookList()
	seen := map[string]bool{}
	for _, h := range hooks {
		u, err := url.Parse(h.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--event-webhook %q: must be an absolute http or https URL", h.URL))
		}
		if seen[h.URL] {
			errs = append(errs, fmt.Errorf("--event-webhook %q: given twice", h.URL))
		}
		seen[h.URL] = true
		if _, err := events.SinkPattern(h.Pattern); err != nil {
			errs = append(errs, fmt.Errorf("--event-webhook %q: %v", h.URL, err))
		}
	}
	if len(hooks) > 0 && e.WebhookSecret == "" {
		errs = append(errs, errors.New("--event-webhook needs --event-webhook-secret to sign deliveries with"))
	}
	if e.BridgeEndpoint != "" {
		if u, err := url.Parse(e.BridgeEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--event-bridge-endpoint %q: must be an absolute http or https URL", e.BridgeEndpoint))
		}
	}
	if e.BridgeRegion != "" && !regionRE.MatchString(e.BridgeRegion) {
		errs = append(errs, fmt.Errorf("--event-bridge-region %q: must be lower-case letters, digits and dashes", e.BridgeRegion))
	}
	if (e.BridgeAccessKeyID == "") != (e.BridgeSecretAccessKey == "") {
		errs = append(errs, errors.New("--event-bridge-access-key-id and --event-bridge-secret-access-key go together"))
	}
	if e.BridgeSource == "" {
		errs = append(errs, errors.New("--event-bridge-source must not be empty"))
	}
	if _, err := events.SinkPattern(e.BridgePattern); err != nil {
		errs = append(errs, fmt.Errorf("--event-bridge-pattern: %v", err))
	}
	if e.QueueMax < 0 {
		errs = append(errs, fmt.Errorf("--event-queue-max %d: must not be negative", e.QueueMax))
	}
	if e.RetryInitial <= 0 || e.RetryMax < e.RetryInitial {
		errs = append(errs, fmt.Errorf("--event-retry-initial %v, --event-retry-max %v: need 0 < initial <= max", e.RetryInitial, e.RetryMax))
	}
	if e.RetryFor < 0 {
		errs = append(errs, fmt.Errorf("--event-retry-for %v: must not be negative", e.RetryFor))
	}
	return errors.Join(errs...)
}

// stringList is a repeatable flag. Its environment variable holds one value
// per line; values given as flags replace the environment's, as flags win
// over the environment everywhere else.
type stringList struct {
	vals    []string
	fromEnv bool // vals came from the environment
}

func (l *stringList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(l.vals, "\n")
}

func (l *stringList) Set(v string) error {
	if l.fromEnv {
		l.vals, l.fromEnv = nil, false
	}
	for _, line := range strings.Split(v, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			l.vals = append(l.vals, line)
		}
	}
	return nil
}

// markEnvironment marks what the environment set in repeatable flags, so
// that the command line replaces it. Parse calls it between the two.
func markEnvironment(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		if l, ok := f.Value.(*stringList); ok && len(l.vals) > 0 {
			l.fromEnv = true
		}
	})
}

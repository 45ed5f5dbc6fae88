package sink

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/rostrum-dev/rostrum/internal/events"
)

var _ events.Sink = (*EventBridge)(nil)

// EventBridgeConfig configures an EventBridge sink.
type EventBridgeConfig struct {
	// Endpoint is the PutEvents endpoint; empty is AWS's for Region.
	Endpoint string
	Region   string
	// Credentials sign the requests (SigV4, signing name "events").
	Credentials aws.CredentialsProvider
	// Bus is the event bus name or ARN.
	Bus string
	// Source is the entries' source; empty is "aws.ivs". AWS reserves
	// sources that begin with "aws." for its own services, so sending to
	// AWS's EventBridge itself needs another (e.g. "rostrum.ivs").
	Source string
	// Timeout bounds one PutEvents call.
	Timeout time.Duration
}

// EventBridge delivers events with PutEvents (up to 10 per call) through
// aws-sdk-go-v2's EventBridge client, to AWS or any endpoint that speaks its
// protocol. An entry the endpoint refuses is retried alone.
//
// The envelope's id, account and region are EventBridge's to assign: a
// consumer of the bus sees the bus's, not Rostrum's. Everything else
// (detail-type, source, resources, time, detail) is carried over.
type EventBridge struct {
	cfg    EventBridgeConfig
	client *eventbridge.Client
	http   *http.Client
}

// NewEventBridge returns an EventBridge sink.
func NewEventBridge(cfg EventBridgeConfig) (*EventBridge, error) {
	if cfg.Bus == "" || cfg.Region == "" {
		return nil, errors.New("EventBridge needs a bus name and a region")
	}
	if cfg.Credentials == nil {
		return nil, errors.New("EventBridge needs credentials")
	}
	if cfg.Source == "" {
		cfg.Source = events.Source
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: cfg.Timeout}
	client := eventbridge.New(eventbridge.Options{
		Region:           cfg.Region,
		Credentials:      cfg.Credentials,
		HTTPClient:       hc,
		RetryMaxAttempts: 1, // the bus retries, with its own backoff
	}, func(o *eventbridge.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return &EventBridge{cfg: cfg, client: client, http: hc}, nil
}

// Name implements Sink.
func (e *EventBridge) Name() string {
	ep := e.cfg.Endpoint
	if ep == "" {
		ep = "aws"
	}
	return fmt.Sprintf("eventbridge %s %s %s", ep, e.cfg.Region, e.cfg.Bus)
}

// String names the sink in logs and metrics: the endpoint's scheme and
// host only (never credentials, nor anything in its path or query).
func (e *EventBridge) String() string {
	ep := "aws"
	if u, err := url.Parse(e.cfg.Endpoint); err == nil && u.Host != "" {
		ep = u.Scheme + "://" + u.Host
	} else if e.cfg.Endpoint != "" {
		ep = "(endpoint)"
	}
	return fmt.Sprintf("eventbridge %s %s %s", ep, e.cfg.Region, e.cfg.Bus)
}

// CloseIdleConnections closes the connections kept for the next call.
func (e *EventBridge) CloseIdleConnections() { e.http.CloseIdleConnections() }

// BatchSize implements Sink: PutEvents takes at most 10 entries.
func (e *EventBridge) BatchSize() int { return 10 }

// Deliver implements Sink.
func (e *EventBridge) Deliver(ctx context.Context, batch []events.Delivery) []error {
	errs := make([]error, len(batch))
	var entries []types.PutEventsRequestEntry
	var index []int // entries[i] is batch[index[i]]
	for i, d := range batch {
		ev, err := events.Parse(d.Doc)
		if err != nil {
			errs[i] = fmt.Errorf("not an event document: %w", err)
			continue
		}
		entry := types.PutEventsRequestEntry{
			EventBusName: aws.String(e.cfg.Bus),
			Source:       aws.String(e.cfg.Source),
			DetailType:   aws.String(ev.DetailType),
			Detail:       aws.String(string(ev.Detail)),
			Resources:    ev.Resources,
		}
		if t, err := time.Parse(time.RFC3339, ev.Time); err == nil {
			entry.Time = aws.Time(t)
		}
		entries = append(entries, entry)
		index = append(index, i)
	}
	if len(entries) == 0 {
		return errs
	}
	out, err := e.client.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
	if err != nil {
		for _, i := range index {
			errs[i] = err
		}
		return errs
	}
	for k, i := range index {
		if k >= len(out.Entries) {
			errs[i] = errors.New("PutEvents answered fewer entries than it was sent")
			continue
		}
		if r := out.Entries[k]; r.ErrorCode != nil {
			errs[i] = fmt.Errorf("PutEvents refused the entry: %s: %s", aws.ToString(r.ErrorCode), aws.ToString(r.ErrorMessage))
		}
	}
	return errs
}

package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/rostrum-dev/rostrum/internal/config"
	"github.com/rostrum-dev/rostrum/internal/events"
	"github.com/rostrum-dev/rostrum/internal/events/sink"
	"github.com/rostrum-dev/rostrum/internal/store"
)

// webhookTimeout bounds one webhook delivery attempt.
const webhookTimeout = 10 * time.Second

// startEventBus builds the event bus and its sinks from the configuration
// and starts delivering (events left in the outbox by the last run first).
func startEventBus(ctx context.Context, cfg *config.Config, st store.Store, log *slog.Logger, opts ...func(*events.Config)) (*events.Bus, error) {
	ec := cfg.Events
	var sinks []events.SinkConfig
	for _, h := range ec.WebhookList() {
		w, err := sink.NewWebhook(h.URL, []byte(ec.WebhookSecret), webhookTimeout)
		if err != nil {
			return nil, err
		}
		p, err := events.SinkPattern(h.Pattern)
		if err != nil {
			return nil, fmt.Errorf("--event-webhook %s: %w", w, err)
		}
		sinks = append(sinks, events.SinkConfig{Sink: w, Pattern: p})
	}
	if ec.BridgeBus != "" {
		region := ec.BridgeRegion
		if region == "" {
			region = cfg.Region
		}
		id, secret, token := ec.BridgeAccessKeyID, ec.BridgeSecretAccessKey, ""
		if id == "" {
			id, secret, token = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN")
		}
		if id == "" || secret == "" {
			return nil, fmt.Errorf("--event-bridge-bus needs credentials: --event-bridge-access-key-id and --event-bridge-secret-access-key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
		}
		eb, err := sink.NewEventBridge(sink.EventBridgeConfig{
			Endpoint:    ec.BridgeEndpoint,
			Region:      region,
			Credentials: credentials.NewStaticCredentialsProvider(id, secret, token),
			Bus:         ec.BridgeBus,
			Source:      ec.BridgeSource,
		})
		if err != nil {
			return nil, err
		}
		p, err := events.SinkPattern(ec.BridgePattern)
		if err != nil {
			return nil, fmt.Errorf("--event-bridge-pattern: %w", err)
		}
		sinks = append(sinks, events.SinkConfig{Sink: eb, Pattern: p})
	}
	bc := events.Config{
		Store:    st,
		Sinks:    sinks,
		QueueMax: ec.QueueMax,
		Retry:    events.Retry{Initial: ec.RetryInitial, Max: ec.RetryMax, For: ec.RetryFor},
		Logger:   log,
	}
	for _, o := range opts {
		o(&bc)
	}
	bus, err := events.NewBus(bc)
	if err != nil {
		return nil, err
	}
	if err := bus.Start(ctx); err != nil {
		bus.Close()
		return nil, err
	}
	for _, sc := range sinks {
		log.Info("event sink", "sink", sc.Sink.(fmt.Stringer).String(), "pattern", sc.Pattern.String())
	}
	return bus, nil
}

// Package sink holds the event bus's sinks: signed webhooks and an
// EventBridge PutEvents client. Each implements events.Sink; the server
// builds them from its configuration and hands them to the bus.
package sink

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rostrum-dev/rostrum/internal/events"
)

// The headers of a webhook delivery.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>", the
	// HMAC keyed with the webhook secret over "<t>.<body>". The time is the
	// attempt's, so a retry hours later still passes a receiver's freshness
	// check; the event id (in the body and EventIDHeader) is what receivers
	// deduplicate on.
	SignatureHeader = "Rostrum-Signature"
	EventIDHeader   = "Rostrum-Event-Id"
	AttemptHeader   = "Rostrum-Delivery-Attempt"
)

// Webhook delivers each event as an HTTP POST of its document
// (application/json) to a URL. Any 2xx answer is a delivery; anything else,
// a redirect included, is a failure to retry.
type Webhook struct {
	url     string
	display string
	secret  []byte
	client  *http.Client
}

var _ events.Sink = (*Webhook)(nil)

// NewWebhook returns a webhook sink for an http or https URL, signing with
// secret; timeout bounds one attempt.
func NewWebhook(rawURL string, secret []byte, timeout time.Duration) (*Webhook, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook %q: must be an absolute http or https URL", rawURL)
	}
	if len(secret) == 0 {
		return nil, errors.New("a webhook needs a secret to sign with")
	}
	return &Webhook{
		url: rawURL,
		// Only the scheme and host are shown: a webhook's path and query
		// often carry the receiver's secret (Slack-style hook URLs, ?token=).
		display: "webhook " + u.Scheme + "://" + u.Host,
		secret:  secret,
		client: &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			Timeout:   timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}, nil
}

// Name implements Sink.
func (w *Webhook) Name() string { return "webhook " + w.url }

// String names the webhook in logs and metrics without anything that may be
// secret: no user info, path or query.
func (w *Webhook) String() string { return w.display }

// CloseIdleConnections closes the connections kept for the next delivery;
// the bus calls it when it closes.
func (w *Webhook) CloseIdleConnections() { w.client.CloseIdleConnections() }

// BatchSize implements Sink: one event per request.
func (w *Webhook) BatchSize() int { return 1 }

// Deliver implements Sink.
func (w *Webhook) Deliver(ctx context.Context, batch []events.Delivery) []error {
	errs := make([]error, len(batch))
	for i, d := range batch {
		errs[i] = w.post(ctx, d)
	}
	return errs
}

func (w *Webhook) post(ctx context.Context, d events.Delivery) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(d.Doc))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Rostrum-Events/1")
	req.Header.Set(EventIDHeader, d.ID)
	req.Header.Set(AttemptHeader, strconv.Itoa(d.Attempt))
	req.Header.Set(SignatureHeader, Sign(w.secret, d.Doc, time.Now()))
	resp, err := w.client.Do(req)
	if err != nil {
		// The client's error quotes the whole URL, secrets included; the
		// error is logged and kept in the outbox, so only the display
		// name goes with it.
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("POST to %s: %w", w.display, ue.Err)
		}
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// Sign returns the signature header's value for a body sent at t.
func Sign(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Errors of VerifySignature.
var (
	ErrBadSignature   = errors.New("the webhook signature does not match")
	ErrStaleSignature = errors.New("the webhook signature's time is outside the tolerance")
)

// VerifySignature checks a webhook request as a receiver written in Go
// would: the header's HMAC over "<t>.<body>" with the secret, and t within
// tolerance of now (0: any time).
func VerifySignature(secret, body []byte, header string, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrBadSignature
	}
	want := mac(secret, ts, body)
	ok := false
	for _, s := range sigs {
		ok = ok || hmac.Equal(s, want)
	}
	if !ok {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); tolerance > 0 && (d > tolerance || d < -tolerance) {
		return ErrStaleSignature
	}
	return nil
}

package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rostrum-dev/rostrum/internal/config"
	"github.com/rostrum-dev/rostrum/internal/rtclient"
	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// scrape reads a /metrics page with Prometheus's own text parser.
type scrape struct {
	raw      string
	families map[string]*dto.MetricFamily
}

func scrapeMetrics(t *testing.T, url string) scrape {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("the metrics do not parse: %v\n%s", err, body)
	}
	return scrape{raw: string(body), families: fams}
}

// value is the value of the series with exactly these labels (a
// histogram's sample count), and whether it exists.
func (s scrape) value(name string, labels ...string) (float64, bool) {
	f := s.families[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func hasLabels(m *dto.Metric, kv []string) bool {
	if len(m.Label) != len(kv)/2 {
		return false
	}
	for i := 0; i < len(kv); i += 2 {
		found := false
		for _, l := range m.Label {
			if l.GetName() == kv[i] && l.GetValue() == kv[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Real API calls, a real pion session and a webhook whose URL holds
// secrets: /metrics shows the requests, the media and the store moving,
// parses as Prometheus's format, and shows none of the webhook's secrets.
func TestMetricsAfterRealTraffic(t *testing.T) {
	f := fixtures(t)
	hooks := newHookReceiver(t)
	const pathSecret, querySecret = "T0PSECRETPATH", "QUERYSECRET42"
	ts := startServer(t, "", withWebhook(hooks.srv.URL+"/services/"+pathSecret+"?token="+querySecret, ""))
	metricsURL := ts.BaseURL + "/metrics"
	before := scrapeMetrics(t, metricsURL)
	c := ts.client()
	ctx := testContext(t)

	// The API: successes and an error.
	stage := newStage(t, c)
	if _, err := c.GetStage(bg, &ivsrealtime.GetStageInput{Arn: aws.String(stage)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetStage(bg, &ivsrealtime.GetStageInput{Arn: aws.String(stage + "nope")}); err == nil {
		t.Fatal("GetStage of a missing stage succeeded")
	}

	// The media plane: alice publishes, bob subscribes, loses packets
	// (which he NACKs) and asks for a keyframe.
	pubTok, pubID := newToken(t, c, stage, "alice")
	subTok, _ := newToken(t, c, stage, "bob", types.ParticipantTokenCapabilitySubscribe)
	joinEvents(t, ctx, pubTok)
	joinEvents(t, ctx, subTok)
	publish(t, ctx, pubTok, rtclient.PublishOptions{Audio: source(t, f.Opus), Video: source(t, f.VP8)})
	var seen atomic.Int64
	sub := subscribe(t, ctx, subTok, rtclient.SubscribeOptions{PublisherID: pubID, Drop: func(kind string, seq uint16) bool {
		return kind == "video" && seen.Add(1)%20 == 10
	}})
	if err := sub.WaitFrames(ctx, "video", 30); err != nil {
		t.Fatal(err)
	}
	if err := sub.SendPLI(); err != nil {
		t.Fatal(err)
	}
	hooks.waitFor(t, 1) // Participant Published

	var m scrape
	moved := func(name string, labels ...string) bool {
		v, ok := m.value(name, labels...)
		b, _ := before.value(name, labels...)
		return ok && v > b
	}
	testutil.Eventually(t, "the metrics to show the traffic", func() bool {
		m = scrapeMetrics(t, metricsURL)
		return moved("rostrum_api_requests_total", "operation", "CreateStage", "code", "200") &&
			moved("rostrum_api_requests_total", "operation", "GetStage", "code", "200") &&
			moved("rostrum_api_errors_total", "operation", "GetStage", "error_type", "ResourceNotFoundException") &&
			moved("rostrum_api_request_duration_seconds", "operation", "CreateParticipantToken") &&
			moved("rostrum_media_received_packets_total") && moved("rostrum_media_received_bytes_total") &&
			moved("rostrum_media_forwarded_packets_total") && moved("rostrum_media_forwarded_bytes_total") &&
			moved("rostrum_media_nacks_total", "direction", "downstream") &&
			moved("rostrum_media_keyframe_requests_total", "direction", "downstream") &&
			moved("rostrum_media_keyframe_requests_total", "direction", "upstream") &&
			moved("rostrum_media_loss_fraction", "direction", "upstream") &&
			moved("rostrum_media_join_seconds", "kind", "publish") &&
			moved("rostrum_media_join_seconds", "kind", "subscribe") &&
			moved("rostrum_media_forward_delay_seconds") &&
			moved("rostrum_store_operation_duration_seconds", "operation", "CreateResource") &&
			moved("rostrum_store_errors_total", "operation", "GetResource", "error", "not_found") &&
			moved("rostrum_events_published_total", "detail_type", "IVS Stage Update") &&
			moved("rostrum_events_delivered_total", "sink", "webhook "+strings.TrimSuffix(hooks.srv.URL, "/"))
	})
	for name, want := range map[string]float64{
		"rostrum_stages": 1, "rostrum_stage_sessions": 1, "rostrum_participants": 2,
		"rostrum_media_publishers": 1, "rostrum_media_subscribers": 1,
		// The subscriber (one publisher, one encoding a track) is on a
		// lean connection (--rtc-lean-subscribers, on by default).
		"rostrum_media_lean_subscribers": 1,
	} {
		if v, ok := m.value(name); !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	for _, n := range []string{"rostrum_media_forwarded_packets_total", "rostrum_media_received_packets_total"} {
		v, _ := m.value(n)
		t.Logf("%s = %v", n, v)
	}
	if _, ok := m.value("go_goroutines"); !ok {
		t.Error("no Go runtime metrics")
	}
	for _, secret := range []string{pathSecret, querySecret, hookSecret} {
		if strings.Contains(m.raw, secret) {
			t.Errorf("/metrics shows the webhook's secret %q", secret)
		}
	}
}

// With --metrics-listen, /metrics is served there and no longer on the
// main listener.
func TestMetricsOnTheirOwnListener(t *testing.T) {
	ts := startServer(t, "", func(c *config.Config) { c.HTTP.MetricsListen = "127.0.0.1:0" })
	if _, err := ts.client().ListStages(context.Background(), &ivsrealtime.ListStagesInput{}); err != nil {
		t.Fatal(err)
	}
	m := scrapeMetrics(t, "http://"+ts.MetricsAddr().String()+"/metrics")
	if v, _ := m.value("rostrum_api_requests_total", "operation", "ListStages", "code", "200"); v != 1 {
		t.Errorf("ListStages requests = %v, want 1", v)
	}
	resp, err := http.Get(ts.BaseURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Error("the main listener still serves /metrics")
	}
}

// --pprof serves Go's profiles on the metrics listener, never on the main
// one; without it the metrics listener has none.
func TestProfilesOnlyOnTheMetricsListener(t *testing.T) {
	get := func(url string) int {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	ts := startServer(t, "", func(c *config.Config) { c.HTTP.MetricsListen, c.HTTP.Pprof = "127.0.0.1:0", true })
	if code := get("http://" + ts.MetricsAddr().String() + "/debug/pprof/heap"); code != http.StatusOK {
		t.Errorf("heap profile on the metrics listener: %d", code)
	}
	if code := get(ts.BaseURL + "/debug/pprof/heap"); code == http.StatusOK {
		t.Error("the main listener serves profiles")
	}
	off := startServer(t, "", func(c *config.Config) { c.HTTP.MetricsListen = "127.0.0.1:0" })
	if code := get("http://" + off.MetricsAddr().String() + "/debug/pprof/heap"); code == http.StatusOK {
		t.Error("profiles served without --pprof")
	}
}

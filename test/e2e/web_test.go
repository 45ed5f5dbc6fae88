package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/rostrum-dev/rostrum/internal/config"
	"github.com/rostrum-dev/rostrum/internal/rtclient"
)

func httpDo(t *testing.T, method, url, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// The library and the demo are served by every server; the development
// token endpoint only when --dev-token-endpoint is set.
func TestDemoAndLibraryServedDevTokenEndpointOffByDefault(t *testing.T) {
	ts := startServer(t, "")
	status, h, body := httpDo(t, "GET", ts.BaseURL+"/demo/", "")
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(body, "demo.js") {
		t.Errorf("GET /demo/ = %d %s", status, h.Get("Content-Type"))
	}
	if status, h, _ := httpDo(t, "GET", ts.BaseURL+"/demo", ""); status != http.StatusMovedPermanently || h.Get("Location") != "/demo/" {
		t.Errorf("GET /demo = %d to %q", status, h.Get("Location"))
	}
	status, h, body = httpDo(t, "GET", ts.BaseURL+"/sdk/rostrum-stages.js", "")
	if status != 200 || h.Get("Content-Type") != "text/javascript; charset=utf-8" || h.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(body, "export class Stage") {
		t.Errorf("GET /sdk/rostrum-stages.js = %d %v", status, h)
	}
	if status, _, _ := httpDo(t, "GET", ts.BaseURL+"/sdk/nothing.js", ""); status != 404 {
		t.Errorf("GET /sdk/nothing.js = %d", status)
	}
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/dev/stages", ""},
		{"POST", "/dev/stages", `{"name":"x"}`},
		{"POST", "/dev/tokens", `{"stageArn":"arn:aws:ivs:us-east-1:123456789012:stage/abcdefghijkl"}`},
	} {
		status, _, body := httpDo(t, r.method, ts.BaseURL+r.path, r.body)
		if status != 404 || !strings.Contains(body, "--dev-token-endpoint") {
			t.Errorf("%s %s with the endpoint off = %d %s", r.method, r.path, status, body)
		}
	}
}

func TestDevTokenEndpointMintsWorkingTokens(t *testing.T) {
	ts := startServer(t, "", func(c *config.Config) { c.DevTokenEndpoint = true })
	// The API's constraints apply.
	if status, _, body := httpDo(t, "POST", ts.BaseURL+"/dev/stages", `{"name":"not a valid name!"}`); status != 400 || !strings.Contains(body, "ValidationException") {
		t.Errorf("invalid name = %d %s", status, body)
	}
	status, _, body := httpDo(t, "POST", ts.BaseURL+"/dev/stages", `{"name":"dev-room"}`)
	var created struct {
		Stage struct{ Arn, Name string }
	}
	if status != 200 || json.Unmarshal([]byte(body), &created) != nil || created.Stage.Name != "dev-room" {
		t.Fatalf("create = %d %s", status, body)
	}
	status, _, body = httpDo(t, "GET", ts.BaseURL+"/dev/stages", "")
	if status != 200 || !strings.Contains(body, created.Stage.Arn) {
		t.Errorf("list = %d %s", status, body)
	}
	status, _, body = httpDo(t, "POST", ts.BaseURL+"/dev/tokens", `{"stageArn":"`+created.Stage.Arn+`","userId":"alice","attributes":{"name":"Alice"}}`)
	var minted struct {
		ParticipantToken struct {
			Token, ParticipantId string
			Capabilities         []string
		}
	}
	if status != 200 || json.Unmarshal([]byte(body), &minted) != nil {
		t.Fatalf("token = %d %s", status, body)
	}
	if got := strings.Join(minted.ParticipantToken.Capabilities, ","); got != "PUBLISH,SUBSCRIBE" {
		t.Errorf("capabilities = %s, want PUBLISH,SUBSCRIBE by default", got)
	}
	// The token joins the stage.
	ctx := testContext(t)
	ev, err := rtclient.ConnectEvents(ctx, minted.ParticipantToken.Token)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	if _, err := ev.WaitState(ctx, func(s rtclient.StageState) bool {
		p, ok := s.Participant(minted.ParticipantToken.ParticipantId)
		return ok && p.UserID == "alice" && p.Attributes["name"] == "Alice"
	}); err != nil {
		t.Fatal(err)
	}
	if status, _, body := httpDo(t, "POST", ts.BaseURL+"/dev/tokens", `{"stageArn":"arn:aws:ivs:us-east-1:123456789012:stage/abcdefghijkl"}`); status != 404 || !strings.Contains(body, "ResourceNotFoundException") {
		t.Errorf("token for a missing stage = %d %s", status, body)
	}
}

func TestDevTokenEndpointFlag(t *testing.T) {
	cfg, err := config.Parse(nil, func(k string) string { return map[string]string{"ROSTRUM_DEV_TOKEN_ENDPOINT": "true"}[k] }, io.Discard)
	if err != nil || !cfg.DevTokenEndpoint {
		t.Errorf("ROSTRUM_DEV_TOKEN_ENDPOINT=true: %v, %v", cfg.DevTokenEndpoint, err)
	}
	cfg, err = config.Parse(nil, func(string) string { return "" }, io.Discard)
	if err != nil || cfg.DevTokenEndpoint {
		t.Errorf("default: %v, %v", cfg.DevTokenEndpoint, err)
	}
}

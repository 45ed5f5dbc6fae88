package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/rostrum-dev/rostrum/internal/config"
	"github.com/rostrum-dev/rostrum/internal/rtclient"
)

// The browser tests run Rostrum's browser library, its demo page and the
// official IVS Web Broadcast SDK in headless Chromium (Debian's, driven by
// playwright-core). Their scripts live in test/browser and run on Node.js
// against a server this process starts; test/browser/install.sh (run by
// scripts/test.sh) installs Chromium and the npm packages. Without them the
// tests skip, except under CI, where they fail.

// browserDir is test/browser.
func browserDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "browser")
}

// needBrowser finds node, Chromium and the test harness's packages.
func needBrowser(t *testing.T) (node, dir string) {
	t.Helper()
	node = needTool(t, "node")
	dir = browserDir()
	chromium := os.Getenv("ROSTRUM_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	missing := ""
	if _, err := os.Stat(chromium); err != nil {
		missing = chromium
	} else if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		missing = "test/browser/node_modules (npm ci)"
	}
	if missing != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is needed for the browser tests and CI must have it: run test/browser/install.sh", missing)
		}
		t.Skipf("%s missing: run test/browser/install.sh", missing)
	}
	return node, dir
}

// nodeEnv is what the scripts are told of the server.
func nodeEnv(ts *testServer, extra ...string) []string {
	artifacts := filepath.Join(browserDir(), "..", "artifacts")
	env := append(os.Environ(),
		"ROSTRUM_URL="+ts.BaseURL,
		"ROSTRUM_ACCESS_KEY_ID="+ts.cfg.AccessKeyID,
		"ROSTRUM_SECRET_ACCESS_KEY="+ts.cfg.SecretAccessKey,
		"ROSTRUM_REGION="+ts.cfg.Region,
		"ROSTRUM_ARTIFACTS="+artifacts,
		// The AWS SDK's notice about Node.js versions is noise here.
		"AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true",
	)
	return append(env, extra...)
}

// runNodeTests runs one node:test file of test/browser against ts and fails
// the test with the runner's report if any of its tests fails.
func runNodeTests(t *testing.T, ts *testServer, files ...string) {
	t.Helper()
	runNodeTestsEnv(t, ts, nil, files...)
}

// runNodeTestsEnv is runNodeTests with more of the environment set.
func runNodeTestsEnv(t *testing.T, ts *testServer, env []string, files ...string) {
	t.Helper()
	node, dir := needBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	args := append([]string{"--test", "--test-reporter=spec", "--test-timeout=180000", "--test-concurrency=1"}, files...)
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = dir
	cmd.Env = nodeEnv(ts, env...)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test %s: %v\n%s", strings.Join(files, " "), err, out)
	}
	t.Logf("node --test %s:\n%s", strings.Join(files, " "), out)
}

// TestBrowserLibrary: two pages with Rostrum's library on one stage see and
// hear each other; ListParticipants shows both CONNECTED and published; mute
// changes cross; one leaves and the other gets the event while LEFT is
// recorded; subscribe by choice, unpublish, and reconnect after the events
// channel drops (test/browser/stage.test.mjs). Also the library as a
// package: served under /sdk/ to any origin, importable by name, typed
// (test/browser/package.test.mjs).
func TestBrowserLibrary(t *testing.T) {
	runNodeTests(t, startServer(t, ""), "package.test.mjs", "stage.test.mjs")
}

// TestBrowserDemoPage: the demo page at /demo/ in development mode, with
// screenshots under test/artifacts/ (test/browser/demo.test.mjs).
func TestBrowserDemoPage(t *testing.T) {
	ts := startServer(t, "", func(c *config.Config) { c.DevTokenEndpoint = true })
	runNodeTests(t, ts, "demo.test.mjs")
}

// TestBrowserOfficialSDKInterop: the official amazon-ivs-web-broadcast
// package, installed from npm at test time, joins a Rostrum stage with a
// Rostrum token and exchanges media with Rostrum's library
// (test/browser/interop.test.mjs).
func TestBrowserOfficialSDKInterop(t *testing.T) {
	_, dir := needBrowser(t)
	if _, err := os.Stat(filepath.Join(dir, ".official-sdk", "node_modules", "amazon-ivs-web-broadcast")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("the official IVS Web Broadcast SDK is not installed: run test/browser/install.sh")
		}
		t.Skip("the official IVS Web Broadcast SDK is not installed: run test/browser/install.sh")
	}
	runNodeTests(t, startServer(t, ""), "interop.test.mjs")
}

// TestBrowserTimeToFullQuality measures, on every run, how long after a
// Chromium publisher joins its video reaches a subscriber page at the size
// it captures, with Rostrum's library and with the official SDK publishing
// (test/browser/fullquality.test.mjs; the series is in the test's output
// and test/artifacts/fullquality-*.json). It asserts the figures are sound
// and that full size is reached in the end, not how fast.
func TestBrowserTimeToFullQuality(t *testing.T) {
	runNodeTests(t, startServer(t, ""), "fullquality.test.mjs")
}

// TestBrowserPublishesToGoSubscriber: a page publishes camera and microphone
// through Rostrum's library and a Go pion subscriber (internal/rtclient)
// receives its media.
func TestBrowserPublishesToGoSubscriber(t *testing.T) {
	node, dir := needBrowser(t)
	ts := startServer(t, "")
	c := ts.client()
	ctx := testContext(t)
	stage := newStage(t, c)
	pubTok, pubID := newToken(t, c, stage, "browser", types.ParticipantTokenCapabilityPublish, types.ParticipantTokenCapabilitySubscribe)
	subTok, _ := newToken(t, c, stage, "pion", types.ParticipantTokenCapabilitySubscribe)

	events, err := rtclient.ConnectEvents(ctx, subTok)
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()

	pctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(pctx, node, "publish.mjs")
	cmd.Dir = dir
	cmd.Env = nodeEnv(ts, "ROSTRUM_TOKEN="+pubTok)
	cmd.WaitDelay = 10 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	lines := bufio.NewScanner(stdout)
	var published struct {
		Published string          `json:"published"`
		Sent      json.RawMessage `json:"sent"`
		Error     string          `json:"error"`
	}
	var log strings.Builder
	for lines.Scan() {
		line := lines.Text()
		log.WriteString(line + "\n")
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &published) == nil && (published.Published != "" || published.Error != "") {
			break
		}
	}
	if published.Published != pubID {
		t.Fatalf("the page did not publish as %s: %+v\n%s%s", pubID, published, log.String(), stderr.String())
	}
	go io.Copy(io.Discard, stdout)
	t.Logf("the page sends %s", published.Sent)

	// The stage says the browser publishes.
	if _, err := events.WaitState(ctx, func(s rtclient.StageState) bool {
		p, ok := s.Participant(pubID)
		return ok && p.IsPublishing && p.UserID == "browser"
	}); err != nil {
		t.Fatalf("STAGE_STATE with the browser publishing: %v", err)
	}

	// The pion subscriber receives its audio and video.
	sub, err := rtclient.Subscribe(ctx, subTok, rtclient.SubscribeOptions{PublisherID: pubID, LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(ctx)
	for _, kind := range []string{"audio", "video"} {
		if err := sub.WaitFrames(ctx, kind, 50); err != nil {
			t.Fatalf("%s frames from the browser: %v (stats %+v)", kind, err, sub.Stats(kind))
		}
	}
	audio, video := sub.Stats("audio"), sub.Stats("video")
	if !strings.EqualFold(audio.MimeType, "audio/opus") {
		t.Errorf("audio codec %q, want Opus", audio.MimeType)
	}
	if video.Keyframes == 0 {
		t.Errorf("no keyframe among the video frames: %+v", video)
	}
	t.Logf("pion received from Chromium: audio %s (%d packets), video %s (%d frames, %d keyframes)",
		audio.MimeType, audio.Packets, video.MimeType, video.Frames, video.Keyframes)

	// The page leaves when told; the stage sees it go.
	stdin.Close()
	if _, err := events.WaitState(ctx, func(s rtclient.StageState) bool {
		_, ok := s.Participant(pubID)
		return !ok
	}); err != nil {
		t.Fatalf("STAGE_STATE without the browser: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("publish.mjs: %v\n%s", err, stderr.String())
	}
}

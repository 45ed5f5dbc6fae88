package rtclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// testTimeout bounds each test of concurrent code.
const testTimeout = 60 * time.Second

// testContext is a context that ends with the test or after testTimeout.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// makeToken builds an unsigned participant token with IVS's claim names. The
// client never verifies signatures, so any third part will do.
func makeToken(t *testing.T, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "ES384", "typ": "JWT"}) + "." + enc(claims) + "." +
		base64.RawURLEncoding.EncodeToString([]byte("not-a-signature"))
}

// stageToken is a publish+subscribe token for participant pid whose
// endpoints are whip and events.
func stageToken(t *testing.T, pid, whip, events string) string {
	t.Helper()
	now := time.Now().Unix()
	return makeToken(t, map[string]any{
		"exp": now + 3600, "iat": now, "jti": pid,
		"resource":     "arn:aws:ivs:us-west-2:123456789012:stage/AbCdEfGhIjKl",
		"topic":        "AbCdEfGhIjKl",
		"events_url":   events,
		"whip_url":     whip,
		"user_id":      "user-" + pid,
		"capabilities": map[string]bool{"allow_publish": true, "allow_subscribe": true},
		"version":      "0.0",
	})
}

// checkLeaks fails the test if, once everything the test registered with
// t.Cleanup has run, goroutines of pion, the websocket library or this
// package are still alive. Call it first in a test so that its cleanup runs
// last.
func checkLeaks(t *testing.T) {
	t.Helper()
	before := map[string]bool{}
	for _, g := range ourGoroutines() {
		before[goroutineID(g)] = true
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			var leaked []string
			for _, g := range ourGoroutines() {
				if !before[goroutineID(g)] {
					leaked = append(leaked, g)
				}
			}
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines leaked:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

func goroutineID(stack string) string {
	line, _, _ := strings.Cut(stack, "\n")
	id, _, _ := strings.Cut(strings.TrimPrefix(line, "goroutine "), " ")
	return id
}

// ourGoroutines returns the stacks of goroutines running code of pion, the
// websocket library or this package, other than the caller's own.
func ourGoroutines() []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "rtclient.ourGoroutines") {
			continue
		}
		if strings.Contains(g, "github.com/pion/") || strings.Contains(g, "github.com/coder/websocket") ||
			strings.Contains(g, "internal/rtclient.") {
			// The testing framework's own goroutines run test functions
			// of this package; only goroutines that are not a test's main
			// one count.
			if strings.Contains(g, "testing.tRunner") {
				continue
			}
			out = append(out, g)
		}
	}
	return out
}

var (
	fixturesOnce sync.Once
	fixturesDir  string
	fixturesVal  Fixtures
	fixturesErr  error
)

// fixtures returns the ffmpeg fixtures, made once per test binary. Without
// ffmpeg the test is skipped, unless CI is set: there it fails, since CI
// must install ffmpeg.
func fixtures(t *testing.T) Fixtures {
	t.Helper()
	fixturesOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rtclient-fixtures-")
		if err != nil {
			fixturesErr = err
			return
		}
		fixturesDir = dir
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		fixturesVal, fixturesErr = GenerateFixtures(ctx, dir)
	})
	if errors.Is(fixturesErr, ErrNoFFmpeg) {
		if os.Getenv("CI") != "" {
			t.Fatalf("ffmpeg is required in CI (apt-get install ffmpeg): %v", fixturesErr)
		}
		t.Skip("ffmpeg not installed: skipping a test that needs real encoded media (apt-get install ffmpeg)")
	}
	if fixturesErr != nil {
		t.Fatalf("generating fixtures: %v", fixturesErr)
	}
	return fixturesVal
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixturesDir != "" {
		_ = os.RemoveAll(fixturesDir)
	}
	os.Exit(code)
}

// assertPrefix checks that got is a prefix of want (the receiver may not
// have rebuilt the last frames yet) and at least min long.
func assertPrefix(t *testing.T, what string, got, want [][32]byte, min int) {
	t.Helper()
	if len(got) < min {
		t.Fatalf("%s: %d frames received, want at least %d", what, len(got), min)
	}
	if len(got) > len(want) {
		t.Fatalf("%s: %d frames received but only %d sent", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: frame %d differs: got %x, sent %x (of %d received, %d sent)", what, i, got[i][:6], want[i][:6], len(got), len(want))
		}
	}
}

// assertContiguous checks that got appears as a contiguous run inside want:
// what a receiver that joined mid-stream sees.
func assertContiguous(t *testing.T, what string, got, want [][32]byte, min int) {
	t.Helper()
	if len(got) < min {
		t.Fatalf("%s: %d frames received, want at least %d", what, len(got), min)
	}
	for off := 0; off+len(got) <= len(want); off++ {
		if want[off] != got[0] {
			continue
		}
		match := true
		for i := range got {
			if want[off+i] != got[i] {
				match = false
				break
			}
		}
		if match {
			return
		}
	}
	t.Fatalf("%s: the %d frames received are not a contiguous run of the %d sent", what, len(got), len(want))
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func short(h [32]byte) string { return fmt.Sprintf("%x", h[:4]) }

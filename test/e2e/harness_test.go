// Package e2e drives a real Rostrum server through the clients its users
// use: aws-sdk-go-v2, the aws CLI, raw SigV4-signed HTTP.
package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"

	"github.com/rostrum-dev/rostrum/internal/config"
	"github.com/rostrum-dev/rostrum/internal/ivs"
	"github.com/rostrum-dev/rostrum/internal/server"
)

const (
	testRegion  = "us-east-1"
	testAccount = "123456789012"
)

type testServer struct {
	*server.Server
	cfg *config.Config
}

// startServer runs a server on a free loopback port with its data in dir
// (a fresh temp dir when empty) and stops it when the test ends.
func startServer(t testing.TB, dir string, mutate ...func(*config.Config)) *testServer {
	t.Helper()
	level := slog.LevelWarn
	if os.Getenv("ROSTRUM_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	return startServerLogging(t, dir, slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}), mutate...)
}

// startServerLogging is startServer with the server's log going to h.
func startServerLogging(t testing.TB, dir string, h slog.Handler, mutate ...func(*config.Config)) *testServer {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cfg, err := config.Parse([]string{"--listen", "127.0.0.1:0", "--data-dir", dir, "--rtc-udp-port", "0", "--rtc-tcp-port", "0", "--rtc-listen-ip", "127.0.0.1", "--session-grace", "500ms"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	useTestDatabase(t, cfg) // postgres_test.go
	for _, m := range mutate {
		m(cfg)
	}
	log := slog.New(h)
	srv, err := server.Start(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: srv, cfg: cfg}
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

func (ts *testServer) stop(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ts.Shutdown(ctx) // a second call after an explicit stop is harmless
}

func (ts *testServer) awsConfig(accessKey, secret string) aws.Config {
	return aws.Config{
		Region:      testRegion,
		Credentials: credentials.NewStaticCredentialsProvider(accessKey, secret, ""),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}
}

// client is an aws-sdk-go-v2 ivsrealtime client pointed at the server with
// the development credentials.
func (ts *testServer) client() *ivsrealtime.Client {
	return ts.clientWith(ts.cfg.AccessKeyID, ts.cfg.SecretAccessKey)
}

func (ts *testServer) clientWith(accessKey, secret string) *ivsrealtime.Client {
	return ivsrealtime.NewFromConfig(ts.awsConfig(accessKey, secret), func(o *ivsrealtime.Options) {
		o.BaseEndpoint = aws.String(ts.BaseURL)
	})
}

// call sends a raw JSON request signed with SigV4 as AWS's clients sign it,
// for inputs that the SDK would refuse or could not express.
func (ts *testServer) call(t testing.TB, method, path string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, ts.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: ts.cfg.AccessKeyID, SecretAccessKey: ts.cfg.SecretAccessKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "ivs", testRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, out
}

var bg = context.Background()

// service is the in-process service, for recording what the media plane
// would record (sessions, participants, events) before it exists.
func (ts *testServer) service() *ivs.Service { return ts.Service }

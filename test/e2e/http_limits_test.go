package e2e

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/config"
	"github.com/rostrum-dev/rostrum/internal/rtclient"
	"github.com/rostrum-dev/rostrum/internal/server"
	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// withShortHTTPLimits makes the HTTP limits one second, so that the tests
// see them act without waiting for the defaults.
func withShortHTTPLimits(c *config.Config) {
	c.HTTP.ReadTimeout, c.HTTP.WriteTimeout, c.HTTP.IdleTimeout = time.Second, time.Second, time.Second
	c.Events.StreamToken = "dashboard-token"
}

// dialRaw opens a raw TCP connection to the server's HTTP listener.
func dialRaw(t *testing.T, ts *testServer) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", ts.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// closedByServer reports when the server closes conn: everything it sends
// is read and discarded until EOF (or a reset). The returned channel gets
// what was read. The read deadline only keeps a broken test from hanging.
func closedByServer(conn net.Conn) <-chan string {
	done := make(chan string, 1)
	go func() {
		conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		b, err := io.ReadAll(conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return // never closed: the receiver times out
		}
		done <- string(b)
	}()
	return done
}

func waitClosed(t *testing.T, what string, closed <-chan string) string {
	t.Helper()
	select {
	case got := <-closed:
		return got
	case <-time.After(60 * time.Second):
		t.Fatalf("the server never closed %s", what)
	}
	return ""
}

// A client that sends its request body a byte at a time is cut off; an
// idle keep-alive connection is closed; the events websocket and the live
// event stream outlive both limits and keep working.
func TestHTTPLimits(t *testing.T) {
	ts := startServer(t, "", withShortHTTPLimits)
	c := ts.client()
	ctx := testContext(t)

	// The long-lived routes, opened first.
	stage := newStage(t, c)
	tok, _ := newToken(t, c, stage, "alice")
	ws := joinEvents(t, ctx, tok)
	req, _ := http.NewRequest(http.MethodGet, ts.BaseURL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer dashboard-token")
	stream := openEventStream(t, req)
	testutil.Eventually(t, "the stream client", func() bool { return ts.Events.Stats().StreamClients == 1 })

	// Slowloris: headers promise a body that comes a byte at a time.
	slow := dialRaw(t, ts)
	slowClosed := closedByServer(slow)
	if _, err := io.WriteString(slow, "POST /ListStages HTTP/1.1\r\nHost: rostrum\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			if _, err := slow.Write([]byte("{")); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	// An idle keep-alive connection, after one request.
	idle := dialRaw(t, ts)
	if _, err := io.WriteString(idle, "GET /healthz HTTP/1.1\r\nHost: rostrum\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("healthz on a keep-alive connection: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	idleClosed := make(chan struct{})
	go func() {
		idle.SetReadDeadline(time.Now().Add(60 * time.Second))
		if _, err := br.ReadByte(); errors.Is(err, io.EOF) {
			close(idleClosed)
		}
	}()

	got := waitClosed(t, "the slow body's connection", slowClosed)
	if !strings.HasPrefix(got, "HTTP/1.1 408") && got != "" {
		t.Errorf("the slow body got %q, want a 408 or nothing", got)
	}
	select {
	case <-idleClosed:
	case <-time.After(60 * time.Second):
		t.Fatal("the idle keep-alive connection was never closed")
	}

	// Both limits have acted: the long-lived routes still work.
	tok2, pid2 := newToken(t, c, stage, "bob")
	joinEvents(t, ctx, tok2)
	if _, err := ws.WaitState(ctx, func(s rtclient.StageState) bool {
		for _, p := range s.Participants {
			if p.ID == pid2 {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatalf("the events websocket did not see bob join after the limits acted: %v", err)
	}
	// An event published now reaches the stream: it is still open.
	stage2, _, _ := recordStageLife(t, ts)
	for {
		select {
		case ev, ok := <-stream:
			if !ok {
				t.Fatal("the event stream ended after the limits acted")
			}
			if len(ev.Resources) > 0 && ev.Resources[0] == stage2 {
				return
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the event stream got nothing after the limits acted")
		}
	}
}

// A second server whose ports are taken says which flag moves each.
func TestSecondServerSaysWhichFlagMovesATakenPort(t *testing.T) {
	first := startServer(t, "", func(c *config.Config) { c.HTTP.MetricsListen = "127.0.0.1:0" })
	udp, tcp := first.MediaAddrs()
	port := func(a net.Addr) int { return int(a.(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()) }
	for _, tc := range []struct {
		flag   string
		mutate func(*config.Config)
	}{
		{"--listen", func(c *config.Config) { c.Listen = first.Addr().String() }},
		{"--rtc-udp-port", func(c *config.Config) { c.RTCUDPPort = port(udp) }},
		{"--rtc-tcp-port", func(c *config.Config) { c.RTCTCPPort = port(tcp) }},
		{"--metrics-listen", func(c *config.Config) { c.HTTP.MetricsListen = first.MetricsAddr().String() }},
	} {
		cfg, err := config.Parse([]string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--rtc-udp-port", "0", "--rtc-tcp-port", "0", "--rtc-listen-ip", "127.0.0.1"}, func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		tc.mutate(cfg)
		srv, err := server.Start(bg, cfg, slog.New(slog.DiscardHandler))
		if err == nil {
			srv.Shutdown(bg)
			t.Errorf("%s: a second server started on a taken port", tc.flag)
			continue
		}
		if !strings.Contains(err.Error(), "already in use") || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("%s: the error does not say which flag moves the port: %v", tc.flag, err)
		}
	}
}

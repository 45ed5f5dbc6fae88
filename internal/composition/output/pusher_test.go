package output

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/testutil"
	"github.com/rostrum-dev/rostrum/internal/testutil/rtmpserver"
)

func TestPusherDeliversOneConnection(t *testing.T) {
	for _, tls := range []bool{false, true} {
		name := "rtmp"
		if tls {
			name = "rtmps"
		}
		t.Run(name, func(t *testing.T) {
			srv := rtmpserver.Start(t, rtmpserver.Options{TLS: tls})
			url := srv.URL("live", "key1")
			if tls {
				url = srv.URLTLS("live", "key1")
			}
			enc := startEncode(t, 640, 360, 30)
			var st states
			cfg := PusherConfig{URL: url, Source: enc.Stream, OnState: st.on}
			if tls {
				cfg.CAFile = srv.CAFile() // the server's certificate is verified
			}
			p, err := StartPusher(cfg)
			if err != nil {
				t.Fatal(err)
			}
			st.wait(t, StateActive, 1)
			if !srv.Publishing("live", "key1") {
				t.Fatal("ACTIVE while the server has no publish")
			}
			// At least 6 s of media after ACTIVE (3 GOPs of 2 s).
			enc.waitKeyframes(t, 3)
			ctx, cancel := context.WithTimeout(context.Background(), testutil.Patience)
			defer cancel()
			if err := p.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			if got := st.list(); strings.Join(got, ",") != "STARTING,ACTIVE,STOPPING,STOPPED" {
				t.Fatalf("states %q", got)
			}
			testutil.Eventually(t, "the publish to end", func() bool { return !srv.Publishing("live", "key1") })
			if n := len(srv.Publishes("live", "key1")); n != 1 {
				t.Fatalf("%d publish connections, want 1", n)
			}
			recs := srv.Recordings("live", "key1")
			if len(recs) != 1 {
				t.Fatalf("%d recordings", len(recs))
			}
			m := probe(t, recs[0])
			m.check(t, 640, 360, 30)
			if d := m.duration(); d < 5.9 {
				t.Fatalf("the server recorded %.2f s, want at least the 6 s sent", d)
			}
		})
	}
}

func TestPusherReconnectsAfterServerRestart(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := rtmpserver.Start(t)
	enc := startEncode(t, 320, 240, 30)
	var st states
	p, err := StartPusher(PusherConfig{URL: srv.URL("live", "k"), Source: enc.Stream, OnState: st.on, RetryWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	st.wait(t, StateActive, 1)
	srv.Kill()
	st.wait(t, StateReconnecting, 1)
	if l := st.last(); !strings.HasPrefix(l, StateReconnecting+": ") || strings.Contains(l, "/live/k") {
		t.Fatalf("RECONNECTING without a reason, or with the stream key: %q", l)
	}
	// Several attempts fail while the server is down: one RECONNECTING.
	testutil.Eventually(t, "two failed attempts", func() bool {
		_, reason := p.State()
		return strings.Contains(reason, "Connection refused")
	})
	srv.Restart()
	st.wait(t, StateActive, 2)
	if n := st.count(StateReconnecting); n != 1 {
		t.Fatalf("%d RECONNECTING for one outage: %q", n, st.list())
	}
	enc.waitKeyframes(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Patience)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if st.last() != StateStopped {
		t.Fatalf("states %q", st.list())
	}
	// One publish before the kill (ended by it) and one after the restart.
	if n := len(srv.Publishes("live", "k")); n != 2 {
		t.Fatalf("%d publishes, want 2", n)
	}
	recs := srv.Recordings("live", "k")
	if len(recs) != 2 {
		t.Fatalf("%d recordings, want one before the kill and one after", len(recs))
	}
	probe(t, recs[1]).check(t, 320, 240, 30)
}

func TestPusherFailsWhenServerStaysDown(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := rtmpserver.Start(t)
	enc := startEncode(t, 320, 240, 30)
	var st states
	p, err := StartPusher(PusherConfig{URL: srv.URL("live", "k"), Source: enc.Stream, OnState: st.on, RetryWindow: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st.wait(t, StateActive, 1)
	srv.Kill()
	st.wait(t, StateFailed, 1)
	select {
	case <-p.Done():
	case <-time.After(testutil.Patience):
		t.Fatal("a FAILED pusher did not end")
	}
	l := st.list()
	if l[len(l)-2] != StateReconnecting && !strings.HasPrefix(l[len(l)-2], StateReconnecting+": ") {
		t.Fatalf("states %q: no RECONNECTING before FAILED", l)
	}
	if !strings.Contains(l[len(l)-1], "could not publish") {
		t.Fatalf("FAILED reason %q", l[len(l)-1])
	}
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st.count(StateStopped) != 0 {
		t.Fatal("a FAILED pusher became STOPPED")
	}
}

func TestPusherRefusedPublishFails(t *testing.T) {
	srv := rtmpserver.Start(t, rtmpserver.Options{Deny: true})
	enc := startEncode(t, 320, 240, 30)
	var st states
	p, err := StartPusher(PusherConfig{URL: srv.URL("live", "k"), Source: enc.Stream, OnState: st.on, RetryWindow: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st.wait(t, StateFailed, 1)
	<-p.Done()
	if st.count(StateActive) != 0 {
		t.Fatalf("a refused publish was ACTIVE: %q", st.list())
	}
}

func TestPusherStopsAtEndOfStream(t *testing.T) {
	srv := rtmpserver.Start(t)
	enc := startEncode(t, 320, 240, 30)
	var st states
	p, err := StartPusher(PusherConfig{URL: srv.URL("live", "k"), Source: enc.Stream, OnState: st.on})
	if err != nil {
		t.Fatal(err)
	}
	st.wait(t, StateActive, 1)
	enc.Stop()
	select {
	case <-p.Done():
	case <-time.After(testutil.Patience):
		t.Fatal("the pusher did not end with its stream")
	}
	if st.last() != StateStopped {
		t.Fatalf("states %q", st.list())
	}
}

func TestValidateURL(t *testing.T) {
	for _, u := range []string{"rtmp://h/app/key", "rtmps://h:443/app/key", "rtmp://127.0.0.1:1935/live/k?x=1"} {
		if err := ValidateURL(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"http://h/app/key", "rtmp:///app/key", "rtmp://h", "rtmp://h/", "::"} {
		if err := ValidateURL(u); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
	if r := redact("rtmps://h:443/app/secret-key"); strings.Contains(r, "secret") {
		t.Fatalf("redact: %s", r)
	}
}

func TestPusherFailsWithItsEncode(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := rtmpserver.Start(t)
	enc := startEncode(t, 320, 240, 30)
	var st states
	p, err := StartPusher(PusherConfig{URL: srv.URL("live", "k"), Source: enc.Stream, OnState: st.on})
	if err != nil {
		t.Fatal(err)
	}
	st.wait(t, StateActive, 1)
	enc.Stream.CloseWithError(errors.New("the encoder crashed"))
	<-p.Done()
	if l := st.last(); l != "FAILED: the encode failed: the encoder crashed" {
		t.Fatalf("states %q", st.list())
	}
}

func TestPusherStopBeforeActive(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := rtmpserver.Start(t)
	enc := startEncode(t, 320, 240, 30)
	var st states
	p, err := StartPusher(PusherConfig{URL: srv.URL("live", "k"), Source: enc.Stream, OnState: st.on})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, s := range st.list() {
		if s == StateActive || strings.HasPrefix(s, StateReconnecting) {
			t.Fatalf("states %q", st.list())
		}
	}
	if st.last() != StateStopped {
		t.Fatalf("states %q", st.list())
	}
}

func TestPusherVerifiesRTMPSCertificate(t *testing.T) {
	srv := rtmpserver.Start(t, rtmpserver.Options{TLS: true})
	enc := startEncode(t, 320, 240, 30)
	// Not trusted: the stream key is never sent.
	var st states
	p, err := StartPusher(PusherConfig{URL: srv.URLTLS("live", "k"), Source: enc.Stream, OnState: st.on, RetryWindow: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if l := st.last(); !strings.HasPrefix(l, StateFailed) || !strings.Contains(l, "Peer certificate failed verification") {
		t.Fatalf("states %q", st.list())
	}
	if n := len(srv.Publishes("live", "k")); n != 0 {
		t.Fatalf("%d publishes to an untrusted server", n)
	}
	// Trusted by choice.
	var st2 states
	p, err = StartPusher(PusherConfig{URL: srv.URLTLS("live", "k"), Source: enc.Stream, OnState: st2.on, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	st2.wait(t, StateActive, 1)
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestPusherHungServer: a server that accepts the connection and then
// says nothing fails the attempt after IOTimeout instead of holding the
// pusher forever; Stop while RECONNECTING ends it.
func TestPusherHungServer(t *testing.T) {
	testutil.CheckLeaks(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	var mu sync.Mutex
	var held []net.Conn
	conns.Add(1)
	go func() {
		defer conns.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // never read, never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		conns.Wait()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	})
	enc := startEncode(t, 320, 240, 30)
	var st states
	p, err := StartPusher(PusherConfig{URL: "rtmp://" + ln.Addr().String() + "/live/k", Source: enc.Stream, OnState: st.on,
		IOTimeout: time.Second, RetryWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	st.wait(t, StateReconnecting, 1)
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(st.list()[2:], ","); got != "STOPPING,STOPPED" || st.count(StateActive) != 0 {
		t.Fatalf("states %q", st.list())
	}
	// Stopped in the middle of a hung attempt: at once, not after the
	// attempt's IOTimeout.
	var st2 states
	p, err = StartPusher(PusherConfig{URL: "rtmp://" + ln.Addr().String() + "/live/k", Source: enc.Stream, OnState: st2.on,
		IOTimeout: time.Hour, RetryWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the attempt to connect", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.cur != nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Patience)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Fatalf("Stop of a hung attempt: %v", err)
	}
	if l := strings.Join(st2.list(), ","); l != "STARTING,STOPPING,STOPPED" {
		t.Fatalf("states %s", l)
	}
}

package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"time"
)

// HTTP holds the listener's limits and the metrics listener.
type HTTP struct {
	// ReadTimeout bounds reading one request, headers and body: a client
	// that sends its body a byte at a time is cut off after it. The
	// long-lived routes (the stage events websocket, the live event
	// stream) lift it once the request is accepted.
	ReadTimeout time.Duration
	// WriteTimeout bounds handling a request and writing its answer (the
	// long-lived routes lift it too).
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that carries no request
	// for this long.
	IdleTimeout time.Duration
	// MetricsListen, if set, is the address of a separate listener for
	// GET /metrics, which then leaves the main listener.
	MetricsListen string
	// Pprof serves Go's profiles (/debug/pprof/) on the metrics listener,
	// for measuring the server (docs/performance.md). Off by default; it
	// needs MetricsListen, so profiles never reach the main listener.
	Pprof bool
	// PIDFile, if set, is written with the server's process id once it
	// listens, and removed when it stops (for tools such as rostrum
	// loadtest --server-pid, whatever started the server: go run or not).
	PIDFile string
}

// ReadHeaderTimeout bounds reading a request's headers: 10 s, or
// ReadTimeout if that is shorter.
func (h HTTP) ReadHeaderTimeout() time.Duration {
	return min(10*time.Second, h.ReadTimeout)
}

func (c *Config) httpFlagDefs(fs *flag.FlagSet) {
	h := &c.HTTP
	fs.DurationVar(&h.ReadTimeout, "http-read-timeout", 30*time.Second, "longest time to read one HTTP request, headers and body (the events websocket and /v1/events stream are exempt once accepted)")
	fs.DurationVar(&h.WriteTimeout, "http-write-timeout", 60*time.Second, "longest time to handle an HTTP request and write its answer (the events websocket and /v1/events stream are exempt)")
	fs.DurationVar(&h.IdleTimeout, "http-idle-timeout", 120*time.Second, "close a keep-alive HTTP connection idle for this long")
	fs.StringVar(&h.PIDFile, "pid-file", "", "write the server's process id to this `file` once it listens (removed when it stops)")
	fs.StringVar(&h.MetricsListen, "metrics-listen", "", "serve GET /metrics on this separate `address` (e.g. 127.0.0.1:9464) instead of on --listen; keeps metrics off a public listener")
	fs.BoolVar(&h.Pprof, "pprof", false, "also serve Go's profiles (/debug/pprof/) on --metrics-listen, which it needs; for measuring the server")
}

func (c *Config) validateHTTP() error {
	var errs []error
	h := c.HTTP
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--http-read-timeout", h.ReadTimeout}, {"--http-write-timeout", h.WriteTimeout}, {"--http-idle-timeout", h.IdleTimeout}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s %v: must be positive", d.name, d.v))
		}
	}
	if h.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(h.MetricsListen); err != nil {
			errs = append(errs, fmt.Errorf("--metrics-listen %q: %v", h.MetricsListen, err))
		}
	}
	if h.Pprof && h.MetricsListen == "" {
		errs = append(errs, errors.New("--pprof: needs --metrics-listen (profiles are served only on that separate listener)"))
	}
	return errors.Join(errs...)
}

// MediaListenIP is the address the media ports bind to: --rtc-listen-ip if
// given; else all interfaces when clients elsewhere are meant to reach the
// media (--rtc-public-ip is set, or --public-url names a host other than
// this machine's loopback, as behind a TLS reverse proxy); else the host of
// --listen. So one flag decides how far a server is reachable: loopback by
// default (the development credentials are public), all interfaces with
// --listen :8080.
func (c *Config) MediaListenIP() string {
	if c.RTCListenIP != "" || len(c.PublicIPs()) > 0 || !isLoopbackURL(c.PublicURL) {
		return c.RTCListenIP
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return ""
	}
	if host == "localhost" {
		return "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		return host
	}
	return ""
}

// isLoopbackURL reports whether a --public-url is unset or names this
// machine's loopback.
func isLoopbackURL(raw string) bool {
	if raw == "" {
		return true
	}
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	h := u.Hostname()
	ip := net.ParseIP(h)
	return h == "localhost" || (ip != nil && ip.IsLoopback())
}

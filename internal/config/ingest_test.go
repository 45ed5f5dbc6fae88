package config

import (
	"io"
	"path/filepath"
	"strings"
	"testing"
)

func parseIngest(t *testing.T, args ...string) (*Config, error) {
	t.Helper()
	return Parse(args, func(string) string { return "" }, io.Discard)
}

func TestIngestDefaults(t *testing.T) {
	c, err := parseIngest(t, "--listen", "10.0.0.5:8080", "--data-dir", "/var/lib/rostrum")
	if err != nil {
		t.Fatal(err)
	}
	if c.RTMPListenAddr() != "10.0.0.5:1935" || c.RTMPSListenAddr() != "10.0.0.5:1936" {
		t.Fatalf("defaults: %q %q", c.RTMPListenAddr(), c.RTMPSListenAddr())
	}
	cert, key, gen := c.RTMPSKeyPair()
	if !gen || cert != filepath.Join("/var/lib/rostrum", "rtmps", "cert.pem") || key != filepath.Join("/var/lib/rostrum", "rtmps", "key.pem") {
		t.Fatalf("key pair: %q %q %v", cert, key, gen)
	}
	// Any free port for --listen: any free ports for ingest too.
	c, err = parseIngest(t, "--listen", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if c.RTMPListenAddr() != "127.0.0.1:0" || c.RTMPSListenAddr() != "127.0.0.1:0" {
		t.Fatalf("defaults with port 0: %q %q", c.RTMPListenAddr(), c.RTMPSListenAddr())
	}
}

// The flag names are a contract: exactly these, each also ROSTRUM_….
func TestIngestFlags(t *testing.T) {
	c, err := parseIngest(t, "--rtmp-listen", "127.0.0.1:0", "--rtmps-listen", "off", "--rtmps-cert", "/etc/c.pem", "--rtmps-key", "/etc/k.pem")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, gen := c.RTMPSKeyPair()
	if c.RTMPListenAddr() != "127.0.0.1:0" || c.RTMPSListenAddr() != "" || cert != "/etc/c.pem" || key != "/etc/k.pem" || gen {
		t.Fatalf("flags: %q %q %q %q %v", c.RTMPListenAddr(), c.RTMPSListenAddr(), cert, key, gen)
	}
	env := map[string]string{"ROSTRUM_RTMP_LISTEN": "off", "ROSTRUM_RTMPS_LISTEN": ":2000"}
	c, err = Parse(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.RTMPListenAddr() != "" || c.RTMPSListenAddr() != ":2000" {
		t.Fatalf("environment: %q %q", c.RTMPListenAddr(), c.RTMPSListenAddr())
	}
}

func TestIngestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--rtmp-listen", "1935"},
		{"--rtmps-listen", "host:99999"},
		{"--rtmps-cert", "/etc/c.pem"},
		{"--rtmps-key", "/etc/k.pem"},
	} {
		_, err := parseIngest(t, args...)
		if err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: %v", args, err)
		}
	}
}

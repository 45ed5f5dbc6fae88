package config

import (
	"io"
	"testing"
)

func TestMediaListensWhereHTTPDoes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "127.0.0.1"},
		{[]string{"--listen", ":8080"}, ""},
		{[]string{"--listen", "0.0.0.0:8080"}, ""},
		{[]string{"--listen", "localhost:8080"}, "127.0.0.1"},
		{[]string{"--listen", "10.1.2.3:8080"}, "10.1.2.3"},
		{[]string{"--listen", "[::1]:8080"}, "::1"},
		{[]string{"--rtc-public-ip", "203.0.113.7"}, ""},
		{[]string{"--rtc-listen-ip", "10.1.2.3", "--rtc-public-ip", "203.0.113.7"}, "10.1.2.3"},
		{[]string{"--listen", ":8080", "--rtc-listen-ip", "127.0.0.1"}, "127.0.0.1"},
		// Behind a TLS reverse proxy: HTTP on loopback, media for the world.
		{[]string{"--public-url", "https://stages.example.com"}, ""},
		{[]string{"--public-url", "http://127.0.0.1:8080"}, "127.0.0.1"},
		{[]string{"--public-url", "http://localhost:8080"}, "127.0.0.1"},
	} {
		c, err := Parse(tc.args, func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got := c.MediaListenIP(); got != tc.want {
			t.Errorf("%v: media listens on %q, want %q", tc.args, got, tc.want)
		}
	}
}

func TestHTTPLimitsMustBePositive(t *testing.T) {
	for _, args := range [][]string{{"--http-read-timeout", "0s"}, {"--http-idle-timeout", "-1s"}, {"--metrics-listen", "nope"}, {"--pprof"}} {
		if _, err := Parse(args, func(string) string { return "" }, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

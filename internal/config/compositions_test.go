package config

import (
	"io"
	"strings"
	"testing"
)

const (
	chanA = "arn:aws:ivs:us-east-1:123456789012:channel/abcdABCD1234"
	chanB = "arn:aws:ivs:us-east-1:123456789012:channel/efghEFGH5678"
)

// --channel is a contract: repeatable ARN=URL, also ROSTRUM_CHANNEL (one
// per line), the command line replacing the environment.
func TestChannelFlag(t *testing.T) {
	c, err := Parse([]string{"--channel", chanA + "=rtmp://127.0.0.1:1935/live/key-a", "--channel", chanB + "=rtmps://a.example.net:443/app/sk_b"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Compositions.Channels) != 2 || c.Compositions.Channels[chanA] != "rtmp://127.0.0.1:1935/live/key-a" || c.Compositions.Channels[chanB] != "rtmps://a.example.net:443/app/sk_b" {
		t.Fatalf("channels %v", c.Compositions.Channels)
	}
	env := func(k string) string {
		if k == "ROSTRUM_CHANNEL" {
			return chanA + "=rtmp://h/app/k1\n" + chanB + "=rtmp://h/app/k2"
		}
		return ""
	}
	c, err = Parse(nil, env, io.Discard)
	if err != nil || len(c.Compositions.Channels) != 2 {
		t.Fatalf("from the environment: %v, %v", c.Compositions.Channels, err)
	}
	c, err = Parse([]string{"--channel", chanA + "=rtmp://h/app/k3"}, env, io.Discard)
	if err != nil || len(c.Compositions.Channels) != 1 || c.Compositions.Channels[chanA] != "rtmp://h/app/k3" {
		t.Fatalf("flags over the environment: %v, %v", c.Compositions.Channels, err)
	}
	if c.Quotas.Compositions != 20 || c.Quotas.CompositionsPerStage != 5 {
		t.Fatalf("composition quotas %+v", c.Quotas)
	}
}

func TestChannelFlagErrorsNameTheFlag(t *testing.T) {
	for _, bad := range []string{
		"no-equals-sign",
		"arn:aws:ivs:us-east-1:123456789012:stage/abcd=rtmp://h/app/k",
		chanA + "=http://h/app/k",
		chanA + "=rtmp://h/app",
		chanA + "=rtmp:///app/k",
	} {
		_, err := Parse([]string{"--channel", bad}, func(string) string { return "" }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--channel") {
			t.Errorf("--channel %q: %v", bad, err)
		}
	}
	_, err := Parse([]string{"--channel", chanA + "=rtmp://h/app/k1", "--channel", chanA + "=rtmp://h/app/k2"}, func(string) string { return "" }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("one ARN, two URLs: %v", err)
	}
}

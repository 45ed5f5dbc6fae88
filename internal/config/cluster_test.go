package config

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func TestClusterFlags(t *testing.T) {
	c, err := Parse([]string{"--cluster-url", "https://rt.example.com", "--stage-lease", "3s", "--max-node-publishers", "10",
		"--max-node-subscribers", "20", "--drain-timeout", "1m"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := Cluster{URL: "https://rt.example.com", Lease: 3 * time.Second, MaxPublishers: 10, MaxSubscribers: 20, DrainTimeout: time.Minute}
	if c.Cluster != want {
		t.Fatalf("%+v, want %+v", c.Cluster, want)
	}
	for _, bad := range [][]string{
		{"--cluster-url", "rt.example.com"},
		{"--stage-lease", "100ms"},
		{"--max-node-subscribers", "0"},
		{"--drain-timeout", "-1s"},
	} {
		if _, err := Parse(bad, func(string) string { return "" }, io.Discard); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%v: %v, want an error naming %s", bad, err, bad[0])
		}
	}
}

func TestDefaultNodeIDIsHostAndPort(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	c := &Config{Listen: ":8080"}
	if got, want := c.DefaultNodeID(), host+":8080"; nodeIDRE.MatchString(want) && got != want {
		t.Errorf("DefaultNodeID %q, want %q", got, want)
	}
	c.Listen = "127.0.0.1:0"
	if got := c.DefaultNodeID(); got != "" {
		t.Errorf("with port 0: %q, want none (generated instead)", got)
	}
}

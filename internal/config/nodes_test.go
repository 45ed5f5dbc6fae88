package config

import (
	"strings"
	"testing"
	"time"
)

func TestNodeAndRetentionFlags(t *testing.T) {
	c, err := parseEventFlags(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.ID != "" || c.Node.Heartbeat != 5*time.Second || c.Node.Timeout != 30*time.Second ||
		c.Retention.Sessions != 60*24*time.Hour || c.Retention.Sweep != 10*time.Minute {
		t.Errorf("defaults: %+v %+v", c.Node, c.Retention)
	}
	c, err = parseEventFlags(t, map[string]string{"ROSTRUM_SESSION_RETENTION": "0"},
		"--node-id", "edge-1.eu", "--heartbeat-interval", "1s", "--node-timeout", "3s", "--retention-sweep-interval", "1m")
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.ID != "edge-1.eu" || c.Node.Heartbeat != time.Second || c.Node.Timeout != 3*time.Second ||
		c.Retention.Sessions != 0 || c.Retention.Sweep != time.Minute {
		t.Errorf("set: %+v %+v", c.Node, c.Retention)
	}
	for _, bad := range [][]string{
		{"--node-id", "has space"},
		{"--node-id", strings.Repeat("n", 129)},
		{"--heartbeat-interval", "0s"},
		{"--heartbeat-interval", "10s", "--node-timeout", "15s"},
		{"--session-retention", "-1h"},
		{"--retention-sweep-interval", "0s"},
	} {
		if _, err := parseEventFlags(t, nil, bad...); err == nil || !strings.Contains(err.Error(), bad[len(bad)-2]) {
			t.Errorf("%q: error %v, want one naming %s", bad, err, bad[len(bad)-2])
		}
	}
}

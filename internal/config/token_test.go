package config

import (
	"io"
	"testing"
	"time"
)

func TestSelfSignedTokenMaxLifetime(t *testing.T) {
	parse := func(env map[string]string, args ...string) (*Config, error) {
		return Parse(args, func(k string) string { return env[k] }, io.Discard)
	}
	c, err := parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.SelfSignedTokenMaxLifetime != 14*24*time.Hour {
		t.Errorf("default = %v, want 14 days", c.SelfSignedTokenMaxLifetime)
	}
	if c, err = parse(nil, "--self-signed-token-max-lifetime", "1h"); err != nil || c.SelfSignedTokenMaxLifetime != time.Hour {
		t.Errorf("flag: %v %v", c, err)
	}
	env := map[string]string{"ROSTRUM_SELF_SIGNED_TOKEN_MAX_LIFETIME": "720h"}
	if c, err = parse(env); err != nil || c.SelfSignedTokenMaxLifetime != 30*24*time.Hour {
		t.Errorf("environment: %v %v", c, err)
	}
	for _, bad := range []string{"0", "-1h", "500ms"} {
		if _, err := parse(nil, "--self-signed-token-max-lifetime", bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

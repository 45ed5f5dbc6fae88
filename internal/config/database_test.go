package config

import (
	"strings"
	"testing"
)

func TestDatabaseURL(t *testing.T) {
	c, err := parseEventFlags(t, nil)
	if err != nil || c.DatabaseURL != "" {
		t.Fatalf("default: %q, %v; want SQLite (empty)", c.DatabaseURL, err)
	}
	const u = "postgres://rostrum:pw@db.internal:5432/rostrum?sslmode=require"
	c, err = parseEventFlags(t, nil, "--database-url", u)
	if err != nil || c.DatabaseURL != u {
		t.Fatalf("flag: %q, %v", c.DatabaseURL, err)
	}
	c, err = parseEventFlags(t, map[string]string{"ROSTRUM_DATABASE_URL": "postgresql://h/db"})
	if err != nil || c.DatabaseURL != "postgresql://h/db" {
		t.Fatalf("environment: %q, %v", c.DatabaseURL, err)
	}
	for _, bad := range []string{"mysql://u:secret@h/db", "/var/lib/rostrum.db", "secret"} {
		_, err := parseEventFlags(t, nil, "--database-url", bad)
		if err == nil || !strings.Contains(err.Error(), "--database-url") {
			t.Errorf("%q: error %v, want one naming --database-url", bad, err)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: the error repeats the URL: %v", bad, err)
		}
	}
}

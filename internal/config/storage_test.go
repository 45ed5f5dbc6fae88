package config

import (
	"io"
	"path/filepath"
	"strings"
	"testing"
)

func TestStorageDefaults(t *testing.T) {
	c, err := Parse([]string{"--data-dir", "/var/lib/rostrum"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.StorageDir() != filepath.Join("/var/lib/rostrum", "storage") || c.Storage.S3Endpoint != "" || c.StorageRegion() != "us-east-1" {
		t.Fatalf("defaults: dir %q, storage %+v, region %q", c.StorageDir(), c.Storage, c.StorageRegion())
	}
}

// The flag names are a contract: exactly these, each also ROSTRUM_….
func TestStorageFlags(t *testing.T) {
	c, err := Parse([]string{
		"--storage-dir", "/srv/recordings",
		"--s3-endpoint", "http://127.0.0.1:9000",
		"--s3-region", "eu-west-1",
		"--s3-access-key-id", "minio",
		"--s3-secret-access-key", "minio-secret",
		"--s3-force-path-style",
	}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := Storage{Dir: "/srv/recordings", S3Endpoint: "http://127.0.0.1:9000", S3Region: "eu-west-1", S3AccessKeyID: "minio", S3SecretAccessKey: "minio-secret", S3ForcePathStyle: true}
	if c.Storage != want || c.StorageDir() != "/srv/recordings" || c.StorageRegion() != "eu-west-1" {
		t.Fatalf("flags: %+v", c.Storage)
	}
}

func TestStorageFromEnvironment(t *testing.T) {
	env := map[string]string{
		"ROSTRUM_STORAGE_DIR":          "/srv/env",
		"ROSTRUM_S3_ENDPOINT":          "https://s3.eu-west-1.amazonaws.com",
		"ROSTRUM_S3_REGION":            "eu-west-1",
		"ROSTRUM_S3_ACCESS_KEY_ID":     "AKIAENV",
		"ROSTRUM_S3_SECRET_ACCESS_KEY": "env-secret",
		"ROSTRUM_S3_FORCE_PATH_STYLE":  "true",
	}
	c, err := Parse(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := Storage{Dir: "/srv/env", S3Endpoint: "https://s3.eu-west-1.amazonaws.com", S3Region: "eu-west-1", S3AccessKeyID: "AKIAENV", S3SecretAccessKey: "env-secret", S3ForcePathStyle: true}
	if c.Storage != want {
		t.Fatalf("from the environment: %+v", c.Storage)
	}
	// Flags win.
	c, err = Parse([]string{"--s3-endpoint", "http://127.0.0.1:7070", "--s3-force-path-style=false"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.S3Endpoint != "http://127.0.0.1:7070" || c.Storage.S3ForcePathStyle {
		t.Fatalf("flags over the environment: %+v", c.Storage)
	}
}

func TestStorageFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--s3-endpoint", "127.0.0.1:9000"}, "--s3-endpoint"},
		{[]string{"--s3-endpoint", "ftp://x"}, "--s3-endpoint"},
		{[]string{"--s3-region", "EU West"}, "--s3-region"},
		{[]string{"--s3-access-key-id", "k"}, "go together"},
		{[]string{"--s3-secret-access-key", "s"}, "go together"},
	} {
		_, err := Parse(tc.args, func(string) string { return "" }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error about %s", tc.args, err, tc.want)
		}
	}
}

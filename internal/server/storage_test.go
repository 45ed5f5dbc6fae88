package server

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rostrum-dev/rostrum/internal/config"
	"github.com/rostrum-dev/rostrum/internal/objstore"
	"github.com/rostrum-dev/rostrum/internal/objstore/folder"
	"github.com/rostrum-dev/rostrum/internal/objstore/objstoretest"
)

func parse(t *testing.T, env map[string]string, args ...string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(args, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// With nothing configured, recordings go to <data-dir>/storage, and a
// storage configuration's bucket is made there when a recording checks it.
func TestOpenStorageDefaultsToTheDataDir(t *testing.T) {
	dataDir := t.TempDir()
	s, err := OpenStorage(parse(t, nil, "--data-dir", dataDir))
	if err != nil {
		t.Fatal(err)
	}
	f, ok := s.(*folder.Folder)
	if !ok || f.Root() != filepath.Join(dataDir, "storage") {
		t.Fatalf("default storage: %v", s)
	}
	ctx := context.Background()
	if err := s.CheckBucket(ctx, "my-recordings"); err != nil {
		t.Fatal(err)
	}
	if err := objstore.PutBytes(ctx, s, "my-recordings", "st/events/recording-started.json", []byte("{}"), ""); err != nil {
		t.Fatal(err)
	}
	if b, _, err := objstore.GetBytes(ctx, s, "my-recordings", "st/events/recording-started.json"); err != nil || string(b) != "{}" {
		t.Fatalf("read back %q, %v", b, err)
	}
	if f.Path("my-recordings", "st/events/recording-started.json") != filepath.Join(dataDir, "storage", "my-recordings", "st", "events", "recording-started.json") {
		t.Fatal("not laid out as DIR/bucket/key")
	}
}

func TestOpenStorageS3(t *testing.T) {
	gw := objstoretest.StartVersityGW(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	_, err := OpenStorage(parse(t, nil, "--s3-endpoint", gw.Endpoint))
	if err == nil || !strings.Contains(err.Error(), "--s3-access-key-id") {
		t.Fatalf("an endpoint without credentials: %v", err)
	}
	// Set the way an operator would: ROSTRUM_ variables.
	env := map[string]string{
		"ROSTRUM_S3_ENDPOINT":          gw.Endpoint,
		"ROSTRUM_S3_ACCESS_KEY_ID":     gw.AccessKeyID,
		"ROSTRUM_S3_SECRET_ACCESS_KEY": gw.SecretAccessKey,
		"ROSTRUM_S3_FORCE_PATH_STYLE":  "true",
	}
	s, err := OpenStorage(parse(t, env, "--data-dir", t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.String(), gw.Endpoint) {
		t.Fatalf("storage %v, want the S3 endpoint", s)
	}
	ctx := context.Background()
	// On S3 a bucket is the operator's to make: a missing one fails the check.
	if err := s.CheckBucket(ctx, "not-made-yet"); !errors.Is(err, objstore.ErrNoSuchBucket) {
		t.Fatalf("CheckBucket of a missing S3 bucket: %v", err)
	}
	if err := s.CreateBucket(ctx, "made-by-operator"); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckBucket(ctx, "made-by-operator"); err != nil {
		t.Fatal(err)
	}
	// Also from AWS_* variables when the flags say nothing.
	t.Setenv("AWS_ACCESS_KEY_ID", gw.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", gw.SecretAccessKey)
	s, err = OpenStorage(parse(t, nil, "--s3-endpoint", gw.Endpoint, "--s3-force-path-style"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckBucket(ctx, "made-by-operator"); err != nil {
		t.Fatal(err)
	}
}

package folder_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/objstore"
	"github.com/rostrum-dev/rostrum/internal/objstore/folder"
)

// A put killed mid-write leaves a temporary file; RemoveLeftovers deletes
// the old ones and leaves objects, and fresh temporary files, alone.
func TestRemoveLeftovers(t *testing.T) {
	ctx := context.Background()
	f, err := folder.New(filepath.Join(t.TempDir(), "storage"))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.RemoveLeftovers(ctx, time.Hour); n != 0 || err != nil {
		t.Fatalf("before any bucket: %d, %v", n, err)
	}
	if err := f.CheckBucket(ctx, "recs"); err != nil {
		t.Fatal(err)
	}
	if err := objstore.PutBytes(ctx, f, "recs", "a/keep.json", []byte("{}"), ""); err != nil {
		t.Fatal(err)
	}
	write := func(rel string, age time.Duration) string {
		p := filepath.Join(f.Root(), "recs", filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-age)
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old1 := write("a/"+objstore.ReservedPrefix+"put-1", 2*time.Hour)
	old2 := write("b/c/"+objstore.ReservedPrefix+"put-2", 3*time.Hour)
	fresh := write("a/"+objstore.ReservedPrefix+"put-3", time.Minute)
	n, err := f.RemoveLeftovers(ctx, time.Hour)
	if err != nil || n != 2 {
		t.Fatalf("RemoveLeftovers = %d, %v; want 2", n, err)
	}
	for _, p := range []string{old1, old2, filepath.Join(f.Root(), "recs", "b")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there", p)
		}
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a fresh temporary file was removed: %v", err)
	}
	objs, err := objstore.ListAll(ctx, f, "recs", "")
	if err != nil || len(objs) != 1 || objs[0].Key != "a/keep.json" {
		t.Fatalf("objects after RemoveLeftovers: %+v %v", objs, err)
	}
	if _, err := os.Stat(filepath.Join(f.Root(), "recs")); err != nil {
		t.Fatalf("the bucket's folder went: %v", err)
	}
}

package folder_test

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rostrum-dev/rostrum/internal/objstore"
	"github.com/rostrum-dev/rostrum/internal/objstore/folder"
)

// FuzzKey checks, for any key, that the local folder either refuses it with
// ErrInvalidKey and writes nothing, or stores it as exactly the file
// DIR/bucket/key inside the bucket's folder, lists it as itself, and
// deletes it without a trace. Run: go test ./internal/objstore/folder -fuzz FuzzKey
func FuzzKey(f *testing.F) {
	for _, k := range []string{
		"a", "a/b/c.json", "2024-01-01T12-00-55Z/media/hls/high/1.mp4", "..", "../x", "a/../../x",
		"/etc/passwd", "a//b", "a/", "./a", "a/.", "a\\..\\b", "with space/é", "\x00", ".rostrum-put-1",
		"...", "a/..b", "..a/b", "~", "a/./b", strings.Repeat("x/", 300) + "y",
	} {
		f.Add(k)
	}
	root := f.TempDir()
	store, err := folder.New(root)
	if err != nil {
		f.Fatal(err)
	}
	const bucket = "fuzz-bucket"
	ctx := context.Background()
	if err := store.CreateBucket(ctx, bucket); err != nil {
		f.Fatal(err)
	}
	bucketDir := filepath.Join(root, bucket)
	f.Fuzz(func(t *testing.T, key string) {
		err := objstore.PutBytes(ctx, store, bucket, key, []byte(key), "")
		if objstore.ValidateKey(key) != nil {
			if !errors.Is(err, objstore.ErrInvalidKey) {
				t.Fatalf("Put(%q) of an invalid key: %v, want ErrInvalidKey", key, err)
			}
			assertEmpty(t, root, bucketDir)
			return
		}
		if err != nil {
			t.Fatalf("Put(%q) of a valid key: %v", key, err)
		}
		p := store.Path(bucket, key)
		rel, err := filepath.Rel(bucketDir, p)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
			t.Fatalf("key %q is the file %s, outside the bucket's folder %s", key, p, bucketDir)
		}
		if filepath.ToSlash(rel) != key {
			t.Fatalf("key %q is the file %s, not DIR/bucket/key", key, p)
		}
		objs, err := objstore.ListAll(ctx, store, bucket, "")
		if err != nil || len(objs) != 1 || objs[0].Key != key {
			t.Fatalf("List after Put(%q) = %+v, %v", key, objs, err)
		}
		got, _, err := objstore.GetBytes(ctx, store, bucket, key)
		if err != nil || string(got) != key {
			t.Fatalf("Get(%q) = %q, %v", key, got, err)
		}
		if err := store.Delete(ctx, bucket, key); err != nil {
			t.Fatalf("Delete(%q): %v", key, err)
		}
		assertEmpty(t, root, bucketDir)
	})
}

// assertEmpty checks that the storage folder holds the empty bucket folder
// and nothing else.
func assertEmpty(t *testing.T, root, bucketDir string) {
	t.Helper()
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if p != root && p != bucketDir {
			t.Fatalf("left behind: %s", p)
		}
		return nil
	})
}

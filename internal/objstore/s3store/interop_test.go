package s3store_test

import (
	"context"
	"testing"

	"github.com/rostrum-dev/rostrum/internal/objstore"
	"github.com/rostrum-dev/rostrum/internal/objstore/folder"
	"github.com/rostrum-dev/rostrum/internal/objstore/objstoretest"
	"github.com/rostrum-dev/rostrum/internal/objstore/s3store"
)

// TestFolderServedByVersityGW: versitygw's posix backend serving the local
// folder shows its objects over S3 with their content types, so recordings
// kept in --storage-dir can be offered to S3 tools as they are.
func TestFolderServedByVersityGW(t *testing.T) {
	gw := objstoretest.StartVersityGW(t)
	ctx := context.Background()
	f, err := folder.New(gw.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.CheckBucket(ctx, "recordings"); err != nil {
		t.Fatal(err)
	}
	const key = "st/sess/p/2024-01-01T12-00-55Z/media/hls/high/playlist.m3u8"
	if err := objstore.PutBytes(ctx, f, "recordings", key, []byte("#EXTM3U\n"), ""); err != nil {
		t.Fatal(err)
	}
	s, err := s3store.New(s3store.Config{Endpoint: gw.Endpoint, AccessKeyID: gw.AccessKeyID, SecretAccessKey: gw.SecretAccessKey, ForcePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	b, info, err := objstore.GetBytes(ctx, s, "recordings", key)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "#EXTM3U\n" || info.ContentType != "application/vnd.apple.mpegurl" {
		t.Fatalf("over S3: %q %+v", b, info)
	}
	objs, err := objstore.ListAll(ctx, s, "recordings", "st/")
	if err != nil || len(objs) != 1 || objs[0].Key != key {
		t.Fatalf("listed over S3: %+v %v", objs, err)
	}
}

// Package objstoretest is the contract of objstore.Storage: the suite every
// implementation runs from its own tests, so that a recording behaves the
// same on the local folder and on any S3-compatible service.
//
//	func TestContract(t *testing.T) {
//		objstoretest.Run(t, objstoretest.Harness{Open: ...})
//	}
//
// Beyond what objstore.go states, the suite pins down:
//
//   - Buckets a test makes are named "rostrum-test-<random>" and are not
//     deleted: Open may return the same service each time.
//   - Put, Get, Stat, List and Delete on a bucket that does not exist fail
//     with ErrNoSuchBucket; CheckBucket does too, unless the implementation
//     creates buckets on demand (Harness.CreatesBuckets).
//   - A missing key is ErrNotFound (not ErrNoSuchBucket) for Get and Stat.
//   - Invalid keys and bucket names fail before anything is written.
//   - A put whose context is cancelled fails with context.Canceled and
//     leaves no object.
package objstoretest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/objstore"
)

// Harness is what the suite needs of an implementation.
type Harness struct {
	// Open returns the storage under test.
	Open func(t *testing.T) objstore.Storage
	// Refusing returns a storage that refuses writes to bucket (an existing
	// bucket of Open's storage): wrong credentials, a read-only folder. It
	// may skip t when the machine cannot refuse (nil skips too).
	Refusing func(t *testing.T, s objstore.Storage, bucket string) objstore.Storage
	// CreatesBuckets: CheckBucket creates a missing bucket (the local folder
	// does; S3 services answer NoSuchBucket).
	CreatesBuckets bool
	// KeepsAnyContentType: any content type is kept, not only the ones of
	// keys' extensions (the local folder needs extended attributes for it).
	KeepsAnyContentType bool
	// LargeSize is the size of the large-object test's objects, big enough to
	// be put as several parts where the implementation has parts; 0 means
	// 12 MiB.
	LargeSize int
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness, s objstore.Storage)
	}{
		{"PutGet", testPutGet},
		{"ContentTypes", testContentTypes},
		{"Overwrite", testOverwrite},
		{"OverwriteNeverHalf", testOverwriteNeverHalf},
		{"ConcurrentPuts", testConcurrentPuts},
		{"ConcurrentPutsOneKey", testConcurrentPutsOneKey},
		{"LargeObjects", testLargeObjects},
		{"ListPaging", testListPaging},
		{"ListPrefixes", testListPrefixes},
		{"ListEmpty", testListEmpty},
		{"Delete", testDelete},
		{"MissingBucket", testMissingBucket},
		{"MissingKey", testMissingKey},
		{"InvalidKeys", testInvalidKeys},
		{"InvalidBucketNames", testInvalidBucketNames},
		{"IVSLayoutKeys", testIVSLayoutKeys},
		{"CreateBucketTwice", testCreateBucketTwice},
		{"CheckBucket", testCheckBucket},
		{"RefusedWrites", testRefusedWrites},
		{"CancelledPut", testCancelledPut},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, h, h.Open(t))
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// BucketName is a fresh bucket name.
func BucketName() string {
	var b [6]byte
	rand.Read(b[:])
	return "rostrum-test-" + hex.EncodeToString(b[:])
}

func newBucket(t *testing.T, s objstore.Storage) string {
	t.Helper()
	b := BucketName()
	if err := s.CreateBucket(ctxT(t), b); err != nil {
		t.Fatalf("CreateBucket(%s): %v", b, err)
	}
	return b
}

func put(t *testing.T, s objstore.Storage, bucket, key string, body []byte, ct string) {
	t.Helper()
	if err := objstore.PutBytes(ctxT(t), s, bucket, key, body, ct); err != nil {
		t.Fatalf("Put(%s, %s): %v", bucket, key, err)
	}
}

func get(t *testing.T, s objstore.Storage, bucket, key string) ([]byte, objstore.ObjectInfo) {
	t.Helper()
	b, info, err := objstore.GetBytes(ctxT(t), s, bucket, key)
	if err != nil {
		t.Fatalf("Get(%s, %s): %v", bucket, key, err)
	}
	return b, info
}

func keys(objs []objstore.ObjectInfo) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.Key)
	}
	return out
}

func listAll(t *testing.T, s objstore.Storage, bucket, prefix string) []objstore.ObjectInfo {
	t.Helper()
	objs, err := objstore.ListAll(ctxT(t), s, bucket, prefix)
	if err != nil {
		t.Fatalf("List(%s, %q): %v", bucket, prefix, err)
	}
	return objs
}

func wantKind(t *testing.T, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("%s: got error %v, want %v", what, err, kind)
	}
	var oe *objstore.Error
	if !errors.As(err, &oe) {
		t.Fatalf("%s: error %v is no *objstore.Error", what, err)
	}
}

func testPutGet(t *testing.T, h Harness, s objstore.Storage) {
	b := newBucket(t, s)
	before := time.Now().Add(-time.Minute)
	body := []byte(`{"version":"v1"}`)
	put(t, s, b, "stage/session/p/events/recording-started.json", body, "application/json")
	got, info := get(t, s, b, "stage/session/p/events/recording-started.json")
	if !bytes.Equal(got, body) {
		t.Fatalf("Get = %q, want %q", got, body)
	}
	if info.Key != "stage/session/p/events/recording-started.json" || info.Size != int64(len(body)) || info.ContentType != "application/json" {
		t.Fatalf("Get info = %+v", info)
	}
	st, err := s.Stat(ctxT(t), b, "stage/session/p/events/recording-started.json")
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != int64(len(body)) || st.ContentType != "application/json" || st.Key != info.Key {
		t.Fatalf("Stat = %+v", st)
	}
	// Clocks of a remote service may differ a little from ours; a minute's
	// slack tells a real time from a zero or garbage one.
	if st.LastModified.Before(before) || st.LastModified.After(time.Now().Add(time.Minute)) {
		t.Fatalf("Stat LastModified = %v, want about now", st.LastModified)
	}
	// An empty object is an object.
	put(t, s, b, "empty", nil, "")
	if got, info := get(t, s, b, "empty"); len(got) != 0 || info.Size != 0 {
		t.Fatalf("empty object: %q %+v", got, info)
	}
	objs := listAll(t, s, b, "")
	if k := keys(objs); !slices.Equal(k, []string{"empty", "stage/session/p/events/recording-started.json"}) {
		t.Fatalf("List = %q", k)
	}
	if objs[1].Size != int64(len(body)) || objs[1].LastModified.IsZero() {
		t.Fatalf("List entry = %+v", objs[1])
	}
}

func testContentTypes(t *testing.T, h Harness, s objstore.Storage) {
	b := newBucket(t, s)
	cases := []struct{ key, give, want string }{
		{"media/hls/multivariant.m3u8", "application/vnd.apple.mpegurl", "application/vnd.apple.mpegurl"},
		{"media/hls/high/playlist.m3u8", "", "application/vnd.apple.mpegurl"},
		{"media/hls/high/1.mp4", "video/mp4", "video/mp4"},
		{"media/hls/high/init.mp4", "", "video/mp4"},
		{"media/thumbnails/high/1.jpg", "image/jpeg", "image/jpeg"},
		{"events/recording-ended.json", "", "application/json"},
		{"no-extension", "", objstore.DefaultContentType},
	}
	if h.KeepsAnyContentType {
		cases = append(cases,
			struct{ key, give, want string }{"custom.bin", "application/x-rostrum-test; v=1", "application/x-rostrum-test; v=1"},
			struct{ key, give, want string }{"typed.json", "text/plain", "text/plain"})
	}
	for _, c := range cases {
		put(t, s, b, c.key, []byte("x"), c.give)
	}
	for _, c := range cases {
		if _, info := get(t, s, b, c.key); info.ContentType != c.want {
			t.Errorf("Get(%s).ContentType = %q, want %q", c.key, info.ContentType, c.want)
		}
		st, err := s.Stat(ctxT(t), b, c.key)
		if err != nil {
			t.Fatal(err)
		}
		if st.ContentType != c.want {
			t.Errorf("Stat(%s).ContentType = %q, want %q", c.key, st.ContentType, c.want)
		}
	}
}

func testOverwrite(t *testing.T, h Harness, s objstore.Storage) {
	b := newBucket(t, s)
	const key = "media/hls/high/playlist.m3u8"
	v1 := []byte("#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXTINF:6.0,\n1.mp4\n")
	v2 := append(bytes.Clone(v1), "#EXTINF:6.0,\n2.mp4\n#EXT-X-ENDLIST\n"...)
	put(t, s, b, key, v1, "")
	put(t, s, b, key, v2, "")
	if got, info := get(t, s, b, key); !bytes.Equal(got, v2) || info.Size != int64(len(v2)) {
		t.Fatalf("after overwrite: %q (%+v)", got, info)
	}
	// Shorter again: nothing of the longer version may remain.
	put(t, s, b, key, []byte("#EXTM3U\n"), "")
	if got, _ := get(t, s, b, key); string(got) != "#EXTM3U\n" {
		t.Fatalf("after shorter overwrite: %q", got)
	}
	if k := keys(listAll(t, s, b, "")); !slices.Equal(k, []string{key}) {
		t.Fatalf("List = %q, want the one key", k)
	}
}

// version is a body whose every byte says which version it is, so a read of
// a mix of two versions, or of part of one, shows.
func version(n, size int) []byte {
	return bytes.Repeat([]byte{byte('A' + n%26)}, size+n)
}

func checkVersion(b []byte, size int) error {
	if len(b) == 0 {
		return errors.New("empty read")
	}
	n := len(b) - size
	if n < 0 || !bytes.Equal(b, version(n, size)) {
		return fmt.Errorf("read %d bytes that are no whole version (first %q)", len(b), b[:min(len(b), 8)])
	}
	return nil
}

// testOverwriteNeverHalf replaces a playlist over and over while readers
// read it, as players poll a live playlist: every read is a whole version.
func testOverwriteNeverHalf(t *testing.T, h Harness, s objstore.Storage) {
	b := newBucket(t, s)
	const key, size, versions = "live/playlist.m3u8", 64 << 10, 40
	put(t, s, b, key, version(0, size), "")
	ctx := ctxT(t)
	stop := make(chan struct{})
	errs := make(chan error, 4)
	var reads sync.WaitGroup
	var mu sync.Mutex
	readCount := 0
	for range 3 {
		reads.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, _, err := objstore.GetBytes(ctx, s, b, key)
				if err == nil {
					err = checkVersion(got, size)
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				readCount++
				mu.Unlock()
			}
		})
	}
	for n := 1; n <= versions; n++ {
		if err := objstore.PutBytes(ctx, s, b, key, version(n, size), ""); err != nil {
			close(stop)
			reads.Wait()
			t.Fatal(err)
		}
	}
	close(stop)
	reads.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got, _ := get(t, s, b, key); !bytes.Equal(got, version(versions, size)) {
		t.Fatalf("final version wrong: %d bytes", len(got))
	}
	t.Logf("%d reads during %d overwrites, all whole", readCount, versions)
}

func testConcurrentPuts(t *testing.T, h Harness, s objstore.Storage) {
	b := newBucket(t, s)
	const writers, each = 16, 8
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				// Segments of one participant share folders, as a recording's do.
				key := fmt.Sprintf("stage/session/p%02d/media/hls/high/%d.mp4", w%4, w*each+i)
				body := fmt.Appendf(nil, "segment %s", key)
				if err := objstore.PutBytes(ctx, s, b, key, body, "video/mp4"); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	objs := listAll(t, s, b, "stage/")
	if len(objs) != writers*each {
		t.Fatalf("List found %d objects, want %d", len(objs), writers*each)
	}
	for _, o := range objs {
		got, _ := get(t, s, b, o.Key)
		if string(got) != "segment "+o.Key || o.Size != int64(len(got)) {
			t.Fatalf("%s holds %q (listed size %d)", o.Key, got, o.Size)
		}
	}
}

func testConcurrentPutsOneKey(t *testing.T, h Harness, s objstore.Storage) {
	b := newBucket(t, s)
	const writers, size = 12, 32 << 10
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			if err := objstore.PutBytes(ctx, s, b, "latest_thumbnail/high/thumb.jpg", version(w, size), ""); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, _ := get(t, s, b, "latest_thumbnail/high/thumb.jpg")
	if err := checkVersion(got, size); err != nil {
		t.Fatalf("after concurrent puts of one key: %v", err)
	}
	if k := keys(listAll(t, s, b, "")); !slices.Equal(k, []string{"latest_thumbnail/high/thumb.jpg"}) {
		t.Fatalf("List = %q: concurrent puts left more than the object", k)
	}
}

// onlyReader hides every method but Read, as a pipe from an encoder would.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func testLargeObjects(t *testing.T, h Harness, s objstore.Storage) {
	b := newBucket(t, s)
	size := h.LargeSize
	if size == 0 {
		size = 12 << 20
	}
	data := make([]byte, size)
	rand.Read(data)
	sum := sha256.Sum256(data)
	ctx := ctxT(t)

	if err := s.Put(ctx, b, "large/seekable.mp4", bytes.NewReader(data), ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, b, "large/stream.mp4", onlyReader{bytes.NewReader(data)}, ""); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "segment.mp4")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := objstore.PutFile(ctx, s, b, "large/file.mp4", file, ""); err != nil {
		t.Fatal(err)
	}
	// A body read from the middle: Put sends what is left of it.
	r := bytes.NewReader(data)
	r.Seek(1000, io.SeekStart)
	if err := s.Put(ctx, b, "large/rest.mp4", r, ""); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"large/seekable.mp4", "large/stream.mp4", "large/file.mp4"} {
		got, info := get(t, s, b, key)
		if sha256.Sum256(got) != sum || info.Size != int64(size) || info.ContentType != "video/mp4" {
			t.Fatalf("%s: %d bytes back (info %+v), not what was put", key, len(got), info)
		}
	}
	if got, _ := get(t, s, b, "large/rest.mp4"); !bytes.Equal(got, data[1000:]) {
		t.Fatalf("large/rest.mp4: %d bytes back, want the %d after the reader's position", len(got), size-1000)
	}
	// A body that fails half way stores nothing.
	err := s.Put(ctx, b, "large/failed.mp4", io.MultiReader(bytes.NewReader(data), errReader{}), "")
	if err == nil || !errors.Is(err, errBody) {
		t.Fatalf("Put with a failing body: %v, want the body's error", err)
	}
	if _, err := s.Stat(ctx, b, "large/failed.mp4"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Stat after failed put: %v, want ErrNotFound", err)
	}
}

var errBody = errors.New("the encoder died")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBody }

// recordingKeys are keys laid out as IVS lays out a recording.
func recordingKeys(prefix string, segments int) []string {
	keys := []string{
		prefix + "events/recording-started.json",
		prefix + "media/hls/multivariant.m3u8",
		prefix + "media/hls/high/playlist.m3u8",
		prefix + "media/latest_thumbnail/high/thumb.jpg",
	}
	for i := range segments {
		keys = append(keys, fmt.Sprintf("%smedia/hls/high/%d.mp4", prefix, i), fmt.Sprintf("%smedia/thumbnails/high/%d.jpg", prefix, i))
	}
	return keys
}

func testListPaging(t *testing.T, h Harness, s objstore.Storage) {
	b := newBucket(t, s)
	prefix := "AbCdEf123456/st-ABCDEF1234/pArTiCiPaNt01/2024-01-01T12-00-55Z/"
	want := recordingKeys(prefix, 11)
	for _, k := range want {
		put(t, s, b, k, []byte(k), "")
	}
	put(t, s, b, "AbCdEf123456/other-session/x.json", []byte("x"), "")
	slices.Sort(want)
	ctx := ctxT(t)
	var got []string
	in := objstore.ListInput{Prefix: prefix, Limit: 7}
	pages := 0
	for {
		page, err := s.List(ctx, b, in)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(page.Objects) > 7 {
			t.Fatalf("page of %d objects, limit 7", len(page.Objects))
		}
		for _, o := range page.Objects {
			if o.Size != int64(len(o.Key)) {
				t.Fatalf("listed %s with size %d, want %d", o.Key, o.Size, len(o.Key))
			}
		}
		got = append(got, keys(page.Objects)...)
		if page.Next == "" {
			break
		}
		if pages > len(want) {
			t.Fatal("listing does not end")
		}
		in.Token = page.Next
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged listing:\n got %q\nwant %q", got, want)
	}
	if wantPages := (len(want) + 6) / 7; pages != wantPages {
		t.Fatalf("%d pages, want %d", pages, wantPages)
	}
	// Limit 0 is the largest page.
	page, err := s.List(ctx, b, objstore.ListInput{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys(page.Objects), want) || page.Next != "" {
		t.Fatalf("one-page listing: %q next %q", keys(page.Objects), page.Next)
	}
}

func testListPrefixes(t *testing.T, h Harness, s objstore.Storage) {
	b := newBucket(t, s)
	for _, k := range []string{"a-c", "a/bc/d", "a/b/c", "a/bd", "a0", "ab", "b/a"} {
		put(t, s, b, k, []byte(k), "")
	}
	cases := []struct {
		prefix string
		want   []string
	}{
		// Byte order: '-' < '/' < '0' < 'b'.
		{"", []string{"a-c", "a/b/c", "a/bc/d", "a/bd", "a0", "ab", "b/a"}},
		{"a", []string{"a-c", "a/b/c", "a/bc/d", "a/bd", "a0", "ab"}},
		{"a/", []string{"a/b/c", "a/bc/d", "a/bd"}},
		{"a/b", []string{"a/b/c", "a/bc/d", "a/bd"}},
		{"a/b/", []string{"a/b/c"}},
		{"a/bc", []string{"a/bc/d"}},
		{"b/", []string{"b/a"}},
		{"c", nil},
		{"a/b/c/", nil},
	}
	for _, c := range cases {
		if got := keys(listAll(t, s, b, c.prefix)); !slices.Equal(got, c.want) {
			t.Errorf("List(%q) = %q, want %q", c.prefix, got, c.want)
		}
	}
}

func testListEmpty(t *testing.T, h Harness, s objstore.Storage) {
	b := newBucket(t, s)
	page, err := s.List(ctxT(t), b, objstore.ListInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Objects) != 0 || page.Next != "" {
		t.Fatalf("empty bucket lists %+v", page)
	}
}

func testDelete(t *testing.T, h Harness, s objstore.Storage) {
	b := newBucket(t, s)
	ctx := ctxT(t)
	put(t, s, b, "x/y/z.json", []byte("1"), "")
	put(t, s, b, "x/keep.json", []byte("2"), "")
	if err := s.Delete(ctx, b, "x/y/z.json"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, b, "x/y/z.json"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Stat after Delete: %v, want ErrNotFound", err)
	}
	if k := keys(listAll(t, s, b, "")); !slices.Equal(k, []string{"x/keep.json"}) {
		t.Fatalf("List after Delete = %q", k)
	}
	// Deleting what is not there is no error, as S3's DeleteObject.
	if err := s.Delete(ctx, b, "x/y/z.json"); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if err := s.Delete(ctx, b, "never/was"); err != nil {
		t.Fatalf("Delete of a never-put key: %v", err)
	}
	// "x" names no object (only a prefix): deleting it removes nothing.
	if err := s.Delete(ctx, b, "x"); err != nil {
		t.Fatalf("Delete of a prefix: %v", err)
	}
	put(t, s, b, "x/y/z.json", []byte("3"), "")
	if got, _ := get(t, s, b, "x/y/z.json"); string(got) != "3" {
		t.Fatalf("put after delete: %q", got)
	}
	if err := s.Delete(ctx, b, "x/keep.json"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, b, "x/y/z.json"); err != nil {
		t.Fatal(err)
	}
	if k := keys(listAll(t, s, b, "")); len(k) != 0 {
		t.Fatalf("List after deleting all = %q", k)
	}
}

func testMissingBucket(t *testing.T, h Harness, s objstore.Storage) {
	ctx := ctxT(t)
	b := BucketName()
	err := objstore.PutBytes(ctx, s, b, "k.json", []byte("{}"), "")
	wantKind(t, "Put", err, objstore.ErrNoSuchBucket)
	if !strings.Contains(err.Error(), b) {
		t.Errorf("error %q does not name the bucket", err)
	}
	_, _, err = s.Get(ctx, b, "k.json")
	wantKind(t, "Get", err, objstore.ErrNoSuchBucket)
	_, err = s.Stat(ctx, b, "k.json")
	wantKind(t, "Stat", err, objstore.ErrNoSuchBucket)
	_, err = s.List(ctx, b, objstore.ListInput{})
	wantKind(t, "List", err, objstore.ErrNoSuchBucket)
	err = s.Delete(ctx, b, "k.json")
	wantKind(t, "Delete", err, objstore.ErrNoSuchBucket)

	err = s.CheckBucket(ctx, b)
	if h.CreatesBuckets {
		if err != nil {
			t.Fatalf("CheckBucket of a missing bucket, which it creates: %v", err)
		}
		put(t, s, b, "k.json", []byte("{}"), "")
	} else {
		wantKind(t, "CheckBucket", err, objstore.ErrNoSuchBucket)
		if !strings.Contains(err.Error(), b) {
			t.Errorf("error %q does not name the bucket", err)
		}
	}
}

func testMissingKey(t *testing.T, h Harness, s objstore.Storage) {
	b := newBucket(t, s)
	ctx := ctxT(t)
	put(t, s, b, "a/b.json", []byte("{}"), "")
	for _, key := range []string{"missing.json", "a/missing.json", "a", "a/b.json/c"} {
		_, _, err := s.Get(ctx, b, key)
		wantKind(t, "Get "+key, err, objstore.ErrNotFound)
		if errors.Is(err, objstore.ErrNoSuchBucket) {
			t.Fatalf("Get %s: %v is also ErrNoSuchBucket", key, err)
		}
		_, err = s.Stat(ctx, b, key)
		wantKind(t, "Stat "+key, err, objstore.ErrNotFound)
		if errors.Is(err, objstore.ErrNoSuchBucket) {
			t.Fatalf("Stat %s: %v is also ErrNoSuchBucket", key, err)
		}
	}
}

func testInvalidKeys(t *testing.T, h Harness, s objstore.Storage) {
	b := newBucket(t, s)
	ctx := ctxT(t)
	bad := []string{
		"", "/abs", "a//b", "a/", "../escape", "a/../../escape", "a/./b", ".", "..",
		"a\\b", "nul\x00", "ctl\x01", "\xff\xfe", strings.Repeat("k", 1025),
		strings.Repeat("s", 256) + "/x", objstore.ReservedPrefix + "put-123", "a/" + objstore.WriteCheckPrefix + "x",
	}
	for _, key := range bad {
		err := objstore.PutBytes(ctx, s, b, key, []byte("x"), "")
		wantKind(t, fmt.Sprintf("Put %q", key), err, objstore.ErrInvalidKey)
		_, _, err = s.Get(ctx, b, key)
		wantKind(t, fmt.Sprintf("Get %q", key), err, objstore.ErrInvalidKey)
		_, err = s.Stat(ctx, b, key)
		wantKind(t, fmt.Sprintf("Stat %q", key), err, objstore.ErrInvalidKey)
		err = s.Delete(ctx, b, key)
		wantKind(t, fmt.Sprintf("Delete %q", key), err, objstore.ErrInvalidKey)
	}
	for _, prefix := range []string{"/", "/a", "a//", "../"} {
		_, err := s.List(ctx, b, objstore.ListInput{Prefix: prefix})
		wantKind(t, fmt.Sprintf("List %q", prefix), err, objstore.ErrInvalidKey)
	}
	if k := keys(listAll(t, s, b, "")); len(k) != 0 {
		t.Fatalf("invalid puts stored %q", k)
	}
}

func testInvalidBucketNames(t *testing.T, h Harness, s objstore.Storage) {
	ctx := ctxT(t)
	for _, b := range []string{"", "ab", "UPPER", "a..b", "-ab", "ab-", ".ab", "../etc", "a/b", "192.168.1.1", strings.Repeat("b", 64)} {
		err := s.CreateBucket(ctx, b)
		wantKind(t, fmt.Sprintf("CreateBucket %q", b), err, objstore.ErrInvalidBucketName)
		err = s.CheckBucket(ctx, b)
		wantKind(t, fmt.Sprintf("CheckBucket %q", b), err, objstore.ErrInvalidBucketName)
		err = objstore.PutBytes(ctx, s, b, "k", []byte("x"), "")
		wantKind(t, fmt.Sprintf("Put in %q", b), err, objstore.ErrInvalidBucketName)
		_, err = s.List(ctx, b, objstore.ListInput{})
		wantKind(t, fmt.Sprintf("List %q", b), err, objstore.ErrInvalidBucketName)
	}
}

// testIVSLayoutKeys puts keys shaped as IVS's recording layout, and keys
// with characters that URL encoding and request signing treat specially.
func testIVSLayoutKeys(t *testing.T, h Harness, s objstore.Storage) {
	b := newBucket(t, s)
	want := recordingKeys("a1B2c3D4e5F6/st-0123456789abcdef/AbCdEfGhIjKl/2024-01-01T12-00-55Z/", 2)
	want = append(want,
		"events/recording-ended.json",
		"with space/and+plus=equals&amp;.json",
		"unicode/é日本/ø.jpg",
		"tilde~/semi;colon/comma,at@dollar$.m3u8",
		"percent%20literal/x.json",
		"quote'paren(1)/star*.mp4",
	)
	for _, k := range want {
		put(t, s, b, k, []byte(k), "")
	}
	for _, k := range want {
		if got, info := get(t, s, b, k); string(got) != k || info.Key != k {
			t.Fatalf("Get(%q) = %q (key %q)", k, got, info.Key)
		}
	}
	slices.Sort(want)
	if got := keys(listAll(t, s, b, "")); !slices.Equal(got, want) {
		t.Fatalf("List:\n got %q\nwant %q", got, want)
	}
	if got := keys(listAll(t, s, b, "with space/")); !slices.Equal(got, []string{"with space/and+plus=equals&amp;.json"}) {
		t.Fatalf("List with a space in the prefix = %q", got)
	}
}

func testCreateBucketTwice(t *testing.T, h Harness, s objstore.Storage) {
	b := newBucket(t, s)
	put(t, s, b, "kept.json", []byte("{}"), "")
	if err := s.CreateBucket(ctxT(t), b); err != nil {
		t.Fatalf("second CreateBucket: %v", err)
	}
	if got, _ := get(t, s, b, "kept.json"); string(got) != "{}" {
		t.Fatalf("object after second CreateBucket: %q", got)
	}
}

func testCheckBucket(t *testing.T, h Harness, s objstore.Storage) {
	b := newBucket(t, s)
	for range 2 {
		if err := s.CheckBucket(ctxT(t), b); err != nil {
			t.Fatalf("CheckBucket of a writable bucket: %v", err)
		}
	}
	// The write check leaves nothing behind.
	if k := keys(listAll(t, s, b, "")); len(k) != 0 {
		t.Fatalf("CheckBucket left %q", k)
	}
}

func testRefusedWrites(t *testing.T, h Harness, s objstore.Storage) {
	if h.Refusing == nil {
		t.Skip("the harness cannot make a storage that refuses writes")
	}
	b := newBucket(t, s)
	put(t, s, b, "before.json", []byte("{}"), "")
	r := h.Refusing(t, s, b)
	ctx := ctxT(t)
	err := r.CheckBucket(ctx, b)
	wantKind(t, "CheckBucket", err, objstore.ErrAccessDenied)
	if reason := strings.TrimSpace(strings.SplitN(err.Error(), objstore.ErrAccessDenied.Error(), 2)[1]); reason == "" {
		t.Errorf("error %q gives no reason", err)
	}
	err = objstore.PutBytes(ctx, r, b, "refused.json", []byte("{}"), "")
	wantKind(t, "Put", err, objstore.ErrAccessDenied)
	if _, err := s.Stat(ctx, b, "refused.json"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("a refused put stored something: %v", err)
	}
}

func testCancelledPut(t *testing.T, h Harness, s objstore.Storage) {
	b := newBucket(t, s)
	ctx, cancel := context.WithCancel(ctxT(t))
	cancel()
	err := objstore.PutBytes(ctx, s, b, "cancelled.json", []byte("{}"), "")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a cancelled context: %v, want context.Canceled", err)
	}
	// Cancelled half way through a body.
	pr, pw := io.Pipe()
	ctx2, cancel2 := context.WithCancel(ctxT(t))
	go func() {
		pw.Write(make([]byte, 1<<10))
		cancel2()
		// Whoever reads next sees the end: the put must fail, not store a part.
		pw.CloseWithError(context.Canceled)
	}()
	err = s.Put(ctx2, b, "half.mp4", pr, "")
	if err == nil {
		t.Fatal("Put cancelled half way succeeded")
	}
	if k := keys(listAll(t, s, b, "")); len(k) != 0 {
		t.Fatalf("cancelled puts stored %q", k)
	}
}

// BenchmarkPut measures puts of a recording's typical objects: a playlist
// overwritten in place (1 KiB) and a segment (1 MiB, about 6 s of 1.5 Mbit/s
// video). Both implementations call it from their benchmarks.
func BenchmarkPut(b *testing.B, s objstore.Storage) {
	ctx := context.Background()
	bucket := BucketName()
	if err := s.CreateBucket(ctx, bucket); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		size int
		key  func(i int) string
	}{
		{"playlist-1KiB", 1 << 10, func(int) string { return "p/media/hls/high/playlist.m3u8" }},
		{"segment-1MiB", 1 << 20, func(i int) string { return fmt.Sprintf("p/media/hls/high/%d.mp4", i) }},
	} {
		body := make([]byte, c.size)
		rand.Read(body)
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(c.size))
			for i := 0; b.Loop(); i++ {
				if err := objstore.PutBytes(ctx, s, bucket, c.key(i), body, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

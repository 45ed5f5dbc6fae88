package s3store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/rostrum-dev/rostrum/internal/objstore"
	"github.com/rostrum-dev/rostrum/internal/objstore/objstoretest"
	"github.com/rostrum-dev/rostrum/internal/objstore/s3store"
)

// TestContract runs the suite against a real S3-compatible service: Versity's
// S3 gateway serving a temporary folder on loopback.
func TestContract(t *testing.T) {
	gw := objstoretest.StartVersityGW(t)
	open := func(t *testing.T, secret string) objstore.Storage {
		s, err := s3store.New(s3store.Config{
			Endpoint:        gw.Endpoint,
			Region:          gw.Region,
			AccessKeyID:     gw.AccessKeyID,
			SecretAccessKey: secret,
			ForcePathStyle:  true,
			PartSize:        s3store.MinPartSize, // so the large objects go up in parts
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	objstoretest.Run(t, objstoretest.Harness{
		Open: func(t *testing.T) objstore.Storage { return open(t, gw.SecretAccessKey) },
		Refusing: func(t *testing.T, _ objstore.Storage, _ string) objstore.Storage {
			return open(t, "not-the-secret")
		},
		KeepsAnyContentType: true,
		LargeSize:           12 << 20,
	})
}

// TestLargeObjectsGoUpInParts checks through S3 itself that objects larger
// than a part are multipart uploads (their ETag ends in -<parts>) and that
// smaller ones are not, whatever kind of body they come from.
func TestLargeObjectsGoUpInParts(t *testing.T) {
	gw := objstoretest.StartVersityGW(t)
	s, err := s3store.New(s3store.Config{Endpoint: gw.Endpoint, AccessKeyID: gw.AccessKeyID, SecretAccessKey: gw.SecretAccessKey, ForcePathStyle: true, PartSize: s3store.MinPartSize})
	if err != nil {
		t.Fatal(err)
	}
	raw := s3.New(s3.Options{
		BaseEndpoint: aws.String(gw.Endpoint), Region: gw.Region, UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(gw.AccessKeyID, gw.SecretAccessKey, ""),
	})
	ctx := context.Background()
	bucket := objstoretest.BucketName()
	if err := s.CreateBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 2*s3store.MinPartSize+100) // three parts
	rand.Read(data)
	cases := []struct {
		key   string
		body  io.Reader
		parts string
	}{
		{"seekable.mp4", bytes.NewReader(data), "-3"},
		{"stream.mp4", struct{ io.Reader }{bytes.NewReader(data)}, "-3"},
		{"small.mp4", bytes.NewReader(data[:1000]), ""},
		{"small-stream.mp4", struct{ io.Reader }{bytes.NewReader(data[:1000])}, ""},
	}
	for _, c := range cases {
		if err := s.Put(ctx, bucket, c.key, c.body, ""); err != nil {
			t.Fatal(err)
		}
		head, err := raw.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(c.key)})
		if err != nil {
			t.Fatal(err)
		}
		etag := strings.Trim(aws.ToString(head.ETag), `"`)
		if multipart := strings.Contains(etag, "-"); c.parts == "" && multipart || c.parts != "" && !strings.HasSuffix(etag, c.parts) {
			t.Errorf("%s: ETag %s, want parts %q", c.key, etag, c.parts)
		}
	}
	// No multipart upload is left open.
	ups, err := raw.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 0 {
		t.Fatalf("%d multipart uploads left open", len(ups.Uploads))
	}
	// One that fails half way is aborted.
	err = s.Put(ctx, bucket, "failed.mp4", io.MultiReader(bytes.NewReader(data), failing{}), "")
	if err == nil {
		t.Fatal("a put whose body fails succeeded")
	}
	if errors.Is(err, objstore.ErrUnavailable) {
		t.Fatalf("a failing body is blamed on the service: %v", err)
	}
	ups, err = raw.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 0 {
		t.Fatalf("the failed put left %d multipart uploads open", len(ups.Uploads))
	}
}

type failing struct{}

func (failing) Read([]byte) (int, error) { return 0, errors.New("encoder died") }

// TestUnreachable: a service that does not answer is ErrUnavailable, with
// the reason.
func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	s, err := s3store.New(s3store.Config{Endpoint: "http://" + addr, AccessKeyID: "k", SecretAccessKey: "s", ForcePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	err = s.CheckBucket(context.Background(), "recordings")
	if !errors.Is(err, objstore.ErrUnavailable) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("CheckBucket on a closed port: %v, want ErrUnavailable saying why", err)
	}
	t.Log(err)
}

// TestErrorReasons shows the messages a recording failure would carry.
func TestErrorReasons(t *testing.T) {
	gw := objstoretest.StartVersityGW(t)
	ctx := context.Background()
	good, _ := s3store.New(s3store.Config{Endpoint: gw.Endpoint, AccessKeyID: gw.AccessKeyID, SecretAccessKey: gw.SecretAccessKey, ForcePathStyle: true})
	err := good.CheckBucket(ctx, "no-such-recordings")
	if !errors.Is(err, objstore.ErrNoSuchBucket) || !strings.Contains(err.Error(), "no-such-recordings") {
		t.Fatalf("missing bucket: %v", err)
	}
	t.Log(err)
	err = objstore.PutBytes(ctx, good, "no-such-recordings", "a.json", nil, "")
	if !errors.Is(err, objstore.ErrNoSuchBucket) || !strings.Contains(err.Error(), "NoSuchBucket") {
		t.Fatalf("put in a missing bucket: %v", err)
	}
	t.Log(err)
	bucket := objstoretest.BucketName()
	if err := good.CreateBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []s3store.Config{
		{Endpoint: gw.Endpoint, AccessKeyID: gw.AccessKeyID, SecretAccessKey: "wrong", ForcePathStyle: true},
		{Endpoint: gw.Endpoint, AccessKeyID: "AKIAUNKNOWN", SecretAccessKey: gw.SecretAccessKey, ForcePathStyle: true},
	} {
		bad, _ := s3store.New(cfg)
		err := bad.CheckBucket(ctx, bucket)
		if !errors.Is(err, objstore.ErrAccessDenied) {
			t.Fatalf("CheckBucket with wrong credentials: %v", err)
		}
		t.Log(err)
		err = objstore.PutBytes(ctx, bad, bucket, "a.json", nil, "")
		if !errors.Is(err, objstore.ErrAccessDenied) {
			t.Fatalf("Put with wrong credentials: %v", err)
		}
		t.Log(err)
	}
}

func TestNewChecksConfig(t *testing.T) {
	for _, cfg := range []s3store.Config{
		{Endpoint: "", AccessKeyID: "k", SecretAccessKey: "s"},
		{Endpoint: "127.0.0.1:9000", AccessKeyID: "k", SecretAccessKey: "s"},
		{Endpoint: "ftp://x", AccessKeyID: "k", SecretAccessKey: "s"},
		{Endpoint: "http://x", AccessKeyID: "", SecretAccessKey: "s"},
		{Endpoint: "http://x", AccessKeyID: "k", SecretAccessKey: "s", PartSize: 1 << 20},
	} {
		if _, err := s3store.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// BenchmarkPut puts to a versitygw on loopback: the client's cost and the
// gateway's together.
func BenchmarkPut(b *testing.B) {
	gw := objstoretest.StartVersityGW(b)
	s, err := s3store.New(s3store.Config{Endpoint: gw.Endpoint, AccessKeyID: gw.AccessKeyID, SecretAccessKey: gw.SecretAccessKey, ForcePathStyle: true})
	if err != nil {
		b.Fatal(err)
	}
	objstoretest.BenchmarkPut(b, s)
}

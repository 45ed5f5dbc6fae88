// Package s3store is the objstore.Storage of an S3-compatible service (AWS
// S3, MinIO, Ceph RGW, versitygw, …) through aws-sdk-go-v2's S3 client.
//
// Objects up to Config.PartSize go up in one PutObject; larger ones as a
// multipart upload, one part at a time, aborted if any part fails, so that a
// failed put leaves nothing behind and a reader never sees part of an object
// (S3 replaces an object whole).
package s3store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/rostrum-dev/rostrum/internal/objstore"
)

// Config says how to reach the service.
type Config struct {
	// Endpoint is the service's URL, e.g. http://127.0.0.1:9000 or
	// https://s3.eu-west-1.amazonaws.com.
	Endpoint string
	// Region signs requests; "" is us-east-1 (what most S3-compatible
	// services expect).
	Region          string
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// ForcePathStyle addresses buckets as ENDPOINT/BUCKET instead of
	// BUCKET.ENDPOINT host names, which most self-hosted services need.
	ForcePathStyle bool
	// PartSize is the size of the parts of a multipart upload, and the
	// largest object put in one request: 5 MiB (S3's least) or more; 0 means
	// DefaultPartSize.
	PartSize int64
	// HTTPClient sends the requests; nil means a client of its own.
	HTTPClient *http.Client
}

// DefaultPartSize is the default Config.PartSize. A recording's segments are
// smaller, so each goes up in one request.
const DefaultPartSize = 16 << 20

// MinPartSize is S3's smallest part (but the last).
const MinPartSize = 5 << 20

// Store is the storage on one S3-compatible service.
type Store struct {
	client   *s3.Client
	endpoint string
	region   string
	partSize int64
}

var _ objstore.Storage = (*Store)(nil)

// New returns the storage on cfg's service. It sends nothing: CheckBucket
// tells whether the service answers.
func New(cfg Config) (*Store, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("s3store: endpoint %q: must be an absolute http or https URL", cfg.Endpoint)
	}
	if cfg.AccessKeyID == "" || cfg.SecretAccessKey == "" {
		return nil, errors.New("s3store: needs an access key id and a secret access key")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.PartSize < MinPartSize {
		return nil, fmt.Errorf("s3store: part size %d: S3 needs at least %d", cfg.PartSize, MinPartSize)
	}
	opts := s3.Options{
		BaseEndpoint: aws.String(cfg.Endpoint),
		Region:       cfg.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken),
		UsePathStyle: cfg.ForcePathStyle,
		// The SDK's default since 2025 adds CRC checksums to every request,
		// which many S3-compatible services (older MinIO, Ceph, …) refuse;
		// S3 itself needs them only where the operation requires them.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if cfg.HTTPClient != nil {
		opts.HTTPClient = cfg.HTTPClient
	}
	return &Store{client: s3.New(opts), endpoint: cfg.Endpoint, region: cfg.Region, partSize: cfg.PartSize}, nil
}

func (s *Store) String() string { return "S3 endpoint " + s.endpoint }

func validateBucket(op, bucket string) error {
	if err := objstore.ValidateBucketName(bucket); err != nil {
		return &objstore.Error{Op: op, Bucket: bucket, Err: err}
	}
	return nil
}

func validate(op, bucket, key string) error {
	if err := objstore.ValidateBucketName(bucket); err != nil {
		return &objstore.Error{Op: op, Bucket: bucket, Key: key, Err: err}
	}
	if err := objstore.ValidateKey(key); err != nil {
		return &objstore.Error{Op: op, Bucket: bucket, Key: key, Err: err}
	}
	return nil
}

// CreateBucket creates the bucket in the configured region; a bucket we
// already own is no error.
func (s *Store) CreateBucket(ctx context.Context, bucket string) error {
	const op = "create bucket"
	if err := validateBucket(op, bucket); err != nil {
		return err
	}
	in := &s3.CreateBucketInput{Bucket: aws.String(bucket)}
	if s.region != "us-east-1" { // S3 refuses us-east-1 as a location constraint
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(s.region)}
	}
	_, err := s.client.CreateBucket(ctx, in)
	var owned *types.BucketAlreadyOwnedByYou
	if err == nil || errors.As(err, &owned) {
		return nil
	}
	return s3Error(op, bucket, "", err)
}

// CheckBucket puts and deletes a probe object: only a write proves that
// writes are allowed, and a PutObject is all the permission a recording
// needs (HeadBucket would need s3:ListBucket too, and its answers have no
// body to tell a missing bucket from unknown credentials). A failed delete
// is ignored: a policy may allow only s3:PutObject, and then the zero-byte
// probe stays under objstore.WriteCheckPrefix.
func (s *Store) CheckBucket(ctx context.Context, bucket string) error {
	const op = "check bucket"
	if err := validateBucket(op, bucket); err != nil {
		return err
	}
	var id [8]byte
	rand.Read(id[:])
	probe := objstore.WriteCheckPrefix + hex.EncodeToString(id[:])
	if err := s.putObject(ctx, bucket, probe, bytes.NewReader(nil), 0, "text/plain"); err != nil {
		return s3Error(op, bucket, "", err)
	}
	s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(probe)})
	return nil
}

// Put sends the object in one request or, above the part size, as a
// multipart upload.
func (s *Store) Put(ctx context.Context, bucket, key string, body io.Reader, contentType string) error {
	const op = "put"
	if err := validate(op, bucket, key); err != nil {
		return err
	}
	if contentType == "" {
		contentType = objstore.ContentTypeFor(key)
	}
	var err error
	if ra, size, ok := sizedReader(body); ok {
		err = s.putSized(ctx, bucket, key, ra, size, contentType)
	} else {
		err = s.putStream(ctx, bucket, key, body, contentType)
	}
	if err != nil {
		return s3Error(op, bucket, key, err)
	}
	return nil
}

// readerAtSeeker is a body whose parts can be sent without copying them:
// an *os.File, a *bytes.Reader.
type readerAtSeeker interface {
	io.ReaderAt
	io.Seeker
}

// sizedReader gives the rest of body as a section when it can be read at
// offsets (and so its parts signed and resent without buffering).
func sizedReader(body io.Reader) (*io.SectionReader, int64, bool) {
	rs, ok := body.(readerAtSeeker)
	if !ok {
		return nil, 0, false
	}
	cur, err := rs.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, 0, false
	}
	end, err := rs.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, 0, false
	}
	if _, err := rs.Seek(cur, io.SeekStart); err != nil {
		return nil, 0, false
	}
	return io.NewSectionReader(rs, cur, end-cur), end - cur, true
}

func (s *Store) putSized(ctx context.Context, bucket, key string, r *io.SectionReader, size int64, contentType string) error {
	if size <= s.partSize {
		return s.putObject(ctx, bucket, key, r, size, contentType)
	}
	return s.multipart(ctx, bucket, key, contentType, func(yield func(io.ReadSeeker, int64) error) error {
		for off := int64(0); off < size; off += s.partSize {
			n := min(s.partSize, size-off)
			if err := yield(io.NewSectionReader(r, off, n), n); err != nil {
				return err
			}
		}
		return nil
	})
}

// putStream reads an unseekable body a part at a time: S3 needs each
// request's length (and, over plain HTTP, its hash) before sending it. The
// buffer grows with what is read, so a small body costs a small buffer.
func (s *Store) putStream(ctx context.Context, bucket, key string, body io.Reader, contentType string) error {
	var buf bytes.Buffer
	readPart := func() (int64, error) {
		buf.Reset()
		n, err := io.CopyN(&buf, body, s.partSize)
		if err == io.EOF {
			err = nil
		}
		if err != nil {
			return n, bodyError{err}
		}
		return n, nil
	}
	n, err := readPart()
	if err != nil {
		return err
	}
	if n < s.partSize {
		return s.putObject(ctx, bucket, key, bytes.NewReader(buf.Bytes()), n, contentType)
	}
	return s.multipart(ctx, bucket, key, contentType, func(yield func(io.ReadSeeker, int64) error) error {
		for n > 0 {
			if err := yield(bytes.NewReader(buf.Bytes()), n); err != nil {
				return err
			}
			if n, err = readPart(); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) putObject(ctx context.Context, bucket, key string, body io.ReadSeeker, size int64, contentType string) error {
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		Body:          body,
		ContentLength: aws.Int64(size),
		ContentType:   aws.String(contentType),
	})
	return err
}

// multipart uploads the parts that parts yields, in order, and completes
// the upload; on any failure it aborts it so no part is left stored.
func (s *Store) multipart(ctx context.Context, bucket, key, contentType string, parts func(yield func(io.ReadSeeker, int64) error) error) error {
	up, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:      aws.String(bucket),
		Key:         aws.String(key),
		ContentType: aws.String(contentType),
	})
	if err != nil {
		return err
	}
	var done []types.CompletedPart
	err = parts(func(r io.ReadSeeker, n int64) error {
		num := int32(len(done) + 1)
		out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket:        aws.String(bucket),
			Key:           aws.String(key),
			UploadId:      up.UploadId,
			PartNumber:    aws.Int32(num),
			Body:          r,
			ContentLength: aws.Int64(n),
		})
		if err != nil {
			return err
		}
		done = append(done, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
		return nil
	})
	if err == nil {
		_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket:          aws.String(bucket),
			Key:             aws.String(key),
			UploadId:        up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
		})
	}
	if err != nil {
		// Aborted even when ctx has ended: stored parts are billed and
		// invisible until aborted.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId})
		return err
	}
	return nil
}

// Get is GetObject.
func (s *Store) Get(ctx context.Context, bucket, key string) (io.ReadCloser, objstore.ObjectInfo, error) {
	const op = "get"
	if err := validate(op, bucket, key); err != nil {
		return nil, objstore.ObjectInfo{}, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, objstore.ObjectInfo{}, s3Error(op, bucket, key, err)
	}
	return out.Body, objstore.ObjectInfo{
		Key:          key,
		Size:         aws.ToInt64(out.ContentLength),
		ContentType:  aws.ToString(out.ContentType),
		LastModified: aws.ToTime(out.LastModified).UTC(),
	}, nil
}

// Stat is HeadObject. A HEAD answer has no body to tell a missing bucket
// from a missing key, so a 404 is explained by notFound.
func (s *Store) Stat(ctx context.Context, bucket, key string) (objstore.ObjectInfo, error) {
	const op = "stat"
	if err := validate(op, bucket, key); err != nil {
		return objstore.ObjectInfo{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		if httpStatus(err) == http.StatusNotFound {
			return objstore.ObjectInfo{}, s.notFound(ctx, op, bucket, key, err)
		}
		return objstore.ObjectInfo{}, s3Error(op, bucket, key, err)
	}
	return objstore.ObjectInfo{
		Key:          key,
		Size:         aws.ToInt64(out.ContentLength),
		ContentType:  aws.ToString(out.ContentType),
		LastModified: aws.ToTime(out.LastModified).UTC(),
	}, nil
}

// notFound explains a 404 without a body: a listing of the key (a GET,
// whose error has a body) tells a missing bucket, or credentials the service
// does not know, from a missing key.
func (s *Store) notFound(ctx context.Context, op, bucket, key string, headErr error) error {
	_, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(key), MaxKeys: aws.Int32(1)})
	var ae smithy.APIError
	if err != nil && errors.As(err, &ae) && (ae.ErrorCode() == "NoSuchBucket" || credentialCodes[ae.ErrorCode()]) {
		return s3Error(op, bucket, key, err)
	}
	return &objstore.Error{Op: op, Bucket: bucket, Key: key, Kind: objstore.ErrNotFound, Err: headErr}
}

// List is ListObjectsV2; its continuation token is the page token.
func (s *Store) List(ctx context.Context, bucket string, in objstore.ListInput) (objstore.ListPage, error) {
	const op = "list"
	if err := validateBucket(op, bucket); err != nil {
		return objstore.ListPage{}, err
	}
	if err := objstore.ValidatePrefix(in.Prefix); err != nil {
		return objstore.ListPage{}, &objstore.Error{Op: op, Bucket: bucket, Key: in.Prefix, Err: err}
	}
	limit := in.Limit
	if limit <= 0 || limit > objstore.MaxListLimit {
		limit = objstore.MaxListLimit
	}
	req := &s3.ListObjectsV2Input{Bucket: aws.String(bucket), MaxKeys: aws.Int32(int32(limit))}
	if in.Prefix != "" {
		req.Prefix = aws.String(in.Prefix)
	}
	if in.Token != "" {
		req.ContinuationToken = aws.String(in.Token)
	}
	out, err := s.client.ListObjectsV2(ctx, req)
	if err != nil {
		return objstore.ListPage{}, s3Error(op, bucket, in.Prefix, err)
	}
	var page objstore.ListPage
	for _, o := range out.Contents {
		page.Objects = append(page.Objects, objstore.ObjectInfo{
			Key:          aws.ToString(o.Key),
			Size:         aws.ToInt64(o.Size),
			LastModified: aws.ToTime(o.LastModified).UTC(),
		})
	}
	if aws.ToBool(out.IsTruncated) {
		page.Next = aws.ToString(out.NextContinuationToken)
	}
	return page, nil
}

// Delete is DeleteObject.
func (s *Store) Delete(ctx context.Context, bucket, key string) error {
	const op = "delete"
	if err := validate(op, bucket, key); err != nil {
		return err
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		return s3Error(op, bucket, key, err)
	}
	return nil
}

// bodyError is a failure to read the caller's body, which says nothing
// about the service.
type bodyError struct{ err error }

func (e bodyError) Error() string { return "reading the body: " + e.err.Error() }
func (e bodyError) Unwrap() error { return e.err }

// credentialCodes are the error codes of credentials the service refuses.
// XAdminUserNotFound is versitygw's answer (HTTP 404) to an access key it
// does not know, where S3 answers InvalidAccessKeyId (403).
var credentialCodes = map[string]bool{
	"InvalidAccessKeyId": true, "SignatureDoesNotMatch": true, "InvalidToken": true,
	"ExpiredToken": true, "InvalidSecurity": true, "XAdminUserNotFound": true,
}

func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// s3Error gives an S3 error its kind, by its code and else its HTTP status.
func s3Error(op, bucket, key string, err error) error {
	var kind error
	var ae smithy.APIError
	code := ""
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	status := httpStatus(err)
	var be bodyError
	switch {
	case errors.As(err, &be):
	case code == "NoSuchBucket":
		kind = objstore.ErrNoSuchBucket
	case code == "NoSuchKey":
		kind = objstore.ErrNotFound
	case credentialCodes[code], code == "AccessDenied", code == "AllAccessDisabled",
		code == "AccountProblem", code == "BucketAlreadyExists":
		kind = objstore.ErrAccessDenied
	case code == "InvalidBucketName":
		kind = objstore.ErrInvalidBucketName
	case code == "KeyTooLongError":
		kind = objstore.ErrInvalidKey
	case status == http.StatusForbidden:
		kind = objstore.ErrAccessDenied
	case status == http.StatusNotFound:
		kind = objstore.ErrNotFound
	case status >= 500:
		kind = objstore.ErrUnavailable
	case status == 0 && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded):
		kind = objstore.ErrUnavailable // no answer: refused, reset, DNS
	}
	return &objstore.Error{Op: op, Bucket: bucket, Key: key, Kind: kind, Err: err}
}

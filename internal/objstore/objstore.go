// Package objstore is the object storage that recordings are written to: the
// buckets of IVS storage configurations. Two implementations satisfy Storage
// with the same behaviour (objstoretest is the suite both pass): a local
// folder (package folder, the default) and any S3-compatible service
// (package s3store).
//
// Buckets and keys are S3's: a bucket name as S3 allows it, a key of up to
// 1,024 bytes in which "/" separates segments. Keys are validated alike by
// both implementations (ValidateKey), so that a layout that works on one works
// on the other.
package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"
	"unicode/utf8"
)

// Storage holds objects in buckets. Every method is safe for concurrent use;
// concurrent puts of one key leave exactly one of them, never a mix, and a
// reader never sees an object half written (an overwritten object reads as
// the old or the new one).
//
// Errors wrap one of the Err* kinds below where one applies (match them with
// errors.Is) and say the underlying reason in their text.
type Storage interface {
	// CreateBucket creates bucket; a bucket that already exists and is ours
	// is no error.
	CreateBucket(ctx context.Context, bucket string) error

	// CheckBucket verifies that bucket exists and accepts writes, as a
	// recording must before it starts: ErrNoSuchBucket, ErrAccessDenied or
	// another error with the reason when it does not. The local folder
	// creates the bucket on demand. The write check puts and deletes a
	// zero-byte object under the reserved prefix ".rostrum-write-check/".
	CheckBucket(ctx context.Context, bucket string) error

	// Put writes the object bucket/key from body, replacing any object of
	// that key. contentType "" means ContentTypeFor(key). A body that is an
	// io.ReadSeeker (a file, a bytes.Reader) is streamed as is; others are
	// read in parts, so a body of any size works.
	Put(ctx context.Context, bucket, key string, body io.Reader, contentType string) error

	// Get opens the object for reading; the caller closes it.
	Get(ctx context.Context, bucket, key string) (io.ReadCloser, ObjectInfo, error)

	// Stat describes the object without reading it.
	Stat(ctx context.Context, bucket, key string) (ObjectInfo, error)

	// List returns one page of the objects whose keys begin with in.Prefix,
	// in ascending byte order of their keys.
	List(ctx context.Context, bucket string, in ListInput) (ListPage, error)

	// Delete removes the object; deleting an object that does not exist is
	// no error (as S3's DeleteObject), a bucket that does not exist is.
	Delete(ctx context.Context, bucket, key string) error

	// String says where objects go, for logs: "local folder DIR" or
	// "S3 endpoint URL".
	String() string
}

// ObjectInfo describes an object.
type ObjectInfo struct {
	Key          string
	Size         int64
	ContentType  string // empty in List results: S3's listings do not carry it
	LastModified time.Time
}

// ListInput selects a page of List.
type ListInput struct {
	Prefix string
	// Token continues a listing: ListPage.Next of the page before.
	Token string
	// Limit is the most objects in the page: 1 to MaxListLimit, and 0 means
	// MaxListLimit.
	Limit int
}

// MaxListLimit is the largest page (S3's).
const MaxListLimit = 1000

// ListPage is one page of a listing.
type ListPage struct {
	Objects []ObjectInfo
	// Next is the token of the next page, "" when this page is the last.
	Next string
}

// The kinds of error a caller can act on. Errors of Storage wrap one of them
// (errors.Is) and carry the reason in their text.
var (
	ErrNoSuchBucket      = errors.New("no such bucket")
	ErrNotFound          = errors.New("no such key")
	ErrAccessDenied      = errors.New("access denied")
	ErrInvalidKey        = errors.New("invalid key")
	ErrInvalidBucketName = errors.New("invalid bucket name")
	// ErrUnavailable: the storage did not answer (connection refused, timed
	// out, a server error); trying again later may work.
	ErrUnavailable = errors.New("storage unavailable")
)

// Error is an error of a Storage operation.
type Error struct {
	Op     string // "put", "get", "stat", "list", "delete", "create bucket", "check bucket"
	Bucket string
	Key    string // or the prefix of a listing; "" for bucket operations
	Kind   error  // one of the Err* kinds, or nil
	Err    error  // the reason, or nil
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(" ")
	b.WriteString(e.Bucket)
	if e.Key != "" {
		b.WriteString("/")
		b.WriteString(e.Key)
	}
	if e.Kind != nil {
		b.WriteString(": ")
		b.WriteString(e.Kind.Error())
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap gives both the kind and the reason to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// KeyMaxBytes is S3's longest key.
const KeyMaxBytes = 1024

// segmentMaxBytes is the longest file name of common filesystems (NAME_MAX):
// the local folder stores each segment of a key as one.
const segmentMaxBytes = 255

// ReservedPrefix begins key segments that Storage implementations use for
// themselves (temporary files, the write check); callers' keys cannot.
const ReservedPrefix = ".rostrum-"

// WriteCheckPrefix is where CheckBucket writes its probe object.
const WriteCheckPrefix = ReservedPrefix + "write-check/"

// ValidateKey accepts the keys that both implementations can store as
// themselves: 1 to 1,024 bytes of UTF-8 without control characters or
// backslashes, segments separated by single slashes, none of them empty,
// "." or "..", longer than 255 bytes or beginning with ReservedPrefix. So no
// key is absolute, ends in a slash, or names anything outside its bucket.
func ValidateKey(key string) error {
	if err := validateKey(key); err != nil {
		return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, err)
	}
	return nil
}

func validateKey(key string) error {
	if key == "" {
		return errors.New("empty")
	}
	if len(key) > KeyMaxBytes {
		return fmt.Errorf("%d bytes, longer than %d", len(key), KeyMaxBytes)
	}
	if !utf8.ValidString(key) {
		return errors.New("not UTF-8")
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return errors.New("control character")
		}
		if r == '\\' {
			return errors.New("backslash")
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return errors.New("empty segment (leading, trailing or double slash)")
		case seg == "." || seg == "..":
			return fmt.Errorf("segment %q", seg)
		case len(seg) > segmentMaxBytes:
			return fmt.Errorf("segment of %d bytes, longer than %d", len(seg), segmentMaxBytes)
		case strings.HasPrefix(seg, ReservedPrefix):
			return fmt.Errorf("segment beginning with the reserved %q", ReservedPrefix)
		}
	}
	return nil
}

// ValidatePrefix accepts listing prefixes: "" or a string that some valid
// key begins with, which may end in a slash.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	k := strings.TrimSuffix(prefix, "/")
	// A prefix may end inside a segment ("a/b" lists "a/bc"), so its last
	// segment may be shorter than a key's but nothing else may differ.
	if err := validateKey(k); err != nil || len(prefix) > KeyMaxBytes {
		if err == nil {
			err = fmt.Errorf("%d bytes, longer than %d", len(prefix), KeyMaxBytes)
		}
		return fmt.Errorf("%w: prefix %q: %s", ErrInvalidKey, prefix, err)
	}
	return nil
}

// ValidateBucketName accepts S3's bucket names (general purpose buckets): 3
// to 63 lower-case letters, digits, dots and hyphens, beginning and ending
// with a letter or digit, no two dots together, not shaped like an IP
// address.
func ValidateBucketName(bucket string) error {
	if err := validateBucketName(bucket); err != nil {
		return fmt.Errorf("%w %q: %s", ErrInvalidBucketName, bucket, err)
	}
	return nil
}

func validateBucketName(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return errors.New("must be 3 to 63 characters long")
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return errors.New("may hold only lower-case letters, digits, dots and hyphens")
		}
	}
	if !alnum(b[0]) || !alnum(b[len(b)-1]) {
		return errors.New("must begin and end with a letter or digit")
	}
	if strings.Contains(b, "..") {
		return errors.New("must not hold two dots together")
	}
	if isIPv4Shaped(b) {
		return errors.New("must not be shaped like an IP address")
	}
	return nil
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func isIPv4Shaped(b string) bool {
	parts := strings.Split(b, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 3 {
			return false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
	}
	return true
}

// contentTypes are the types of the files a recording writes, and a few
// more; the system's MIME table is not consulted, so that a key has the same
// type on every machine.
var contentTypes = map[string]string{
	".m3u8": "application/vnd.apple.mpegurl",
	".m4s":  "video/iso.segment",
	".mp4":  "video/mp4",
	".m4a":  "audio/mp4",
	".ts":   "video/mp2t",
	".jpg":  "image/jpeg",
	".jpeg": "image/jpeg",
	".png":  "image/png",
	".json": "application/json",
	".txt":  "text/plain; charset=utf-8",
	".vtt":  "text/vtt",
	".webm": "video/webm",
}

// DefaultContentType is the type of an object whose key says nothing, as
// S3 gives it.
const DefaultContentType = "binary/octet-stream"

// ContentTypeFor is the content type an object gets when Put is given none:
// the one of its key's extension, else DefaultContentType.
func ContentTypeFor(key string) string {
	if ct, ok := contentTypes[strings.ToLower(path.Ext(key))]; ok {
		return ct
	}
	return DefaultContentType
}

// PutBytes puts b as the object bucket/key.
func PutBytes(ctx context.Context, s Storage, bucket, key string, b []byte, contentType string) error {
	return s.Put(ctx, bucket, key, bytes.NewReader(b), contentType)
}

// PutFile puts the file at name as the object bucket/key, streaming it.
func PutFile(ctx context.Context, s Storage, bucket, key, name, contentType string) error {
	f, err := os.Open(name)
	if err != nil {
		return &Error{Op: "put", Bucket: bucket, Key: key, Err: err}
	}
	defer f.Close()
	return s.Put(ctx, bucket, key, f, contentType)
}

// GetBytes reads the whole object bucket/key.
func GetBytes(ctx context.Context, s Storage, bucket, key string) ([]byte, ObjectInfo, error) {
	rc, info, err := s.Get(ctx, bucket, key)
	if err != nil {
		return nil, info, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, info, &Error{Op: "get", Bucket: bucket, Key: key, Kind: ErrUnavailable, Err: err}
	}
	return b, info, nil
}

// ListAll lists every object under prefix, page after page.
func ListAll(ctx context.Context, s Storage, bucket, prefix string) ([]ObjectInfo, error) {
	var all []ObjectInfo
	in := ListInput{Prefix: prefix}
	for {
		page, err := s.List(ctx, bucket, in)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Objects...)
		if page.Next == "" {
			return all, nil
		}
		in.Token = page.Next
	}
}

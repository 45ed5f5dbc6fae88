package objstore

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidateKey(t *testing.T) {
	good := []string{
		"a", "a/b", "AbCdEf/st-1/p/2024-01-01T12-00-55Z/media/hls/high/playlist.m3u8",
		"...", "a/..b", "..a", "with space/é日本", strings.Repeat("kkk/", 255) + "kkkk",
		strings.Repeat("s", 255) + "/x", ".hidden", "a/.rostrum", // the reserved prefix has a dash
	}
	for _, k := range good {
		if err := ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q) = %v, want ok", k, err)
		}
	}
	bad := []string{
		"", "/a", "a/", "a//b", ".", "..", "../a", "a/..", "a/./b", "a\\b", "a\x00", "a\x7f", "\xc3",
		strings.Repeat("k", KeyMaxBytes+1), strings.Repeat("s", 256), ".rostrum-put-x", "a/.rostrum-write-check/x",
	}
	for _, k := range bad {
		err := ValidateKey(k)
		if !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidateKey(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
}

func TestValidateBucketName(t *testing.T) {
	for _, b := range []string{"abc", "my-recordings", "rec.example.com", "a1-2.b3", strings.Repeat("b", 63), "1.2.3"} {
		if err := ValidateBucketName(b); err != nil {
			t.Errorf("ValidateBucketName(%q) = %v", b, err)
		}
	}
	for _, b := range []string{"", "ab", "Abc", "a_b", "-ab", "ab-", ".ab", "ab.", "a..b", "10.0.0.1", "a/b", "..", "...", strings.Repeat("b", 64)} {
		if err := ValidateBucketName(b); !errors.Is(err, ErrInvalidBucketName) {
			t.Errorf("ValidateBucketName(%q) = %v, want ErrInvalidBucketName", b, err)
		}
	}
}

func TestErrorText(t *testing.T) {
	cause := errors.New("NoSuchBucket: The specified bucket does not exist")
	err := error(&Error{Op: "put", Bucket: "recs", Key: "a/b.json", Kind: ErrNoSuchBucket, Err: cause})
	if got, want := err.Error(), "put recs/a/b.json: no such bucket: NoSuchBucket: The specified bucket does not exist"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	wrapped := fmt.Errorf("recording start: %w", err)
	if !errors.Is(wrapped, ErrNoSuchBucket) || !errors.Is(wrapped, cause) || errors.Is(wrapped, ErrNotFound) {
		t.Fatal("errors.Is does not see the kind and only the kind")
	}
}

func TestContentTypeFor(t *testing.T) {
	for key, want := range map[string]string{
		"x/playlist.m3u8": "application/vnd.apple.mpegurl",
		"x/1.mp4":         "video/mp4",
		"x/1.JPG":         "image/jpeg",
		"e/a.json":        "application/json",
		"noext":           DefaultContentType,
		"dir.d/noext":     DefaultContentType,
	} {
		if got := ContentTypeFor(key); got != want {
			t.Errorf("ContentTypeFor(%q) = %q, want %q", key, got, want)
		}
	}
}

// FuzzValidateKey checks that every key ValidateKey accepts stays inside its
// bucket whatever joins it to a path: cleaning it changes nothing, no
// segment climbs, and it is neither absolute nor empty.
// Run: go test ./internal/objstore -fuzz FuzzValidateKey
func FuzzValidateKey(f *testing.F) {
	for _, k := range []string{"a/b", "..", "../x", "a/../b", "/x", "a//b", "a/", "\x00", "é", "a\\..\\b"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if ValidateKey(key) != nil {
			return
		}
		if !utf8.ValidString(key) || len(key) == 0 || len(key) > KeyMaxBytes {
			t.Fatalf("accepted %q", key)
		}
		if path.Clean(key) != key || path.IsAbs(key) {
			t.Fatalf("accepted %q, which path.Clean makes %q", key, path.Clean(key))
		}
		joined := path.Join("/root/bucket", key)
		if !strings.HasPrefix(joined, "/root/bucket/") || joined[len("/root/bucket/"):] != key {
			t.Fatalf("accepted %q, which joins to %q", key, joined)
		}
		if ValidatePrefix(key) != nil {
			t.Fatalf("a valid key %q is no valid prefix", key)
		}
	})
}

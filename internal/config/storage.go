package config

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"path/filepath"
)

// Storage configures the object storage recordings are written to: a
// local folder, or an S3-compatible service when S3Endpoint is set. These
// flag names are a contract (scripts outside the project use them).
type Storage struct {
	Dir string // "" means <data-dir>/storage

	S3Endpoint        string // empty: the local folder
	S3Region          string // "" means --region
	S3AccessKeyID     string // "" means AWS_ACCESS_KEY_ID
	S3SecretAccessKey string
	S3ForcePathStyle  bool
}

func (c *Config) storageFlagDefs(fs *flag.FlagSet) {
	s := &c.Storage
	fs.StringVar(&s.Dir, "storage-dir", "", "local `folder` recordings are written to when no --s3-endpoint is set: bucket B, key K is the file DIR/B/K, and a storage configuration's bucket is created there on demand (default: <data-dir>/storage)")
	fs.StringVar(&s.S3Endpoint, "s3-endpoint", "", "`URL` of an S3-compatible service (AWS S3, MinIO, Ceph, …); with it set, every storage configuration's bucket is on that service instead of in --storage-dir")
	fs.StringVar(&s.S3Region, "s3-region", "", "`region` requests to --s3-endpoint are signed for (default: --region)")
	fs.StringVar(&s.S3AccessKeyID, "s3-access-key-id", "", "access key for --s3-endpoint (default: AWS_ACCESS_KEY_ID)")
	fs.StringVar(&s.S3SecretAccessKey, "s3-secret-access-key", "", "secret key for --s3-endpoint (default: AWS_SECRET_ACCESS_KEY; AWS_SESSION_TOKEN is used with them)")
	fs.BoolVar(&s.S3ForcePathStyle, "s3-force-path-style", false, "address buckets as ENDPOINT/BUCKET rather than as host names BUCKET.ENDPOINT (MinIO and most self-hosted services need it)")
}

func (c *Config) validateStorage() error {
	s := &c.Storage
	var errs []error
	if s.S3Endpoint != "" {
		if u, err := url.Parse(s.S3Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--s3-endpoint %q: must be an absolute http or https URL", s.S3Endpoint))
		}
	}
	if s.S3Region != "" && !regionRE.MatchString(s.S3Region) {
		errs = append(errs, fmt.Errorf("--s3-region %q: must be lower-case letters, digits and dashes", s.S3Region))
	}
	if (s.S3AccessKeyID == "") != (s.S3SecretAccessKey == "") {
		errs = append(errs, errors.New("--s3-access-key-id and --s3-secret-access-key go together"))
	}
	return errors.Join(errs...)
}

// StorageDir is the local folder of recordings: --storage-dir, else the
// folder storage in the data directory.
func (c *Config) StorageDir() string {
	if c.Storage.Dir != "" {
		return c.Storage.Dir
	}
	return filepath.Join(c.DataDir, "storage")
}

// StorageRegion is the region of --s3-endpoint's requests.
func (c *Config) StorageRegion() string {
	if c.Storage.S3Region != "" {
		return c.Storage.S3Region
	}
	return c.Region
}

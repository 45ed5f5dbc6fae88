package server

import (
	"errors"
	"os"

	"github.com/rostrum-dev/rostrum/internal/config"
	"github.com/rostrum-dev/rostrum/internal/objstore"
	"github.com/rostrum-dev/rostrum/internal/objstore/folder"
	"github.com/rostrum-dev/rostrum/internal/objstore/s3store"
)

// OpenStorage returns the object storage recordings are written to: the
// S3-compatible service of --s3-endpoint when it is set, else the local
// folder --storage-dir. It sends and creates nothing; CheckBucket, when a
// recording starts, finds out whether a bucket is usable.
func OpenStorage(cfg *config.Config) (objstore.Storage, error) {
	sc := cfg.Storage
	if sc.S3Endpoint == "" {
		return folder.New(cfg.StorageDir())
	}
	id, secret, token := sc.S3AccessKeyID, sc.S3SecretAccessKey, ""
	if id == "" {
		id, secret, token = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN")
	}
	if id == "" || secret == "" {
		return nil, errors.New("--s3-endpoint needs credentials: --s3-access-key-id and --s3-secret-access-key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	return s3store.New(s3store.Config{
		Endpoint:        sc.S3Endpoint,
		Region:          cfg.StorageRegion(),
		AccessKeyID:     id,
		SecretAccessKey: secret,
		SessionToken:    token,
		ForcePathStyle:  sc.S3ForcePathStyle,
	})
}

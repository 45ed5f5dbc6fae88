package s3store_test

import (
	"testing"

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

package folder_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rostrum-dev/rostrum/internal/objstore"
	"github.com/rostrum-dev/rostrum/internal/objstore/folder"
	"github.com/rostrum-dev/rostrum/internal/objstore/objstoretest"
	"golang.org/x/sys/unix"
)

func TestContract(t *testing.T) {
	objstoretest.Run(t, objstoretest.Harness{
		Open: func(t *testing.T) objstore.Storage {
			f, err := folder.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return f
		},
		Refusing:            refusing,
		CreatesBuckets:      true,
		KeepsAnyContentType: xattrs(t),
	})
}

// xattrs tells whether the test's temporary folders keep user extended
// attributes (ext4, xfs, btrfs and recent tmpfs do).
func xattrs(t *testing.T) bool {
	p := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(p, "user.rostrum-probe", []byte("1"), 0); err != nil {
		t.Logf("no user extended attributes here (%v): content types follow keys' extensions", err)
		return false
	}
	return true
}

// refusing makes the bucket's folder refuse writes: read-only for an
// ordinary user; immutable (chattr +i) for root, whom permissions do not
// stop.
func refusing(t *testing.T, s objstore.Storage, bucket string) objstore.Storage {
	dir := filepath.Join(s.(*folder.Folder).Root(), bucket)
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		return s
	}
	out, err := exec.Command("chattr", "+i", dir).CombinedOutput()
	if err != nil {
		t.Skipf("running as root, and chattr +i (which stops root) failed: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", dir).Run() })
	return s
}

func BenchmarkPut(b *testing.B) {
	f, err := folder.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	objstoretest.BenchmarkPut(b, f)
}

// Package folder is the local-folder implementation of objstore.Storage,
// Rostrum's default storage: bucket B, key K is the file DIR/B/K, so
// recordings can be read, served or synced with ordinary file tools.
//
// Writes are atomic: an object is written to a temporary file beside its
// final name, synced, and renamed over it, so a reader (a player polling a
// playlist, a sync tool) sees the old object or the new one, never a part.
// Temporary files begin with objstore.ReservedPrefix; listings skip them,
// and one left by a crash is never taken for an object.
//
// Content types are kept in the extended attribute user.content-type (the
// attribute versitygw and rclone use too, so either serves the folder over
// S3 with the right types). On a filesystem without user extended
// attributes an object reads back with objstore.ContentTypeFor(key), which
// is what every file of a recording was given anyway.
//
// S3 holds "a" and "a/b" side by side; a folder cannot, so putting one when
// the other exists fails with objstore.ErrInvalidKey.
package folder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/rostrum-dev/rostrum/internal/objstore"
)

// Folder stores buckets as the subfolders of one folder.
type Folder struct {
	root string
}

var _ objstore.Storage = (*Folder)(nil)

// New returns the storage in dir. Nothing is created until a bucket is:
// a server that never records leaves no folder behind.
func New(dir string) (*Folder, error) {
	if dir == "" {
		return nil, errors.New("folder: no directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("folder: %w", err)
	}
	return &Folder{root: abs}, nil
}

// Root is the folder that holds the buckets.
func (f *Folder) Root() string { return f.root }

func (f *Folder) String() string { return "local folder " + f.root }

// Path is the file of bucket/key. The key must be valid
// (objstore.ValidateKey): then the file is inside the bucket's folder.
func (f *Folder) Path(bucket, key string) string {
	return filepath.Join(f.root, bucket, filepath.FromSlash(key))
}

const (
	dirPerm  = 0o755
	filePerm = 0o644
)

// objectDir validates the bucket and key and returns the bucket's folder,
// which must exist.
func (f *Folder) objectDir(op, bucket, key string) (string, error) {
	if err := objstore.ValidateBucketName(bucket); err != nil {
		return "", &objstore.Error{Op: op, Bucket: bucket, Key: key, Err: err}
	}
	if err := objstore.ValidateKey(key); err != nil {
		return "", &objstore.Error{Op: op, Bucket: bucket, Key: key, Err: err}
	}
	return f.bucketDir(op, bucket, key)
}

// bucketDir validates the bucket and returns its folder, which must exist.
// key is for messages only.
func (f *Folder) bucketDir(op, bucket, key string) (string, error) {
	if err := objstore.ValidateBucketName(bucket); err != nil {
		return "", &objstore.Error{Op: op, Bucket: bucket, Key: key, Err: err}
	}
	dir := filepath.Join(f.root, bucket)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", &objstore.Error{Op: op, Bucket: bucket, Key: key, Kind: objstore.ErrNoSuchBucket, Err: fmt.Errorf("no folder %s", dir)}
	case err != nil:
		return "", fsError(op, bucket, key, err)
	case !fi.IsDir():
		return "", &objstore.Error{Op: op, Bucket: bucket, Key: key, Kind: objstore.ErrNoSuchBucket, Err: fmt.Errorf("%s is not a folder", dir)}
	}
	return dir, nil
}

// CreateBucket creates the bucket's folder (and the storage folder).
func (f *Folder) CreateBucket(ctx context.Context, bucket string) error {
	const op = "create bucket"
	if err := objstore.ValidateBucketName(bucket); err != nil {
		return &objstore.Error{Op: op, Bucket: bucket, Err: err}
	}
	if err := os.MkdirAll(filepath.Join(f.root, bucket), dirPerm); err != nil {
		return fsError(op, bucket, "", err)
	}
	return nil
}

// CheckBucket creates the bucket's folder if needed (the local folder makes
// every storage configuration's bucket on demand) and checks that a file can
// be written in it.
func (f *Folder) CheckBucket(ctx context.Context, bucket string) error {
	const op = "check bucket"
	if err := f.CreateBucket(ctx, bucket); err != nil {
		err.(*objstore.Error).Op = op
		return err
	}
	dir, err := f.bucketDir(op, bucket, "")
	if err != nil {
		return err
	}
	probe, err := os.CreateTemp(dir, objstore.ReservedPrefix+"write-check-*")
	if err != nil {
		return fsError(op, bucket, "", err)
	}
	probe.Close()
	if err := os.Remove(probe.Name()); err != nil {
		return fsError(op, bucket, "", err)
	}
	return nil
}

// Put writes the object to a temporary file in its folder and renames it
// into place.
func (f *Folder) Put(ctx context.Context, bucket, key string, body io.Reader, contentType string) error {
	const op = "put"
	if _, err := f.objectDir(op, bucket, key); err != nil {
		return err
	}
	if contentType == "" {
		contentType = objstore.ContentTypeFor(key)
	}
	target := f.Path(bucket, key)
	dir := filepath.Dir(target)
	var tmp *os.File
	for attempt := 0; ; attempt++ {
		if err := os.MkdirAll(dir, dirPerm); err != nil {
			return f.putError(bucket, key, err)
		}
		var err error
		tmp, err = os.CreateTemp(dir, objstore.ReservedPrefix+"put-*")
		if err == nil {
			break
		}
		// A concurrent Delete may have removed the folder, empty, between
		// the two calls: make it again.
		if !errors.Is(err, fs.ErrNotExist) || attempt == 3 {
			return f.putError(bucket, key, err)
		}
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, ctxReader{ctx, body}); err != nil {
		if ctx.Err() != nil {
			return &objstore.Error{Op: op, Bucket: bucket, Key: key, Err: ctx.Err()}
		}
		return f.putError(bucket, key, err)
	}
	// CreateTemp makes files only the owner reads; objects are ordinary files.
	if err := tmp.Chmod(filePerm); err != nil {
		return f.putError(bucket, key, err)
	}
	if err := setContentType(tmp, contentType); err != nil && !errors.Is(err, errNoXattr) {
		return f.putError(bucket, key, err)
	}
	// Synced before the rename: after a crash the name holds a whole file,
	// the old one or the new one, never an empty one.
	if err := tmp.Sync(); err != nil {
		return f.putError(bucket, key, err)
	}
	if err := tmp.Close(); err != nil {
		return f.putError(bucket, key, err)
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return f.putError(bucket, key, err)
	}
	done = true
	return nil
}

// putError explains a failed put; a file where the key needs a folder, or a
// folder where it needs a file, is the one difference from S3.
func (f *Folder) putError(bucket, key string, err error) error {
	if errors.Is(err, syscall.ENOTDIR) {
		return &objstore.Error{Op: "put", Bucket: bucket, Key: key, Kind: objstore.ErrInvalidKey,
			Err: fmt.Errorf("an object is named like one of the key's folders (the local folder cannot hold both \"a\" and \"a/b\"): %w", err)}
	}
	if errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY) {
		return &objstore.Error{Op: "put", Bucket: bucket, Key: key, Kind: objstore.ErrInvalidKey,
			Err: fmt.Errorf("other objects' keys begin with this key and a slash (the local folder cannot hold both \"a\" and \"a/b\"): %w", err)}
	}
	return fsError("put", bucket, key, err)
}

// Get opens the object's file. Because puts rename, the open file keeps the
// content it had when opened even if the object is replaced meanwhile.
func (f *Folder) Get(ctx context.Context, bucket, key string) (io.ReadCloser, objstore.ObjectInfo, error) {
	const op = "get"
	if _, err := f.objectDir(op, bucket, key); err != nil {
		return nil, objstore.ObjectInfo{}, err
	}
	file, err := os.Open(f.Path(bucket, key))
	if err != nil {
		return nil, objstore.ObjectInfo{}, f.readError(op, bucket, key, err)
	}
	info, err := f.info(file, key)
	if err != nil {
		file.Close()
		return nil, objstore.ObjectInfo{}, f.readError(op, bucket, key, err)
	}
	return file, info, nil
}

// Stat reads the object's file's size, time and content type.
func (f *Folder) Stat(ctx context.Context, bucket, key string) (objstore.ObjectInfo, error) {
	const op = "stat"
	if _, err := f.objectDir(op, bucket, key); err != nil {
		return objstore.ObjectInfo{}, err
	}
	file, err := os.Open(f.Path(bucket, key))
	if err != nil {
		return objstore.ObjectInfo{}, f.readError(op, bucket, key, err)
	}
	defer file.Close()
	info, err := f.info(file, key)
	if err != nil {
		return objstore.ObjectInfo{}, f.readError(op, bucket, key, err)
	}
	return info, nil
}

// errIsFolder: the key names a folder of other keys, which is no object.
var errIsFolder = errors.New("is a folder of other objects")

func (f *Folder) info(file *os.File, key string) (objstore.ObjectInfo, error) {
	fi, err := file.Stat()
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	if !fi.Mode().IsRegular() {
		return objstore.ObjectInfo{}, errIsFolder
	}
	ct, err := contentType(file)
	if err != nil || ct == "" {
		ct = objstore.ContentTypeFor(key)
	}
	return objstore.ObjectInfo{Key: key, Size: fi.Size(), ContentType: ct, LastModified: fi.ModTime().UTC()}, nil
}

func (f *Folder) readError(op, bucket, key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, errIsFolder) {
		return &objstore.Error{Op: op, Bucket: bucket, Key: key, Kind: objstore.ErrNotFound, Err: err}
	}
	return fsError(op, bucket, key, err)
}

// List walks the folder of the prefix's last slash and sorts what it finds,
// so the order is S3's (by key bytes) and not the walk's (where "a/b" would
// come before "a-c").
func (f *Folder) List(ctx context.Context, bucket string, in objstore.ListInput) (objstore.ListPage, error) {
	const op = "list"
	dir, err := f.bucketDir(op, bucket, "")
	if err != nil {
		return objstore.ListPage{}, err
	}
	if err := objstore.ValidatePrefix(in.Prefix); err != nil {
		return objstore.ListPage{}, &objstore.Error{Op: op, Bucket: bucket, Key: in.Prefix, Err: err}
	}
	limit := in.Limit
	if limit <= 0 || limit > objstore.MaxListLimit {
		limit = objstore.MaxListLimit
	}
	start := dir
	if i := strings.LastIndexByte(in.Prefix, '/'); i >= 0 {
		start = filepath.Join(dir, filepath.FromSlash(in.Prefix[:i]))
	}
	var objs []objstore.ObjectInfo
	err = filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)) {
				return fs.SkipAll // nothing under the prefix
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		key := filepath.ToSlash(rel)
		if strings.HasPrefix(d.Name(), objstore.ReservedPrefix) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if p == start {
				return nil
			}
			// Skip folders that hold no key under the prefix.
			k := key + "/"
			if !strings.HasPrefix(k, in.Prefix) && !strings.HasPrefix(in.Prefix, k) {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(key, in.Prefix) || key <= in.Token {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted meanwhile
		} else if err != nil {
			return err
		}
		objs = append(objs, objstore.ObjectInfo{Key: key, Size: fi.Size(), LastModified: fi.ModTime().UTC()})
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return objstore.ListPage{}, &objstore.Error{Op: op, Bucket: bucket, Key: in.Prefix, Err: ctx.Err()}
		}
		return objstore.ListPage{}, fsError(op, bucket, in.Prefix, err)
	}
	slices.SortFunc(objs, func(a, b objstore.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	page := objstore.ListPage{Objects: objs}
	if len(objs) > limit {
		page.Objects = objs[:limit:limit]
		page.Next = objs[limit-1].Key
	}
	return page, nil
}

// Delete removes the object's file and then the folders it leaves empty, as
// S3 has no folders to leave behind.
func (f *Folder) Delete(ctx context.Context, bucket, key string) error {
	const op = "delete"
	dir, err := f.objectDir(op, bucket, key)
	if err != nil {
		return err
	}
	target := f.Path(bucket, key)
	fi, err := os.Lstat(target)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || (err == nil && fi.IsDir()) {
		return nil
	}
	if err != nil {
		return fsError(op, bucket, key, err)
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fsError(op, bucket, key, err)
	}
	for d := filepath.Dir(target); d != dir && strings.HasPrefix(d, dir); d = filepath.Dir(d) {
		if os.Remove(d) != nil { // not empty (or gone): the folders above are not empty either
			break
		}
	}
	return nil
}

// fsError gives a filesystem error its kind.
func fsError(op, bucket, key string, err error) error {
	var kind error
	switch {
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		kind = objstore.ErrAccessDenied
	case errors.Is(err, syscall.ENAMETOOLONG):
		kind = objstore.ErrInvalidKey
	}
	return &objstore.Error{Op: op, Bucket: bucket, Key: key, Kind: kind, Err: err}
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

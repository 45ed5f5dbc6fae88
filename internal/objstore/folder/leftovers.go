package folder

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rostrum-dev/rostrum/internal/objstore"
)

// RemoveLeftovers deletes, in every bucket, the temporary files of puts that
// never finished (the process was killed mid-write) and were last written
// more than olderThan ago, and the folders that leaves empty. It returns how
// many files it removed. olderThan keeps it off the puts of a process still
// writing: at start, an hour is safe.
func (f *Folder) RemoveLeftovers(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	removed := 0
	var emptied []string
	err := filepath.WalkDir(f.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == f.root && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll // no bucket yet
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !d.Type().IsRegular() || !strings.HasPrefix(d.Name(), objstore.ReservedPrefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil || !fi.ModTime().Before(cutoff) {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		removed++
		emptied = append(emptied, filepath.Dir(p))
		return nil
	})
	for _, d := range emptied {
		// Up to, not including, the bucket's folder (root/bucket).
		for ; strings.HasPrefix(d, f.root+string(filepath.Separator)) && filepath.Dir(d) != f.root; d = filepath.Dir(d) {
			if os.Remove(d) != nil {
				break
			}
		}
	}
	return removed, err
}

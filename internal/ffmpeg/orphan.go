package ffmpeg

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// OrphanWait bounds how long AwaitOrphan waits.
const OrphanWait = 15 * time.Second

// AwaitOrphan waits until process pid, if it is still the ffmpeg a dead
// server left writing into dir (its working directory), has exited: it
// got SIGTERM with the server (ChildOfServer) and finishes its files
// within moments. Past OrphanWait, or when ctx ends, it is killed, so that
// what it left can be read without it changing. A pid that is gone, or is
// another process now, returns at once.
func AwaitOrphan(ctx context.Context, pid int, dir string, log *slog.Logger) {
	mine := func() bool {
		cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		return err == nil && filepath.Clean(cwd) == filepath.Clean(dir)
	}
	if pid <= 0 || !mine() {
		return
	}
	deadline := time.Now().Add(OrphanWait)
	for mine() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			if p, err := os.FindProcess(pid); err == nil {
				_ = p.Kill()
			}
			if log != nil {
				log.Warn("killed the previous run's ffmpeg, still running", "pid", pid)
			}
			time.Sleep(100 * time.Millisecond)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

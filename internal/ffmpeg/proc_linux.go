package ffmpeg

import (
	"os/exec"
	"syscall"
)

// ChildOfServer makes a media process (ffmpeg) stop (gracefully: SIGTERM lets ffmpeg finish its
// playlist) when the server dies without stopping it, so that a killed
// server leaves no ffmpeg behind and the next start finds complete files.
func ChildOfServer(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

package recording

import (
	"os/exec"
	"syscall"
)

// childOfServer makes ffmpeg stop (gracefully: SIGTERM finishes its
// playlist) when the server dies without stopping it, so that a killed
// server leaves no ffmpeg behind and the next start finds complete files.
func childOfServer(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

package ingest

import (
	"os/exec"
	"syscall"
)

// childOfServer ends ffmpeg when the server dies without stopping it, so
// that a killed server leaves no transcoder behind.
func childOfServer(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

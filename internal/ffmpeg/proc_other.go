//go:build !linux

package ffmpeg

import "os/exec"

// ChildOfServer: only Linux can tie a child's life to its parent's.
func ChildOfServer(*exec.Cmd) {}

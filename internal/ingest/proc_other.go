//go:build !linux

package ingest

import "os/exec"

// childOfServer: only Linux can tie a child's life to its parent's.
func childOfServer(*exec.Cmd) {}

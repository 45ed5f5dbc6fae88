package server

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestApplyGCDefault(t *testing.T) {
	before := debug.SetGCPercent(-1)
	debug.SetGCPercent(before)
	t.Cleanup(func() { debug.SetGCPercent(before) })

	// Unset: the server's default.
	t.Setenv("GOGC", "")
	_ = os.Unsetenv("GOGC")
	if got := ApplyGCDefault(); got != DefaultGCPercent {
		t.Fatalf("without GOGC: %d, want %d", got, DefaultGCPercent)
	}
	if p := debug.SetGCPercent(before); p != DefaultGCPercent {
		t.Fatalf("the runtime's percentage is %d, want %d", p, DefaultGCPercent)
	}

	// Set: the runtime read it at start; it is left alone.
	debug.SetGCPercent(80) // as if the process had started with GOGC=80
	t.Setenv("GOGC", "80")
	if got := ApplyGCDefault(); got != 80 {
		t.Fatalf("with GOGC=80: %d", got)
	}
	if p := debug.SetGCPercent(before); p != 80 {
		t.Fatalf("the runtime's percentage is %d, want 80 kept", p)
	}
}

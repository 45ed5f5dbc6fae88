package sfu

import (
	"bytes"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// The engine's ICE UDP socket gets the receive buffer asked for, as the
// kernel reports it; past the kernel's cap it is forced (with
// CAP_NET_ADMIN) or the cap is logged with the sysctl that raises it.
func TestEngineSizesUDPReadBuffer(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the granted size is read on Linux only")
	}
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skip("no /proc/sys/net/core/rmem_max")
	}
	rmemMax, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}

	newEngine := func(want int) (*Engine, string) {
		var logs bytes.Buffer
		e, err := NewEngine(Config{ListenIP: "127.0.0.1", TCPPort: -1, UDPReadBuffer: want,
			Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Close() })
		return e, logs.String()
	}

	// Under the cap: granted as asked, nothing logged.
	small := min(64<<10, rmemMax)
	e, logs := newEngine(small)
	if e.udpBuf != small {
		t.Errorf("asked %d under rmem_max %d: granted %d", small, rmemMax, e.udpBuf)
	}
	if logs != "" {
		t.Errorf("unexpected log: %s", logs)
	}

	// Over the cap: forced past it, or capped at it and logged.
	big := 2 * rmemMax
	e, logs = newEngine(big)
	t.Logf("asked %d with rmem_max %d: granted %d", big, rmemMax, e.udpBuf)
	switch {
	case e.udpBuf >= big:
		if logs != "" {
			t.Errorf("forced to %d, yet logged: %s", e.udpBuf, logs)
		}
	case e.udpBuf == rmemMax:
		if !strings.Contains(logs, "net.core.rmem_max="+strconv.Itoa(big)) {
			t.Errorf("capped at %d without naming the sysctl: %q", e.udpBuf, logs)
		}
	default:
		t.Errorf("asked %d with rmem_max %d: granted %d", big, rmemMax, e.udpBuf)
	}

	// -1: the system's default, left alone.
	e, _ = newEngine(-1)
	if e.udpBuf != 0 {
		t.Errorf("default buffer: recorded %d", e.udpBuf)
	}
}

package sfu

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// The warnings pion says on every start and around every connection go to
// Debug; the others stay warnings.
func TestPionWarningsThatNeedNoActionAreDebug(t *testing.T) {
	var buf bytes.Buffer
	l := pionLogs{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	ice, pc := l.NewLogger("ice"), l.NewLogger("pc")
	ice.Warn("UDPMuxDefault should not listening on unspecified address, use NewMultiUDPMuxFromPort instead")
	pc.Warnf("Failed to accept RTP %v", "stream is already closed")
	pc.Warnf("Failed to accept RTCP %v", "stream is already closed")
	ice.Warnf("Failed to read from candidate %s: %v", "udp4 host 127.0.0.1:1", "io: read/write on closed pipe")
	ice.Warn("Failed to ping without candidate pairs. Connection is not possible yet.")
	pc.Warnf("Incoming unhandled RTCP ssrc(%d), OnTrack will not be fired", 42)
	l.NewLogger("tcpmux").Warnf("Error reading first packet from %s: %s", "127.0.0.1:4", "EOF")
	l.NewLogger("twcc_sender_interceptor").Error("io: read/write on closed pipe")
	if buf.Len() != 0 {
		t.Errorf("benign pion warnings logged above Debug:\n%s", buf.String())
	}
	pc.Warnf("Failed to accept RTP %v", "something else broke")
	ice.Warnf("Address rewrite mapping is enabled but no external IP is found for %s", "10.0.0.1")
	pc.Errorf("Failed to start SRTP: %s", "bad key")
	out := buf.String()
	if strings.Count(out, "level=WARN") != 2 || strings.Count(out, "level=ERROR") != 1 || !strings.Contains(out, "pion=ice") {
		t.Errorf("warnings an operator acts on were not kept:\n%s", out)
	}
}

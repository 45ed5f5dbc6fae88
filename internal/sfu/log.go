package sfu

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/pion/logging"
)

// pionLogs routes pion's scoped loggers into the engine's slog.Logger, at
// levels that mean something to an operator: a warning is something to act
// on.
//
// pion logs at Info for things a server operator never wants by default (the
// congestion controller logs every feedback report at Info), so pion's Info
// and below map to slog's Debug. pion's Warn and Error keep their level,
// except the messages in benignWarnings: pion says them on every start or
// around every connection's setup and teardown on a healthy server, and
// they go to Debug.
type pionLogs struct{ log *slog.Logger }

// benignWarnings are pion warnings (and errors) expected on a healthy server,
// each matched by the start of the message (and, when set, a text it
// contains), with why it asks for no action.
var benignWarnings = []struct{ prefix, contains string }{
	// The engine deliberately runs one UDP mux on the unspecified address
	// (all interfaces, one port: --rtc-udp-port); UDPMuxDefault then lists
	// the interface addresses itself, which is what the warning's suggested
	// NewMultiUDPMuxFromPort would do with one socket per interface.
	{"UDPMuxDefault should not listening on unspecified address", ""},
	// Every peer connection's loop accepting undeclared SRTP/SRTCP streams
	// ends this way when the connection closes.
	{"Failed to accept RTP", "closed"},
	{"Failed to accept RTCP", "closed"},
	{"Failed to close RTP stream", "closed"},
	{"Failed to close RTCP stream", "closed"},
	// A candidate's socket read ends when its connection closes.
	{"Failed to read from candidate", "closed"},
	{"Failed to write packet", "closed"},
	// ICE begins before the client's checks have paired a candidate: the
	// answer carries every candidate and the client checks first.
	{"Failed to ping without candidate pairs", ""},
	// RTCP about an SSRC no section declared (a browser's RTX or probe
	// stream before it is bound): the engine forwards negotiated streams
	// only, and nothing is lost.
	{"Incoming unhandled RTCP ssrc", ""},
	// STUN that arrives for a pair or candidate already pruned, typically
	// as a connection closes or a client retries a check.
	{"Discard success message from", "no such remote"},
	{"Discarded message from", "not a valid remote candidate"},
	// Browsers open ICE-TCP connections to every TCP candidate and close
	// those they do not need once a pair (usually UDP) is chosen.
	{"Error reading first packet from", "EOF"},
	// An interceptor's timer (TWCC feedback, reports) that fires as its
	// connection closes.
	{"io: read/write on closed pipe", ""},
}

// levelOf is the level of a pion warning or error: its own, or Debug when
// it is benign.
func levelOf(level slog.Level, msg string) slog.Level {
	for _, b := range benignWarnings {
		if strings.HasPrefix(msg, b.prefix) && strings.Contains(msg, b.contains) {
			return slog.LevelDebug
		}
	}
	return level
}

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

const levelTrace = slog.LevelDebug - 4

func (l pionLogger) emit(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
}

// emitf formats only when the level is enabled: pion calls these on hot
// paths, and formatting a disabled message would allocate for nothing.
func (l pionLogger) emitf(level slog.Level, format string, args ...any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
}

func (l pionLogger) Trace(msg string)                  { l.emit(levelTrace, msg) }
func (l pionLogger) Tracef(format string, args ...any) { l.emitf(levelTrace, format, args...) }
func (l pionLogger) Debug(msg string)                  { l.emit(levelTrace, msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.emitf(levelTrace, format, args...) }
func (l pionLogger) Info(msg string)                   { l.emit(slog.LevelDebug, msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.emitf(slog.LevelDebug, format, args...) }
func (l pionLogger) Warn(msg string)                   { l.emit(levelOf(slog.LevelWarn, msg), msg) }

// Warnf and Errorf format to classify: pion warns rarely, never per packet.
func (l pionLogger) Warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.emit(levelOf(slog.LevelWarn, msg), msg)
}

func (l pionLogger) Error(msg string) { l.emit(levelOf(slog.LevelError, msg), msg) }

func (l pionLogger) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.emit(levelOf(slog.LevelError, msg), msg)
}

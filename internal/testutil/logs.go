package testutil

import (
	"context"
	"log/slog"
	"strings"
	"sync"
)

// Warnings is a slog.Handler that keeps every warning and error logged to
// it, as "message key=value …" lines, for tests that check what a server
// (or a layer) said.
type Warnings struct {
	mu    sync.Mutex
	lines []string
}

func (w *Warnings) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelWarn }

func (w *Warnings) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	w.mu.Lock()
	w.lines = append(w.lines, b.String())
	w.mu.Unlock()
	return nil
}

func (w *Warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *Warnings) WithGroup(string) slog.Handler      { return w }

// Lines returns what was logged so far.
func (w *Warnings) Lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.lines...)
}

// Package testutil holds the helpers that tests of several packages share:
// one goroutine-leak check and one way to wait for a condition.
package testutil

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Patience is how long Eventually and CheckLeaks wait: long enough for a
// loaded machine, since they wait for a condition and not for a time.
const Patience = 45 * time.Second

// Eventually polls cond until it holds, failing the test if it still does
// not after Patience.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// CheckLeaks fails the test if goroutines started during it are still
// running once it and every cleanup registered after this call are done.
// Call it first in a test, so that its cleanup runs last. Tests that use it
// must not run in parallel with others (t.Parallel), whose goroutines it
// would count.
func CheckLeaks(t testing.TB) {
	t.Helper()
	before := map[string]bool{}
	for _, g := range goroutines() {
		before[goroutineID(g)] = true
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(Patience)
		for {
			var leaked []string
			for _, g := range goroutines() {
				if !before[goroutineID(g)] {
					leaked = append(leaked, g)
				}
			}
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines leaked:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// goroutines are the stacks of the running goroutines, less the testing
// framework's own and the runtime's.
func goroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if g == "" || strings.Contains(g, "testing.(*T).Run(") || strings.Contains(g, "testing.Main(") ||
			strings.Contains(g, "testing.tRunner(") || strings.Contains(g, "testing.runTests") ||
			strings.Contains(g, "testutil.goroutines(") || strings.Contains(g, "os/signal.") {
			continue
		}
		out = append(out, g)
	}
	return out
}

// goroutineID is the "goroutine N" of a stack.
func goroutineID(stack string) string {
	head, _, _ := strings.Cut(stack, " [")
	return head
}

// Measurement skips t unless ROSTRUM_MEASURE is set: a measurement reports
// figures for docs/performance.md, asserts no timing, and takes minutes.
func Measurement(t testing.TB) {
	t.Helper()
	if os.Getenv("ROSTRUM_MEASURE") == "" {
		t.Skip("a measurement: set ROSTRUM_MEASURE=1 to run it")
	}
}

// MeasureInt is the positive integer in the environment variable name (a
// measurement's size, e.g. ROSTRUM_MEASURE_N), or def.
func MeasureInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

package server

import (
	"os"
	"runtime/debug"
)

// DefaultGCPercent is the garbage collector's target (GOGC) `rostrum serve`
// runs with unless the GOGC environment variable says otherwise. Go's own
// default, 100, lets the heap grow to twice what is live before collecting;
// a media server's live heap is mostly per-connection state that lives as
// long as its connection, and it allocates little per forwarded packet, so
// collecting at 1.5 times costs a few more collections (one every ~10 s at
// 100 subscribers instead of one every ~20 s, tens of milliseconds of CPU
// each) and saves ~20 % of the resident memory per subscriber
// (docs/performance.md, "Memory per subscription").
const DefaultGCPercent = 50

// ApplyGCDefault sets DefaultGCPercent unless GOGC is set, and returns the
// percentage in effect.
func ApplyGCDefault() int {
	if v, ok := os.LookupEnv("GOGC"); ok && v != "" {
		p := debug.SetGCPercent(-1) // read the environment's, then restore it
		debug.SetGCPercent(p)
		return p
	}
	debug.SetGCPercent(DefaultGCPercent)
	return DefaultGCPercent
}

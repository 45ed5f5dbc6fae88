package goroutines

import (
	"sync/atomic"
	"testing"
)

// Goroutines that start more goroutines while Wait waits are all waited
// for; run under -race, this is what sync.WaitGroup cannot do.
func TestGroupWaitsForGoroutinesStartedDuringWait(t *testing.T) {
	for range 100 {
		var g Group
		var ran atomic.Int32
		release := make(chan struct{})
		g.Go(func() {
			<-release
			for range 3 {
				g.Go(func() { ran.Add(1) })
			}
			ran.Add(1)
		})
		done := make(chan struct{})
		go func() {
			g.Wait()
			close(done)
		}()
		close(release)
		<-done
		if n := ran.Load(); n != 4 {
			t.Fatalf("Wait returned with %d of 4 goroutines done", n)
		}
	}
	var g Group
	g.Wait() // nothing started: returns at once
}

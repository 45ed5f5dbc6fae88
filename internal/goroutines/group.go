// Package goroutines tracks goroutines that callbacks start while their
// owner may already be shutting down.
package goroutines

import "sync"

// Group is like sync.WaitGroup, except that Go may be called at any time,
// also while Wait is waiting: sync.WaitGroup forbids an Add from zero that
// races with Wait, which is exactly what callbacks of a closing peer
// connection do (a subscriber reporting its end while its router closes).
// The zero Group is ready to use.
type Group struct {
	mu   sync.Mutex
	n    int
	idle *sync.Cond
}

// Go runs f on a new goroutine that Wait waits for.
func (g *Group) Go(f func()) {
	g.mu.Lock()
	g.n++
	g.mu.Unlock()
	go func() {
		defer g.done()
		f()
	}()
}

func (g *Group) done() {
	g.mu.Lock()
	g.n--
	if g.n == 0 && g.idle != nil {
		g.idle.Broadcast()
	}
	g.mu.Unlock()
}

// Wait returns when no goroutine of the group runs; one started by a
// goroutine of the group before it ends is waited for too.
func (g *Group) Wait() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.idle == nil {
		g.idle = sync.NewCond(&g.mu)
	}
	for g.n > 0 {
		g.idle.Wait()
	}
}

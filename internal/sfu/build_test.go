package sfu

import (
	"fmt"
	"sync"
	"testing"
)

// Peer connections of every role are built at once, with no lock between
// them: each congestion-controlled subscriber must get an estimator of its
// own, started at its own initial rate, and no other role an estimator.
func TestConcurrentPeerConnectionBuilds(t *testing.T) {
	e := newTestEngine(t)
	const n = 24
	type built struct {
		role    peerRole
		initial int
		est     *estimator
		err     error
	}
	out := make([]built, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		role := []peerRole{rolePublisher, roleFixedSubscriber, roleSubscriber}[i%3]
		initial := 300_000 + 100_000*i
		wg.Go(func() {
			<-start
			pc, parts, err := e.newPeerConnection(role, initial, true)
			est := parts.est
			if err == nil {
				defer pc.Close()
			}
			out[i] = built{role: role, initial: initial, est: est, err: err}
		})
	}
	close(start)
	wg.Wait()
	seen := map[*estimator]int{}
	for i, b := range out {
		if b.err != nil {
			t.Fatalf("build %d: %v", i, b.err)
		}
		if b.role != roleSubscriber {
			if b.est != nil {
				t.Errorf("build %d (role %d) got an estimator", i, b.role)
			}
			continue
		}
		if b.est == nil {
			t.Fatalf("build %d: a congestion-controlled subscriber without an estimator", i)
		}
		if j, dup := seen[b.est]; dup {
			t.Fatalf("builds %d and %d share an estimator", j, i)
		}
		seen[b.est] = i
		if got := b.est.GetTargetBitrate(); got != b.initial {
			t.Errorf("build %d: estimator starts at %d, want %d", i, got, b.initial)
		}
	}
	if _, _, err := e.newPeerConnection(0, 0, false); err == nil {
		t.Error("an unknown role: want an error")
	}
}

// BenchmarkNewPeerConnection builds (and closes) peer connections from
// parallel goroutines, as a burst of joins does.
func BenchmarkNewPeerConnection(b *testing.B) {
	for _, c := range []struct {
		name string
		role peerRole
	}{{"publisher", rolePublisher}, {"subscriber", roleFixedSubscriber}, {"simulcast-subscriber", roleSubscriber}} {
		b.Run(c.name, func(b *testing.B) {
			e := newTestEngine(b)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					pc, _, err := e.newPeerConnection(c.role, initialBitrate, c.role != rolePublisher)
					if err != nil {
						b.Error(fmt.Errorf("build: %w", err))
						return
					}
					_ = pc.Close()
				}
			})
		})
	}
}

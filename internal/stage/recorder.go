package stage

import (
	"context"
	"sync"
	"time"
)

// recorder writes what happens on a stage to the store in the order it
// happened, without holding the stage's lock during the writes (each is an
// fsync). A worker goroutine runs only while there is work.
type recorder struct {
	mu      sync.Mutex
	queue   []func(context.Context) error
	running bool
	dropped bool // the stage is deleted: nothing more is written
	idle    *sync.Cond
	onErr   func(error)
}

func newRecorder(onErr func(error)) *recorder {
	r := &recorder{onErr: onErr}
	r.idle = sync.NewCond(&r.mu)
	return r
}

// add queues a write; it never blocks.
func (r *recorder) add(f func(context.Context) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dropped {
		return
	}
	r.queue = append(r.queue, f)
	if !r.running {
		r.running = true
		go r.run()
	}
}

// drop discards what is queued and everything added later: the stage's
// records were deleted with it. A write already running may fail for that
// reason; its error is not reported.
func (r *recorder) drop() {
	r.mu.Lock()
	r.dropped = true
	clear(r.queue)
	r.queue = r.queue[:0]
	r.mu.Unlock()
}

func (r *recorder) isDropped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}

func (r *recorder) run() {
	for {
		r.mu.Lock()
		if len(r.queue) == 0 {
			r.running = false
			r.idle.Broadcast()
			r.mu.Unlock()
			return
		}
		f := r.queue[0]
		r.queue[0] = nil
		r.queue = r.queue[1:]
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := f(ctx)
		cancel()
		if err != nil {
			r.mu.Lock()
			dropped := r.dropped
			r.mu.Unlock()
			if !dropped {
				r.onErr(err)
			}
		}
	}
}

// flush waits until everything queued so far is written.
func (r *recorder) flush() {
	r.mu.Lock()
	for r.running {
		r.idle.Wait()
	}
	r.mu.Unlock()
}

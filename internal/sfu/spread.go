package sfu

import (
	"runtime"
	"sync"
)

// Spreading one packet's fan-out over cores.
//
// A layer's forwarder writes every packet to each of its down-tracks one
// after the other: SRTP, pion's interceptors and a UDP send, a few
// microseconds each. With hundreds of subscribers the last one gets a
// packet about a millisecond after the first, and the last packet of a
// keyframe several milliseconds after it arrived, while other cores idle.
// Above spreadMin down-tracks the forwarder therefore cuts the list into
// shards and hands all but the first to the engine's fan-out workers, writes
// the first itself, then runs any shard still waiting in the queue (its
// own or another layer's: no core waits while work is queued, and a queue
// nobody serves — the engine closing — cannot hang a forwarder) and waits
// for the shards a worker took. It returns only when every down-track has
// the packet: the packet's buffer is reused next, and each down-track must
// get a layer's packets in order.
//
// Per down-track nothing changes: one shard writes it per packet, under its
// own lock, as before. What the workers share is the engine's socket, whose
// sends run in parallel (sendConn: Go's own would serialise them;
// docs/performance.md has the measurement).

const (
	// spreadMin is the fewest down-tracks a packet is spread for; below
	// it, waking a worker (a few microseconds) costs more than it saves.
	spreadMin = 32
	// spreadShard is the fewest down-tracks in one shard.
	spreadShard = 16
)

// fanoutShard is a contiguous part of a layer's down-tracks to write one
// packet to. It is passed by value: queuing it does not allocate.
type fanoutShard struct {
	downs []*downTrack
	li    int32
	ps    []*rtpPacket // the packets, in order
	wg    *sync.WaitGroup
}

func (s fanoutShard) run() {
	writeAll(s.downs, s.li, s.ps)
	s.wg.Done()
}

// writeAll writes the packets ps to each of downs: one at a time, or
// several as one batch per down-track (direct.go's batched sends).
func writeAll(downs []*downTrack, li int32, ps []*rtpPacket) {
	if len(ps) == 1 {
		for _, d := range downs {
			d.write(li, ps[0])
		}
		return
	}
	b := batchPool.Get().(*sendBatch)
	for _, d := range downs {
		d.writeBatch(li, ps, b)
	}
	batchPool.Put(b)
}

// spreader is the engine's pool of fan-out workers. A nil *spreader fans
// out inline.
type spreader struct {
	workers int
	shards  chan fanoutShard
	done    chan struct{}
	wg      sync.WaitGroup
}

// newSpreader starts n workers; n = 0 means one fewer than GOMAXPROCS
// (the forwarder is the other), n < 0 none. It returns nil when there are
// none.
func newSpreader(n int) *spreader {
	if n == 0 {
		n = runtime.GOMAXPROCS(0) - 1
	}
	if n <= 0 {
		return nil
	}
	s := &spreader{workers: n, shards: make(chan fanoutShard, 64*n), done: make(chan struct{})}
	for range n {
		s.wg.Go(s.work)
	}
	return s
}

func (s *spreader) work() {
	for {
		select {
		case sh := <-s.shards:
			sh.run()
		case <-s.done:
			return
		}
	}
}

// close stops the workers. A forwarder still fanning out runs the shards
// left in the queue itself.
func (s *spreader) close() {
	if s == nil {
		return
	}
	close(s.done)
	s.wg.Wait()
}

// fanOut writes the packets ps (of encoding li, in order) to every
// down-track in downs. wg is the caller's, reused from batch to batch (one
// batch at a time per layer).
func (s *spreader) fanOut(downs []*downTrack, li int32, ps []*rtpPacket, wg *sync.WaitGroup) {
	n := len(downs)
	if s == nil || n < spreadMin {
		writeAll(downs, li, ps)
		return
	}
	shards := min(s.workers+1, n/spreadShard)
	size := (n + shards - 1) / shards
	for lo := size; lo < n; lo += size {
		sh := fanoutShard{downs: downs[lo:min(lo+size, n)], li: li, ps: ps, wg: wg}
		wg.Add(1)
		select {
		case s.shards <- sh:
		default: // the queue is full: every worker is busy anyway
			sh.run()
		}
	}
	writeAll(downs[:size], li, ps)
	for {
		select {
		case sh := <-s.shards:
			sh.run()
			continue
		default:
		}
		break
	}
	wg.Wait()
}

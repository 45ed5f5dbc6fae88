package sfu

import (
	"errors"
	"io"
	"sync"
	"time"

	"github.com/pion/transport/v5/deadline"
	"github.com/pion/transport/v5/packetio"
)

// Subscriber connections' SRTP and SRTCP read streams queue what they
// receive in packetQueues instead of pion's packetio buffers
// (SettingEngine.BufferFactory, newAPIs). What a subscriber sends the
// server is RTCP about what it receives (reports, NACKs, keyframe requests,
// transport-wide feedback), a few packets a second that the engine's RTCP
// reader takes as they come. pion's buffer for it keeps its storage once
// grown (2 KiB at least per stream) and holds up to 100 KB; and the RTCP a
// client sends about the server's retransmission (RTX) SSRC goes to a stream
// nobody reads — pion opens none for it, its handler of undeclared media
// accepts the stream and leaves it — so that buffer fills, a few dozen bytes
// a second, until its 100 KB limit: a subscriber connected for half an hour
// holds 100 KB of reports nobody reads (docs/performance.md).
//
// A packetQueue holds each packet in a slice of its own, gives its storage
// back once read, and drops what waited longer than maxAge: a packet nobody
// read in that time (a report on the RTX stream) is of no use to anyone, and
// a NACK or keyframe request that old has been sent again by the client.
const (
	// rtcpQueueBytes bounds what one stream's queue holds (payload plus
	// per-packet bookkeeping). A reader keeps up, so only a stall fills it.
	rtcpQueueBytes = 64 << 10
	// rtcpQueueAge is how long a packet may wait to be read.
	rtcpQueueAge = 2 * time.Second
	// queuedOverhead is what a queued packet costs beyond its payload, as
	// counted against the limit.
	queuedOverhead = 64
	// queueKeepCap is the capacity of the packet list an empty queue keeps:
	// more is given back, so a burst's storage does not stay.
	queueKeepCap = 8
)

// A subscriber's RTCP needs no goroutine of its own waiting for it. The
// queue of a sender's SRTCP stream is written by pion's SRTCP session, on
// its read loop; once the queue knows the down-track that reads it (its
// sink), every write calls the sink, which pulls the packet at once through
// the sender's RTCP chain (RTPSender.Read): pion's interceptors on the read
// side, such as the congestion controller reading transport-wide feedback,
// see every packet as they would with a reader waiting, and the down-track
// handles NACKs and keyframe requests on the session's goroutine.
//
// pion gives neither the BufferFactory nor the queue any way to tell which
// sender a stream is for (a factory shared by all subscriber connections
// gets only an SSRC, which two connections may share). The reader's buffer
// tells: the down-track's first read goes through pion's chain down to the
// queue's Read with the very slice it passed to RTPSender.Read, and the
// down-track registers that slice's address beforehand (bindRTCPReader).
// The first read that finds its buffer registered binds the queue; once
// bound and drained, a read returns errRTCPPushed instead of waiting, and
// the reader's goroutine ends. Should an interceptor ever read into a
// buffer of its own, no queue binds and the reader simply goes on reading.
type rtcpSink interface {
	// rtcpQueued is called after a packet was queued, without the queue's
	// lock, on the writer's (pion's SRTCP session's) goroutine. It must
	// read the packet without waiting: a bound queue's reads never wait.
	rtcpQueued()
}

// errRTCPPushed ends a bound queue's read that found nothing queued: the
// sink is called for every packet from now on.
var errRTCPPushed = errors.New("sfu: RTCP is handed to its down-track as it comes")

// rtcpReaders maps the address of a reader's buffer to the sink its queue
// is to hand packets to (bindRTCPReader).
var rtcpReaders sync.Map // *byte → rtcpSink

// bindRTCPReader registers buf (a reader's buffer, not empty) so that the
// queue a read into it reaches is bound to sink; the returned function
// forgets buf (call it when the reader ends).
func bindRTCPReader(buf []byte, sink rtcpSink) (forget func()) {
	key := &buf[0]
	rtcpReaders.Store(key, sink)
	return func() { rtcpReaders.Delete(key) }
}

// subscriberBuffers is the BufferFactory of subscriber connections.
func subscriberBuffers(packetio.BufferPacketType, uint32) io.ReadWriteCloser {
	return newPacketQueue(rtcpQueueBytes, rtcpQueueAge)
}

type queuedPacket struct {
	data  []byte
	attrs packetio.Attributes
	at    int64 // nanotime when queued
}

// packetQueue is a FIFO of packets, safe for one writer and readers at
// once. It behaves as pion's packetio.Buffer does where pion relies on it:
// a full queue refuses a write with packetio.ErrFull (which pion's SRTP
// streams drop silently), a read waits for a packet, its deadline
// (packetio.ErrTimeout) or Close, after which queued packets are still
// read and then io.EOF; a buffer too short for the packet gets its start
// and io.ErrShortBuffer.
type packetQueue struct {
	limit  int
	maxAge int64

	mu     sync.Mutex
	pkts   []queuedPacket // pkts[head:] are queued, oldest first
	head   int
	bytes  int
	closed bool
	notify chan struct{} // one token: a packet was queued, or closed
	dl     *deadline.Deadline
	sink   rtcpSink // set by the reader's first read (bindRTCPReader)
}

func newPacketQueue(limit int, maxAge time.Duration) *packetQueue {
	return &packetQueue{limit: limit, maxAge: int64(maxAge), notify: make(chan struct{}, 1)}
}

func (q *packetQueue) Write(b []byte) (int, error) { return q.WriteWithAttributes(b, nil) }

// WriteWithAttributes queues a copy of b (and of attrs).
func (q *packetQueue) WriteWithAttributes(b []byte, attrs packetio.Attributes) (int, error) {
	now := nanotime()
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return 0, io.ErrClosedPipe
	}
	q.expire(now)
	cost := len(b) + queuedOverhead
	if q.bytes+cost > q.limit {
		q.mu.Unlock()
		return 0, packetio.ErrFull
	}
	p := queuedPacket{data: append([]byte(nil), b...), at: now}
	if len(attrs) > 0 {
		p.attrs = append(packetio.Attributes(nil), attrs...)
	}
	if q.head > 0 && len(q.pkts) == cap(q.pkts) {
		n := copy(q.pkts, q.pkts[q.head:])
		clear(q.pkts[n:])
		q.pkts, q.head = q.pkts[:n], 0
	}
	q.pkts = append(q.pkts, p)
	q.bytes += cost
	sink := q.sink
	if sink == nil {
		q.wake()
	}
	q.mu.Unlock()
	if sink != nil {
		sink.rtcpQueued()
	}
	return len(b), nil
}

// wake lets one waiting reader look again. Called with mu held, not closed.
func (q *packetQueue) wake() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// expire drops the packets queued before now-maxAge. Called with mu held.
func (q *packetQueue) expire(now int64) {
	for q.head < len(q.pkts) && now-q.pkts[q.head].at > q.maxAge {
		q.pop()
	}
}

// pop removes the oldest packet. Called with mu held and a packet queued.
func (q *packetQueue) pop() queuedPacket {
	p := q.pkts[q.head]
	q.pkts[q.head] = queuedPacket{}
	q.head++
	q.bytes -= len(p.data) + queuedOverhead
	if q.head == len(q.pkts) {
		q.head = 0
		if cap(q.pkts) > queueKeepCap {
			q.pkts = nil
		} else {
			q.pkts = q.pkts[:0]
		}
	}
	return p
}

func (q *packetQueue) Read(b []byte) (int, error) {
	n, _, err := q.ReadWithAttributes(b, nil)
	return n, err
}

// ReadWithAttributes waits for the oldest packet and copies it into b, and
// its attributes into attrs (reusing its storage).
func (q *packetQueue) ReadWithAttributes(b []byte, attrs packetio.Attributes) (int, packetio.Attributes, error) {
	clear(attrs)
	attrs = attrs[:0]
	for {
		q.mu.Lock()
		if q.sink == nil && len(b) > 0 {
			if sink, ok := rtcpReaders.LoadAndDelete(&b[0]); ok {
				q.sink = sink.(rtcpSink)
			}
		}
		if q.head < len(q.pkts) {
			p := q.pop()
			if q.head < len(q.pkts) && !q.closed {
				// Another reader may be waiting for the next one.
				q.wake()
			}
			q.mu.Unlock()
			n := copy(b, p.data)
			attrs = append(attrs, p.attrs...)
			if n < len(p.data) {
				return n, attrs, io.ErrShortBuffer
			}
			return n, attrs, nil
		}
		if q.closed {
			q.mu.Unlock()
			return 0, attrs, io.EOF
		}
		if q.sink != nil {
			q.mu.Unlock()
			return 0, attrs, errRTCPPushed
		}
		var expired <-chan struct{}
		if q.dl != nil {
			expired = q.dl.Done()
		}
		q.mu.Unlock()
		select {
		case <-expired:
			return 0, attrs, packetio.ErrTimeout
		case <-q.notify:
		}
	}
}

// SetReadDeadline sets when waiting reads end with packetio.ErrTimeout; the
// zero time means never. The timer is made on first use: pion sets none on
// these streams unless the engine asks.
func (q *packetQueue) SetReadDeadline(t time.Time) error {
	q.mu.Lock()
	if q.dl == nil {
		if t.IsZero() {
			q.mu.Unlock()
			return nil
		}
		q.dl = deadline.New()
		q.dl.Set(t)
		if !q.closed {
			q.wake() // a reader waiting without a deadline takes this one
		}
		q.mu.Unlock()
		return nil
	}
	dl := q.dl
	q.mu.Unlock()
	dl.Set(t)
	return nil
}

// Close wakes every reader; they read what is queued, then io.EOF.
func (q *packetQueue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.notify)
	}
	return nil
}

// queued is the number of packets waiting (tests).
func (q *packetQueue) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pkts) - q.head
}

package sfu

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/pion/transport/v5/packetio"
)

func TestPacketQueueOrderAndAttributes(t *testing.T) {
	q := newPacketQueue(1<<20, time.Minute)
	type key struct{}
	for i := range 20 {
		var attrs packetio.Attributes
		if i%2 == 0 {
			attrs.Set(key{}, i)
		}
		if _, err := q.WriteWithAttributes([]byte(fmt.Sprint("packet ", i)), attrs); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 100)
	var attrs packetio.Attributes
	for i := range 20 {
		n, got, err := q.ReadWithAttributes(buf, attrs)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprint("packet ", i); string(buf[:n]) != want {
			t.Fatalf("read %q, want %q", buf[:n], want)
		}
		if v := got.Get(key{}); (i%2 == 0) != (v == i) {
			t.Fatalf("packet %d: attribute %v", i, v)
		}
		attrs = got
	}
	if q.queued() != 0 || q.pkts != nil && cap(q.pkts) > queueKeepCap {
		t.Fatalf("empty queue keeps %d packets, capacity %d", q.queued(), cap(q.pkts))
	}
}

// The limit counts payload and bookkeeping; a full queue refuses with
// packetio.ErrFull (which pion's SRTP streams drop) and takes packets again
// once read.
func TestPacketQueueLimit(t *testing.T) {
	q := newPacketQueue(3*(100+queuedOverhead), time.Minute)
	pkt := make([]byte, 100)
	for range 3 {
		if _, err := q.Write(pkt); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := q.Write(pkt); !errors.Is(err, packetio.ErrFull) {
		t.Fatalf("write to a full queue: %v, want ErrFull", err)
	}
	if _, err := q.Read(make([]byte, 200)); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Write(pkt); err != nil {
		t.Fatalf("write after a read: %v", err)
	}
}

// Packets nobody read within the queue's age are dropped as new ones come:
// a stream nobody reads holds only its last moments.
func TestPacketQueueDropsWhatNobodyRead(t *testing.T) {
	q := newPacketQueue(1<<20, 50*time.Millisecond)
	for i := range 10 {
		if _, err := q.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(testTimeout)
	for {
		time.Sleep(60 * time.Millisecond)
		if _, err := q.Write([]byte{100}); err != nil {
			t.Fatal(err)
		}
		if q.queued() < 11 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("old packets were never dropped")
		}
	}
	buf := make([]byte, 10)
	n, err := q.Read(buf)
	if err != nil || n != 1 || buf[0] != 100 {
		t.Fatalf("read %v %v, want the newest packet only", buf[:n], err)
	}
	if q.queued() != 0 {
		t.Fatalf("%d packets left", q.queued())
	}
}

func TestPacketQueueReadWaitsCloseAndDeadline(t *testing.T) {
	q := newPacketQueue(1<<20, time.Minute)
	got := make(chan string)
	go func() {
		buf := make([]byte, 10)
		n, err := q.Read(buf)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(buf[:n])
	}()
	if _, err := q.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "hello" {
		t.Fatalf("waiting reader got %q", s)
	}

	// A deadline set while a reader waits ends its wait.
	errc := make(chan error)
	go func() {
		_, err := q.Read(make([]byte, 10))
		errc <- err
	}()
	if err := q.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, packetio.ErrTimeout) {
		t.Fatalf("read past its deadline: %v, want ErrTimeout", err)
	}
	if err := q.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}

	// A short buffer gets the start of the packet and io.ErrShortBuffer.
	if _, err := q.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if n, err := q.Read(buf); n != 4 || !errors.Is(err, io.ErrShortBuffer) {
		t.Fatalf("short read: %d %v", n, err)
	}

	// Close: queued packets are read, then io.EOF; writes are refused.
	if _, err := q.Write([]byte("last")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	eofs := make(chan error, 3)
	for range 3 {
		wg.Go(func() {
			for {
				if _, err := q.Read(make([]byte, 10)); err != nil {
					eofs <- err
					return
				}
			}
		})
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for range 3 {
		if err := <-eofs; !errors.Is(err, io.EOF) {
			t.Fatalf("read after close: %v, want EOF", err)
		}
	}
	if _, err := q.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("write after close: %v", err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
}

// One writer and several readers at once (run with -race): every packet is
// read once.
func TestPacketQueueConcurrent(t *testing.T) {
	q := newPacketQueue(1<<20, time.Minute)
	const n = 5000
	var mu sync.Mutex
	seen := map[int]bool{}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			buf := make([]byte, 8)
			for {
				k, err := q.Read(buf)
				if err != nil {
					return
				}
				v := int(buf[0]) | int(buf[1])<<8
				mu.Lock()
				if seen[v] {
					t.Errorf("packet %d read twice", v)
				}
				seen[v] = true
				mu.Unlock()
				_ = k
			}
		})
	}
	for i := range n {
		for {
			_, err := q.Write([]byte{byte(i), byte(i >> 8)})
			if err == nil {
				break
			}
			if !errors.Is(err, packetio.ErrFull) {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(t, testContext(t), "every packet read", func() bool { return q.queued() == 0 })
	_ = q.Close()
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d of %d packets read", len(seen), n)
	}
}

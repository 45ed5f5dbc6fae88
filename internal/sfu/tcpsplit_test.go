package sfu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// The splitter and framedConn run on real loopback sockets. Waits have a
// deadline (waitTimeout) and no test measures how long anything took.

const waitTimeout = 10 * time.Second

type takenConn struct {
	ufrag string
	conn  *framedConn
	first []byte
}

// splitterRig is a splitter on a loopback listener that claims the ufrags
// in claimed, with what it gives to take and to pion (Accept) in channels.
type splitterRig struct {
	s     *tcpSplitter
	taken chan takenConn
	pion  chan net.Conn
}

func newSplitterRig(t *testing.T, claimed ...string) *splitterRig {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	rig := &splitterRig{taken: make(chan takenConn, 16), pion: make(chan net.Conn, 16)}
	claim := func(ufrag string) bool {
		for _, c := range claimed {
			if c == ufrag {
				return true
			}
		}
		return false
	}
	take := func(ufrag string, c *framedConn, first []byte) {
		rig.taken <- takenConn{ufrag, c, first}
	}
	rig.s = newTCPSplitter(l, claim, take, nil)
	// pion's mux in miniature: accept until the listener closes.
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := rig.s.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("accept: %v", err)
				}
				return
			}
			rig.pion <- c
		}
	}()
	t.Cleanup(func() {
		must(t, rig.s.Close())
		<-accepted
		for {
			select {
			case c := <-rig.pion:
				_ = c.Close()
			case tc := <-rig.taken:
				_ = tc.conn.Close()
			default:
				return
			}
		}
	})
	return rig
}

func (rig *splitterRig) dial(t *testing.T) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", rig.s.Addr().String())
	must(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c.(*net.TCPConn)
}

func (rig *splitterRig) nextTaken(t *testing.T) takenConn {
	t.Helper()
	select {
	case tc := <-rig.taken:
		return tc
	case c := <-rig.pion:
		t.Fatalf("connection from %v went to pion", c.RemoteAddr())
	case <-time.After(waitTimeout):
		t.Fatal("no connection reached take")
	}
	return takenConn{}
}

func (rig *splitterRig) nextPion(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-rig.pion:
		return c
	case tc := <-rig.taken:
		t.Fatalf("connection for %q was taken", tc.ufrag)
	case <-time.After(waitTimeout):
		t.Fatal("no connection reached pion")
	}
	return nil
}

func (rig *splitterRig) pendingCount() int {
	rig.s.mu.Lock()
	defer rig.s.mu.Unlock()
	return len(rig.s.pending)
}

// bindingRequest is a binding request as an ICE agent sends it.
func bindingRequest(t testing.TB, username string) []byte {
	t.Helper()
	m, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(username),
		stun.NewShortTermIntegrity("password-of-the-server"), stun.Fingerprint)
	must(t, err)
	return m.Raw
}

// framed is b with its RFC 4571 length.
func framed(b []byte) []byte {
	out := binary.BigEndian.AppendUint16(nil, uint16(len(b)))
	return append(out, b...)
}

// readFramed reads one framed packet from a client's side.
func readFramed(t *testing.T, c net.Conn) []byte {
	t.Helper()
	must(t, c.SetReadDeadline(time.Now().Add(waitTimeout)))
	var hdr [2]byte
	_, err := io.ReadFull(c, hdr[:])
	must(t, err)
	b := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	_, err = io.ReadFull(c, b)
	must(t, err)
	return b
}

// waitClosedByServer waits for the server to close c: a read ends with
// EOF or a reset, not with the wait's own deadline.
func waitClosedByServer(t *testing.T, c net.Conn) {
	t.Helper()
	must(t, c.SetReadDeadline(time.Now().Add(waitTimeout)))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server did not close the connection")
	}
}

// A connection whose binding request is for a claimed ufrag reaches take
// with the request, and packets then go both ways through its framedConn;
// none reaches pion.
func TestTCPSplitClaimedGoesToTake(t *testing.T) {
	checkLeaks(t)
	rig := newSplitterRig(t, "srvufrag")
	c := rig.dial(t)
	req := bindingRequest(t, "srvufrag:cliufrag")
	_, err := c.Write(framed(req))
	must(t, err)

	tc := rig.nextTaken(t)
	defer tc.conn.Close()
	if tc.ufrag != "srvufrag" {
		t.Fatalf("ufrag %q, want srvufrag", tc.ufrag)
	}
	if !bytes.Equal(tc.first, req) {
		t.Fatalf("first packet %x, want the request %x", tc.first, req)
	}
	if tc.conn.RemoteAddr().String() != c.LocalAddr().String() {
		t.Fatalf("remote %v, want the client's %v", tc.conn.RemoteAddr(), c.LocalAddr())
	}

	// Server to client, then client to server.
	resp := []byte("a binding response, say")
	must(t, tc.conn.WritePacket(resp))
	if got := readFramed(t, c); !bytes.Equal(got, resp) {
		t.Fatalf("client read %q, want %q", got, resp)
	}
	pkt := bytes.Repeat([]byte{0xab}, 1200)
	_, err = c.Write(framed(pkt))
	must(t, err)
	buf := make([]byte, 1500)
	n, err := tc.conn.ReadPacket(buf)
	must(t, err)
	if !bytes.Equal(buf[:n], pkt) {
		t.Fatalf("server read %d bytes, want the client's %d", n, len(pkt))
	}
	if rig.pendingCount() != 0 {
		t.Fatalf("%d connections still pending", rig.pendingCount())
	}
}

// Whatever the engine does not claim goes to pion byte for byte: the
// first packet the splitter read is replayed, then the rest of the stream.
func TestTCPSplitUnclaimedGoesToPionUnchanged(t *testing.T) {
	checkLeaks(t)
	rig := newSplitterRig(t, "srvufrag")
	success, err := stun.Build(stun.TransactionID, stun.BindingSuccess, stun.NewUsername("srvufrag:cli"))
	must(t, err)
	cases := []struct {
		name   string
		stream []byte
	}{
		{"binding request for another ufrag", append(framed(bindingRequest(t, "pions:cli")), framed([]byte("next"))...)},
		{"username without a colon", framed(bindingRequest(t, "srvufrag"))},
		{"claimed ufrag as the client's part", framed(bindingRequest(t, "other:srvufrag"))},
		{"not a request", framed(success.Raw)},
		{"not STUN", append(framed([]byte("\x16\xfe\xfd hello")), 1, 2, 3)},
		{"zero-length first frame", append(framed(nil), framed(bindingRequest(t, "srvufrag:cli"))...)},
		{"first frame over the limit", framed(bytes.Repeat([]byte{7}, tcpFirstPacketMax+1))},
		{"largest frame", framed(bytes.Repeat([]byte{9}, 0xffff))},
		{"truncated STUN", framed(bindingRequest(t, "srvufrag:cli")[:30])},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := rig.dial(t)
			// Two writes, so the frame after the first (when there is one)
			// may well be a segment of its own.
			_, err := c.Write(tc.stream[:len(tc.stream)/2])
			must(t, err)
			_, err = c.Write(tc.stream[len(tc.stream)/2:])
			must(t, err)
			must(t, c.CloseWrite())

			pc := rig.nextPion(t)
			defer pc.Close()
			if _, ok := pc.LocalAddr().(*net.TCPAddr); !ok {
				t.Fatalf("LocalAddr is a %T: pion's mux needs a *net.TCPAddr", pc.LocalAddr())
			}
			must(t, pc.SetReadDeadline(time.Now().Add(waitTimeout)))
			got, err := io.ReadAll(pc)
			must(t, err)
			if !bytes.Equal(got, tc.stream) {
				t.Fatalf("pion read %d bytes, not the %d sent", len(got), len(tc.stream))
			}
		})
	}
}

// A connection that has not sent its first packet holds up nobody: others
// accepted meanwhile reach take and pion.
func TestTCPSplitSilentConnectionBlocksNobody(t *testing.T) {
	checkLeaks(t)
	defer func(d time.Duration) { tcpFirstPacketTimeout = d }(tcpFirstPacketTimeout)
	tcpFirstPacketTimeout = time.Hour // the silent one stays pending throughout
	rig := newSplitterRig(t, "srvufrag")

	silent := rig.dial(t)
	deadline := time.Now().Add(waitTimeout)
	for rig.pendingCount() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the silent connection was never accepted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Another client, half a request at a time, gets through meanwhile.
	c := rig.dial(t)
	req := framed(bindingRequest(t, "srvufrag:cli"))
	_, err := c.Write(req[:1])
	must(t, err)
	_, err = c.Write(req[1:])
	must(t, err)
	tc := rig.nextTaken(t)
	defer tc.conn.Close()
	if n := rig.pendingCount(); n != 1 {
		t.Fatalf("%d pending, want the silent one", n)
	}
	// pion's side too.
	other := rig.dial(t)
	_, err = other.Write(framed(bindingRequest(t, "pions:cli")))
	must(t, err)
	rig.nextPion(t).Close()

	// Closing the listener closes what is pending.
	must(t, rig.s.Close())
	waitClosedByServer(t, silent)
	if _, err := rig.s.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
}

// A connection that sends nothing, or not a whole first packet, is closed
// when its time is up, and goes nowhere.
func TestTCPSplitFirstPacketDeadline(t *testing.T) {
	checkLeaks(t)
	defer func(d time.Duration) { tcpFirstPacketTimeout = d }(tcpFirstPacketTimeout)
	tcpFirstPacketTimeout = 50 * time.Millisecond
	rig := newSplitterRig(t, "srvufrag")

	silent := rig.dial(t)
	partial := rig.dial(t)
	req := framed(bindingRequest(t, "srvufrag:cli"))
	_, err := partial.Write(req[:len(req)-1])
	must(t, err)
	waitClosedByServer(t, silent)
	waitClosedByServer(t, partial)
	select {
	case tc := <-rig.taken:
		t.Fatalf("connection for %q taken", tc.ufrag)
	case c := <-rig.pion:
		t.Fatalf("connection from %v given to pion", c.RemoteAddr())
	default:
	}
	if n := rig.pendingCount(); n != 0 {
		t.Fatalf("%d still pending", n)
	}
}

// A connection that ends before its first packet is closed and forgotten.
func TestTCPSplitEarlyEOF(t *testing.T) {
	checkLeaks(t)
	rig := newSplitterRig(t, "srvufrag")
	c := rig.dial(t)
	_, err := c.Write([]byte{0})
	must(t, err)
	must(t, c.CloseWrite())
	waitClosedByServer(t, c)
}

// framedConnPair is a framedConn on the server's side of a loopback
// connection and the client's raw end. The server's reads come through
// wrap, when given.
func framedConnPair(t *testing.T, wrap func(net.Conn) net.Conn) (*framedConn, *net.TCPConn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	client, err := net.Dial("tcp", l.Addr().String())
	must(t, err)
	t.Cleanup(func() { _ = client.Close() })
	server, err := l.Accept()
	must(t, err)
	if wrap != nil {
		server = wrap(server)
	}
	fc := newFramedConn(server)
	t.Cleanup(func() { _ = fc.Close() })
	return fc, client.(*net.TCPConn)
}

// trickleConn returns at most one byte a read: every frame arrives split
// at every possible point.
type trickleConn struct{ net.Conn }

func (c trickleConn) Read(b []byte) (int, error) {
	if len(b) > 1 {
		b = b[:1]
	}
	return c.Conn.Read(b)
}

func TestFramedConnReading(t *testing.T) {
	checkLeaks(t)
	pkts := [][]byte{
		[]byte("first"),
		{}, // a zero-length frame is a packet of nothing, not an end
		bytes.Repeat([]byte{1}, 1500),
		[]byte("after"),
	}
	var stream []byte
	for _, p := range pkts {
		stream = append(stream, framed(p)...)
	}
	for _, tc := range []struct {
		name  string
		wrap  func(net.Conn) net.Conn
		write func(c net.Conn) error
	}{
		{"all frames in one segment", nil, func(c net.Conn) error {
			_, err := c.Write(stream)
			return err
		}},
		{"split across segments", nil, func(c net.Conn) error {
			// One write a byte: with Nagle off (Go's default), one segment a
			// write as long as the reader keeps up.
			for i := range stream {
				if _, err := c.Write(stream[i : i+1]); err != nil {
					return err
				}
			}
			return nil
		}},
		{"one byte a read", func(c net.Conn) net.Conn { return trickleConn{c} }, func(c net.Conn) error {
			_, err := c.Write(stream)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc, client := framedConnPair(t, tc.wrap)
			written := make(chan error, 1)
			go func() { written <- tc.write(client) }()
			must(t, fc.conn.SetReadDeadline(time.Now().Add(waitTimeout)))
			buf := make([]byte, 1500)
			for i, want := range pkts {
				n, err := fc.ReadPacket(buf)
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				if !bytes.Equal(buf[:n], want) {
					t.Fatalf("packet %d: %d bytes, want %d", i, n, len(want))
				}
			}
			must(t, <-written)
			must(t, client.CloseWrite())
			if _, err := fc.ReadPacket(buf); err != io.EOF {
				t.Fatalf("after the last packet: %v, want io.EOF", err)
			}
		})
	}
}

func TestFramedConnEndsInsideAFrame(t *testing.T) {
	checkLeaks(t)
	fc, client := framedConnPair(t, nil)
	_, err := client.Write(framed([]byte("hello"))[:4])
	must(t, err)
	must(t, client.CloseWrite())
	must(t, fc.conn.SetReadDeadline(time.Now().Add(waitTimeout)))
	if _, err := fc.ReadPacket(make([]byte, 100)); err != io.ErrUnexpectedEOF {
		t.Fatalf("%v, want io.ErrUnexpectedEOF", err)
	}
}

// A packet larger than the buffer is an error, and the connection, out of
// step, is closed.
func TestFramedConnPacketLargerThanBuffer(t *testing.T) {
	checkLeaks(t)
	fc, client := framedConnPair(t, nil)
	_, err := client.Write(framed(make([]byte, 101)))
	must(t, err)
	must(t, fc.conn.SetReadDeadline(time.Now().Add(waitTimeout)))
	if _, err := fc.ReadPacket(make([]byte, 100)); !errors.Is(err, errFrameShort) {
		t.Fatalf("%v, want errFrameShort", err)
	}
	waitClosedByServer(t, client)
	// A packet that fits exactly is fine.
	fc, client = framedConnPair(t, nil)
	_, err = client.Write(framed(make([]byte, 100)))
	must(t, err)
	must(t, fc.conn.SetReadDeadline(time.Now().Add(waitTimeout)))
	if n, err := fc.ReadPacket(make([]byte, 100)); err != nil || n != 100 {
		t.Fatalf("%d, %v; want 100 bytes", n, err)
	}
}

// Writers on many goroutines never interleave their frames.
func TestFramedConnConcurrentWrites(t *testing.T) {
	checkLeaks(t)
	fc, client := framedConnPair(t, nil)
	const writers, each = 8, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// Sizes vary so a torn frame shows as a bad length.
				p := bytes.Repeat([]byte{byte(w)}, 1+(w*37+i*11)%1400)
				p = append(p, fmt.Sprintf("%d/%d", w, i)...)
				if err := fc.WritePacket(p); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}
	next := make([]int, writers)
	for range writers * each {
		p := readFramed(t, client)
		w := int(p[0])
		if w >= writers {
			t.Fatalf("torn frame: %q", p)
		}
		want := fmt.Sprintf("%d/%d", w, next[w])
		body, ok := bytes.CutSuffix(p, []byte(want))
		if !ok || len(bytes.Trim(body, string(rune(w)))) != 0 {
			t.Fatalf("writer %d's packet %d is torn: %q", w, next[w], p)
		}
		next[w]++
	}
	wg.Wait()
}

func TestFramedConnWriteLimits(t *testing.T) {
	checkLeaks(t)
	fc, client := framedConnPair(t, nil)
	if err := fc.WritePacket(make([]byte, 0x10000)); !errors.Is(err, errFrameTooLarge) {
		t.Fatalf("a 64 KiB packet: %v, want errFrameTooLarge", err)
	}
	big := bytes.Repeat([]byte{3}, 0xffff)
	done := make(chan error, 1)
	go func() { done <- fc.WritePacket(big) }()
	if got := readFramed(t, client); !bytes.Equal(got, big) {
		t.Fatalf("read %d bytes, want %d", len(got), len(big))
	}
	must(t, <-done)
	must(t, fc.WritePacket(nil))
	if got := readFramed(t, client); len(got) != 0 {
		t.Fatalf("empty packet read as %d bytes", len(got))
	}
	// The subscriber's send path: no allocation a packet.
	pkt := make([]byte, 1200)
	allocs := testing.AllocsPerRun(100, func() {
		if err := fc.WritePacket(pkt); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("WritePacket allocates %.1f times a packet", allocs)
	}
}

// The first-packet classification never crashes, replays exactly what it
// read, and claims only binding requests, by their USERNAME's server part.
func FuzzTCPSplitFirstPacket(f *testing.F) {
	f.Add(framed(bindingRequest(f, "srv:cli")))
	f.Add(append(framed(bindingRequest(f, "a:b")), framed([]byte("more"))...))
	f.Add(framed(bindingRequest(f, ":cli")))
	f.Add(framed(bindingRequest(f, "srv")))
	f.Add(framed(bindingRequest(f, "srv:cli")[:25]))
	f.Add(framed(nil))
	f.Add([]byte{0xff, 0xff, 1, 2})
	f.Add([]byte{0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, stream []byte) {
		read, frame, err := readFirstFrame(bytes.NewReader(stream))
		if err != nil {
			if len(stream) >= frameHeaderLen && int(binary.BigEndian.Uint16(stream))+frameHeaderLen <= len(stream) {
				t.Fatalf("a whole frame is there, yet: %v", err)
			}
			return
		}
		if !bytes.HasPrefix(stream, read) {
			t.Fatalf("read %x is not what the stream starts with", read)
		}
		n := int(binary.BigEndian.Uint16(stream))
		switch {
		case n > tcpFirstPacketMax:
			if frame != nil || len(read) != frameHeaderLen {
				t.Fatalf("a %d-byte frame was read", n)
			}
			return
		case len(read) != frameHeaderLen+n || !bytes.Equal(frame, stream[frameHeaderLen:frameHeaderLen+n]):
			t.Fatalf("frame of %d bytes read as %d", n, len(frame))
		}
		ufrag, ok := bindingUfrag(frame)
		if !ok {
			return
		}
		var m stun.Message
		if err := stun.Decode(frame, &m); err != nil || m.Type != stun.BindingRequest {
			t.Fatalf("claimed a %v (%v)", m.Type, err)
		}
		var user stun.Username
		if err := user.GetFrom(&m); err != nil || ufrag == "" || !strings.HasPrefix(user.String(), ufrag+":") {
			t.Fatalf("ufrag %q from username %q (%v)", ufrag, user, err)
		}
	})
}

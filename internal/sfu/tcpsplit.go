package sfu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/pion/stun/v4"
)

// ICE-TCP (RFC 6544) frames every packet on a connection with a 2-byte
// big-endian length (RFC 4571). The engine's one TCP port serves two kinds
// of ICE agents: pion's, through its TCP mux, and the engine's own (the
// subscribers it runs without a PeerConnection). Both learn whom a new
// connection is for from its first packet, a STUN binding request whose
// USERNAME starts with the server's ufrag, so the splitter reads that
// packet, asks whether the engine's own transport claims the ufrag, and
// hands the connection to one side or the other.

// tcpFirstPacketTimeout is how long a new connection has to send its
// first packet before it is closed. A variable so tests can shorten it.
var tcpFirstPacketTimeout = 10 * time.Second

// tcpFirstPacketMax is the largest first packet the splitter reads. A
// binding request is a few hundred bytes at most (it must fit a UDP
// datagram as well); a larger first frame is nobody the engine knows, and
// is handed to pion with only its length read (pion's own limit is 512
// bytes: it closes it).
const tcpFirstPacketMax = 1500

// frameHeaderLen is the RFC 4571 length prefix.
const frameHeaderLen = 2

var (
	errFrameTooLarge = errors.New("sfu: ICE-TCP packet larger than 65535 bytes")
	errFrameShort    = errors.New("sfu: ICE-TCP packet does not fit the buffer; connection closed")
)

// framedConn is one ICE-TCP connection with RFC 4571 framing. One
// goroutine reads (ReadPacket); any number write (WritePacket).
type framedConn struct {
	conn net.Conn
	hdr  [frameHeaderLen]byte // ReadPacket's

	// WritePacket's, under wmu: the header and the vector handed to
	// writev live with the connection, so a write allocates nothing.
	wmu  sync.Mutex
	whdr [frameHeaderLen]byte
	wvec [2][]byte
	wbuf net.Buffers
}

func newFramedConn(c net.Conn) *framedConn { return &framedConn{conn: c} }

// ReadPacket reads one framed packet into b and returns its length. A
// packet larger than b cannot be skipped without reading it, and the
// stream is then out of step: the connection is closed and the error is
// errFrameShort.
func (c *framedConn) ReadPacket(b []byte) (int, error) {
	if _, err := io.ReadFull(c.conn, c.hdr[:]); err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint16(c.hdr[:]))
	if n > len(b) {
		_ = c.conn.Close()
		return 0, fmt.Errorf("%w (%d bytes, buffer %d)", errFrameShort, n, len(b))
	}
	if _, err := io.ReadFull(c.conn, b[:n]); err != nil {
		return 0, unexpectedEOF(err)
	}
	return n, nil
}

// WritePacket writes b as one framed packet. Length and packet go in one
// write(2) (writev on a TCP socket), so a packet never waits for a second
// segment behind Nagle's delay and concurrent writers never interleave.
func (c *framedConn) WritePacket(b []byte) error {
	if len(b) > 0xffff {
		return errFrameTooLarge
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	binary.BigEndian.PutUint16(c.whdr[:], uint16(len(b)))
	c.wvec = [2][]byte{c.whdr[:], b}
	c.wbuf = c.wvec[:]
	_, err := c.wbuf.WriteTo(c.conn)
	c.wvec[1] = nil // not the caller's buffer's keeper
	return err
}

// Close closes the connection; a blocked ReadPacket or WritePacket returns.
func (c *framedConn) Close() error { return c.conn.Close() }

// RemoteAddr is the client's address.
func (c *framedConn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// LocalAddr is the address the client connected to (the engine's TCP
// port, on the interface the client reached).
func (c *framedConn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// unexpectedEOF reports a stream that ends inside a frame as such, not as
// a clean end.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// tcpSplitter is the engine's ICE-TCP listener as pion's TCP mux sees it:
// it accepts from the real listener, reads each connection's first packet
// off the Accept path (one goroutine per pending connection, so a slow or
// silent client holds up nobody), gives the connections the engine's own
// transport claims to take, and returns the others from Accept with the
// bytes it read replayed first, so pion reads the stream unchanged.
type tcpSplitter struct {
	l       net.Listener
	claim   func(ufrag string) bool
	take    func(ufrag string, c *framedConn, first []byte)
	log     *slog.Logger
	timeout time.Duration

	toPion chan net.Conn
	done   chan struct{}
	wg     sync.WaitGroup // the accept loop and the pending connections' goroutines

	mu      sync.Mutex
	closed  bool
	pending map[net.Conn]struct{} // accepted, first packet not yet read
}

var _ net.Listener = (*tcpSplitter)(nil)

// newTCPSplitter starts accepting on l. claim is asked, for each
// connection whose first packet is a binding request, whether the
// engine's own transport has the ufrag; take then gets the connection
// (which it owns from then on) and the request, on the goroutine that read
// it. Neither may be nil.
func newTCPSplitter(l net.Listener, claim func(ufrag string) bool, take func(ufrag string, c *framedConn, first []byte), log *slog.Logger) *tcpSplitter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &tcpSplitter{
		l:       l,
		claim:   claim,
		take:    take,
		log:     log,
		timeout: tcpFirstPacketTimeout,
		toPion:  make(chan net.Conn),
		done:    make(chan struct{}),
		pending: map[net.Conn]struct{}{},
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s
}

func (s *tcpSplitter) acceptLoop() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		c, err := s.l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.isClosed() {
				return
			}
			// Out of file descriptors and the like: pion's mux would stop
			// accepting for good; wait and try again, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("sfu: ICE-TCP accept", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
				continue
			case <-s.done:
				return
			}
		}
		backoff = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.pending[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.route(c)
	}
}

func (s *tcpSplitter) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// route reads c's first packet and hands c on.
func (s *tcpSplitter) route(c net.Conn) {
	read, frame, err := readFirstPacket(c, s.timeout)
	// The deadline was for the first packet only; pion sets its own.
	if err == nil {
		err = c.SetReadDeadline(time.Time{})
	}
	s.mu.Lock()
	closed := s.closed
	delete(s.pending, c)
	s.mu.Unlock()
	if err != nil || closed {
		if err != nil {
			s.log.Debug("sfu: ICE-TCP connection closed before its first packet", "remote", c.RemoteAddr(), "err", err)
		}
		_ = c.Close()
		s.wg.Done()
		return
	}

	if ufrag, ok := bindingUfrag(frame); ok && s.claim(ufrag) {
		// take may keep this goroutine as long as it likes: it is no
		// longer the splitter's, and Close does not wait for it.
		s.wg.Done()
		s.take(ufrag, newFramedConn(c), frame)
		return
	}
	defer s.wg.Done()
	select {
	case s.toPion <- &replayConn{Conn: c, replay: read}:
	case <-s.done:
		_ = c.Close()
	}
}

// readFirstPacket reads c's first frame within timeout. read is every byte
// read (the frame with its header, or only the header when the frame is
// larger than tcpFirstPacketMax); frame is the packet, nil when not read.
// Any read error, the deadline included, is returned: the connection is
// then of no use to anyone.
func readFirstPacket(c net.Conn, timeout time.Duration) (read, frame []byte, err error) {
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, nil, err
	}
	return readFirstFrame(c)
}

func readFirstFrame(r io.Reader) (read, frame []byte, err error) {
	var hdr [frameHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n > tcpFirstPacketMax {
		return hdr[:], nil, nil
	}
	read = make([]byte, frameHeaderLen+n)
	copy(read, hdr[:])
	if _, err := io.ReadFull(r, read[frameHeaderLen:]); err != nil {
		return nil, nil, unexpectedEOF(err)
	}
	return read, read[frameHeaderLen:], nil
}

// bindingUfrag is the server ufrag a STUN binding request is addressed to:
// the part of its USERNAME ("<server ufrag>:<client ufrag>", RFC 8445
// 7.2.2) before the colon. ok is false for anything else. The request is
// not authenticated here: whoever takes the connection checks its
// MESSAGE-INTEGRITY before answering.
func bindingUfrag(frame []byte) (ufrag string, ok bool) {
	if !stun.IsMessage(frame) {
		return "", false
	}
	m := stun.Message{Raw: frame}
	if m.Decode() != nil || m.Type != stun.BindingRequest {
		return "", false
	}
	user, err := m.Get(stun.AttrUsername)
	if err != nil {
		return "", false
	}
	server, _, found := strings.Cut(string(user), ":")
	if !found || server == "" {
		return "", false
	}
	return server, true
}

// Accept returns the next connection for pion's TCP mux.
func (s *tcpSplitter) Accept() (net.Conn, error) {
	select {
	case c := <-s.toPion:
		return c, nil
	case <-s.done:
		return nil, fmt.Errorf("sfu: ICE-TCP listener: %w", net.ErrClosed)
	}
}

// Close closes the listener and every connection whose first packet has
// not been read, and waits for the splitter's goroutines (not for take).
// Connections already handed on are their new owners' to close.
func (s *tcpSplitter) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	err := s.l.Close()
	for c := range s.pending {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// Addr is the listener's address.
func (s *tcpSplitter) Addr() net.Addr { return s.l.Addr() }

// replayConn is a connection handed to pion: its reads return the bytes
// the splitter already read, then the rest of the stream. Everything else
// (LocalAddr, which pion needs as a *net.TCPAddr, deadlines, writes) is
// the connection's own.
type replayConn struct {
	net.Conn
	replay []byte
}

func (c *replayConn) Read(b []byte) (int, error) {
	if len(c.replay) > 0 {
		n := copy(b, c.replay)
		c.replay = c.replay[n:]
		if len(c.replay) == 0 {
			c.replay = nil
		}
		return n, nil
	}
	return c.Conn.Read(b)
}

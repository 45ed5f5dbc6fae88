package sfu

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// sendConn is the ICE UDP socket as pion's UDP mux sees it, with sends
// that run in parallel.
//
// Every packet to every subscriber leaves through this one socket. Go
// serialises writes to a socket (each net.UDPConn write takes its file
// descriptor's write lock for the whole sendto), so when a packet's fan-out
// is spread over cores (spread.go) the workers would queue for the lock
// and wait in turn — a third of the fan-out's CPU is the send. The kernel
// needs no such lock for UDP, so sendConn calls sendto(2) on the socket
// itself. The socket is non-blocking (Go made it so); when its send buffer
// is full the send falls back to the net.UDPConn, which waits for room as
// usual. Reads, deadlines and closing are the net.UDPConn's.
type sendConn struct {
	conn  *net.UDPConn
	fd    int
	inet6 bool // an AF_INET6 socket (IPv4 peers as ::ffff:a.b.c.d)

	mu     sync.RWMutex // write-held by Close: fd is not reused under a send
	closed bool
}

// newSendConn wraps c, or returns c itself when its descriptor cannot be
// used directly.
func newSendConn(c *net.UDPConn) net.PacketConn {
	rc, err := c.SyscallConn()
	if err != nil {
		return c
	}
	s := &sendConn{conn: c, fd: -1}
	if err := rc.Control(func(fd uintptr) {
		s.fd = int(fd)
		if sa, err := syscall.Getsockname(int(fd)); err == nil {
			_, s.inet6 = sa.(*syscall.SockaddrInet6)
		}
	}); err != nil || s.fd < 0 {
		return c
	}
	return s
}

// ReadFromAddrPort and WriteToAddrPort are what pion's UDP mux uses when a
// connection has them (ice.AddrPortReaderWriter): no address allocated per
// packet.
func (s *sendConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return s.conn.ReadFromUDPAddrPort(b)
}

func (s *sendConn) WriteToAddrPort(b []byte, to netip.AddrPort) (int, error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return 0, net.ErrClosed
	}
	n, err := s.sendto(b, to)
	s.mu.RUnlock()
	if err == nil {
		return n, nil
	}
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) || errors.Is(err, errNoRawAddr) {
		return s.conn.WriteToUDPAddrPort(b, to)
	}
	return n, &net.OpError{Op: "write", Net: "udp", Source: s.conn.LocalAddr(), Addr: net.UDPAddrFromAddrPort(to), Err: err}
}

func (s *sendConn) WriteTo(b []byte, to net.Addr) (int, error) {
	if ua, ok := to.(*net.UDPAddr); ok {
		return s.WriteToAddrPort(b, ua.AddrPort())
	}
	return s.conn.WriteTo(b, to)
}

func (s *sendConn) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return s.conn.Close()
}

func (s *sendConn) ReadFrom(b []byte) (int, net.Addr, error) { return s.conn.ReadFrom(b) }
func (s *sendConn) LocalAddr() net.Addr                      { return s.conn.LocalAddr() }
func (s *sendConn) SetDeadline(t time.Time) error            { return s.conn.SetDeadline(t) }
func (s *sendConn) SetReadDeadline(t time.Time) error        { return s.conn.SetReadDeadline(t) }

// SetWriteDeadline applies to the sends that fall back to the net.UDPConn;
// the others never block.
func (s *sendConn) SetWriteDeadline(t time.Time) error { return s.conn.SetWriteDeadline(t) }

var errNoRawAddr = errors.New("address not sent directly")

// sendto sends b to one address with one system call and no allocation:
// the socket address is built on the stack.
func (s *sendConn) sendto(b []byte, to netip.AddrPort) (int, error) {
	if len(b) == 0 {
		return 0, errNoRawAddr
	}
	addr := to.Addr()
	var (
		r1  uintptr
		err syscall.Errno
	)
	switch {
	case !s.inet6 && addr.Is4():
		var sa syscall.RawSockaddrInet4
		sa.Family = syscall.AF_INET
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], to.Port())
		sa.Addr = addr.As4()
		r1, _, err = syscall.Syscall6(syscall.SYS_SENDTO, uintptr(s.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0,
			uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	case s.inet6 && addr.Zone() == "":
		var sa syscall.RawSockaddrInet6
		sa.Family = syscall.AF_INET6
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], to.Port())
		sa.Addr = addr.As16() // an IPv4 address comes out v4-mapped
		r1, _, err = syscall.Syscall6(syscall.SYS_SENDTO, uintptr(s.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0,
			uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	default: // IPv6 on an IPv4 socket, or a zoned address: Go's path
		return 0, errNoRawAddr
	}
	if err != 0 {
		return 0, err
	}
	return int(r1), nil
}

package sfu

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
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
	noGSO  atomic.Bool // the kernel refused UDP_SEGMENT once
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

// udpSegment is the UDP_SEGMENT socket option (linux/udp.h): the size of
// the datagrams the kernel cuts one send into (UDP generic segmentation
// offload, Linux 4.18).
const udpSegment = 103

// WriteSegments sends b, datagrams of seg bytes each (the last may be
// shorter), to one address with one sendmsg(2) and UDP generic
// segmentation: the kernel builds, routes and delivers the datagrams
// together, a third of the CPU of sending them one by one
// (docs/performance.md). A kernel that refuses segmentation gets them one
// by one, from then on.
func (s *sendConn) WriteSegments(b []byte, seg int, to netip.AddrPort) error {
	if len(b) <= seg || s.noGSO.Load() {
		return writeEach(s, b, seg, to)
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return net.ErrClosed
	}
	err := s.sendmsgGSO(b, seg, to)
	s.mu.RUnlock()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EIO), errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.ENOPROTOOPT),
		errors.Is(err, syscall.EOPNOTSUPP):
		s.noGSO.Store(true)
		return writeEach(s, b, seg, to)
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR), errors.Is(err, errNoRawAddr):
		return writeEach(s, b, seg, to)
	}
	return &net.OpError{Op: "write", Net: "udp", Source: s.conn.LocalAddr(), Addr: net.UDPAddrFromAddrPort(to), Err: err}
}

// sendmsgGSO is sendto with a UDP_SEGMENT control message, everything on
// the stack.
func (s *sendConn) sendmsgGSO(b []byte, seg int, to netip.AddrPort) error {
	addr := to.Addr()
	var (
		sa4  syscall.RawSockaddrInet4
		sa6  syscall.RawSockaddrInet6
		name unsafe.Pointer
		nlen uint32
	)
	switch {
	case !s.inet6 && addr.Is4():
		sa4.Family = syscall.AF_INET
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:], to.Port())
		sa4.Addr = addr.As4()
		name, nlen = unsafe.Pointer(&sa4), uint32(unsafe.Sizeof(sa4))
	case s.inet6 && addr.Zone() == "":
		sa6.Family = syscall.AF_INET6
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa6.Port))[:], to.Port())
		sa6.Addr = addr.As16()
		name, nlen = unsafe.Pointer(&sa6), uint32(unsafe.Sizeof(sa6))
	default:
		return errNoRawAddr
	}
	var oob [32]byte // room for one cmsghdr and its uint16
	space := syscall.CmsgSpace(2)
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = syscall.IPPROTO_UDP, udpSegment // SOL_UDP is the protocol number
	h.SetLen(syscall.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[syscall.CmsgLen(0):], uint16(seg))
	iov := syscall.Iovec{Base: &b[0]}
	iov.SetLen(len(b))
	msg := syscall.Msghdr{Name: (*byte)(name), Namelen: nlen, Iov: &iov, Iovlen: 1, Control: &oob[0]}
	msg.SetControllen(space)
	_, _, errno := syscall.Syscall(syscall.SYS_SENDMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&msg)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// segmenting reports whether ps sends batches with UDP segmentation.
func segmenting(ps packetSender) bool {
	s, ok := ps.(*sendConn)
	return ok && !s.noGSO.Load()
}

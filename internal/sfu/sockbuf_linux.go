package sfu

import (
	"net"
	"syscall"
)

// readBufferSize is the socket's receive buffer as the kernel granted it.
// Linux reports twice the usable size (it doubles the request for its own
// bookkeeping), so the figure is halved to compare with what was asked.
func readBufferSize(c *net.UDPConn) int {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	var n int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		n, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	}); err != nil || serr != nil {
		return 0
	}
	return n / 2
}

// forceReadBuffer sets the buffer past net.core.rmem_max, which only a
// process with CAP_NET_ADMIN may do; it reports whether the kernel took it.
func forceReadBuffer(c *net.UDPConn, want int) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, want)
	}); err != nil {
		return false
	}
	return serr == nil
}

//go:build !linux

package sfu

import "net"

// newSendConn leaves the socket as it is: sends in parallel (sendconn_linux.go)
// are Linux's only.
func newSendConn(c *net.UDPConn) net.PacketConn { return c }

//go:build !linux

package sfu

import "net"

// newSendConn leaves the socket as it is: sends in parallel (sendconn_linux.go)
// are Linux's only.
func newSendConn(c *net.UDPConn) net.PacketConn { return c }

// segmenting reports whether ps sends batches with UDP segmentation: only
// on Linux (sendconn_linux.go).
func segmenting(packetSender) bool { return false }

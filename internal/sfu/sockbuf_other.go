//go:build !linux

package sfu

import "net"

// readBufferSize cannot read the granted size portably: 0, unknown.
func readBufferSize(*net.UDPConn) int { return 0 }

func forceReadBuffer(*net.UDPConn, int) bool { return false }

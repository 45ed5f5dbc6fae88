//go:build !linux

package sfu

import "net"

// recvTimestampOOBSize: no kernel receive times here.
const recvTimestampOOBSize = 0

func enableRecvTimestamps(*net.UDPConn) bool { return false }

func parseRecvTimestamp([]byte) (int64, bool) { return 0, false }
